/*-------------------------------------------------------------------------
 *
 * limiter.c
 *		  State shared by every backend of the cluster: the token bucket of
 *		  each Rollout tenant (client id) and the counters of each server,
 *		  read by rollout_fdw_stats().
 *
 * Rules kept here:
 *	- with rollout_fdw in shared_preload_libraries the state lives in
 *	  shared memory under one LWLock, held only to update a few numbers;
 *	  without it, each backend keeps its own copy and says so once with a
 *	  NOTICE that tells how to share it;
 *	- a 429 carrying Retry-After pauses the whole tenant until then: every
 *	  backend's next request waits;
 *	- reading the counters writes nothing, so rollout_fdw_stats() works in
 *	  read-only transactions and on standbys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

#define MAX_TENANTS 64
#define MAX_SERVERS 128

typedef struct TenantBucket
{
	char		client_id[128];
	double		tokens;
	TimestampTz refilled;
	TimestampTz paused_until;	/* a 429's Retry-After, for everyone */
} TenantBucket;

typedef struct ServerCounters
{
	Oid			dbid;
	Oid			serverid;
	char		database[NAMEDATALEN];
	char		server[NAMEDATALEN];
	RolloutStats stats;
	TimestampTz last_error_at;
	long		last_error_status;
	char		last_error_request[160];
} ServerCounters;

typedef struct RolloutShared
{
	LWLock	   *lock;			/* NULL when backend-local */
	int			ntenants;
	int			nservers;
	TenantBucket tenants[MAX_TENANTS];
	ServerCounters servers[MAX_SERVERS];
} RolloutShared;

static RolloutShared *shared = NULL;
static bool is_shared = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RolloutShared)));
	RequestNamedLWLockTranche("rollout_fdw", 1);
}

static void
shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("rollout_fdw", sizeof(RolloutShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(RolloutShared));
		shared->lock = &(GetNamedLWLockTranche("rollout_fdw"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
	is_shared = true;
}

/* Called from _PG_init: ask for shared memory when preloaded. */
void
rollout_limiter_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

/* The state, shared or this backend's own (announced once). */
static RolloutShared *
state(void)
{
	if (shared != NULL)
		return shared;
	shared = MemoryContextAllocZero(TopMemoryContext, sizeof(RolloutShared));
	ereport(NOTICE,
			(errmsg("rollout_fdw is not in shared_preload_libraries: each backend applies rate_limit on its own"),
			 errhint("Add rollout_fdw to shared_preload_libraries and restart the server to share one rate limit per tenant across the cluster.")));
	return shared;
}

static void
lock(RolloutShared *s)
{
	if (s->lock)
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
}

static void
unlock(RolloutShared *s)
{
	if (s->lock)
		LWLockRelease(s->lock);
}

static TenantBucket *
find_tenant(RolloutShared *s, const char *client_id, double rate)
{
	for (int i = 0; i < s->ntenants; i++)
		if (strcmp(s->tenants[i].client_id, client_id) == 0)
			return &s->tenants[i];
	if (s->ntenants < MAX_TENANTS)
	{
		TenantBucket *t = &s->tenants[s->ntenants++];

		strlcpy(t->client_id, client_id, sizeof(t->client_id));
		t->tokens = Max(1.0, rate);
		t->refilled = GetCurrentTimestamp();
		t->paused_until = 0;
		return t;
	}
	/* more tenants than slots: they share the last one, still limited */
	return &s->tenants[MAX_TENANTS - 1];
}

/*
 * Try to take one token from the tenant's bucket (rate_limit per second,
 * a burst of one second).  Returns 0 when taken, else the milliseconds to
 * wait: for a token, or for the end of a pause a 429 asked for.
 */
long
rollout_limiter_take(RolloutOptions *opts)
{
	RolloutShared *s = state();
	TenantBucket *t;
	TimestampTz now = GetCurrentTimestamp();
	long		wait = 0;

	lock(s);
	t = find_tenant(s, opts->client_id, opts->rate_limit);
	if (t->paused_until > now)
		wait = TimestampDifferenceMilliseconds(now, t->paused_until) + 1;
	else if (opts->rate_limit > 0)
	{
		double		burst = Max(1.0, opts->rate_limit);

		t->tokens = Min(burst, t->tokens +
						(now - t->refilled) / 1e6 * opts->rate_limit);
		t->refilled = now;
		if (t->tokens >= 1.0)
			t->tokens -= 1.0;
		else
			wait = Max(1, (long) ceil((1.0 - t->tokens) * 1000.0 /
									  opts->rate_limit));
	}
	unlock(s);
	return wait;
}

/* A 429 said when to come back: no backend of the tenant asks before. */
void
rollout_limiter_pause(RolloutOptions *opts, long ms)
{
	RolloutShared *s = state();
	TenantBucket *t;
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	lock(s);
	t = find_tenant(s, opts->client_id, opts->rate_limit);
	t->paused_until = Max(t->paused_until, until);
	t->tokens = 0;
	unlock(s);
}

static ServerCounters *
find_server(RolloutShared *s, RolloutOptions *opts)
{
	for (int i = 0; i < s->nservers; i++)
		if (s->servers[i].dbid == MyDatabaseId &&
			s->servers[i].serverid == opts->serverid)
			return &s->servers[i];
	if (s->nservers < MAX_SERVERS)
	{
		ServerCounters *c = &s->servers[s->nservers++];

		memset(c, 0, sizeof(ServerCounters));
		c->dbid = MyDatabaseId;
		c->serverid = opts->serverid;
		strlcpy(c->server, opts->servername, sizeof(c->server));
		return c;
	}
	return NULL;
}

/* This backend's database name, looked up once (it never changes). */
static const char *
database_name(void)
{
	static char name[NAMEDATALEN];

	if (name[0] == '\0')
	{
		char	   *found = get_database_name(MyDatabaseId);

		strlcpy(name, found ? found : "", sizeof(name));
	}
	return name;
}

/* Add a request's counts to its server's. */
void
rollout_stats_add(RolloutOptions *opts, const RolloutStats *delta)
{
	RolloutShared *s = state();
	ServerCounters *c;
	const char *dbname = database_name();

	lock(s);
	c = find_server(s, opts);
	if (c != NULL)
	{
		if (c->database[0] == '\0')
			strlcpy(c->database, dbname, sizeof(c->database));
		c->stats.requests += delta->requests;
		c->stats.status_2xx += delta->status_2xx;
		c->stats.status_3xx += delta->status_3xx;
		c->stats.status_4xx += delta->status_4xx;
		c->stats.status_5xx += delta->status_5xx;
		c->stats.network_errors += delta->network_errors;
		c->stats.retries += delta->retries;
		c->stats.rate_limited += delta->rate_limited;
		c->stats.throttled_us += delta->throttled_us;
		c->stats.backoff_us += delta->backoff_us;
		c->stats.bytes += delta->bytes;
	}
	unlock(s);
}

/* Remember a server's last failed request (method and path, no secret). */
void
rollout_stats_error(RolloutOptions *opts, const char *method,
					const char *path, long status)
{
	RolloutShared *s = state();
	ServerCounters *c;

	lock(s);
	c = find_server(s, opts);
	if (c != NULL)
	{
		c->last_error_at = GetCurrentTimestamp();
		c->last_error_status = status;
		snprintf(c->last_error_request, sizeof(c->last_error_request),
				 "%s %s", method, path);
	}
	unlock(s);
}

PG_FUNCTION_INFO_V1(rollout_fdw_stats);

/*
 * rollout_fdw_stats(): the counters of every server since the cluster
 * started (or, without preloading, since this backend started).
 */
Datum
rollout_fdw_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RolloutShared *s;
	ServerCounters *copy;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	s = state();

	/* copy under the lock, build tuples after it */
	copy = palloc(sizeof(ServerCounters) * MAX_SERVERS);
	if (s->lock)
		LWLockAcquire(s->lock, LW_SHARED);
	n = s->nservers;
	memcpy(copy, s->servers, sizeof(ServerCounters) * n);
	if (s->lock)
		LWLockRelease(s->lock);

	for (int i = 0; i < n; i++)
	{
		ServerCounters *c = &copy[i];
		Datum		values[17];
		bool		nulls[17] = {0};
		int			k = 0;

		values[k++] = CStringGetTextDatum(c->database);
		values[k++] = CStringGetTextDatum(c->server);
		values[k++] = Int64GetDatum(c->stats.requests);
		values[k++] = Int64GetDatum(c->stats.status_2xx);
		values[k++] = Int64GetDatum(c->stats.status_3xx);
		values[k++] = Int64GetDatum(c->stats.status_4xx);
		values[k++] = Int64GetDatum(c->stats.status_5xx);
		values[k++] = Int64GetDatum(c->stats.network_errors);
		values[k++] = Int64GetDatum(c->stats.retries);
		values[k++] = Int64GetDatum(c->stats.rate_limited);
		values[k++] = Float8GetDatum(c->stats.throttled_us / 1000.0);
		values[k++] = Float8GetDatum(c->stats.backoff_us / 1000.0);
		values[k++] = Int64GetDatum(c->stats.bytes);
		nulls[k] = c->last_error_at == 0;
		values[k++] = TimestampTzGetDatum(c->last_error_at);
		nulls[k] = c->last_error_at == 0;
		values[k++] = Int32GetDatum((int32) c->last_error_status);
		nulls[k] = c->last_error_at == 0;
		values[k++] = CStringGetTextDatum(c->last_error_request);
		values[k++] = BoolGetDatum(is_shared);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
