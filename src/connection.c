/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  The per-user-mapping cache, kept for the life of the backend: the
 *		  JWT, the credential id and the kept-alive curl handles of each
 *		  mapping, and their invalidation.  What goes in the cache is
 *		  decided in api.c.
 *
 * Rules kept here:
 *	- one entry per user mapping, keyed by its OID, as postgres_fdw keys its
 *	  connections;
 *	- ALTER or DROP of the server or the mapping drops the cached token and
 *	  credential (syscache callbacks, as postgres_fdw does) at the entry's
 *	  next use; the curl handles stay, they hold no secret;
 *	- the token and the credential id live in TopMemoryContext; a token is
 *	  zeroed before its memory is freed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_user_mapping.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "rollout_fdw.h"

static HTAB *conn_hash = NULL;

/* Zero and free the cached token, if any. */
static void
drop_token(RolloutConn *entry)
{
	if (entry->token != NULL)
	{
		explicit_bzero(entry->token, strlen(entry->token));
		pfree(entry->token);
		entry->token = NULL;
	}
}

static void
forget_secrets(RolloutConn *entry)
{
	drop_token(entry);
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
 * Replace the mapping's token with a copy of token (NULL: forget it), valid
 * until expires (Unix seconds).  The caller zeroes its own copy.
 */
void
rollout_conn_set_token(RolloutConn *conn, const char *token, int64 expires)
{
	drop_token(conn);
	if (token != NULL)
		conn->token = MemoryContextStrdup(TopMemoryContext, token);
	conn->token_expires = expires;
}

/* Keep the credential id the mapping's requests carry. */
void
rollout_conn_set_credential(RolloutConn *conn, const char *id)
{
	if (conn->credential_id != NULL)
		pfree(conn->credential_id);
	conn->credential_id = MemoryContextStrdup(TopMemoryContext, id);
}

/* The i-th kept-alive curl handle of a mapping, made on first use. */
CURL *
rollout_conn_handle(RolloutConn *conn, int i)
{
	if (conn->handles[i] == NULL)
		conn->handles[i] = rollout_http_new_handle();
	return conn->handles[i];
}
