/*-------------------------------------------------------------------------
 *
 * webhook.c
 *		  rollout_fdw_verify_webhook(server, body, signature): whether a
 *		  webhook Rollout sent is genuine, by its X-Rollout-Signature.
 *
 * The signature is HMAC-SHA256 keyed with the client secret (ROLLOUT_API.md
 * section 9).  Rollout's pages disagree on what it covers: one says the raw
 * body, the newer one the base64 encoding of the raw body; neither says how
 * the digest is written.  Both messages are accepted, the digest as hex or
 * base64, and every comparison runs over the whole digest (constant time:
 * no early exit on the first differing byte).  The secret is the one of the
 * caller's user mapping for the server; it never leaves this function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "common/hmac.h"
#include "foreign/foreign.h"
#include "miscadmin.h"

#include "rollout_fdw.h"

PG_FUNCTION_INFO_V1(rollout_fdw_verify_webhook);

#define DIGEST_LEN 32			/* SHA-256 */

/* HMAC-SHA256 of data keyed with key, into digest. */
static void
hmac_sha256(const char *key, const char *data, size_t len, uint8 *digest)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) key, strlen(key)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, digest, DIGEST_LEN) < 0)
	{
		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute the HMAC of the webhook body")));
	}
	pg_hmac_free(ctx);
}

/*
 * The digest a signature header carries, written as 64 hex digits or as
 * base64 (with or without padding); false when it is neither.
 */
static bool
signature_digest(const char *sig, uint8 *digest)
{
	size_t		len;
	char		padded[48];
	char		decoded[64];
	int			n;

	while (*sig == ' ' || *sig == '\t')
		sig++;
	len = strlen(sig);
	while (len > 0 && (sig[len - 1] == ' ' || sig[len - 1] == '\t' ||
					   sig[len - 1] == '\r' || sig[len - 1] == '\n'))
		len--;

	if (len == DIGEST_LEN * 2 &&
		strspn(sig, "0123456789abcdefABCDEF") >= len)
	{
		hex_decode(sig, len, (char *) digest);
		return true;
	}
	/* 32 bytes in base64: 44 characters with one '=', 43 without */
	if (len != 43 && len != 44)
		return false;
	memcpy(padded, sig, len);
	if (len == 43)
		padded[len++] = '=';
	n = pg_b64_decode(padded, (int) len, (rollout_b64_byte *) decoded,
					  sizeof(decoded));
	if (n != DIGEST_LEN)
		return false;
	memcpy(digest, decoded, DIGEST_LEN);
	return true;
}

/* Equal digests, comparing every byte whatever the first difference. */
static bool
digests_equal(const uint8 *a, const uint8 *b)
{
	uint8		diff = 0;

	for (int i = 0; i < DIGEST_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/*
 * rollout_fdw_verify_webhook(server name, body bytea, signature text)
 * RETURNS boolean: true when signature is the HMAC-SHA256, keyed with the
 * client secret of the caller's user mapping for server, of body or of its
 * base64 encoding.  Needs USAGE on the server, as a scan does.
 */
Datum
rollout_fdw_verify_webhook(PG_FUNCTION_ARGS)
{
	ForeignServer *server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)),
												   false);
	bytea	   *body = PG_GETARG_BYTEA_PP(1);
	char	   *sig = text_to_cstring(PG_GETARG_TEXT_PP(2));
	const char *data = VARDATA_ANY(body);
	int			len = VARSIZE_ANY_EXHDR(body);
	Oid			userid = GetUserId();
	RolloutOptions *opts;
	uint8		given[DIGEST_LEN];
	uint8		over_raw[DIGEST_LEN];
	uint8		over_b64[DIGEST_LEN];
	char	   *b64;
	int			b64_len;
	bool		raw_ok;
	bool		b64_ok;

	rollout_check_server(server, userid);
	opts = rollout_get_options(server->serverid, userid, InvalidOid);

	if (!signature_digest(sig, given))
		PG_RETURN_BOOL(false);

	b64 = palloc(pg_b64_enc_len(len) + 1);
	b64_len = pg_b64_encode((const rollout_b64_byte *) data, len, b64,
							pg_b64_enc_len(len));
	if (b64_len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encode the webhook body in base64")));

	hmac_sha256(opts->client_secret, data, len, over_raw);
	hmac_sha256(opts->client_secret, b64, b64_len, over_b64);
	/* both compared, always: the time taken says nothing of which matched */
	raw_ok = digests_equal(given, over_raw);
	b64_ok = digests_equal(given, over_b64);
	explicit_bzero(over_raw, sizeof(over_raw));
	explicit_bzero(over_b64, sizeof(over_b64));
	PG_RETURN_BOOL(raw_ok | b64_ok);
}
