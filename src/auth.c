/*-------------------------------------------------------------------------
 *
 * auth.c
 *		  Minting of the HS512 JWT that authenticates every Rollout request.
 *
 * The token carries iss = client id, sub = user id, iat and exp; it is
 * signed with the client secret.  libjwt allocates with malloc and
 * jwt_encode_str's result is freed with plain free() (libjwt 1.10 has no
 * jwt_free_str).  Neither the secret nor the token ever reaches a message:
 * a failure says only which step failed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jwt.h>

#include "rollout_fdw.h"

static void
mint_failed(jwt_t *jwt, const char *step, int rc)
{
	jwt_free(jwt);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not create the Rollout JWT: %s failed", step),
			 errdetail("libjwt returned %d.", rc)));
}

/*
 * Return a new token in palloc'd memory.  All libjwt objects are freed
 * before anything that can throw.
 */
char *
rollout_mint_jwt(const char *client_id, const char *secret,
				 const char *subject, int64 issued_at, int ttl_s)
{
	jwt_t	   *jwt = NULL;
	char	   *encoded;
	char	   *result;
	int			rc;

	rc = jwt_new(&jwt);
	if (rc != 0 || jwt == NULL)
		mint_failed(NULL, "jwt_new", rc);
	if ((rc = jwt_add_grant(jwt, "iss", client_id)) != 0)
		mint_failed(jwt, "adding iss", rc);
	if ((rc = jwt_add_grant(jwt, "sub", subject)) != 0)
		mint_failed(jwt, "adding sub", rc);
	if ((rc = jwt_add_grant_int(jwt, "iat", (long) issued_at)) != 0)
		mint_failed(jwt, "adding iat", rc);
	if ((rc = jwt_add_grant_int(jwt, "exp", (long) (issued_at + ttl_s))) != 0)
		mint_failed(jwt, "adding exp", rc);
	rc = jwt_set_alg(jwt, JWT_ALG_HS512, (const unsigned char *) secret,
					 (int) strlen(secret));
	if (rc != 0)
		mint_failed(jwt, "setting HS512", rc);

	encoded = jwt_encode_str(jwt);
	jwt_free(jwt);
	if (encoded == NULL)
		mint_failed(NULL, "encoding", errno);

	PG_TRY();
	{
		result = pstrdup(encoded);
	}
	PG_FINALLY();
	{
		explicit_bzero(encoded, strlen(encoded));
		free(encoded);
	}
	PG_END_TRY();

	return result;
}
