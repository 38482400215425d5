/*-------------------------------------------------------------------------
 *
 * rollout_fdw.c
 *		  The handler and the FDW callbacks of rollout_fdw, in FdwRoutine
 *		  order, and the SQL-callable functions.
 *
 * Rules kept here:
 *	- a scan streams one page at a time: the page's body and parsed JSON
 *	  live in a context reset per page, a row's values in a context reset
 *	  per row; nothing grows with the number of rows;
 *	- a scan returns every row or raises an error, never a partial result:
 *	  a missing envelope, a repeated cursor or paging past what "total"
 *	  allows are errors;
 *	- WHERE id = <constant or parameter> becomes GET /{resource}/{id} with
 *	  the id percent-encoded; every condition is still rechecked locally;
 *	- fdw_private holds only copyable nodes (cached and generic plans reuse
 *	  it);
 *	- no request is sent for a plain EXPLAIN.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "utils/array.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "commands/explain.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"

#include "rollout_fdw.h"

/* Cost of one API request, in planner cost units. */
#define REQUEST_COST 100.0
/* Rows of a table never ANALYZEd: a CRM of some thousands of people. */
#define DEFAULT_ROWS 10000.0

/*
 * fdw_private of a ForeignScan plan: a list indexed by this enum.
 * fdw_exprs holds the id (or the array of ids) for the id modes, else the
 * values of the list filters in the order of ScanPrivateFilterNames.
 */
enum RolloutScanPrivate
{
	ScanPrivateRetrievedAttrs,	/* Integer list: attnums to convert */
	ScanPrivateResource,		/* String: the collection path */
	ScanPrivatePageSize,		/* Integer: limit sent on list requests */
	ScanPrivateMode,			/* Integer: a RolloutScanMode */
	ScanPrivateFilterNames,		/* List of String: list query parameters */
	ScanPrivateRequest,			/* String: the request, for EXPLAIN */
	ScanPrivatePushed,			/* String: pushed conditions, or "" */
	ScanPrivateConcurrency		/* Integer: list pages in flight */
};

/* Planner state of a foreign relation (baserel->fdw_private). */
typedef struct RolloutRelInfo
{
	RolloutOptions *opts;
	RolloutPushdown pushdown;	/* of the table's own conditions */
} RolloutRelInfo;

typedef struct RolloutScanState
{
	Relation	rel;
	RolloutOptions *opts;
	RolloutConn *conn;
	int			ncolumns;
	RolloutColumn *columns;		/* the retrieved columns */
	RolloutScanMode mode;
	ExprState  *id_state;		/* the id modes */
	List	   *filter_names;	/* list mode: query parameters ... */
	List	   *filter_states;	/* ... and their values */
	char	   *filter_query;	/* "&tags=x..." of this scan, once computed */
	const char *resource;
	int			page_size;
	int			concurrency;

	MemoryContext page_cxt;		/* reset per page: bodies, parsed JSON */
	MemoryContext row_cxt;		/* reset per row: converted values */
	MemoryContext scan_cxt;		/* per scan: cursors and ids seen */
	HTAB	   *seen_cursors;
	HTAB	   *seen_ids;		/* offset paging: drift check */

	json_t	  **records;		/* of the current page(s), in order */
	int			nrecords;
	int			pos;
	char	   *next_cursor;	/* in scan_cxt; NULL before the first page */
	int64		next_offset;	/* offset paging: the next page's offset */
	int64		page_limit;		/* offset paging: _metadata.limit */
	bool		offset_paging;
	bool		done;			/* no page left to fetch */
	int64		total;			/* _metadata.total of the first page, or -1 */
	int64		rows_seen;

	/* EXPLAIN ANALYZE counters */
	int64		pages;
	RolloutStats stats;
} RolloutScanState;

PG_FUNCTION_INFO_V1(rollout_fdw_handler);
PG_FUNCTION_INFO_V1(rollout_fdw_credentials);

/* ------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------ */

static double
table_rows(RelOptInfo *baserel)
{
	return baserel->tuples > 0 ? baserel->tuples : DEFAULT_ROWS;
}

/* How many ids a constant array holds, else a guess. */
static double
id_count(Expr *array)
{
	if (IsA(array, Const) && !((Const *) array)->constisnull)
		return ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) array)->constvalue)),
							  ARR_DIMS(DatumGetArrayTypeP(((Const *) array)->constvalue)));
	if (IsA(array, ArrayExpr))
		return list_length(((ArrayExpr *) array)->elements);
	return 10;
}

static void
rolloutGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						 Oid foreigntableid)
{
	RolloutRelInfo *info = palloc0(sizeof(RolloutRelInfo));

	info->opts = rollout_get_options(GetForeignTable(foreigntableid)->serverid,
									 InvalidOid, foreigntableid);
	rollout_classify_clauses(root, baserel, foreigntableid,
							 baserel->baserestrictinfo, &info->pushdown);
	baserel->fdw_private = info;

	switch (info->pushdown.mode)
	{
		case ROLLOUT_SCAN_ID:
			baserel->rows = 1;
			break;
		case ROLLOUT_SCAN_IDS:
			baserel->rows = id_count(info->pushdown.id_value);
			break;
		case ROLLOUT_SCAN_LIST:
			baserel->rows =
				clamp_row_est(table_rows(baserel) *
							  clauselist_selectivity(root,
													 baserel->baserestrictinfo,
													 0, JOIN_INNER, NULL));
			break;
	}
}

/*
 * One unparameterized path (a list, or requests by id), and one path per
 * join clause "id = outer column": a GET by id per outer row.  A request
 * costs REQUEST_COST, so a nested loop wins while the outer side has fewer
 * rows than a full scan has pages.
 */
static void
rolloutGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	RolloutRelInfo *info = baserel->fdw_private;
	double		requests;
	ListCell   *lc;

	switch (info->pushdown.mode)
	{
		case ROLLOUT_SCAN_ID:
			requests = 1;
			break;
		case ROLLOUT_SCAN_IDS:
			requests = baserel->rows;
			break;
		default:
			requests = Max(1, ceil((info->pushdown.filter_names ?
									baserel->rows : table_rows(baserel)) /
								   info->opts->page_size));
			break;
	}
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 REQUEST_COST,
									 REQUEST_COST * requests +
									 cpu_tuple_cost * 10 * baserel->rows,
									 NIL, NULL, NULL, NIL));

	foreach(lc, rollout_id_join_clauses(root, baserel, foreigntableid))
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Relids		outer = bms_difference(ri->clause_relids, baserel->relids);
		ParamPathInfo *ppi = get_baserel_parampathinfo(root, baserel, outer);

		add_path(baserel, (Path *)
				 create_foreignscan_path(root, baserel, NULL, ppi->ppi_rows,
										 REQUEST_COST,
										 REQUEST_COST + cpu_tuple_cost * 10,
										 NIL, outer, NULL, NIL));
	}
}

/*
 * The row count a LIMIT asks of this scan, when passing it on cannot
 * change the answer: the query reads this table alone, every condition is
 * answered by the request, and nothing (sorting, grouping, DISTINCT,
 * aggregates, window functions, set-returning functions, locking) needs
 * more rows than LIMIT + OFFSET.  Else 0.
 */
static int64
limit_rows(PlannerInfo *root, RelOptInfo *baserel, bool all_pushed)
{
	Query	   *parse = root->parse;
	int64		count;
	int64		offset = 0;

	if (!all_pushed || parse->limitCount == NULL ||
		!IsA(parse->limitCount, Const) ||
		((Const *) parse->limitCount)->constisnull ||
		parse->limitOption != LIMIT_OPTION_COUNT ||
		parse->sortClause || parse->groupClause || parse->groupingSets ||
		parse->distinctClause || parse->hasAggs || parse->hasWindowFuncs ||
		parse->hasTargetSRFs || parse->havingQual || parse->setOperations ||
		parse->rowMarks || bms_num_members(root->all_baserels) != 1 ||
		!bms_equal(root->all_baserels, baserel->relids))
		return 0;
	count = DatumGetInt64(((Const *) parse->limitCount)->constvalue);
	if (parse->limitOffset != NULL)
	{
		if (!IsA(parse->limitOffset, Const))
			return 0;
		if (!((Const *) parse->limitOffset)->constisnull)
			offset = DatumGetInt64(((Const *) parse->limitOffset)->constvalue);
	}
	return count + offset > 0 ? count + offset : 0;
}

/* The request as EXPLAIN shows it; constant filter values written out. */
static char *
describe_request(RolloutPushdown *pd, const char *resource, int page_size,
				 bool parameterized)
{
	StringInfoData buf;
	ListCell   *name;
	ListCell   *value;

	initStringInfo(&buf);
	switch (pd->mode)
	{
		case ROLLOUT_SCAN_ID:
			appendStringInfo(&buf, "GET /%s/{id}%s", resource,
							 parameterized ? " for each outer row" : "");
			break;
		case ROLLOUT_SCAN_IDS:
			appendStringInfo(&buf, "GET /%s/{id} for each id", resource);
			break;
		case ROLLOUT_SCAN_LIST:
			appendStringInfo(&buf, "GET /%s?limit=%d", resource, page_size);
			forboth(name, pd->filter_names, value, pd->filter_values)
			{
				Expr	   *v = lfirst(value);

				if (IsA(v, Const) && !((Const *) v)->constisnull)
					appendStringInfo(&buf, "&%s=%s", strVal(lfirst(name)),
									 rollout_escape(TextDatumGetCString(((Const *) v)->constvalue)));
				else
					appendStringInfo(&buf, "&%s={value}", strVal(lfirst(name)));
			}
			break;
	}
	return buf.data;
}

/* The pushed conditions as SQL, for EXPLAIN VERBOSE. */
static char *
describe_pushed(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
				List *pushed)
{
	StringInfoData buf;
	List	   *context = deparse_context_for(get_rel_name(relid), relid);
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, pushed)
	{
		Node	   *clause = lfirst(lc);

		if (buf.len > 0)
			appendStringInfoString(&buf, " AND ");
		if (bms_is_subset(pull_varnos(root, clause), baserel->relids))
			appendStringInfoString(&buf,
								   deparse_expression(clause, context, false, false));
		else
			appendStringInfoString(&buf, "id = (the outer row's value)");
	}
	return buf.data;
}

static ForeignScan *
rolloutGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					  Oid foreigntableid, ForeignPath *best_path,
					  List *tlist, List *scan_clauses, Plan *outer_plan)
{
	RolloutRelInfo *info = baserel->fdw_private;
	RolloutPushdown pd;
	Bitmapset  *attrs = NULL;
	List	   *retrieved = NIL;
	List	   *fdw_exprs;
	List	   *fdw_private;
	List	   *local;
	ListCell   *lc;
	Relation	rel;
	int			natts;
	bool		whole_row;
	int			page_size = info->opts->page_size;
	int64		limit;

	rollout_classify_clauses(root, baserel, foreigntableid, scan_clauses, &pd);
	local = extract_actual_clauses(scan_clauses, false);

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, local)
		pull_varattnos((Node *) lfirst(lc), baserel->relid, &attrs);

	rel = table_open(foreigntableid, NoLock);
	natts = RelationGetNumberOfAttributes(rel);
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);
	for (int attnum = 1; attnum <= natts; attnum++)
	{
		if (TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attisdropped)
			continue;
		if (whole_row ||
			bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, attrs))
			retrieved = lappend_int(retrieved, attnum);
	}
	table_close(rel, NoLock);

	limit = pd.mode == ROLLOUT_SCAN_LIST ?
		limit_rows(root, baserel, pd.all_pushed) : 0;
	if (limit > 0 && limit < page_size)
		page_size = (int) limit;

	fdw_exprs = pd.mode == ROLLOUT_SCAN_LIST ? pd.filter_values :
		list_make1(pd.id_value);
	fdw_private = list_make5(retrieved,
							 makeString(pstrdup(info->opts->resource)),
							 makeInteger(page_size),
							 makeInteger(pd.mode),
							 pd.filter_names);
	fdw_private = lappend(fdw_private,
						  makeString(describe_request(&pd, info->opts->resource,
													  page_size,
													  best_path->path.param_info != NULL)));
	fdw_private = lappend(fdw_private,
						  makeString(describe_pushed(root, baserel,
													 foreigntableid, pd.pushed)));
	fdw_private = lappend(fdw_private,
						  makeInteger(info->opts->scan_concurrency));

	return make_foreignscan(tlist, local, baserel->relid, fdw_exprs,
							fdw_private, NIL, NIL, outer_plan);
}

/* ------------------------------------------------------------------
 * Execution
 * ------------------------------------------------------------------ */

static void
rolloutBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	RolloutScanState *st;
	Relation	rel = node->ss.ss_currentRelation;
	Oid			relid = RelationGetRelid(rel);
	RangeTblEntry *rte;
	Oid			userid;
	ForeignTable *table;
	List	   *retrieved;
	ListCell   *lc;
	int			i = 0;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st = palloc0(sizeof(RolloutScanState));
	node->fdw_state = st;
	st->rel = rel;

	rte = exec_rt_fetch(plan->scan.scanrelid, estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	table = GetForeignTable(relid);
	st->opts = rollout_get_options(table->serverid, userid, relid);
	st->conn = rollout_get_conn(GetUserMapping(userid, table->serverid));

	retrieved = (List *) list_nth(plan->fdw_private, ScanPrivateRetrievedAttrs);
	st->resource = strVal(list_nth(plan->fdw_private, ScanPrivateResource));
	st->page_size = intVal(list_nth(plan->fdw_private, ScanPrivatePageSize));
	st->mode = intVal(list_nth(plan->fdw_private, ScanPrivateMode));
	st->filter_names = (List *) list_nth(plan->fdw_private,
										 ScanPrivateFilterNames);
	st->concurrency = intVal(list_nth(plan->fdw_private,
									  ScanPrivateConcurrency));
	st->ncolumns = list_length(retrieved);
	st->columns = palloc0(sizeof(RolloutColumn) * Max(st->ncolumns, 1));
	foreach(lc, retrieved)
		rollout_column_init(&st->columns[i++], rel, lfirst_int(lc));

	if (st->mode == ROLLOUT_SCAN_LIST)
		st->filter_states = ExecInitExprList(plan->fdw_exprs,
											 (PlanState *) node);
	else
		st->id_state = ExecInitExpr(linitial(plan->fdw_exprs),
									(PlanState *) node);

	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "rollout_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt,
										"rollout_fdw row",
										ALLOCSET_DEFAULT_SIZES);
	st->scan_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "rollout_fdw scan",
										 ALLOCSET_SMALL_SIZES);
	st->total = -1;
}

/* Remember a string in a set of hashes; false when it was there. */
static bool
remember(MemoryContext cxt, HTAB **set, const char *name, const char *value)
{
	uint64		key = hash_bytes_extended((const unsigned char *) value,
										  (int) strlen(value), 0);
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
count_request(RolloutScanState *st, RolloutResponse *resp)
{
	st->stats.requests += resp->stats.requests;
	st->stats.retries += resp->stats.retries;
	st->stats.rate_limited += resp->stats.rate_limited;
	st->stats.throttled_us += resp->stats.throttled_us;
	st->stats.backoff_us += resp->stats.backoff_us;
	st->stats.bytes += resp->stats.bytes;
}

static char *
value_text(ExprState *state, ExprContext *econtext, bool *isnull)
{
	Datum		value = ExecEvalExpr(state, econtext, isnull);
	Oid			typoutput;
	bool		varlena;

	if (*isnull)
		return NULL;
	getTypeOutputInfo(exprType((Node *) state->expr), &typoutput, &varlena);
	return OidOutputFunctionCall(typoutput, value);
}

static void
add_record(RolloutScanState *st, json_t *record, int capacity)
{
	if (st->records == NULL)
		st->records = palloc(sizeof(json_t *) * Max(capacity, 1));
	st->records[st->nrecords++] = record;
}

/*
 * GET /{resource}/{id} for the id, or for each id of the array (several in
 * flight at once, answered in the array's order, duplicates asked once);
 * 404 is no row.
 */
static void
fetch_by_ids(RolloutScanState *st, ExprContext *econtext)
{
	List	   *ids = NIL;
	RolloutHttpJob *jobs;
	int			n;
	int			i = 0;
	ListCell   *lc;

	st->done = true;
	if (st->mode == ROLLOUT_SCAN_ID)
	{
		bool		isnull;
		char	   *id = value_text(st->id_state, econtext, &isnull);

		if (!isnull)
			ids = list_make1(id);
	}
	else
	{
		bool		isnull;
		Datum		array = ExecEvalExpr(st->id_state, econtext, &isnull);
		Oid			elemtype;
		int16		elemlen;
		bool		elembyval;
		char		elemalign;
		Oid			typoutput;
		bool		varlena;
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		HTAB	   *seen = NULL;

		if (isnull)
			return;
		elemtype = ARR_ELEMTYPE(DatumGetArrayTypeP(array));
		get_typlenbyvalalign(elemtype, &elemlen, &elembyval, &elemalign);
		getTypeOutputInfo(elemtype, &typoutput, &varlena);
		deconstruct_array(DatumGetArrayTypeP(array), elemtype, elemlen,
						  elembyval, elemalign, &elems, &nulls, &nelems);
		for (int k = 0; k < nelems; k++)
		{
			char	   *id;

			if (nulls[k])
				continue;
			id = OidOutputFunctionCall(typoutput, elems[k]);
			if (remember(CurrentMemoryContext, &seen, "rollout_fdw ids", id))
				ids = lappend(ids, id);
		}
	}

	n = list_length(ids);
	if (n == 0)
		return;
	jobs = palloc0(sizeof(RolloutHttpJob) * n);
	foreach(lc, ids)
	{
		char	   *path = psprintf("/%s/%s", st->resource,
									rollout_escape(lfirst(lc)));

		jobs[i].method = "GET";
		jobs[i].url = psprintf("%s%s", st->opts->api_url, path);
		jobs[i].label = path;
		i++;
	}
	rollout_api_run(st->conn, st->opts, jobs, n, true);

	for (i = 0; i < n; i++)
	{
		json_t	   *record;

		rollout_http_raise_failure(st->opts, &jobs[i]);
		count_request(st, &jobs[i].resp);
		if (jobs[i].resp.status == 404)
			continue;
		rollout_check_status("GET", jobs[i].label, &jobs[i].resp);
		record = rollout_json_parse(st->page_cxt, jobs[i].resp.body,
									jobs[i].resp.body_len, "GET",
									jobs[i].label);
		if (!json_is_object(record))
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout response to GET %s is not a JSON object",
							jobs[i].label)));
		st->pages++;
		add_record(st, record, n);
	}
}

static void
contract_error(const char *path, const char *what)
{
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
			 errmsg("Rollout response to GET %s breaks the list contract: %s",
					path, what),
			 errhint("No rows were returned: a scan returns every row or fails.")));
}

/* The "&name=value" parameters of the list filters, evaluated once. */
static const char *
filter_query(RolloutScanState *st, ExprContext *econtext)
{
	StringInfoData buf;
	ListCell   *name;
	ListCell   *state;

	if (st->filter_query != NULL)
		return st->filter_query;
	initStringInfo(&buf);
	forboth(name, st->filter_names, state, st->filter_states)
	{
		bool		isnull;
		char	   *value = value_text(lfirst(state), econtext, &isnull);

		/* a NULL value matches nothing: the local check will say so */
		if (isnull)
			value = "";
		appendStringInfo(&buf, "&%s=%s", strVal(lfirst(name)),
						 rollout_escape(value));
	}
	st->filter_query = MemoryContextStrdup(st->scan_cxt, buf.data);
	return st->filter_query;
}

/*
 * Check one list page's envelope and return its records (a JSON array).
 * Sets *next to _metadata.next (a string, or NULL).
 */
static json_t *
page_records(RolloutScanState *st, json_t *root, const char *label,
			 json_t **meta_out)
{
	json_t	   *meta;
	json_t	   *collection;
	json_t	   *items;
	json_t	   *total;
	json_t	   *next;
	const char *list_key;

	if (!json_is_object(root))
		contract_error(label, "the body is not a JSON object");
	meta = json_object_get(root, "_metadata");
	if (!json_is_object(meta))
		contract_error(label, "no \"_metadata\" object");
	collection = json_object_get(meta, "collection");
	list_key = json_is_string(collection) ? json_string_value(collection) :
		st->resource;
	items = json_object_get(root, list_key);
	if (!json_is_array(items))
		contract_error(label, psprintf("no \"%s\" array", list_key));
	total = json_object_get(meta, "total");
	if (total != NULL && !json_is_null(total) && !json_is_integer(total))
		contract_error(label, "\"_metadata.total\" is not an integer");
	next = json_object_get(meta, "next");
	if (next != NULL && !json_is_null(next) && !json_is_string(next))
		contract_error(label, "\"_metadata.next\" is neither a string nor null");
	*meta_out = meta;
	return items;
}

static void
check_total(RolloutScanState *st, const char *label)
{
	if (st->total >= 0 && st->rows_seen > st->total + st->page_size)
		contract_error(label, "more records than \"_metadata.total\" announced");
}

/* GET /{resource}?limit=N[&filters][&next=cursor]: one page of a list. */
static void
fetch_list_page(RolloutScanState *st, ExprContext *econtext)
{
	char	   *path;
	const char *label;
	const char *filters = filter_query(st, econtext);
	RolloutResponse resp;
	json_t	   *root;
	json_t	   *meta;
	json_t	   *items;
	json_t	   *next;
	json_t	   *limit;

	path = psprintf("/%s?limit=%d%s", st->resource, st->page_size, filters);
	label = path;
	if (st->next_cursor != NULL)
	{
		label = psprintf("/%s?limit=%d%s (page %lld)", st->resource,
						 st->page_size, filters, (long long) st->pages + 1);
		path = psprintf("%s&next=%s", path, rollout_escape(st->next_cursor));
	}

	rollout_api_request(st->conn, st->opts, "GET", st->opts->api_url, path,
						label, NULL, true, &resp);
	count_request(st, &resp);
	rollout_check_status("GET", label, &resp);
	root = rollout_json_parse(st->page_cxt, resp.body, resp.body_len, "GET",
							  label);
	st->pages++;
	items = page_records(st, root, label, &meta);
	if (st->total < 0 && json_is_integer(json_object_get(meta, "total")))
		st->total = json_integer_value(json_object_get(meta, "total"));
	for (size_t k = 0; k < json_array_size(items); k++)
		add_record(st, json_array_get(items, k), json_array_size(items));
	st->rows_seen += json_array_size(items);
	check_total(st, label);

	next = json_object_get(meta, "next");
	limit = json_object_get(meta, "limit");
	if (!json_is_string(next) || json_string_length(next) == 0)
		st->done = true;
	else if (st->concurrency > 1 && st->total >= 0 &&
			 json_is_integer(limit) && json_integer_value(limit) > 0)
	{
		/* the rest by offset, several pages in flight */
		st->offset_paging = true;
		st->page_limit = json_integer_value(limit);
		st->next_offset = st->rows_seen;
		for (int k = 0; k < st->nrecords; k++)
		{
			json_t	   *id = json_object_get(st->records[k], "id");

			if (id != NULL)
				remember(st->scan_cxt, &st->seen_ids, "rollout_fdw ids",
						 rollout_json_scalar_text(id));
		}
	}
	else
	{
		if (!remember(st->scan_cxt, &st->seen_cursors, "rollout_fdw cursors",
					  json_string_value(next)))
			contract_error(label, "\"_metadata.next\" repeats an earlier cursor (a pagination loop)");
		st->next_cursor = MemoryContextStrdup(st->scan_cxt,
											  json_string_value(next));
	}
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

/*
 * The next scan_concurrency pages by offset, all in flight at once, checked
 * for any sign that the data moved (total, offset, page length, an id seen
 * twice) and emitted in order.
 */
static void
fetch_offset_pages(RolloutScanState *st, ExprContext *econtext)
{
	const char *filters = filter_query(st, econtext);
	int64		remaining = st->total - st->next_offset;
	int			n = (int) Min((int64) st->concurrency,
							  (remaining + st->page_limit - 1) / st->page_limit);
	RolloutHttpJob *jobs;

	if (n <= 0)
	{
		st->done = true;
		return;
	}
	jobs = palloc0(sizeof(RolloutHttpJob) * n);
	for (int k = 0; k < n; k++)
	{
		int64		offset = st->next_offset + k * st->page_limit;
		char	   *path = psprintf("/%s?limit=%lld&offset=%lld%s", st->resource,
									(long long) st->page_limit,
									(long long) offset, filters);

		jobs[k].method = "GET";
		jobs[k].url = psprintf("%s%s", st->opts->api_url, path);
		jobs[k].label = path;
	}
	rollout_api_run(st->conn, st->opts, jobs, n, true);

	for (int k = 0; k < n; k++)
	{
		int64		offset = st->next_offset + k * st->page_limit;
		int64		expect = Min(st->page_limit, st->total - offset);
		json_t	   *root;
		json_t	   *meta;
		json_t	   *items;

		rollout_http_raise_failure(st->opts, &jobs[k]);
		count_request(st, &jobs[k].resp);
		rollout_check_status("GET", jobs[k].label, &jobs[k].resp);
		root = rollout_json_parse(st->page_cxt, jobs[k].resp.body,
								  jobs[k].resp.body_len, "GET", jobs[k].label);
		st->pages++;
		items = page_records(st, root, jobs[k].label, &meta);
		if (!json_is_integer(json_object_get(meta, "total")) ||
			json_integer_value(json_object_get(meta, "total")) != st->total)
			drift_error(jobs[k].label, "\"_metadata.total\" changed");
		if (json_is_integer(json_object_get(meta, "offset")) &&
			json_integer_value(json_object_get(meta, "offset")) != offset)
			drift_error(jobs[k].label, "the page starts at another offset");
		if ((int64) json_array_size(items) != expect)
			drift_error(jobs[k].label, "the page has another number of records");
		for (size_t r = 0; r < json_array_size(items); r++)
		{
			json_t	   *record = json_array_get(items, r);
			json_t	   *id = json_is_object(record) ?
				json_object_get(record, "id") : NULL;

			if (id != NULL &&
				!remember(st->scan_cxt, &st->seen_ids, "rollout_fdw ids",
						  rollout_json_scalar_text(id)))
				drift_error(jobs[k].label, "a record came twice");
			add_record(st, record, (int) (n * st->page_limit));
		}
		st->rows_seen += json_array_size(items);
	}
	st->next_offset += n * st->page_limit;
	if (st->next_offset >= st->total)
		st->done = true;
}

static TupleTableSlot *
rolloutIterateForeignScan(ForeignScanState *node)
{
	RolloutScanState *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;

	ExecClearTuple(slot);
	for (;;)
	{
		MemoryContext old;

		if (st->pos < st->nrecords)
		{
			json_t	   *record = st->records[st->pos++];

			if (!json_is_object(record))
				ereport(ERROR,
						(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
						 errmsg("Rollout returned a record of \"%s\" that is not a JSON object",
								st->resource)));
			MemoryContextReset(st->row_cxt);
			rollout_store_record(slot, record, st->rel, st->columns,
								 st->ncolumns, st->row_cxt);
			return slot;
		}
		if (st->done)
			return slot;

		MemoryContextReset(st->page_cxt);
		st->records = NULL;
		st->nrecords = 0;
		st->pos = 0;
		old = MemoryContextSwitchTo(st->page_cxt);
		if (st->mode != ROLLOUT_SCAN_LIST)
			fetch_by_ids(st, econtext);
		else if (st->offset_paging)
			fetch_offset_pages(st, econtext);
		else
			fetch_list_page(st, econtext);
		MemoryContextSwitchTo(old);
	}
}

static void
rolloutReScanForeignScan(ForeignScanState *node)
{
	RolloutScanState *st = node->fdw_state;

	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->scan_cxt);
	st->records = NULL;
	st->nrecords = 0;
	st->pos = 0;
	st->done = false;
	st->next_cursor = NULL;
	st->offset_paging = false;
	st->next_offset = 0;
	st->filter_query = NULL;
	st->seen_cursors = NULL;
	st->seen_ids = NULL;
	st->total = -1;
	st->rows_seen = 0;
}

static void
rolloutEndForeignScan(ForeignScanState *node)
{
	/* Everything lives in contexts of the executor's query context. */
}

static void
rolloutExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	RolloutScanState *st = node->fdw_state;
	const char *pushed = strVal(list_nth(plan->fdw_private, ScanPrivatePushed));
	int			concurrency = intVal(list_nth(plan->fdw_private,
											  ScanPrivateConcurrency));

	ExplainPropertyText("Rollout Request",
						strVal(list_nth(plan->fdw_private, ScanPrivateRequest)),
						es);
	if (es->verbose)
	{
		ExplainPropertyText("Rollout Pushed", pushed[0] ? pushed : "(none)",
							es);
		if (concurrency > 1)
			ExplainPropertyInteger("Rollout Scan Concurrency", NULL,
								   concurrency, es);
	}

	if (es->analyze && st != NULL)
	{
		ExplainPropertyInteger("Rollout Requests", NULL, st->stats.requests, es);
		ExplainPropertyInteger("Rollout Pages", NULL, st->pages, es);
		ExplainPropertyInteger("Rollout Retries", NULL, st->stats.retries, es);
		ExplainPropertyInteger("Rollout Rate Limited", NULL,
							   st->stats.rate_limited, es);
		if (es->timing)
		{
			ExplainPropertyFloat("Rollout Throttled", "ms",
								 st->stats.throttled_us / 1000.0, 1, es);
			ExplainPropertyFloat("Rollout Backoff", "ms",
								 st->stats.backoff_us / 1000.0, 1, es);
		}
		if (es->verbose)
			ExplainPropertyInteger("Rollout Bytes", NULL, st->stats.bytes, es);
	}
}

/*
 * ANALYZE: a sample from the first pages (at most 10 requests) and the
 * row count the API reports as _metadata.total, which the planner then
 * uses for its estimates.
 */
static int
acquire_sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows,
					double *totalrows, double *totaldeadrows)
{
	Oid			relid = RelationGetRelid(rel);
	ForeignTable *table = GetForeignTable(relid);
	RolloutOptions *opts = rollout_get_options(table->serverid, GetUserId(),
											   relid);
	RolloutConn *conn = rollout_get_conn(GetUserMapping(GetUserId(),
														table->serverid));
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	RolloutColumn *columns = palloc0(sizeof(RolloutColumn) * Max(desc->natts, 1));
	int			ncolumns = 0;
	MemoryContext page_cxt = AllocSetContextCreate(CurrentMemoryContext,
												   "rollout_fdw analyze",
												   ALLOCSET_DEFAULT_SIZES);
	char	   *cursor = NULL;
	int			n = 0;
	int64		total = -1;

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			rollout_column_init(&columns[ncolumns++], rel, i + 1);

	for (int page = 0; page < 10 && n < targrows; page++)
	{
		MemoryContext old = MemoryContextSwitchTo(page_cxt);
		char	   *path = psprintf("/%s?limit=%d%s%s", opts->resource,
									opts->page_size, cursor ? "&next=" : "",
									cursor ? rollout_escape(cursor) : "");
		RolloutResponse resp;
		json_t	   *root;
		json_t	   *meta;
		json_t	   *items;
		json_t	   *next;

		rollout_api_request(conn, opts, "GET", opts->api_url, path, NULL,
							NULL, true, &resp);
		rollout_check_status("GET", path, &resp);
		root = rollout_json_parse(page_cxt, resp.body, resp.body_len, "GET",
								  path);
		meta = json_object_get(root, "_metadata");
		items = json_object_get(root, json_is_string(json_object_get(meta, "collection")) ?
								json_string_value(json_object_get(meta, "collection")) :
								opts->resource);
		if (!json_is_object(meta) || !json_is_array(items))
			contract_error(path, "no \"_metadata\" object or list");
		if (total < 0 && json_is_integer(json_object_get(meta, "total")))
			total = json_integer_value(json_object_get(meta, "total"));
		for (size_t k = 0; k < json_array_size(items) && n < targrows; k++)
		{
			rollout_store_record(slot, json_array_get(items, k), rel, columns,
								 ncolumns, page_cxt);
			MemoryContextSwitchTo(old);
			rows[n++] = heap_form_tuple(desc, slot->tts_values,
										slot->tts_isnull);
			MemoryContextSwitchTo(page_cxt);
		}
		next = json_object_get(meta, "next");
		MemoryContextSwitchTo(old);
		if (!json_is_string(next) || json_string_length(next) == 0)
			break;
		cursor = pstrdup(json_string_value(next));
		MemoryContextReset(page_cxt);
	}
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(page_cxt);

	*totalrows = total >= 0 ? (double) total : (double) n;
	*totaldeadrows = 0;
	ereport(elevel,
			(errmsg("\"%s\": sampled %d records; Rollout reports %.0f",
					RelationGetRelationName(rel), n, *totalrows)));
	return n;
}

static bool
rolloutAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						   BlockNumber *totalpages)
{
	*func = acquire_sample_rows;
	*totalpages = 1;
	return true;
}

static List *
rolloutImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	return rollout_import_schema(stmt, serverOid);
}

Datum
rollout_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = rolloutGetForeignRelSize;
	routine->GetForeignPaths = rolloutGetForeignPaths;
	routine->GetForeignPlan = rolloutGetForeignPlan;
	routine->BeginForeignScan = rolloutBeginForeignScan;
	routine->IterateForeignScan = rolloutIterateForeignScan;
	routine->ReScanForeignScan = rolloutReScanForeignScan;
	routine->EndForeignScan = rolloutEndForeignScan;
	routine->ExplainForeignScan = rolloutExplainForeignScan;

	routine->AddForeignUpdateTargets = rolloutAddForeignUpdateTargets;
	routine->PlanForeignModify = rolloutPlanForeignModify;
	routine->BeginForeignModify = rolloutBeginForeignModify;
	routine->ExecForeignInsert = rolloutExecForeignInsert;
	routine->ExecForeignBatchInsert = rolloutExecForeignBatchInsert;
	routine->GetForeignModifyBatchSize = rolloutGetForeignModifyBatchSize;
	routine->ExecForeignUpdate = rolloutExecForeignUpdate;
	routine->ExecForeignDelete = rolloutExecForeignDelete;
	routine->EndForeignModify = rolloutEndForeignModify;
	routine->BeginForeignInsert = rolloutBeginForeignInsert;
	routine->EndForeignInsert = rolloutEndForeignInsert;
	routine->IsForeignRelUpdatable = rolloutIsForeignRelUpdatable;
	routine->ExplainForeignModify = rolloutExplainForeignModify;
	routine->ImportForeignSchema = rolloutImportForeignSchema;
	routine->AnalyzeForeignTable = rolloutAnalyzeForeignTable;

	PG_RETURN_POINTER(routine);
}

/*
 * rollout_fdw_credentials(server name): the credentials the current user's
 * mapping can see (id, label, app key, creation time), never their data.
 */
Datum
rollout_fdw_credentials(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForeignServer *server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)),
												   false);
	Oid			userid = GetUserId();
	RolloutOptions *opts;
	RolloutConn *conn;
	List	   *creds;
	ListCell   *lc;
	char	   *handler;

	InitMaterializedSRF(fcinfo, 0);
	handler = get_func_name(GetForeignDataWrapper(server->fdwid)->fdwhandler);
	if (handler == NULL || strcmp(handler, "rollout_fdw_handler") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" does not use rollout_fdw",
						server->servername)));

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
