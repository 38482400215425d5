/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  Where a scan's records come from: list paging (the next cursor, or
 *		  offset pages in flight together), GETs by id, and the checks that
 *		  make "every row or an error" true.  ANALYZE samples through it.
 *
 * Rules kept here:
 *	- a scan returns every record or raises an error, never a partial
 *	  result: a broken envelope, a repeated cursor, a list that ends short
 *	  of what _metadata.total announced, or more records than it announced,
 *	  are errors;
 *	- numbers from the API (total, limit, offset) are checked before any
 *	  arithmetic: a limit above the one asked for is a contract error, the
 *	  page count and offsets are computed without overflow, and arrays are
 *	  sized from what was received;
 *	- pages live in a context reset per wave of requests; nothing but the
 *	  cursors and ids seen (offset paging) grows with the scan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "rollout_fdw.h"

static void
contract_error(const char *label, const char *what)
{
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
			 errmsg("Rollout response to GET %s breaks the list contract: %s",
					label, what),
			 errhint("No rows were returned: a scan returns every row or fails.")));
}

static void
drift_error(const char *label, const char *what)
{
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
			 errmsg("Rollout data changed during the scan: %s in GET %s",
					what, label),
			 errhint("No rows were returned. Retry, or set scan_concurrency to 1 to follow the cursor, which is stable under concurrent edits.")));
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

static void
count_request(RolloutScan *s, RolloutResponse *resp)
{
	s->stats.requests += resp->stats.requests;
	s->stats.retries += resp->stats.retries;
	s->stats.rate_limited += resp->stats.rate_limited;
	s->stats.throttled_us += resp->stats.throttled_us;
	s->stats.backoff_us += resp->stats.backoff_us;
	s->stats.bytes += resp->stats.bytes;
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

/* Send the jobs, each with the scan's credentials; count what they cost. */
static void
run_jobs(RolloutScan *s, RolloutHttpJob *jobs, int n)
{
	rollout_api_run(s->conn, s->opts, jobs, n, true);
	for (int k = 0; k < n; k++)
	{
		count_request(s, &jobs[k].resp);
		rollout_http_raise_failure(s->opts, &jobs[k]);
	}
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

/*
 * GET /{resource}/{id} for each id, several in flight at once, answered in
 * the ids' order; 404 is no row.
 */
static void
fetch_by_ids(RolloutScan *s)
{
	int			n = list_length(s->ids);
	RolloutHttpJob *jobs;
	int			i = 0;
	ListCell   *lc;

	s->done = true;
	if (n == 0)
		return;
	jobs = palloc0(sizeof(RolloutHttpJob) * n);
	foreach(lc, s->ids)
	{
		char	   *path = psprintf("/%s/%s", s->resource,
									rollout_escape(lfirst(lc)));

		jobs[i].method = "GET";
		jobs[i].url = psprintf("%s%s", s->opts->api_url, path);
		jobs[i].label = path;
		i++;
	}
	run_jobs(s, jobs, n);

	for (i = 0; i < n; i++)
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

/* At the end of the list: every record announced came, or an error. */
static void
check_complete(RolloutScan *s, const char *label)
{
	int64		expected;

	if (s->first_total < 0)
		return;

	/*
	 * Records deleted during the scan lower the last page's total: a drop
	 * of up to 1% of the first total (at least 10 records) is taken as
	 * that; a larger one is not believed.
	 */
	expected = s->first_total;
	if (s->last_total >= 0 && s->last_total < s->first_total)
		expected -= Min(s->first_total - s->last_total,
						Max((int64) 10, s->first_total / 100));
	if (s->rows_seen < expected)
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to GET %s breaks the list contract: the list ended after %lld records of the %lld \"_metadata.total\" announced",
						label, (long long) s->rows_seen, (long long) expected),
				 errhint("No rows were returned: a scan returns every row or fails.")));
}

/* GET /{resource}?limit=N[&filters][&next=cursor]: one page of a list. */
static void
fetch_list_page(RolloutScan *s)
{
	char	   *path;
	const char *label;
	RolloutHttpJob job = {0};
	RolloutPage *page;
	RolloutMetaValue *next;
	int64		total;
	int64		limit;

	path = psprintf("/%s?limit=%d%s", s->resource, s->page_size,
					s->filter_query);
	label = path;
	if (s->next_cursor != NULL)
	{
		label = psprintf("/%s?limit=%d%s (page %lld)", s->resource,
						 s->page_size, s->filter_query,
						 (long long) s->list_pages + 1);
		path = psprintf("%s&next=%s", path, rollout_escape(s->next_cursor));
	}
	job.method = "GET";
	job.url = psprintf("%s%s", s->opts->api_url, path);
	job.label = label;
	run_jobs(s, &job, 1);
	rollout_check_status("GET", label, &job.resp);
	page = rollout_decode_page(job.resp.body, job.resp.body_len,
							   psprintf("GET %s", label), s->resource,
							   s->columns, s->ncolumns);
	check_envelope(s, page, label);
	s->list_pages++;
	add_page(s, page);

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
	s->rows_seen += page->nrecords;
	if (total >= 0 && s->rows_seen > Max(total, s->first_total))
		contract_error(label, "more records than \"_metadata.total\" announced");

	next = &page->meta[ROLLOUT_META_NEXT];
	if (!next->present || next->type != ROLLOUT_JSON_STRING ||
		next->text[0] == '\0')
	{
		s->done = true;
		check_complete(s, label);
	}
	else if (s->concurrency > 1 && total >= 0 && limit > 0 &&
			 s->max_pages == 0 && s->rows_seen < total)
	{
		/* the rest by offset, several pages in flight */
		s->offset_paging = true;
		s->page_limit = limit;
		s->next_offset = s->rows_seen;
		for (int k = 0; k < page->nrecords; k++)
		{
			RolloutRecord *r = &page->records[k];

			for (int v = 0; v < r->nvalues; v++)
				if (page->values[r->first + v].col == -1 &&
					page->values[r->first + v].type != ROLLOUT_JSON_NULL)
					(void) set_add(s->scan_cxt, &s->seen_ids, "rollout_fdw ids",
								   page->body + page->values[r->first + v].off,
								   page->values[r->first + v].len);
		}
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
		if (total >= 0 && limit > 0 &&
			s->list_pages > total / limit + 10)
			contract_error(label, "more pages than \"_metadata.total\" and \"_metadata.limit\" allow");
		if (!set_add(s->scan_cxt, &s->seen_cursors, "rollout_fdw cursors",
					 next->text, (int) strlen(next->text)))
			contract_error(label, "\"_metadata.next\" repeats an earlier cursor (a pagination loop)");
		s->next_cursor = MemoryContextStrdup(s->scan_cxt, next->text);
	}
}

/*
 * The next scan_concurrency pages by offset, all in flight at once, checked
 * for any sign that the data moved (total, offset, page length, an id seen
 * twice) and emitted in order.
 */
static void
fetch_offset_pages(RolloutScan *s)
{
	int64		remaining = s->first_total - s->next_offset;
	int64		pages_left;
	int			n;
	RolloutHttpJob *jobs;

	if (remaining <= 0)
	{
		s->done = true;
		return;
	}
	pages_left = remaining / s->page_limit + (remaining % s->page_limit != 0);
	n = (int) Min((int64) s->concurrency, pages_left);
	jobs = palloc0(sizeof(RolloutHttpJob) * n);
	for (int k = 0; k < n; k++)
	{
		int64		offset = s->next_offset + k * s->page_limit;
		char	   *path = psprintf("/%s?limit=%lld&offset=%lld%s", s->resource,
									(long long) s->page_limit,
									(long long) offset, s->filter_query);

		jobs[k].method = "GET";
		jobs[k].url = psprintf("%s%s", s->opts->api_url, path);
		jobs[k].label = path;
	}
	run_jobs(s, jobs, n);

	for (int k = 0; k < n; k++)
	{
		int64		offset = s->next_offset + k * s->page_limit;
		int64		expect = Min(s->page_limit, s->first_total - offset);
		const char *label = jobs[k].label;
		RolloutPage *page;
		int64		page_offset;

		rollout_check_status("GET", label, &jobs[k].resp);
		page = rollout_decode_page(jobs[k].resp.body, jobs[k].resp.body_len,
								   psprintf("GET %s", label), s->resource,
								   s->columns, s->ncolumns);
		check_envelope(s, page, label);
		s->list_pages++;
		if (meta_count(page, ROLLOUT_META_TOTAL, label) != s->first_total)
			drift_error(label, "\"_metadata.total\" changed");
		page_offset = meta_count(page, ROLLOUT_META_OFFSET, label);
		if (page_offset >= 0 && page_offset != offset)
			drift_error(label, "the page starts at another offset");
		(void) meta_count(page, ROLLOUT_META_LIMIT, label);
		if ((int64) page->nrecords != expect)
			drift_error(label, "the page has another number of records");
		if (offset + s->page_limit >= s->first_total &&
			page->meta[ROLLOUT_META_NEXT].present &&
			page->meta[ROLLOUT_META_NEXT].type == ROLLOUT_JSON_STRING &&
			page->meta[ROLLOUT_META_NEXT].text[0] != '\0')
			contract_error(label, "the last page by \"_metadata.total\" has a next cursor");
		for (int r = 0; r < page->nrecords; r++)
		{
			RolloutRecord *rec = &page->records[r];

			for (int v = 0; v < rec->nvalues; v++)
			{
				RolloutValue *id = &page->values[rec->first + v];

				if (id->col == -1 && id->type != ROLLOUT_JSON_NULL &&
					!set_add(s->scan_cxt, &s->seen_ids, "rollout_fdw ids",
							 page->body + id->off, id->len))
					drift_error(label, "a record came twice");
			}
		}
		s->rows_seen += page->nrecords;
		add_page(s, page);
	}
	s->next_offset += n * s->page_limit;
	if (s->next_offset >= s->first_total)
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
	s->page_size = page_size;
	s->concurrency = Max(concurrency, 1);
	s->page_cxt = AllocSetContextCreate(parent, "rollout_fdw page",
										ALLOCSET_DEFAULT_SIZES);
	s->scan_cxt = AllocSetContextCreate(parent, "rollout_fdw scan",
										ALLOCSET_SMALL_SIZES);
	s->done = true;
	return s;
}

static void
restart(RolloutScan *s)
{
	MemoryContextReset(s->page_cxt);
	MemoryContextReset(s->scan_cxt);
	s->wave = NULL;
	s->npages = s->pages_cap = 0;
	s->cur_page = s->cur_rec = 0;
	s->done = false;
	s->next_cursor = NULL;
	s->offset_paging = false;
	s->next_offset = 0;
	s->page_limit = 0;
	s->seen_cursors = NULL;
	s->seen_ids = NULL;
	s->first_total = s->last_total = -1;
	s->rows_seen = 0;
	s->list_pages = 0;
	s->empty_pages = 0;
	s->ids = NIL;
	s->by_ids = false;
	s->filter_query = "";
}

/* (Re)start as a list scan; filter_query is "&name=value..." or "". */
void
rollout_scan_list(RolloutScan *s, const char *filter_query)
{
	restart(s);
	s->filter_query = MemoryContextStrdup(s->scan_cxt, filter_query);
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

/*
 * Store the next record in slot (its values in row_cxt, reset here);
 * false at the end.
 */
bool
rollout_scan_next(RolloutScan *s, TupleTableSlot *slot, MemoryContext row_cxt)
{
	for (;;)
	{
		MemoryContext old;

		while (s->cur_page < s->npages)
		{
			RolloutPage *page = s->wave[s->cur_page];

			if (s->cur_rec < page->nrecords)
			{
				MemoryContextReset(row_cxt);
				rollout_store_record(slot, page, s->cur_rec++, s->rel,
									 s->columns, s->ncolumns, row_cxt);
				return true;
			}
			s->cur_page++;
			s->cur_rec = 0;
		}
		if (s->done || (s->max_pages > 0 && s->list_pages >= s->max_pages))
		{
			ExecClearTuple(slot);
			return false;
		}

		rollout_progress_report(s, true);
		MemoryContextReset(s->page_cxt);
		s->wave = NULL;
		s->npages = s->pages_cap = 0;
		s->cur_page = s->cur_rec = 0;
		old = MemoryContextSwitchTo(s->page_cxt);
		if (s->by_ids)
			fetch_by_ids(s);
		else if (s->offset_paging)
			fetch_offset_pages(s);
		else
			fetch_list_page(s);
		MemoryContextSwitchTo(old);
		rollout_progress_report(s, false);
	}
}
