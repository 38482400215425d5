/*-------------------------------------------------------------------------
 *
 * progress.c
 *		  What each running scan is doing, for the whole cluster:
 *		  rollout_fdw_scans() (and the view rollout_fdw_progress over it)
 *		  lists every active scan with its pages done and expected, rows,
 *		  requests, retries, throttled time and an estimate of the time
 *		  left.  Also the request counters EXPLAIN ANALYZE prints.
 *
 * Rules kept here:
 *	- with rollout_fdw in shared_preload_libraries the slots live in shared
 *	  memory (2 per backend, at least 64); without it each backend keeps its
 *	  own and sees only its own scans;
 *	- a slot is taken by a scan's first request and written only by the
 *	  backend that took it, once per wave of pages (never per row), under a
 *	  change counter as pg_stat_activity does: readers copy it without a
 *	  lock and retry when it moved.  Taking and giving back a slot holds
 *	  the LWLock for a few stores;
 *	- a slot is given back when the scan ends, when its memory goes (an
 *	  error, a cancel, a subtransaction's abort: a reset callback on the
 *	  scan's context), and when the backend exits; it is given back only by
 *	  the scan that holds it (pid and token checked);
 *	- when every slot is taken a scan runs unlisted; nothing fails for it;
 *	- visibility is pg_stat_progress_*'s: every row shows its pid,
 *	  database and role; the rest only to that role (and roles it is a
 *	  member of) and to pg_read_all_stats; no URL, filter value or
 *	  credential is ever stored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

#define MIN_SLOTS 64
#define SLOTS_PER_BACKEND 2
#define LOCAL_SLOTS 16

typedef enum ProgressState
{
	PROGRESS_REQUESTING,		/* requests in flight (or waiting to go) */
	PROGRESS_READING,			/* returning rows; more requests to come */
	PROGRESS_FINISHED			/* every request done */
} ProgressState;

static const char *const state_names[] = {"requesting", "reading", "finished"};

typedef struct ProgressSlot
{
	uint32		changecount;	/* odd while its owner writes */
	int			pid;			/* 0: free */
	uint64		token;			/* which scan of the backend holds it */
	Oid			dbid;
	Oid			userid;			/* current_user when the scan started */
	Oid			relid;
	char		server[NAMEDATALEN];
	char		table[2 * NAMEDATALEN + 6];	/* schema.table, quoted */
	char		resource[NAMEDATALEN];
	TimestampTz started;
	int			state;			/* a ProgressState */
	int64		pages_done;
	int64		pages_expected; /* -1: unknown */
	int64		rows;
	int64		requests;
	int64		retries;
	int64		throttled_us;
} ProgressSlot;

typedef struct ProgressShared
{
	LWLock	   *lock;			/* NULL when backend-local */
	int			nslots;
	ProgressSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ProgressShared;

/* A scan's hold on its slot (RolloutScan.progress). */
typedef struct RolloutProgress
{
	int			slot;			/* index, or -1: none held */
	uint64		token;
	MemoryContextCallback release_cb;
	int64		pages;			/* every (re)scan's pages so far */
	int64		rows;			/* records received so far */
	int64		per_page;		/* the current list's records per page */
	int64		expected;		/* pages expected, -1 unknown */
} RolloutProgress;

static ProgressShared *shared = NULL;
static uint64 next_token = 0;
static bool exit_cleanup_set = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static int
slot_count(void)
{
	return Max(MIN_SLOTS, SLOTS_PER_BACKEND * MaxBackends);
}

static Size
shared_size(int nslots)
{
	return add_size(offsetof(ProgressShared, slots),
					mul_size(nslots, sizeof(ProgressSlot)));
}

static void
progress_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(shared_size(slot_count())));
	RequestNamedLWLockTranche("rollout_fdw_progress", 1);
}

static void
progress_shmem_startup(void)
{
	bool		found;
	int			n = slot_count();

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("rollout_fdw_progress", shared_size(n), &found);
	if (!found)
	{
		memset(shared, 0, shared_size(n));
		shared->nslots = n;
		shared->lock = &(GetNamedLWLockTranche("rollout_fdw_progress"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from rollout_limiter_init (_PG_init) when preloaded. */
void
rollout_progress_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = progress_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = progress_shmem_startup;
}

/* The slots: shared, or this backend's own. */
static ProgressShared *
progress_slots(void)
{
	if (shared == NULL)
	{
		shared = MemoryContextAllocZero(TopMemoryContext,
										shared_size(LOCAL_SLOTS));
		shared->nslots = LOCAL_SLOTS;
	}
	return shared;
}

static void
slots_lock(ProgressShared *ps)
{
	if (ps->lock)
		LWLockAcquire(ps->lock, LW_EXCLUSIVE);
}

static void
slots_unlock(ProgressShared *ps)
{
	if (ps->lock)
		LWLockRelease(ps->lock);
}

/*
 * Writes to a slot: a critical section, as for pg_stat_activity, so that no
 * error can leave the counter odd.  Only plain stores go between these.
 */
#define BEGIN_SLOT_WRITE(slot) \
	do { \
		START_CRIT_SECTION(); \
		(slot)->changecount++; \
		pg_write_barrier(); \
	} while (0)

#define END_SLOT_WRITE(slot) \
	do { \
		pg_write_barrier(); \
		(slot)->changecount++; \
		END_CRIT_SECTION(); \
	} while (0)

/* Give back a slot if this scan of this backend still holds it. */
static void
release_slot(ProgressShared *ps, int i, uint64 token)
{
	volatile ProgressSlot *slot = &ps->slots[i];

	slots_lock(ps);
	if (slot->pid == MyProcPid && slot->token == token)
	{
		BEGIN_SLOT_WRITE(slot);
		slot->pid = 0;
		slot->token = 0;
		END_SLOT_WRITE(slot);
	}
	slots_unlock(ps);
}

static void
release(RolloutProgress *p)
{
	if (p->slot >= 0)
	{
		release_slot(progress_slots(), p->slot, p->token);
		p->slot = -1;
	}
}

static void
release_callback(void *arg)
{
	release((RolloutProgress *) arg);
}

/* At backend exit: every slot this backend still holds. */
static void
release_all(int code, Datum arg)
{
	ProgressShared *ps = shared;

	if (ps == NULL || ps->lock == NULL)
		return;
	slots_lock(ps);
	for (int i = 0; i < ps->nslots; i++)
	{
		volatile ProgressSlot *slot = &ps->slots[i];

		if (slot->pid == MyProcPid)
		{
			BEGIN_SLOT_WRITE(slot);
			slot->pid = 0;
			slot->token = 0;
			END_SLOT_WRITE(slot);
		}
	}
	slots_unlock(ps);
}

/*
 * Take a free slot for the scan and fill in what does not change; -1 when
 * every slot is taken.
 */
static int
acquire_slot(RolloutScan *s, uint64 token)
{
	ProgressShared *ps = progress_slots();
	Oid			relid = s->rel ? RelationGetRelid(s->rel) : InvalidOid;
	char	   *table = NULL;
	int			found = -1;

	/* catalog lookups before the lock */
	if (s->rel)
		table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(s->rel)),
										   RelationGetRelationName(s->rel));
	if (ps->lock != NULL && !exit_cleanup_set)
	{
		before_shmem_exit(release_all, (Datum) 0);
		exit_cleanup_set = true;
	}

	slots_lock(ps);
	for (int i = 0; i < ps->nslots; i++)
	{
		volatile ProgressSlot *slot = &ps->slots[i];

		if (slot->pid != 0)
			continue;
		BEGIN_SLOT_WRITE(slot);
		slot->pid = MyProcPid;
		slot->token = token;
		slot->dbid = MyDatabaseId;
		slot->userid = GetUserId();
		slot->relid = relid;
		strlcpy((char *) slot->server,
				s->opts && s->opts->servername ? s->opts->servername : "",
				NAMEDATALEN);
		strlcpy((char *) slot->table, table ? table : "",
				sizeof(slot->table));
		strlcpy((char *) slot->resource, s->resource ? s->resource : "",
				NAMEDATALEN);
		slot->started = GetCurrentTimestamp();
		slot->state = PROGRESS_REQUESTING;
		slot->pages_done = 0;
		slot->pages_expected = -1;
		slot->rows = 0;
		slot->requests = 0;
		slot->retries = 0;
		slot->throttled_us = 0;
		END_SLOT_WRITE(slot);
		found = i;
		break;
	}
	slots_unlock(ps);
	if (table)
		pfree(table);
	return found;
}

/* The records per page a list answers: its first page's limit. */
static int64
records_per_page(RolloutScan *s)
{
	RolloutMetaValue *m;
	int64		limit = 0;

	if (s->npages > 0)
	{
		m = &s->wave[0]->meta[ROLLOUT_META_LIMIT];
		if (m->present && m->type == ROLLOUT_JSON_NUMBER && m->text &&
			strspn(m->text, "0123456789") == strlen(m->text) &&
			strlen(m->text) < 10)
			limit = strtol(m->text, NULL, 10);
	}
	if (limit <= 0 || limit > s->page_size)
		limit = s->page_size;
	return Max(limit, 1);
}

/*
 * After a fetch: count the wave's pages and records, and work out how many
 * pages the scan will have read in all (-1: unknown).
 */
static void
count_wave(RolloutProgress *p, RolloutScan *s, bool *finished)
{
	int64		this_scan;		/* pages of the current (re)scan */
	int64		expected = -1;
	int64		total;

	for (int k = 0; k < s->npages; k++)
		p->rows += s->wave[k]->nrecords;

	*finished = s->done ||
		(s->max_pages > 0 && s->list_pages >= s->max_pages);
	if (s->by_ids)
	{
		p->pages += list_length(s->ids);
		p->expected = p->pages;
		return;
	}

	p->pages += s->npages;
	this_scan = s->list_pages;
	if (this_scan == s->npages)
		p->per_page = records_per_page(s);	/* the list's first wave */
	total = s->last_total >= 0 ? s->last_total : s->first_total;
	if (*finished)
		expected = this_scan;
	else if (s->offset_paging && total >= s->page_limit &&
			 s->page_limit > s->overlap)
	{
		/* the first page, then offsets step apart to the first short page */
		expected = 2 + (total - s->page_limit) / (s->page_limit - s->overlap);
		expected = Max(expected, this_scan + 1);
	}
	else if (total >= 0 && p->per_page > 0)
	{
		expected = total / p->per_page + (total % p->per_page != 0);
		/* a next cursor announces one more page, maybe empty */
		expected = Max(expected, this_scan + 1);
		if (s->max_pages > 0)
			expected = Min(expected, (int64) s->max_pages);
	}
	p->expected = expected < 0 ? -1 : p->pages - this_scan + expected;
}

/*
 * Publish where the scan stands: before a fetch (requesting) or after it.
 * The first call takes the scan's slot.
 */
void
rollout_progress_report(RolloutScan *s, bool requesting)
{
	RolloutProgress *p = s->progress;
	volatile ProgressSlot *slot;
	bool		finished = false;
	ProgressState state;

	if (p == NULL)
	{
		MemoryContext cxt = GetMemoryChunkContext(s);

		p = MemoryContextAllocZero(cxt, sizeof(RolloutProgress));
		p->slot = -1;
		p->expected = -1;
		p->token = ++next_token;
		p->release_cb.func = release_callback;
		p->release_cb.arg = p;
		MemoryContextRegisterResetCallback(cxt, &p->release_cb);
		s->progress = p;
	}
	if (requesting && s->by_ids)
		p->expected = p->pages + list_length(s->ids);
	if (!requesting)
		count_wave(p, s, &finished);
	if (p->slot < 0)
	{
		p->slot = acquire_slot(s, p->token);
		if (p->slot < 0)
			return;
	}

	state = requesting ? PROGRESS_REQUESTING :
		finished ? PROGRESS_FINISHED : PROGRESS_READING;
	slot = &progress_slots()->slots[p->slot];
	BEGIN_SLOT_WRITE(slot);
	slot->state = state;
	slot->pages_done = p->pages;
	slot->pages_expected = p->expected;
	slot->rows = p->rows;
	slot->requests = s->stats.requests;
	slot->retries = s->stats.retries;
	slot->throttled_us = s->stats.throttled_us;
	END_SLOT_WRITE(slot);
}

/* The scan ends: its slot is free for others. */
void
rollout_progress_end(RolloutScan *s)
{
	if (s != NULL && s->progress != NULL)
		release(s->progress);
}

/* A copy of a slot, consistent: retried while its owner writes. */
static void
read_slot(volatile ProgressSlot *slot, ProgressSlot *copy)
{
	for (;;)
	{
		uint32		before = slot->changecount;

		pg_read_barrier();
		memcpy(copy, (ProgressSlot *) slot, sizeof(ProgressSlot));
		pg_read_barrier();
		if (before == slot->changecount && (before & 1) == 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

static Interval *
interval_us(int64 us)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = us;
	return iv;
}

PG_FUNCTION_INFO_V1(rollout_fdw_scans);

/*
 * rollout_fdw_scans(): one row per active scan.  pid, database and role
 * for everyone; the rest for the scan's role, its members and
 * pg_read_all_stats.
 */
Datum
rollout_fdw_scans(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProgressShared *ps;
	bool		read_all;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	ps = progress_slots();
	read_all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	for (int i = 0; i < ps->nslots; i++)
	{
		ProgressSlot c;
		Datum		values[17];
		bool		nulls[17] = {0};
		int			k = 0;
		int64		elapsed;

		read_slot(&ps->slots[i], &c);
		if (c.pid == 0)
			continue;
		values[k++] = Int32GetDatum(c.pid);
		values[k++] = ObjectIdGetDatum(c.dbid);
		values[k++] = ObjectIdGetDatum(c.userid);
		if (!read_all && !has_privs_of_role(GetUserId(), c.userid))
		{
			for (; k < 17; k++)
				nulls[k] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
								 nulls);
			continue;
		}
		elapsed = Max(now - c.started, 0);
		values[k++] = CStringGetTextDatum(c.server);
		nulls[k] = !OidIsValid(c.relid);
		values[k++] = ObjectIdGetDatum(c.relid);
		nulls[k] = c.table[0] == '\0';
		values[k++] = CStringGetTextDatum(c.table);
		values[k++] = CStringGetTextDatum(c.resource);
		values[k++] = CStringGetTextDatum(state_names[c.state]);
		values[k++] = TimestampTzGetDatum(c.started);
		values[k++] = IntervalPGetDatum(interval_us(elapsed));
		values[k++] = Int64GetDatum(c.pages_done);
		nulls[k] = c.pages_expected < 0;
		values[k++] = Int64GetDatum(c.pages_expected);
		values[k++] = Int64GetDatum(c.rows);
		values[k++] = Int64GetDatum(c.requests);
		values[k++] = Int64GetDatum(c.retries);
		values[k++] = IntervalPGetDatum(interval_us(c.throttled_us));
		/* time left: the time per page so far, for the pages left */
		if (c.state == PROGRESS_FINISHED)
			values[k++] = IntervalPGetDatum(interval_us(0));
		else if (c.pages_expected >= 0 && c.pages_done > 0)
			values[k++] = IntervalPGetDatum(interval_us((int64)
														((double) elapsed *
														 Max(c.pages_expected - c.pages_done, 0) /
														 c.pages_done)));
		else
			nulls[k++] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}

/*
 * The request counters EXPLAIN ANALYZE shows for a scan or a write
 * (pages < 0: no "Rollout Pages" line); times only with TIMING, bytes
 * only with VERBOSE.
 */
void
rollout_explain_counters(const RolloutStats *stats, int64 pages,
						 ExplainState *es)
{
	ExplainPropertyInteger("Rollout Requests", NULL, stats->requests, es);
	if (pages >= 0)
		ExplainPropertyInteger("Rollout Pages", NULL, pages, es);
	ExplainPropertyInteger("Rollout Retries", NULL, stats->retries, es);
	ExplainPropertyInteger("Rollout Rate Limited", NULL,
						   stats->rate_limited, es);
	if (es->timing)
	{
		ExplainPropertyFloat("Rollout Throttled", "ms",
							 stats->throttled_us / 1000.0, 1, es);
		ExplainPropertyFloat("Rollout Backoff", "ms",
							 stats->backoff_us / 1000.0, 1, es);
	}
	if (es->verbose)
		ExplainPropertyInteger("Rollout Bytes", NULL, stats->bytes, es);
}
