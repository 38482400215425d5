/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  Where a scan's records come from: list paging (overlapping offset
 *		  pages in flight together, or the next cursor), several lists (one
 *		  per value of a filter, first pages together), GETs by id, the
 *		  checks that make "every row or an error" true, and the repairs
 *		  that keep a scan of a CRM being edited whole.  ANALYZE samples
 *		  through it.
 *
 * Rules kept here:
 *	- a scan returns every record that existed for the whole scan, each id
 *	  once, or raises an error: never a partial result.  A broken
 *	  envelope, a repeated cursor, a cursor walk that ends short of what
 *	  _metadata.total announced, or far more records than it announced,
 *	  are errors; the list moving under the offset pages is repaired
 *	  (rewind, or the cursor from the start), never an error;
 *	- numbers from the API (total, limit, offset) are checked before any
 *	  arithmetic: a limit above the one asked for is a contract error, the
 *	  page count and offsets are computed without overflow, and arrays are
 *	  sized from what was received;
 *	- pages live in a context reset per wave of requests; what grows with
 *	  the scan is the set of ids returned (16 bytes a record) and the
 *	  cursors seen.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

/* Offset pages overlap by limit / 20 records, at least 2: limit >= 4. */
#define ROLLOUT_MIN_OVERLAP_LIMIT 4

/*
 * A pushed OFFSET above this is skipped by the scan, never sent: positions
 * stay far from overflow, and no list is that long.
 */
#define ROLLOUT_MAX_PUSHED_OFFSET (PG_INT64_MAX / 4)

/* Rewinds of the offset pages before the cursor takes over. */
#define ROLLOUT_MAX_REWINDS 8

/* The ids a scan returned: 64-bit hashes in a simplehash set. */
typedef struct IdEntry
{
	uint64		key;
	char		status;
} IdEntry;

#define SH_PREFIX idset
#define SH_ELEMENT_TYPE IdEntry
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, key) ((uint32) ((key) ^ ((key) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static void
contract_error(const char *label, const char *what)
{
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
			 errmsg("Rollout response to GET %s breaks the list contract: %s",
					label, what),
			 errhint("No rows were returned: a scan returns every row or fails.")));
}

/* Remember a string in a set of hashes; false when it was there. */
static bool
set_add(MemoryContext cxt, HTAB **set, const char *name, const char *value,
		int len)
{
	uint64		key = hash_bytes_extended((const unsigned char *) value,
										  len, 0);
	bool		found;

	if (*set == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = cxt;
		*set = hash_create(name, 256, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	hash_search(*set, &key, HASH_ENTER, &found);
	return !found;
}

/*
 * A _metadata number: -1 when absent or null, else a non-negative integer
 * that fits int64; anything else breaks the contract.
 */
static int64
meta_count(RolloutPage *page, RolloutMetaField field, const char *label)
{
	static const char *const names[] = {"total", "limit", "offset"};
	RolloutMetaValue *m = &page->meta[field];
	int64		value;
	char	   *end;

	if (!m->present || m->type == ROLLOUT_JSON_NULL)
		return -1;
	if (m->type == ROLLOUT_JSON_NUMBER && strcmp(m->text, "-0") == 0)
		return 0;
	if (m->type != ROLLOUT_JSON_NUMBER ||
		strspn(m->text, "0123456789") != strlen(m->text))
		contract_error(label, psprintf("\"_metadata.%s\" is not a non-negative integer",
									   names[field]));
	errno = 0;
	value = strtoi64(m->text, &end, 10);
	if (errno != 0 || *end != '\0')
		contract_error(label, psprintf("\"_metadata.%s\" is out of range",
									   names[field]));
	return value;
}

/* Check a list page's envelope and its records. */
static void
check_envelope(RolloutScan *s, RolloutPage *page, const char *label)
{
	RolloutMetaValue *next = &page->meta[ROLLOUT_META_NEXT];

	if (!page->root_is_object)
		contract_error(label, "the body is not a JSON object");
	if (!page->meta_is_object)
		contract_error(label, "no \"_metadata\" object");
	if (!page->list_found)
		contract_error(label, psprintf("no \"%s\" array",
									   rollout_safe_text(page->list_key,
														 (int) strlen(page->list_key),
														 100)));
	if (next->present && next->type != ROLLOUT_JSON_NULL &&
		next->type != ROLLOUT_JSON_STRING)
		contract_error(label, "\"_metadata.next\" is neither a string nor null");
	if (next->present && next->type == ROLLOUT_JSON_STRING && next->text == NULL)
		contract_error(label, "\"_metadata.next\" is not a valid string");
	if (page->list_has_nonobject)
		contract_error(label, "a record is not a JSON object");
}

/*
 * The kinds of step a scan prepares: the requests of the step, then what
 * their answers are taken for.
 */
enum
{
	STEP_NONE,					/* nothing to ask: the scan ends */
	STEP_IDS,					/* GETs by id */
	STEP_FIRST_PAGES,			/* the first pages of several lists */
	STEP_ARRAY,					/* a list answered by a bare array */
	STEP_LIST_PAGE,				/* the next page of a list */
	STEP_OFFSET_PAGES			/* overlapping offset pages */
};

/* The jobs carry the scan's user, its credential and its 409 policy. */
static void
assign_jobs(RolloutScan *s, RolloutApiJob *jobs, int n)
{
	const char *credential = s->credential ? s->credential :
		s->conn->credential_id;

	for (int k = 0; k < n; k++)
	{
		jobs[k].conn = s->conn;
		jobs[k].credential = credential;
		jobs[k].defer_not_ready = s->defer_not_ready;
	}
}

/*
 * A step's jobs are back: count what they cost.  True when a 409 ("not
 * synced yet") postpones the whole step, to be asked again at retry_at,
 * within not_ready_timeout_s; else a transport failure raises.
 */
static bool
after_run(RolloutScan *s, RolloutApiJob *jobs, int n)
{
	bool		not_ready = false;

	for (int k = 0; k < n; k++)
	{
		rollout_stats_sum(&s->stats, &jobs[k].resp.stats);
		not_ready |= jobs[k].failure == ROLLOUT_FAIL_NONE &&
			jobs[k].resp.status == 409;
		s->out_of_time |= jobs[k].out_of_time;
	}
	if (not_ready && s->defer_not_ready)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		delay = (long) Min((double) s->opts->retry_max_ms,
									   s->opts->retry_base_ms *
									   pow(2.0, Min(s->not_ready_tries, 20)));

		if (s->not_ready_until == 0)
			s->not_ready_until =
				TimestampTzPlusMilliseconds(now,
											s->opts->not_ready_timeout_s * 1000L);
		delay = Min(delay,
					TimestampDifferenceMilliseconds(now, s->not_ready_until) + 1);
		if (now < s->not_ready_until && rollout_fits_statement(now, delay))
		{
			s->not_ready_tries++;
			s->retry_at = TimestampTzPlusMilliseconds(now, delay);
			return true;
		}
		s->out_of_time |= now < s->not_ready_until;
	}
	s->not_ready_tries = 0;
	s->not_ready_until = 0;
	for (int k = 0; k < n; k++)
		rollout_api_raise_failure(s->opts, &jobs[k]);
	return false;
}

/* A list page's answer: a success status, decoded, its envelope checked. */
static RolloutPage *
read_list_page(RolloutScan *s, RolloutApiJob *job)
{
	RolloutPage *page;

	rollout_check_status("GET", job->label, &job->resp);
	page = rollout_decode_page(job->resp.body, job->resp.body_len,
							   psprintf("GET %s", job->label), s->resource,
							   s->columns, s->ncolumns);
	check_envelope(s, page, job->label);
	s->list_pages++;
	return page;
}

static void
add_page(RolloutScan *s, RolloutPage *page)
{
	if (s->npages == s->pages_cap)
	{
		s->pages_cap = Max(4, s->pages_cap * 2);
		s->wave = s->wave == NULL ?
			palloc(sizeof(RolloutPage *) * s->pages_cap) :
			repalloc(s->wave, sizeof(RolloutPage *) * s->pages_cap);
	}
	s->wave[s->npages++] = page;
	s->pages++;
}

/* GET /{resource}/{id} for each id, all in one step. */
static int
prepare_ids(RolloutScan *s, RolloutApiJob **jobsp)
{
	int			n = list_length(s->ids);
	RolloutApiJob *jobs = palloc0(sizeof(RolloutApiJob) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, s->ids)
	{
		char	   *path = psprintf("/%s/%s", s->resource,
									rollout_escape(lfirst(lc)));

		jobs[i].method = "GET";
		jobs[i].url = psprintf("%s%s", s->opts->api_url, path);
		jobs[i].label = path;
		i++;
	}
	*jobsp = jobs;
	return n;
}

/* The records by id, in the ids' order; 404 is no row. */
static void
take_ids(RolloutScan *s, RolloutApiJob *jobs, int n)
{
	s->done = true;
	for (int i = 0; i < n; i++)
	{
		RolloutPage *page;

		if (jobs[i].resp.status == 404)
			continue;
		rollout_check_status("GET", jobs[i].label, &jobs[i].resp);
		page = rollout_decode_record(jobs[i].resp.body, jobs[i].resp.body_len,
									 psprintf("GET %s", jobs[i].label),
									 s->columns, s->ncolumns);
		if (page->nrecords != 1)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout response to GET %s is not a JSON object",
							jobs[i].label)));
		add_page(s, page);
	}
}

/* ------------------------------------------------------------------
 * Record ids: every list scan returns each id once
 * ------------------------------------------------------------------ */

/* The record's id as a 64-bit hash; false when it has none (or null). */
static bool
record_id_hash(RolloutPage *page, int r, uint64 *hash)
{
	RolloutRecord *rec = &page->records[r];

	for (int v = 0; v < rec->nvalues; v++)
	{
		RolloutValue *id = &page->values[rec->first + v];

		if (id->col == -1 && id->type != ROLLOUT_JSON_NULL)
		{
			*hash = hash_bytes_extended((const unsigned char *) page->body + id->off,
										id->len, 0);
			return true;
		}
	}
	return false;
}

/* Remember an id; false when it was returned before. */
static bool
remember_id(RolloutScan *s, uint64 hash)
{
	bool		found;

	if (s->returned == NULL)
		s->returned = idset_create(s->scan_cxt, 1024, NULL);
	idset_insert(s->returned, hash, &found);
	return !found;
}

/*
 * Drop the page's records whose id was returned before (a record that moved
 * between pages, or an overlap), remember the others.
 */
static void
drop_returned(RolloutScan *s, RolloutPage *page)
{
	int			kept = 0;

	for (int r = 0; r < page->nrecords; r++)
	{
		uint64		hash;

		if (record_id_hash(page, r, &hash) && !remember_id(s, hash))
		{
			s->duplicates++;
			continue;
		}
		page->records[kept++] = page->records[r];
	}
	page->nrecords = kept;
}

/* ------------------------------------------------------------------
 * Following the cursor
 * ------------------------------------------------------------------ */

/*
 * At the end of a walk by cursor: every record announced came, or an error.
 * Records deleted during the walk lower the last page's total: a drop of up
 * to 1% of the first total (at least 10 records) is taken as that; a larger
 * one is not believed.
 */
static int64
churn_allowance(int64 total)
{
	return Max((int64) 10, total / 100);
}

static void
check_complete(RolloutScan *s, const char *label)
{
	int64		expected;

	if (s->first_total < 0)
		return;
	expected = s->first_total;
	if (s->last_total >= 0 && s->last_total < s->first_total)
		expected -= Min(s->first_total - s->last_total,
						churn_allowance(s->first_total));
	if (s->rows_seen < expected)
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to GET %s breaks the list contract: the list ended after %lld records of the %lld \"_metadata.total\" announced",
						label, (long long) s->rows_seen, (long long) expected),
				 errhint("No rows were returned: a scan returns every row or fails.")));
}

static bool
has_next(RolloutPage *page)
{
	RolloutMetaValue *next = &page->meta[ROLLOUT_META_NEXT];

	return next->present && next->type == ROLLOUT_JSON_STRING &&
		next->text[0] != '\0';
}

static int
compare_hashes(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* The ids of a page, sorted, to find the link between two offset pages. */
static void
keep_link_ids(RolloutScan *s, RolloutPage *page)
{
	MemoryContext old = MemoryContextSwitchTo(s->scan_cxt);

	if (s->link_ids == NULL || s->link_cap < page->nrecords)
	{
		s->link_cap = Max(page->nrecords, 16);
		s->link_ids = palloc(sizeof(uint64) * s->link_cap);
	}
	MemoryContextSwitchTo(old);
	s->nlink_ids = 0;
	for (int r = 0; r < page->nrecords; r++)
		if (record_id_hash(page, r, &s->link_ids[s->nlink_ids]))
			s->nlink_ids++;
	qsort(s->link_ids, s->nlink_ids, sizeof(uint64), compare_hashes);
}

/*
 * Whether offset pages can follow the first page: the list announced more
 * records than came, every record has an id, and pages are long enough to
 * overlap.
 */
static bool
offset_paging_possible(RolloutScan *s, RolloutPage *page, int64 total,
					   int64 limit)
{
	uint64		hash;

	if (s->max_pages > 0 || s->repairing || s->cursor_only ||
		total < 0 || limit < ROLLOUT_MIN_OVERLAP_LIMIT ||
		page->nrecords != limit || s->rows_seen >= total)
		return false;
	for (int r = 0; r < page->nrecords; r++)
		if (!record_id_hash(page, r, &hash))
			return false;
	return true;
}

/*
 * A list answered by a bare array (GET /metadata/transactions/create?...):
 * one request, not paged; the array of objects is its whole contract.
 */
static int
prepare_array_list(RolloutScan *s, RolloutApiJob **jobsp)
{
	const char *query = s->filter_query[0] == '&' ? s->filter_query + 1 :
		s->filter_query;
	char	   *path = psprintf("/%s%s%s", s->resource, query[0] ? "?" : "",
								query);
	RolloutApiJob *job = palloc0(sizeof(RolloutApiJob));

	job->method = "GET";
	job->url = psprintf("%s%s", s->opts->api_url, path);
	job->label = path;
	*jobsp = job;
	return 1;
}

static void
take_array_list(RolloutScan *s, RolloutApiJob *job)
{
	const char *path = job->label;
	RolloutPage *page;

	/* not paged: a pushed OFFSET is skipped here */
	s->skip += s->walk_start;
	s->walk_start = 0;
	rollout_check_status("GET", path, &job->resp);
	page = rollout_decode_array(job->resp.body, job->resp.body_len,
								psprintf("GET %s", path), s->columns,
								s->ncolumns);
	if (!page->list_found)
		contract_error(path, "the body is not a JSON array");
	if (page->list_has_nonobject)
		contract_error(path, "a record is not a JSON object");
	s->list_pages++;
	s->rows_seen += page->nrecords;
	s->done = true;
	add_page(s, page);
}

static void follow_cursor_instead(RolloutScan *s, const char *label,
								  const char *why);

/*
 * The job of GET /{resource}?limit=N[&offset=M][&filters][&next=cursor]:
 * the offset is a pushed OFFSET's, on the walk's first page only.
 */
static void
list_page_job(RolloutScan *s, RolloutApiJob *job)
{
	char	   *path;
	const char *label;

	path = psprintf("/%s?limit=%d%s", s->resource, s->page_size,
					s->filter_query);
	label = path;
	if (s->walk_start > 0)
	{
		/* a pushed OFFSET: the first page says where it starts */
		label = psprintf("/%s?limit=%d&offset=%lld%s", s->resource,
						 s->page_size, (long long) s->walk_start,
						 s->filter_query);
		if (s->next_cursor == NULL)
			path = (char *) label;
	}
	if (s->next_cursor != NULL)
	{
		label = psprintf("%s (page %lld)", label,
						 (long long) s->list_pages + 1);
		path = psprintf("%s&next=%s", path, rollout_escape(s->next_cursor));
	}
	job->method = "GET";
	job->url = psprintf("%s%s", s->opts->api_url, path);
	job->label = label;
}

/* One page of a list, received: checked, and where the list goes next. */
static void
take_list_page(RolloutScan *s, RolloutPage *page, const char *label)
{
	RolloutMetaValue *next;
	int64		total;
	int64		limit;

	total = meta_count(page, ROLLOUT_META_TOTAL, label);
	limit = meta_count(page, ROLLOUT_META_LIMIT, label);
	(void) meta_count(page, ROLLOUT_META_OFFSET, label);
	if (limit > s->page_size)
		contract_error(label, psprintf("\"_metadata.limit\" is %lld, above the %d asked for",
									   (long long) limit, s->page_size));
	if (limit >= 0 && page->nrecords > Max(limit, 0))
		contract_error(label, "more records than \"_metadata.limit\"");
	if (s->first_total < 0)
		s->first_total = total;
	s->last_total = total;
	s->max_total = Max(s->max_total, total);
	s->rows_seen += page->nrecords;
	if (total >= 0 && (s->rows_seen - s->walk_start - 10) / 2 > s->max_total)
		contract_error(label, "more than twice the records \"_metadata.total\" announced");

	next = &page->meta[ROLLOUT_META_NEXT];
	if (!has_next(page))
	{
		s->done = true;
		check_complete(s, label);
	}
	else if (s->list_pages == 1 && offset_paging_possible(s, page, total, limit))
	{
		/* the rest by overlapping offset pages, several in flight */
		s->offset_paging = true;
		s->page_limit = limit;
		s->overlap = Max((int64) 2, limit / 20);
		s->next_offset = s->walk_start + limit - s->overlap;
		s->link_offset = s->walk_start;
		keep_link_ids(s, page);
	}
	else
	{
		/* a cursor that never ends: pages beyond what total allows */
		if (page->nrecords == 0)
			s->empty_pages++;
		else
			s->empty_pages = 0;
		if (s->empty_pages > 10)
			contract_error(label, "more than 10 empty pages in a row, each with a next cursor");
		if (s->max_total >= 0 && limit > 0 &&
			s->list_pages > s->max_total / limit + 10)
			contract_error(label, "more pages than \"_metadata.total\" and \"_metadata.limit\" allow");
		if (!set_add(s->scan_cxt, &s->seen_cursors, "rollout_fdw cursors",
					 next->text, (int) strlen(next->text)))
			contract_error(label, "\"_metadata.next\" repeats an earlier cursor (a pagination loop)");
		s->next_cursor = MemoryContextStrdup(s->scan_cxt, next->text);
	}
	drop_returned(s, page);
	add_page(s, page);
}

/* GET /{resource}?limit=N[&offset=M][&filters][&next=cursor]: one page. */
static int
prepare_list_page(RolloutScan *s, RolloutApiJob **jobsp)
{
	RolloutApiJob *job = palloc0(sizeof(RolloutApiJob));

	list_page_job(s, job);
	*jobsp = job;
	return 1;
}

static void
take_one_list_page(RolloutScan *s, RolloutApiJob *job)
{
	RolloutPage *page;

	if (s->walk_start > 0 && s->next_cursor == NULL &&
		(job->resp.status == 400 || job->resp.status == 422))
	{
		follow_cursor_instead(s, job->label, "the offset was refused");
		return;
	}
	page = read_list_page(s, job);
	if (s->walk_start > 0 && s->next_cursor == NULL &&
		meta_count(page, ROLLOUT_META_OFFSET, job->label) != s->walk_start)
	{
		follow_cursor_instead(s, job->label,
							  "the page does not say it starts at the offset asked for");
		return;
	}
	take_list_page(s, page, job->label);
}

/* ------------------------------------------------------------------
 * Overlapping offset pages, several in flight
 *
 * Page k asks for offset k * (limit - overlap): each page repeats the last
 * records of the one before.  A page that shares a record with the page
 * before it is linked to it: whatever was created or deleted between the
 * two requests, a record that existed all along and comes after the shared
 * one in the list is in this page or after it, and one that comes before it
 * was in the page before.  A short page is the end of the list.  So the
 * scan holds every record that existed for the whole scan, each once, as
 * long as the API keeps its records in a stable order.
 *
 * A page that shares nothing with the one before (records deleted or created
 * before it in the meantime) rewinds: the pages are asked again from the
 * last linked page, then further back, down to the start of the list.  An
 * API that refuses a deep offset (400, 422), ignores offset, or returns a
 * record without an id makes the scan finish by following the cursor over
 * the whole list, skipping the ids it returned already.
 * ------------------------------------------------------------------ */

/* Whether the page shares a record with the last linked page. */
static bool
linked(RolloutScan *s, RolloutPage *page)
{
	for (int r = 0; r < page->nrecords; r++)
	{
		uint64		hash;

		if (record_id_hash(page, r, &hash) &&
			bsearch(&hash, s->link_ids, s->nlink_ids, sizeof(uint64),
					compare_hashes) != NULL)
			return true;
	}
	return false;
}

/* Why offsets cannot page this list: finish by the cursor from the start. */
static void
follow_cursor_instead(RolloutScan *s, const char *label, const char *why)
{
	ereport(DEBUG1,
			(errmsg_internal("rollout_fdw: GET %s: %s; following the cursor over the whole list",
							 label, why)));

	/*
	 * A walk that began at a pushed OFFSET returned no record before it:
	 * from the start of the list, that many new records are skipped here.
	 */
	s->skip += s->walk_start;
	s->walk_start = 0;
	s->page_size = s->table_page_size;
	s->offset_paging = false;
	s->repairing = true;
	s->repairs++;
	s->next_cursor = NULL;
	s->first_total = s->last_total = s->max_total = -1;
	s->rows_seen = 0;
	s->list_pages = 0;
	s->empty_pages = 0;
	s->seen_cursors = NULL;
}

/*
 * The page did not link: ask again from the last linked page, then further
 * back, with twice the overlap each time; the cursor takes over when the
 * list keeps moving faster than the pages.
 */
static void
rewind_pages(RolloutScan *s, const char *label)
{
	if (s->rewinds >= ROLLOUT_MAX_REWINDS)
	{
		follow_cursor_instead(s, label, "the list keeps moving under the offsets");
		return;
	}
	s->repairs++;
	s->overlap = Min(s->overlap * 2, s->page_limit / 2);
	s->next_offset = Max(s->link_offset -
						 (s->page_limit - s->overlap) * s->rewinds,
						 s->walk_start);
	s->rewinds++;
	ereport(DEBUG1,
			(errmsg_internal("rollout_fdw: GET %s shares no record with the page before: the list moved; asking again from offset %lld",
							 label, (long long) s->next_offset)));
}

/* Check one offset page; false when the scan must change course. */
static bool
accept_offset_page(RolloutScan *s, RolloutApiJob *job, int64 offset,
				   RolloutPage **pagep)
{
	const char *label = job->label;
	RolloutPage *page;
	int64		page_offset;
	int64		total;
	uint64		hash;

	if (job->resp.status == 400 || job->resp.status == 422)
	{
		follow_cursor_instead(s, label, "the offset was refused");
		return false;
	}
	page = read_list_page(s, job);
	total = meta_count(page, ROLLOUT_META_TOTAL, label);
	page_offset = meta_count(page, ROLLOUT_META_OFFSET, label);
	if (meta_count(page, ROLLOUT_META_LIMIT, label) > s->page_limit ||
		page->nrecords > s->page_limit)
		contract_error(label, "more records than \"_metadata.limit\"");
	s->max_total = Max(s->max_total, total);
	if (s->max_total >= 0 &&
		s->list_pages / 2 - 10 > s->max_total / (s->page_limit - s->overlap))
	{
		follow_cursor_instead(s, label, "the offset pages cost twice what the list needs");
		return false;
	}

	if (page_offset >= 0 && page_offset != offset)
	{
		follow_cursor_instead(s, label, "the page starts at another offset");
		return false;
	}
	for (int r = 0; r < page->nrecords; r++)
		if (!record_id_hash(page, r, &hash))
		{
			follow_cursor_instead(s, label, "a record has no id");
			return false;
		}
	if (offset > 0 && !linked(s, page))
	{
		rewind_pages(s, label);
		return false;
	}
	if (page->nrecords < s->page_limit && total >= 0 &&
		offset + page->nrecords < total - churn_allowance(total))
	{
		/* the end of the list, says the page; not by its own total */
		follow_cursor_instead(s, label, "a page ended short of \"_metadata.total\"");
		return false;
	}
	*pagep = page;
	return true;
}

/* The next scan_concurrency overlapping pages, all in flight at once. */
static int
prepare_offset_pages(RolloutScan *s, RolloutApiJob **jobsp)
{
	int64		step = s->page_limit - s->overlap;
	int64		known = Max(s->max_total, s->first_total);
	int64		pages_left;
	int			n;
	RolloutApiJob *jobs;

	/* up to the first page that starts within a page of the end */
	pages_left = known - s->page_limit >= s->next_offset ?
		(known - s->page_limit - s->next_offset) / step + 2 : 1;
	n = (int) Min((int64) s->concurrency, pages_left);
	if (s->row_limit > 0)
		n = (int) Min((int64) n,
					  Max((int64) 1, (s->row_limit - s->rows_returned) / step + 1));
	jobs = palloc0(sizeof(RolloutApiJob) * n);
	for (int k = 0; k < n; k++)
	{
		int64		offset = s->next_offset + k * step;
		char	   *path = psprintf("/%s?limit=%lld&offset=%lld%s", s->resource,
									(long long) s->page_limit,
									(long long) offset, s->filter_query);

		jobs[k].method = "GET";
		jobs[k].url = psprintf("%s%s", s->opts->api_url, path);
		jobs[k].label = path;
	}
	*jobsp = jobs;
	return n;
}

/* The overlapping pages, checked, linked and emitted in order. */
static void
take_offset_pages(RolloutScan *s, RolloutApiJob *jobs, int n)
{
	int64		step = s->page_limit - s->overlap;

	for (int k = 0; k < n; k++)
	{
		int64		offset = s->next_offset + k * step;
		RolloutPage *page = NULL;
		int			got;
		int64		before = s->duplicates;

		if (!accept_offset_page(s, &jobs[k], offset, &page))
			return;				/* rewound, or following the cursor */
		s->rewinds = 0;
		s->link_offset = offset;
		keep_link_ids(s, page);
		got = page->nrecords;
		drop_returned(s, page);
		add_page(s, page);
		if (got < s->page_limit)
		{
			s->done = true;		/* a short page: the end of the list */
			return;
		}
		if (s->duplicates - before == got && s->repairs == 0)
		{
			/*
			 * A full page of records returned before, on a list that has not
			 * moved (after a rewind, pages asked again repeat records):
			 * offset is ignored.
			 */
			follow_cursor_instead(s, jobs[k].label, "the pages do not advance");
			return;
		}
	}
	s->next_offset += n * step;
}

/* ------------------------------------------------------------------
 * Several lists (a filter with several values, one list request each):
 * their first pages in flight together, each id returned once across
 * them (the set of ids returned is the scan's, not the list's)
 * ------------------------------------------------------------------ */

/*
 * Where a walk of a list stands, back to its start (the ids returned and
 * the buffers are the caller's to keep or drop).
 */
static void
reset_walk(RolloutScan *s)
{
	s->done = false;
	s->next_cursor = NULL;
	s->offset_paging = false;
	s->repairing = false;
	s->next_offset = 0;
	s->page_limit = 0;
	s->overlap = 0;
	s->nlink_ids = 0;
	s->link_offset = 0;
	s->rewinds = 0;
	s->seen_cursors = NULL;
	s->first_total = s->last_total = s->max_total = -1;
	s->rows_seen = 0;
	s->list_pages = 0;
	s->empty_pages = 0;
}

/*
 * Start a list from its first page: nothing of the list before is kept.
 * list: its filter query and the value of its required parameter (or NULL).
 */
static void
begin_list(RolloutScan *s, List *list)
{
	reset_walk(s);
	s->filter_query = linitial(list);
	s->asked_value = lsecond(list);
}

/*
 * The first pages of the lists not asked yet, up to ROLLOUT_MAX_INFLIGHT
 * in flight together.  A list that ends on its first page (one person's
 * text messages, the people with an e-mail address) is taken whole; a
 * longer one is walked afterwards from its start by the usual paging.
 */
static int
prepare_first_pages(RolloutScan *s, RolloutApiJob **jobsp)
{
	int			n = Min(list_length(s->queries), ROLLOUT_MAX_INFLIGHT);
	RolloutApiJob *jobs = palloc0(sizeof(RolloutApiJob) * n);

	for (int k = 0; k < n; k++)
	{
		begin_list(s, list_nth(s->queries, k));
		list_page_job(s, &jobs[k]);
	}
	s->done = true;
	*jobsp = jobs;
	return n;
}

static void
take_first_pages(RolloutScan *s, RolloutApiJob *jobs, int n)
{
	for (int k = 0; k < n; k++)
	{
		RolloutPage *page;

		begin_list(s, list_nth(s->queries, k));
		page = read_list_page(s, &jobs[k]);
		if (has_next(page))
		{
			MemoryContext old = MemoryContextSwitchTo(s->scan_cxt);

			s->long_lists = lappend(s->long_lists, list_nth(s->queries, k));
			MemoryContextSwitchTo(old);
		}
		else
			take_list_page(s, page, jobs[k].label);
	}
	s->queries = list_delete_first_n(s->queries, n);
	s->done = true;
}

/* ------------------------------------------------------------------
 * The scan's interface
 * ------------------------------------------------------------------ */

RolloutScan *
rollout_scan_create(Relation rel, RolloutOptions *opts, RolloutConn *conn,
					RolloutColumn *columns, int ncolumns,
					const char *resource, int page_size, int concurrency,
					MemoryContext parent)
{
	RolloutScan *s = MemoryContextAllocZero(parent, sizeof(RolloutScan));

	s->rel = rel;
	s->opts = opts;
	s->conn = conn;
	s->columns = columns;
	s->ncolumns = ncolumns;
	s->resource = resource;
	s->page_size = s->table_page_size = page_size;
	s->max_rows = -1;
	s->concurrency = Max(concurrency, 1);
	s->page_cxt = AllocSetContextCreate(parent, "rollout_fdw page",
										ALLOCSET_DEFAULT_SIZES);
	s->scan_cxt = AllocSetContextCreate(parent, "rollout_fdw scan",
										ALLOCSET_SMALL_SIZES);
	s->done = true;
	return s;
}

/* A new scan like model: the same table, columns and request sizes. */
RolloutScan *
rollout_scan_like(RolloutScan *model, MemoryContext parent)
{
	return rollout_scan_create(model->rel, model->opts, model->conn,
							   model->columns, model->ncolumns,
							   model->resource, model->table_page_size,
							   model->concurrency, parent);
}

static void
restart(RolloutScan *s)
{
	MemoryContextReset(s->page_cxt);
	MemoryContextReset(s->scan_cxt);
	s->wave = NULL;
	s->npages = s->pages_cap = 0;
	s->cur_page = s->cur_rec = 0;
	reset_walk(s);
	s->link_ids = NULL;
	s->link_cap = 0;
	s->returned = NULL;
	s->rows_returned = 0;
	s->ids = NIL;
	s->by_ids = false;
	s->filter_query = "";
	s->asked_value = NULL;
	s->page_size = s->table_page_size;
	s->walk_start = 0;
	s->skip = 0;
	s->max_rows = -1;
	s->queries = NIL;
	s->long_lists = NIL;
}

/*
 * (Re)start as a list scan; filter_query is "&name=value..." or "", and
 * asked_value the value of the list's required parameter in it (or NULL).
 */
void
rollout_scan_list(RolloutScan *s, const char *filter_query,
				  const char *asked_value)
{
	rollout_scan_lists(s, list_make1((char *) filter_query),
					   list_make1((char *) asked_value));
}

/*
 * (Re)start as one list scan per distinct filter query, each id returned
 * once across them; no query, no request.  asked_values: the value of the
 * list's required parameter in each query (or NULL), or NIL.
 */
void
rollout_scan_lists(RolloutScan *s, List *filter_queries, List *asked_values)
{
	MemoryContext old;
	HTAB	   *seen = NULL;
	List	   *queries = NIL;
	ListCell   *lc;

	restart(s);
	old = MemoryContextSwitchTo(s->scan_cxt);
	foreach(lc, filter_queries)
	{
		char	   *query = lfirst(lc);
		char	   *asked = asked_values ?
			list_nth(asked_values, foreach_current_index(lc)) : NULL;

		if (set_add(s->scan_cxt, &seen, "rollout_fdw lists asked", query,
					(int) strlen(query)))
			queries = lappend(queries,
							  list_make2(pstrdup(query),
										 asked ? pstrdup(asked) : NULL));
	}
	MemoryContextSwitchTo(old);
	if (list_length(queries) == 1)
		begin_list(s, linitial(queries));
	else if (rollout_endpoint(s->resource)->list_is_array)
	{
		/* one request each, not paged: asked one after the other */
		s->long_lists = queries;
		s->done = true;
	}
	else
	{
		s->queries = queries;
		s->done = true;
	}
}

/*
 * After rollout_scan_list: the query's OFFSET and LIMIT (count -1: none)
 * are the scan's, and no Limit node above it applies them.  The first
 * request asks for the page at the offset, and the rest of the list
 * follows from there.  Where the API refuses the offset, or its answer
 * does not say it starts there, the scan walks the list from its start
 * and skips that many records itself: the rows are the same either way.
 */
void
rollout_scan_window(RolloutScan *s, int64 offset, int64 count)
{
	s->max_rows = count;
	s->row_limit = Max(count, 0);
	if (count == 0)
		s->done = true;
	if (count > 0 && count < s->page_size)
		s->page_size = (int) count;
	if (offset > ROLLOUT_MAX_PUSHED_OFFSET)
	{
		/* no list holds that many: no position arithmetic near overflow */
		s->skip = offset;
		s->row_limit = 0;
		s->page_size = s->table_page_size;
	}
	else
	{
		s->walk_start = offset;
		s->rows_seen = offset;
	}
}

/*
 * (Re)start as GETs by id, one per distinct id (as text), in the order
 * given.  Distinct by a 64-bit hash: a collision would drop an id, with a
 * chance far below anything else that can go wrong.
 */
void
rollout_scan_ids(RolloutScan *s, List *ids)
{
	MemoryContext old;
	HTAB	   *seen = NULL;
	ListCell   *lc;

	restart(s);
	s->by_ids = true;
	old = MemoryContextSwitchTo(s->scan_cxt);
	foreach(lc, ids)
	{
		char	   *id = lfirst(lc);

		if (set_add(s->scan_cxt, &seen, "rollout_fdw ids asked", id,
					(int) strlen(id)))
			s->ids = lappend(s->ids, pstrdup(id));
	}
	MemoryContextSwitchTo(old);
}

/* Does the column read the record's key (a one-key field, or by default)? */
static bool
column_reads_key(RolloutColumn *col, const char *key)
{
	if (col->whole_record || col->key != ROLLOUT_KEY_NONE)
		return false;
	if (col->path != NIL)
		return list_length(col->path) == 1 &&
			strcmp(strVal(linitial(col->path)), key) == 0;
	return strcmp(col->key_exact, key) == 0 ||
		(col->key_camel != NULL && strcmp(col->key_camel, key) == 0);
}

/*
 * The records of a list that requires a query parameter may not repeat it
 * (GET /metadata/transactions/create?transactionType=purchase answers
 * fields without a transactionType): a scalar column reading that key
 * shows the value asked for where the record has none.
 */
static void
fill_asked_value(RolloutScan *s, TupleTableSlot *slot, MemoryContext row_cxt)
{
	const char *key = rollout_endpoint(s->resource)->required_param;

	if (key == NULL)
		return;
	for (int i = 0; i < s->ncolumns; i++)
	{
		RolloutColumn *col = &s->columns[i];
		MemoryContext old;

		if (!slot->tts_isnull[col->attnum - 1] ||
			col->kind == ROLLOUT_CONV_JSON || col->kind == ROLLOUT_CONV_ARRAY ||
			!column_reads_key(col, key))
			continue;
		old = MemoryContextSwitchTo(row_cxt);
		slot->tts_values[col->attnum - 1] =
			InputFunctionCall(&col->infunc, unconstify(char *, s->asked_value),
							  col->ioparam, col->typmod);
		slot->tts_isnull[col->attnum - 1] = false;
		MemoryContextSwitchTo(old);
	}
}

/*
 * The key columns show whose record it is: the user and the credential
 * the scan read.
 */
static void
fill_keys(RolloutScan *s, TupleTableSlot *slot, MemoryContext row_cxt)
{
	for (int i = 0; i < s->ncolumns; i++)
	{
		RolloutColumn *col = &s->columns[i];
		const char *value;
		MemoryContext old;

		if (col->key == ROLLOUT_KEY_NONE)
			continue;
		value = s->key_values[col->key];
		if (col->key == ROLLOUT_KEY_CREDENTIAL && value == NULL)
			value = s->conn->credential_id;
		if (value == NULL)
			continue;
		old = MemoryContextSwitchTo(row_cxt);
		slot->tts_values[col->attnum - 1] =
			InputFunctionCall(&col->infunc, unconstify(char *, value),
							  col->ioparam, col->typmod);
		slot->tts_isnull[col->attnum - 1] = false;
		MemoryContextSwitchTo(old);
	}
}

/*
 * Store the next record of the requests taken so far in slot (its values
 * in row_cxt, reset here); false when none is left of them.
 */
bool
rollout_scan_emit(RolloutScan *s, TupleTableSlot *slot, MemoryContext row_cxt)
{
	if (s->max_rows >= 0 && s->rows_returned >= s->max_rows)
		return false;			/* a pushed LIMIT is reached */
	while (s->cur_page < s->npages)
	{
		RolloutPage *page = s->wave[s->cur_page];

		if (s->cur_rec < page->nrecords && s->skip > 0)
		{
			s->skip--;			/* an OFFSET the API did not take */
			s->cur_rec++;
			continue;
		}
		if (s->cur_rec < page->nrecords)
		{
			MemoryContextReset(row_cxt);
			s->rows_returned++;
			rollout_store_record(slot, page, s->cur_rec++, s->rel,
								 s->columns, s->ncolumns, row_cxt);
			if (s->asked_value != NULL)
				fill_asked_value(s, slot, row_cxt);
			fill_keys(s, slot, row_cxt);
			return true;
		}
		s->cur_page++;
		s->cur_rec = 0;
	}
	return false;
}

/* Is nothing left to ask (nor to return, once emit says so)? */
bool
rollout_scan_finished(RolloutScan *s)
{
	return (s->max_rows >= 0 && s->rows_returned >= s->max_rows) ||
		(s->done && s->queries == NIL && s->long_lists == NIL) ||
		(s->max_pages > 0 && s->list_pages >= s->max_pages);
}

/*
 * The requests of the scan's next step, in *jobs (their user and
 * credential set: the credential must be known).  The records of the step
 * before are dropped.  Preparing again before the step is taken prepares
 * the same requests (a step postponed by a 409 is asked again).
 */
int
rollout_scan_prepare(RolloutScan *s, RolloutApiJob **jobs)
{
	MemoryContext old;
	int			n;

	MemoryContextReset(s->page_cxt);
	s->wave = NULL;
	s->npages = s->pages_cap = 0;
	s->cur_page = s->cur_rec = 0;
	old = MemoryContextSwitchTo(s->page_cxt);
	if (s->by_ids)
	{
		s->step = STEP_IDS;
		n = prepare_ids(s, jobs);
	}
	else if (s->done && s->queries != NIL)
	{
		s->step = STEP_FIRST_PAGES;
		n = prepare_first_pages(s, jobs);
	}
	else
	{
		if (s->done)
		{
			begin_list(s, linitial(s->long_lists));
			s->long_lists = list_delete_first(s->long_lists);
		}
		if (s->offset_paging)
		{
			s->step = STEP_OFFSET_PAGES;
			n = prepare_offset_pages(s, jobs);
		}
		else if (rollout_endpoint(s->resource)->list_is_array)
		{
			s->step = STEP_ARRAY;
			n = prepare_array_list(s, jobs);
		}
		else
		{
			s->step = STEP_LIST_PAGE;
			n = prepare_list_page(s, jobs);
		}
	}
	assign_jobs(s, *jobs, n);
	MemoryContextSwitchTo(old);
	return n;
}

/*
 * The answers of the step prepared, taken: checked, and their records
 * ready for rollout_scan_emit.  A step postponed by a 409 takes nothing
 * (then retry_at says when to prepare it again).
 */
void
rollout_scan_take(RolloutScan *s, RolloutApiJob *jobs, int n)
{
	MemoryContext old = MemoryContextSwitchTo(s->page_cxt);

	if (!after_run(s, jobs, n))
	{
		switch (s->step)
		{
			case STEP_IDS:
				take_ids(s, jobs, n);
				break;
			case STEP_FIRST_PAGES:
				take_first_pages(s, jobs, n);
				break;
			case STEP_ARRAY:
				take_array_list(s, jobs);
				break;
			case STEP_LIST_PAGE:
				take_one_list_page(s, jobs);
				break;
			case STEP_OFFSET_PAGES:
				take_offset_pages(s, jobs, n);
				break;
		}
		s->step = STEP_NONE;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Store the next record in slot (its values in row_cxt, reset here);
 * false at the end.  The scan's requests go alone, one step at a time.
 */
bool
rollout_scan_next(RolloutScan *s, TupleTableSlot *slot, MemoryContext row_cxt)
{
	for (;;)
	{
		RolloutApiJob *jobs;
		int			n;

		if (rollout_scan_emit(s, slot, row_cxt))
			return true;
		if (rollout_scan_finished(s))
		{
			ExecClearTuple(slot);
			return false;
		}

		rollout_progress_report(s, true);
		if (s->credential == NULL && s->conn->credential_id == NULL)
			rollout_resolve_credential(s->conn, s->opts);
		n = rollout_scan_prepare(s, &jobs);
		if (n > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(s->page_cxt);

			rollout_api_run_jobs(s->opts, jobs, n);
			MemoryContextSwitchTo(old);
		}
		rollout_scan_take(s, jobs, n);
		rollout_progress_report(s, false);
	}
}
