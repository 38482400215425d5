/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  The per-user cache, kept for the life of the backend: the JWT and
 *		  the credential id of each (user mapping, Rollout user), their
 *		  invalidation, and the backend's kept-alive curl handles.  What
 *		  goes in the cache is decided in api.c.
 *
 * Rules kept here:
 *	- one entry per user mapping and Rollout user (a mapping with
 *	  user_id '*' acts for many), keyed by the mapping's OID, as
 *	  postgres_fdw keys its connections, and the user id itself (at most
 *	  ROLLOUT_MAX_ID_LEN bytes);
 *	- the cache is bounded: past ROLLOUT_MAX_CACHED_USERS entries, the
 *	  least recently used entry that no scan of the current transaction
 *	  uses is dropped (a transaction reading more users than that keeps
 *	  them all until it ends);
 *	- ALTER or DROP of the server or the mapping drops the cached token and
 *	  credential (syscache callbacks, as postgres_fdw does) at the entry's
 *	  next use;
 *	- the curl handles are the backend's, shared by every user: they hold
 *	  no secret (each transfer sets its own headers);
 *	- the token and the credential id live in TopMemoryContext; a token is
 *	  zeroed before its memory is freed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_user_mapping.h"
#include "storage/proc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "rollout_fdw.h"

/* Entries kept before the least recently used one is dropped. */
#define ROLLOUT_MAX_CACHED_USERS 256

static HTAB *conn_hash = NULL;
static uint64 use_tick = 0;
static CURL *handles[ROLLOUT_MAX_INFLIGHT];	/* kept-alive, made on demand */

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

/* Forget an entry altogether (its secrets zeroed). */
static void
drop_entry(RolloutConn *entry)
{
	forget_secrets(entry);
	if (entry->user_id != NULL)
		pfree(entry->user_id);
	hash_search(conn_hash, &entry->key, HASH_REMOVE, NULL);
}

/*
 * Make room for one more entry: drop the least recently used one that the
 * current transaction does not use, if the cache is full.
 */
static void
evict_one(void)
{
	HASH_SEQ_STATUS scan;
	RolloutConn *entry;
	RolloutConn *oldest = NULL;

	if (hash_get_num_entries(conn_hash) < ROLLOUT_MAX_CACHED_USERS)
		return;
	hash_seq_init(&scan, conn_hash);
	while ((entry = (RolloutConn *) hash_seq_search(&scan)) != NULL)
		if (entry->used_in != ROLLOUT_MY_LXID &&
			(oldest == NULL || entry->last_used < oldest->last_used))
			oldest = entry;
	if (oldest != NULL)
		drop_entry(oldest);
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

/*
 * The state of a Rollout user of a user mapping, created on first use.
 * The entry stays valid until the current transaction ends.
 */
RolloutConn *
rollout_get_conn(UserMapping *user, const char *user_id)
{
	RolloutConn *entry;
	RolloutConnKey key;
	bool		found;

	if (conn_hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(RolloutConnKey);
		ctl.entrysize = sizeof(RolloutConn);
		conn_hash = hash_create("rollout_fdw connections", 8, &ctl,
								HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, inval_callback,
									  (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, inval_callback,
									  (Datum) 0);
	}

	memset(&key, 0, sizeof(key));
	key.umid = user->umid;
	rollout_check_id(user_id, ROLLOUT_KEY_USER);
	rollout_pair_key(&key.user, user_id, NULL);
	entry = hash_search(conn_hash, &key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		evict_one();
		entry = hash_search(conn_hash, &key, HASH_ENTER, &found);
		entry->user_id = MemoryContextStrdup(TopMemoryContext, user_id);
		entry->token = NULL;
		entry->credential_id = NULL;
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
	entry->last_used = ++use_tick;
	entry->used_in = ROLLOUT_MY_LXID;
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

/* The backend's i-th kept-alive curl handle, made on first use. */
CURL *
rollout_conn_handle(int i)
{
	if (handles[i] == NULL)
		handles[i] = rollout_http_new_handle();
	return handles[i];
}
