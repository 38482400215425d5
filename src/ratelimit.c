/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *		  The token bucket of each Rollout tenant (client id), shared by every
 *		  backend of the cluster, and the pause a 429's Retry-After imposes.
 *
 * Rules kept here:
 *	- with rollout_fdw in shared_preload_libraries the buckets live in
 *	  shared memory under their own LWLock, held only to update a few
 *	  numbers; without it, each backend keeps its own and says so once with
 *	  a NOTICE that tells how to share them;
 *	- time is the monotonic clock: a wall-clock step never empties or fills
 *	  a bucket, and elapsed time is never negative;
 *	- a rate_limit that is not a finite positive number means "this server
 *	  does not use the limiter": it never reaches the shared bucket, and no
 *	  token count or wait computed here can become NaN, infinite or wrap;
 *	- servers sharing a client id with different rate_limit values: the
 *	  bucket refills at the lowest rate_limit among the servers the API
 *	  answered (any status but 401) in the last 60 s; a server's own
 *	  rate_limit applies to itself until then.  A server that cannot
 *	  authenticate cannot slow the tenant down;
 *	- a 429's Retry-After pauses every backend of the tenant, at most
 *	  ROLLOUT_MAX_SHARED_PAUSE_MS whatever any server's options say.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#include "rollout_fdw.h"

#define MAX_TENANTS 64
#define RATE_WINDOW_US	(60 * INT64CONST(1000000))	/* lowest rate kept 60 s */
#define ROLLOUT_MAX_SHARED_PAUSE_MS 60000
#define MIN_RATE	0.001		/* below: one request per 1000 s anyway */
#define MAX_WAIT_MS	3600000L	/* longest single wait handed out */

typedef struct TenantBucket
{
	char		client_id[128];
	double		tokens;
	int64		refilled;		/* monotonic microseconds */
	int64		paused_until;	/* a 429's Retry-After, for everyone */
	double		rate;			/* lowest vouched rate_limit, 0 = none */
	int64		rate_seen;		/* when a server of that rate was answered */
	int64		used;			/* last looked up */
} TenantBucket;

typedef struct RateLimitShared
{
	LWLock	   *lock;			/* NULL when backend-local */
	int			ntenants;
	bool		full_logged;
	TenantBucket tenants[MAX_TENANTS];
} RateLimitShared;

static RateLimitShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
ratelimit_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RateLimitShared)));
	RequestNamedLWLockTranche("rollout_fdw_ratelimit", 1);
}

static void
ratelimit_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("rollout_fdw_ratelimit", sizeof(RateLimitShared),
							 &found);
	if (!found)
	{
		memset(shared, 0, sizeof(RateLimitShared));
		shared->lock = &(GetNamedLWLockTranche("rollout_fdw_ratelimit"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init: ask for shared memory when preloaded. */
void
rollout_limiter_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ratelimit_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ratelimit_shmem_startup;
}

/* The buckets, shared or this backend's own (announced once). */
static RateLimitShared *
buckets(void)
{
	if (shared != NULL)
		return shared;
	shared = MemoryContextAllocZero(TopMemoryContext, sizeof(RateLimitShared));
	ereport(NOTICE,
			(errmsg("rollout_fdw is not in shared_preload_libraries: each backend applies rate_limit on its own"),
			 errhint("Add rollout_fdw to shared_preload_libraries and restart the server to share one rate limit per tenant across the cluster.")));
	return shared;
}

static void
buckets_lock(RateLimitShared *s)
{
	if (s->lock)
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
}

static void
buckets_unlock(RateLimitShared *s)
{
	if (s->lock)
		LWLockRelease(s->lock);
}

/* Microseconds of the monotonic clock (the same in every process). */
static int64
monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A server's rate_limit as the limiter uses it; 0 = not limited. */
static double
usable_rate(double rate)
{
	if (!isfinite(rate) || rate <= 0)
		return 0;
	return Max(rate, MIN_RATE);
}

/*
 * The tenant's bucket, made on first use.  Sets *full when more tenants
 * than slots share the last one (the caller logs it, after the lock).
 */
static TenantBucket *
find_tenant(RateLimitShared *s, const char *client_id, int64 now, bool *full)
{
	TenantBucket *t;

	for (int i = 0; i < s->ntenants; i++)
		if (strncmp(s->tenants[i].client_id, client_id,
					sizeof(s->tenants[i].client_id) - 1) == 0)
		{
			s->tenants[i].used = now;
			return &s->tenants[i];
		}
	if (s->ntenants == MAX_TENANTS)
	{
		/*
		 * More tenants than slots: take over the one idle longest, when it
		 * has been idle for the rate window and is not paused; else they
		 * share the last one, still limited.
		 */
		t = NULL;
		for (int i = 0; i < MAX_TENANTS; i++)
		{
			TenantBucket *c = &s->tenants[i];

			if (c->paused_until <= now && now - c->used > RATE_WINDOW_US &&
				(t == NULL || c->used < t->used))
				t = c;
		}
		if (t == NULL)
		{
			if (!s->full_logged)
				*full = s->full_logged = true;
			return &s->tenants[MAX_TENANTS - 1];
		}
	}
	else
		t = &s->tenants[s->ntenants++];
	memset(t, 0, sizeof(TenantBucket));
	strlcpy(t->client_id, client_id, sizeof(t->client_id));
	t->tokens = 1.0;
	t->refilled = now;
	t->used = now;
	return t;
}

static void
log_full(bool full)
{
	if (full)
		ereport(LOG,
				(errmsg("rollout_fdw: more than %d client ids use the rate limiter; the others share one bucket",
						MAX_TENANTS)));
}

/*
 * Try to take one token from the tenant's bucket (burst: a fifth of a
 * second of the rate, so that the API's own bucket, about a second deep,
 * keeps a margin for requests that arrive bunched).  Returns 0 when taken, else the milliseconds to wait, with
 * *paused telling whether that is a 429's pause rather than the rate.
 */
long
rollout_limiter_take(RolloutOptions *opts, bool *paused)
{
	RateLimitShared *s = buckets();
	double		own = usable_rate(opts->rate_limit);
	int64		now = monotonic_us();
	TenantBucket *t;
	bool		full = false;
	long		wait = 0;

	*paused = false;
	buckets_lock(s);
	t = find_tenant(s, opts->client_id, now, &full);
	if (t->paused_until > now)
	{
		wait = (long) ((t->paused_until - now) / 1000) + 1;
		*paused = true;
	}
	else if (own > 0)
	{
		double		rate = own;
		double		burst;
		double		tokens = isfinite(t->tokens) ? Max(t->tokens, 0) : 0;

		if (t->rate > 0 && now - t->rate_seen <= RATE_WINDOW_US)
			rate = Min(rate, t->rate);
		burst = Max(1.0, rate / 5);
		tokens = Min(burst, tokens + Max(now - t->refilled, 0) / 1e6 * rate);
		t->refilled = now;
		if (tokens >= 1.0)
			tokens -= 1.0;
		else
		{
			double		ms = ceil((1.0 - tokens) * 1000.0 / rate);

			wait = ms >= MAX_WAIT_MS ? MAX_WAIT_MS : Max(1, (long) ms);
		}
		t->tokens = tokens;
	}
	buckets_unlock(s);
	log_full(full);
	return wait;
}

/*
 * The API answered a request of this server (any status but 401): its
 * rate_limit now counts for the whole tenant, if it is the lowest.
 */
void
rollout_limiter_vouch(RolloutOptions *opts)
{
	RateLimitShared *s = buckets();
	double		own = usable_rate(opts->rate_limit);
	int64		now = monotonic_us();
	TenantBucket *t;
	bool		full = false;

	if (own == 0)
		return;
	buckets_lock(s);
	t = find_tenant(s, opts->client_id, now, &full);
	if (t->rate == 0 || own <= t->rate || now - t->rate_seen > RATE_WINDOW_US)
	{
		t->rate = own;
		t->rate_seen = now;
	}
	buckets_unlock(s);
	log_full(full);
}

/*
 * A 429 said when to come back: no backend of the tenant asks before, for
 * at most ROLLOUT_MAX_SHARED_PAUSE_MS (a longer Retry-After is the
 * business of the request that got it).
 */
void
rollout_limiter_pause(RolloutOptions *opts, long ms)
{
	RateLimitShared *s = buckets();
	int64		now = monotonic_us();
	TenantBucket *t;
	bool		full = false;
	int64		until;

	if (ms <= 0)
		return;
	until = now + (int64) Min(ms, ROLLOUT_MAX_SHARED_PAUSE_MS) * 1000;
	buckets_lock(s);
	t = find_tenant(s, opts->client_id, now, &full);
	t->paused_until = Max(t->paused_until, until);
	t->tokens = 0;
	buckets_unlock(s);
	log_full(full);
}
