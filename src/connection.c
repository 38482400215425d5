/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Per-user-mapping state kept for the life of the backend: the JWT,
 *		  the credential id and the kept-alive curl handle; their
 *		  invalidation; authenticated API requests; credential discovery.
 *
 * Rules kept here:
 *	- a token is minted once per backend and user mapping and reused until
 *	  shortly before it expires; a 401 forces one fresh token and one retry;
 *	- the credential id comes from the mapping's credential_id, else from
 *	  GET {auth_url}/credentials when exactly one credential is visible;
 *	- ALTER or DROP of the server or the mapping drops the cached token and
 *	  credential (syscache callbacks, as postgres_fdw does);
 *	- the Authorization header is built here, lives in a curl_slist owned by
 *	  PG_TRY/PG_FINALLY, and is never put in a message;
 *	- no header value carries a control character (CR/LF would inject
 *	  headers): a credential id is checked when it is taken from the mapping
 *	  or from GET /credentials, and every value again when headers are
 *	  built; a bad one is an error and nothing is sent;
 *	- rollout_fdw_credentials() needs USAGE on the server, and a server of
 *	  this wrapper, recognised by its handler function, not by name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "access/xact.h"
#include "catalog/pg_user_mapping.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "rollout_fdw.h"

static HTAB *conn_hash = NULL;

static void
forget_secrets(RolloutConn *entry)
{
	if (entry->token != NULL)
	{
		explicit_bzero(entry->token, strlen(entry->token));
		pfree(entry->token);
		entry->token = NULL;
	}
	if (entry->credential_id != NULL)
	{
		pfree(entry->credential_id);
		entry->credential_id = NULL;
	}
	entry->invalidated = false;
}

/*
 * Mark the entries of a changed server or user mapping; a hash value of 0
 * means "all".  The entries are refreshed at their next use.
 */
static void
inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	RolloutConn *entry;

	hash_seq_init(&scan, conn_hash);
	while ((entry = (RolloutConn *) hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 entry->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 entry->mapping_hashvalue == hashvalue))
			entry->invalidated = true;
	}
}

/* The state of a user mapping, created on first use. */
RolloutConn *
rollout_get_conn(UserMapping *user)
{
	RolloutConn *entry;
	bool		found;

	if (conn_hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RolloutConn);
		conn_hash = hash_create("rollout_fdw connections", 8, &ctl,
								HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, inval_callback,
									  (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, inval_callback,
									  (Datum) 0);
	}

	entry = hash_search(conn_hash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		entry->token = NULL;
		entry->credential_id = NULL;
		memset(entry->handles, 0, sizeof(entry->handles));
		entry->invalidated = false;
		entry->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID,
								  ObjectIdGetDatum(user->serverid));
		entry->mapping_hashvalue =
			GetSysCacheHashValue1(USERMAPPINGOID,
								  ObjectIdGetDatum(user->umid));
	}
	if (entry->invalidated)
		forget_secrets(entry);
	return entry;
}

/*
 * Percent-encode a value for a URL path segment or query (RFC 3986: all but
 * the unreserved characters), in palloc'd memory.
 */
char *
rollout_escape(const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	StringInfoData buf;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
			*p == '_' || *p == '~')
			appendStringInfoChar(&buf, (char) *p);
		else
		{
			appendStringInfoChar(&buf, '%');
			appendStringInfoChar(&buf, hex[*p >> 4]);
			appendStringInfoChar(&buf, hex[*p & 15]);
		}
	}
	return buf.data;
}

static void
ensure_token(RolloutConn *conn, RolloutOptions *opts, bool force)
{
	int64		now = (int64) time(NULL);
	int			margin = Min(60, opts->token_ttl_s / 10);

	if (conn->token != NULL && !force && now < conn->token_expires - margin)
		return;
	if (conn->token != NULL)
	{
		explicit_bzero(conn->token, strlen(conn->token));
		pfree(conn->token);
		conn->token = NULL;
	}
	{
		char	   *token = rollout_mint_jwt(opts->client_id,
											 opts->client_secret,
											 opts->user_id, now,
											 opts->token_ttl_s);

		conn->token = MemoryContextStrdup(TopMemoryContext, token);
		explicit_bzero(token, strlen(token));
		pfree(token);
	}
	conn->token_expires = now + opts->token_ttl_s;
}

/* Whether a header value is free of control characters (CR, LF, NUL...). */
static bool
header_value_ok(const char *value)
{
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/*
 * Refuse a credential id that cannot go in a header; source says where it
 * came from ("option \"credential_id\" of the user mapping", "GET
 * .../credentials").
 */
static void
check_credential_id(const char *id, const char *source, int sqlstate)
{
	if (!header_value_ok(id))
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("the credential id from %s contains a control character",
						source),
				 errdetail("A header value cannot hold CR, LF or other control characters; nothing was sent.")));
}

static struct curl_slist *
add_header(struct curl_slist *list, const char *header)
{
	struct curl_slist *grown = curl_slist_append(list, header);

	if (grown == NULL)
	{
		curl_slist_free_all(list);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	return grown;
}

/*
 * Headers of the requests; the caller frees them with curl_slist_free_all.
 * Content-Type goes on every request, bodies or not, as Rollout's own
 * clients send it.  Not inlined: its locals must stay out of the caller's
 * PG_TRY frame.
 */
static pg_noinline struct curl_slist *
build_headers(RolloutConn *conn, bool need_credential)
{
	struct curl_slist *list = NULL;
	char	   *auth;

	/* checked again here, whatever set them */
	if (!header_value_ok(conn->token))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("the token cannot be sent in a header")));
	if (need_credential)
		check_credential_id(conn->credential_id,
							"the user mapping or GET /credentials",
							ERRCODE_FDW_INVALID_STRING_FORMAT);
	auth = psprintf("Authorization: Bearer %s", conn->token);
	list = add_header(list, auth);
	explicit_bzero(auth, strlen(auth));
	pfree(auth);
	list = add_header(list, "Accept: application/json");
	list = add_header(list, "Content-Type: application/json");
	if (need_credential)
	{
		char	   *cred = psprintf("X-Rollout-Credential-Id: %s",
									conn->credential_id);

		list = add_header(list, cred);
		pfree(cred);
	}
	return list;
}

/* The i-th kept-alive handle of a mapping, made on first use. */
static CURL *
conn_handle(RolloutConn *conn, int i)
{
	if (conn->handles[i] == NULL)
		conn->handles[i] = rollout_http_new_handle();
	return conn->handles[i];
}

static void
run_with_headers(RolloutConn *conn, RolloutOptions *opts,
				 RolloutHttpJob *jobs, int njobs, bool need_credential)
{
	struct curl_slist *headers = build_headers(conn, need_credential);

	PG_TRY();
	{
		for (int i = 0; i < njobs; i++)
		{
			jobs[i].headers = headers;
			jobs[i].easy = conn_handle(conn, i);
		}
		rollout_http_run(opts, jobs, njobs);
	}
	PG_FINALLY();
	{
		curl_slist_free_all(headers);
	}
	PG_END_TRY();
}

static void resolve_credential(RolloutConn *conn, RolloutOptions *opts);

/*
 * Run authenticated requests (method, url, label, body of each job set by
 * the caller), ROLLOUT_MAX_INFLIGHT at a time.  Each job ends with its final
 * response or a recorded transport failure (rollout_http_raise_failure).
 * Jobs answered 401 are sent once more with a fresh token: a 401 means the
 * API did nothing, so this is safe for a POST too.
 */
void
rollout_api_run(RolloutConn *conn, RolloutOptions *opts,
				RolloutHttpJob *jobs, int njobs, bool need_credential)
{
	ensure_token(conn, opts, false);
	if (need_credential && conn->credential_id == NULL)
		resolve_credential(conn, opts);

	for (int start = 0; start < njobs; start += ROLLOUT_MAX_INFLIGHT)
	{
		int			n = Min(njobs - start, ROLLOUT_MAX_INFLIGHT);
		RolloutHttpJob *window = jobs + start;
		bool		refreshed = false;

		run_with_headers(conn, opts, window, n, need_credential);
		for (int i = 0; i < n; i++)
		{
			if (window[i].failure != ROLLOUT_FAIL_NONE ||
				window[i].resp.status != 401)
				continue;
			if (!refreshed)
				ensure_token(conn, opts, true);
			refreshed = true;
			run_with_headers(conn, opts, &window[i], 1, need_credential);
		}
	}
}

/*
 * Send one authenticated request to base || path and return its final
 * response, whatever its status (see rollout_check_status); a transport
 * failure raises.  label, when not NULL, names the request in messages
 * instead of path (a page cursor is long and says nothing).
 */
void
rollout_api_request(RolloutConn *conn, RolloutOptions *opts,
					const char *method, const char *base, const char *path,
					const char *label, const char *body,
					bool need_credential, RolloutResponse *resp)
{
	RolloutHttpJob job = {0};

	job.method = method;
	job.url = psprintf("%s%s", base, path);
	job.label = label ? label : path;
	job.body = body;
	rollout_api_run(conn, opts, &job, 1, need_credential);
	rollout_http_raise_failure(opts, &job);
	*resp = job.resp;
}

/* Raise the classified error unless the response is a success. */
void
rollout_check_status(const char *method, const char *path,
					 RolloutResponse *resp)
{
	if (resp->status < 200 || resp->status > 299)
		rollout_http_report_error(method, path, resp);
}

static char *
json_string_or_null(json_t *obj, const char *key)
{
	json_t	   *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	return rollout_json_scalar_text(v);
}

/*
 * The credentials visible to the mapping's user: GET {auth_url}/credentials,
 * a bare JSON array.  Only id, label, appKey and createdAt are kept: the
 * items' "data" holds upstream secrets and is never read.
 */
List *
rollout_list_credentials(RolloutConn *conn, RolloutOptions *opts)
{
	RolloutResponse resp;
	json_t	   *root;
	List	   *result = NIL;
	size_t		i;
	json_t	   *item;
	const char *path = "/credentials";

	rollout_api_request(conn, opts, "GET", opts->auth_url, path, NULL, NULL,
						false, &resp);
	rollout_check_status("GET", path, &resp);
	root = rollout_json_parse(CurrentMemoryContext, resp.body, resp.body_len,
							  "GET", path);
	if (!json_is_array(root))
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to GET %s is not a JSON array",
						path)));
	json_array_foreach(root, i, item)
	{
		RolloutCredential *cred = palloc0(sizeof(RolloutCredential));

		if (!json_is_object(item) || json_object_get(item, "id") == NULL)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout response to GET %s holds an item without an id",
							path)));
		cred->id = json_string_or_null(item, "id");
		cred->label = json_string_or_null(item, "label");
		cred->app_key = json_string_or_null(item, "appKey");
		cred->created_at = json_string_or_null(item, "createdAt");
		result = lappend(result, cred);
	}
	return result;
}

/* Use credential_id, else the one credential the user can see. */
static void
resolve_credential(RolloutConn *conn, RolloutOptions *opts)
{
	List	   *creds;
	StringInfoData found;
	ListCell   *lc;

	if (opts->credential_id != NULL)
	{
		check_credential_id(opts->credential_id,
							"option \"credential_id\" of the user mapping",
							ERRCODE_FDW_INVALID_STRING_FORMAT);
		conn->credential_id = MemoryContextStrdup(TopMemoryContext,
												  opts->credential_id);
		return;
	}

	creds = rollout_list_credentials(conn, opts);
	if (list_length(creds) == 1)
	{
		RolloutCredential *cred = linitial(creds);

		check_credential_id(cred->id,
							psprintf("GET %s/credentials", opts->auth_url),
							ROLLOUT_ERRCODE_BAD_RESPONSE);
		conn->credential_id = MemoryContextStrdup(TopMemoryContext, cred->id);
		return;
	}

	initStringInfo(&found);
	foreach(lc, creds)
	{
		RolloutCredential *cred = lfirst(lc);

		appendStringInfo(&found, "%s%s (%s)", found.len > 0 ? ", " : "",
						 cred->id, cred->label ? cred->label : "no label");
	}
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_CREDENTIAL),
			 list_length(creds) == 0
			 ? errmsg("Rollout user \"%s\" has no credential", opts->user_id)
			 : errmsg("Rollout user \"%s\" has %d credentials; rollout_fdw cannot choose one",
					  opts->user_id, list_length(creds)),
			 list_length(creds) == 0
			 ? errdetail("The credential list of the server's auth_url is empty.")
			 : errdetail_internal("Credentials found: %s.",
								  rollout_redact(found.data)),
			 list_length(creds) == 0
			 ? errhint("Connect a CRM for this user in Rollout, or set credential_id on the user mapping.")
			 : errhint("Set credential_id on the user mapping, e.g. ALTER USER MAPPING ... OPTIONS (ADD credential_id '%s').",
					   rollout_redact(((RolloutCredential *) linitial(creds))->id))));
}

/* rollout_fdw_handler is defined in rollout_fdw.c */
extern PGDLLEXPORT Datum rollout_fdw_handler(PG_FUNCTION_ARGS);

/* Whether a server belongs to a wrapper whose handler is this library's. */
static bool
uses_rollout_fdw(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	FmgrInfo	handler;

	if (!OidIsValid(fdw->fdwhandler))
		return false;
	fmgr_info(fdw->fdwhandler, &handler);
	return handler.fn_addr == rollout_fdw_handler;
}

PG_FUNCTION_INFO_V1(rollout_fdw_credentials);

/*
 * rollout_fdw_credentials(server name): the credentials the current user's
 * mapping can see (id, label, app key, creation time), never their data.
 * Needs USAGE on the server, as a scan of its tables does (dblink checks
 * the same before using a mapping).
 */
Datum
rollout_fdw_credentials(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForeignServer *server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)),
												   false);
	Oid			userid = GetUserId();
	AclResult	aclresult;
	RolloutOptions *opts;
	RolloutConn *conn;
	List	   *creds;
	ListCell   *lc;

	aclresult = pg_foreign_server_aclcheck(server->serverid, userid, ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	if (!uses_rollout_fdw(server))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" does not use rollout_fdw",
						server->servername)));

	InitMaterializedSRF(fcinfo, 0);
	opts = rollout_get_options(server->serverid, userid, InvalidOid);
	conn = rollout_get_conn(GetUserMapping(userid, server->serverid));
	creds = rollout_list_credentials(conn, opts);

	foreach(lc, creds)
	{
		RolloutCredential *cred = lfirst(lc);
		Datum		values[4];
		bool		nulls[4];
		char	   *fields[4] = {cred->id, cred->label, cred->app_key,
		cred->created_at};

		for (int i = 0; i < 4; i++)
		{
			nulls[i] = fields[i] == NULL;
			values[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(fields[i]);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
