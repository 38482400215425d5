/*-------------------------------------------------------------------------
 *
 * stats.c
 *		  The counters of each server (per database), kept for the whole
 *		  cluster, and rollout_fdw_stats() that shows them.
 *
 * Rules kept here:
 *	- with rollout_fdw in shared_preload_libraries the counters live in
 *	  shared memory under their own LWLock, held only to copy a few
 *	  numbers; without it, each backend keeps its own;
 *	- MAX_SERVERS slots: when they are all taken, the least recently used
 *	  one is recycled and its counts move to an "(other)" row, so no
 *	  request goes uncounted; this is logged once;
 *	- what is stored of a failed request is its method and path with every
 *	  id and query value replaced ("GET /people?email={value}",
 *	  "GET /people/{id}"): no filter value, e-mail, phone or id;
 *	- reading writes nothing, so rollout_fdw_stats() works in read-only
 *	  transactions and on standbys; it is executable by pg_read_all_stats
 *	  (and pg_monitor) only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

#define MAX_SERVERS 128
#define OTHER_NAME "(other)"

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
	uint64		last_used;		/* tick of the last update, for recycling */
} ServerCounters;

typedef struct StatsShared
{
	LWLock	   *lock;			/* NULL when backend-local */
	int			nservers;
	uint64		tick;
	bool		recycled;		/* a slot was recycled (and logged) */
	ServerCounters other;		/* counts of recycled slots */
	ServerCounters servers[MAX_SERVERS];
} StatsShared;

static StatsShared *shared = NULL;
static bool is_shared = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
stats_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(StatsShared)));
	RequestNamedLWLockTranche("rollout_fdw_stats", 1);
}

static void
stats_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("rollout_fdw_stats", sizeof(StatsShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(StatsShared));
		shared->lock = &(GetNamedLWLockTranche("rollout_fdw_stats"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
	is_shared = true;
}

/* Called from _PG_init when preloaded. */
void
rollout_stats_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = stats_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = stats_shmem_startup;
}

static StatsShared *
counters(void)
{
	if (shared == NULL)
		shared = MemoryContextAllocZero(TopMemoryContext, sizeof(StatsShared));
	return shared;
}

static void
counters_lock(StatsShared *s, LWLockMode mode)
{
	if (s->lock)
		LWLockAcquire(s->lock, mode);
}

static void
counters_unlock(StatsShared *s)
{
	if (s->lock)
		LWLockRelease(s->lock);
}

/* Sum request counters (a response's into a scan's or a statement's). */
void
rollout_stats_sum(RolloutStats *to, const RolloutStats *delta)
{
	to->requests += delta->requests;
	to->status_2xx += delta->status_2xx;
	to->status_3xx += delta->status_3xx;
	to->status_4xx += delta->status_4xx;
	to->status_5xx += delta->status_5xx;
	to->network_errors += delta->network_errors;
	to->retries += delta->retries;
	to->rate_limited += delta->rate_limited;
	to->throttled_us += delta->throttled_us;
	to->backoff_us += delta->backoff_us;
	to->bytes += delta->bytes;
	to->users_skipped += delta->users_skipped;
	to->tokens_minted += delta->tokens_minted;
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

/*
 * The slot of the server, made on first use; when every slot is taken the
 * least recently used is recycled into "(other)" (*recycled says it was
 * the first time, for the caller to log after the lock).
 */
static ServerCounters *
find_server(StatsShared *s, RolloutOptions *opts, const char *dbname,
			bool *recycled)
{
	ServerCounters *c = NULL;

	for (int i = 0; i < s->nservers; i++)
		if (s->servers[i].dbid == MyDatabaseId &&
			s->servers[i].serverid == opts->serverid)
		{
			c = &s->servers[i];
			break;
		}
	if (c == NULL && s->nservers < MAX_SERVERS)
		c = &s->servers[s->nservers++];
	else if (c == NULL)
	{
		ServerCounters *o = &s->other;

		c = &s->servers[0];
		for (int i = 1; i < MAX_SERVERS; i++)
			if (s->servers[i].last_used < c->last_used)
				c = &s->servers[i];
		rollout_stats_sum(&o->stats, &c->stats);
		if (c->last_error_at > o->last_error_at)
		{
			o->last_error_at = c->last_error_at;
			o->last_error_status = c->last_error_status;
			memcpy(o->last_error_request, c->last_error_request,
				   sizeof(o->last_error_request));
		}
		if (!s->recycled)
			*recycled = s->recycled = true;
	}
	if (c->dbid != MyDatabaseId || c->serverid != opts->serverid)
	{
		memset(c, 0, sizeof(ServerCounters));
		c->dbid = MyDatabaseId;
		c->serverid = opts->serverid;
		strlcpy(c->server, opts->servername, sizeof(c->server));
		strlcpy(c->database, dbname, sizeof(c->database));
	}
	c->last_used = ++s->tick;
	return c;
}

static void
log_recycled(bool recycled)
{
	if (recycled)
		ereport(LOG,
				(errmsg("rollout_fdw: all %d counter slots are in use; the least recently used are recycled into the \"%s\" row of rollout_fdw_stats()",
						MAX_SERVERS, OTHER_NAME)));
}

/* Add a request's counts to its server's. */
void
rollout_stats_add(RolloutOptions *opts, const RolloutStats *delta)
{
	StatsShared *s = counters();
	const char *dbname = database_name();
	bool		recycled = false;

	counters_lock(s, LW_EXCLUSIVE);
	rollout_stats_sum(&find_server(s, opts, dbname, &recycled)->stats, delta);
	counters_unlock(s);
	log_recycled(recycled);
}

static bool
is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-';
}

/*
 * A request as the counters keep it: method and path, with every path
 * segment after the table's resource (an id) and every query value but
 * limit and offset replaced by a placeholder; a trailing " (page N)" stays.
 */
static void
describe_request(char *out, size_t outlen, const char *method,
				 const char *path, const char *resource)
{
	StringInfoData buf;
	const char *p = path;
	const char *end = path + strlen(path);
	const char *suffix = strstr(path, " (page ");
	size_t		keep;

	if (suffix != NULL)
		end = suffix;
	initStringInfo(&buf);
	appendStringInfo(&buf, "%s ", method);

	/* the path: the resource (or the first segment), then {id} */
	if (resource != NULL && *p == '/' &&
		strncmp(p + 1, resource, strlen(resource)) == 0 &&
		(p[1 + strlen(resource)] == '/' || p[1 + strlen(resource)] == '?' ||
		 p + 1 + strlen(resource) == end))
		keep = 1 + strlen(resource);
	else
	{
		keep = (*p == '/') ? 1 : 0;
		while (p + keep < end && p[keep] != '/' && p[keep] != '?')
			keep++;
	}
	appendBinaryStringInfo(&buf, p, (int) keep);
	p += keep;
	if (p < end && *p == '/')
	{
		appendStringInfoString(&buf, "/{id}");
		while (p < end && *p != '?')
			p++;
	}

	/* the query: names kept, values replaced */
	while (p < end)
	{
		const char *name = p + 1;	/* after '?' or '&' */
		const char *eq = name;
		bool		plain = true;
		bool		numeric;

		appendStringInfoChar(&buf, *p);
		while (eq < end && *eq != '=' && *eq != '&')
		{
			plain &= is_word_char(*eq);
			eq++;
		}
		numeric = plain && ((eq - name == 5 && strncmp(name, "limit", 5) == 0) ||
							(eq - name == 6 && strncmp(name, "offset", 6) == 0));
		if (plain)
			appendBinaryStringInfo(&buf, name, (int) (eq - name));
		else
			appendStringInfoString(&buf, "{name}");
		p = eq;
		if (p < end && *p == '=')
		{
			const char *value = p + 1;

			p = value;
			while (p < end && *p != '&')
				p++;
			if (numeric)
				appendBinaryStringInfo(&buf, value - 1, (int) (p - value + 1));
			else
				appendStringInfoString(&buf, "={value}");
		}
	}
	if (suffix != NULL)
		appendStringInfoString(&buf, suffix);
	strlcpy(out, buf.data, outlen);
	pfree(buf.data);
}

/* Remember a server's last failed request (method and path, no values). */
void
rollout_stats_error(RolloutOptions *opts, const char *method,
					const char *path, long status)
{
	StatsShared *s = counters();
	const char *dbname = database_name();
	char		request[160];
	ServerCounters *c;
	bool		recycled = false;

	describe_request(request, sizeof(request), method, path, opts->resource);
	counters_lock(s, LW_EXCLUSIVE);
	c = find_server(s, opts, dbname, &recycled);
	c->last_error_at = GetCurrentTimestamp();
	c->last_error_status = status;
	memcpy(c->last_error_request, request, sizeof(request));
	counters_unlock(s);
	log_recycled(recycled);
}

PG_FUNCTION_INFO_V1(rollout_fdw_stats);

/*
 * rollout_fdw_stats(): the counters of every server since the cluster
 * started (or, without preloading, since this backend started), and an
 * "(other)" row for recycled slots once there are any.
 */
Datum
rollout_fdw_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StatsShared *s;
	ServerCounters *copy;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	s = counters();

	/* copy under the lock, build tuples after it */
	copy = palloc(sizeof(ServerCounters) * (MAX_SERVERS + 1));
	counters_lock(s, LW_SHARED);
	n = s->nservers;
	memcpy(copy, s->servers, sizeof(ServerCounters) * n);
	if (s->recycled)
	{
		copy[n] = s->other;
		strlcpy(copy[n].database, OTHER_NAME, NAMEDATALEN);
		strlcpy(copy[n].server, OTHER_NAME, NAMEDATALEN);
		n++;
	}
	counters_unlock(s);

	for (int i = 0; i < n; i++)
	{
		ServerCounters *c = &copy[i];
		Datum		values[19];
		bool		nulls[19] = {0};
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
		values[k++] = Int64GetDatum(c->stats.users_skipped);
		values[k++] = Int64GetDatum(c->stats.tokens_minted);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
