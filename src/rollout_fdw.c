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
#include "utils/typcache.h"

#include "rollout_fdw.h"

/* Cost of one API request, in planner cost units. */
#define REQUEST_COST 100.0
#define DEFAULT_ROWS 1000.0

/*
 * fdw_private of a ForeignScan plan: a list indexed by this enum.
 * fdw_exprs holds the id expression when the scan is by id.
 */
enum RolloutScanPrivate
{
	ScanPrivateRetrievedAttrs,	/* Integer list: attnums to convert */
	ScanPrivateResource,		/* String: the collection path */
	ScanPrivatePageSize,		/* Integer: limit sent on list requests */
	ScanPrivateById				/* Integer: 1 when answered by id */
};

/* Planner state of a foreign relation (baserel->fdw_private). */
typedef struct RolloutRelInfo
{
	RolloutOptions *opts;
	Expr	   *id_expr;		/* the id a by-id scan asks for, or NULL */
} RolloutRelInfo;

typedef struct RolloutScanState
{
	Relation	rel;
	RolloutOptions *opts;
	RolloutConn *conn;
	int			ncolumns;
	RolloutColumn *columns;		/* the retrieved columns */
	ExprState  *id_state;		/* by-id scans */
	const char *resource;
	int			page_size;

	MemoryContext page_cxt;		/* reset per page: body, parsed JSON */
	MemoryContext row_cxt;		/* reset per row: converted values */
	MemoryContext cursor_cxt;	/* per scan: cursors seen */
	HTAB	   *seen_cursors;

	json_t	   *items;			/* records of the current page */
	json_t	   *single;			/* the record of a by-id scan, until read */
	size_t		pos;
	char	   *next_cursor;	/* in cursor_cxt; NULL before the first page */
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

static Expr *
strip_relabel(Expr *e)
{
	while (e && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return e;
}

/*
 * If clause is "id = value" with value a constant or a parameter, return
 * the value.
 */
static Expr *
id_equality_value(RelOptInfo *baserel, Oid relid, Expr *clause)
{
	OpExpr	   *op;
	Expr	   *left;
	Expr	   *right;
	Var		   *var;
	Expr	   *value;
	TypeCacheEntry *tce;

	if (!IsA(clause, OpExpr) || list_length(((OpExpr *) clause)->args) != 2)
		return NULL;
	op = (OpExpr *) clause;
	left = strip_relabel(linitial(op->args));
	right = strip_relabel(lsecond(op->args));
	if (IsA(left, Var))
	{
		var = (Var *) left;
		value = right;
	}
	else if (IsA(right, Var))
	{
		var = (Var *) right;
		value = left;
	}
	else
		return NULL;

	if (var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0 || !rollout_is_id_column(relid, var->varattno))
		return NULL;
	if (!IsA(value, Const) && !IsA(value, Param))
		return NULL;
	if (IsA(value, Param) && ((Param *) value)->paramkind != PARAM_EXTERN &&
		((Param *) value)->paramkind != PARAM_EXEC)
		return NULL;
	/* the equality of the column type's btree family, cross-type included */
	tce = lookup_type_cache(var->vartype, TYPECACHE_BTREE_OPFAMILY);
	if (!OidIsValid(tce->btree_opf) ||
		get_op_opfamily_strategy(op->opno, tce->btree_opf) !=
		BTEqualStrategyNumber)
		return NULL;
	return value;
}

static void
rolloutGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						 Oid foreigntableid)
{
	RolloutRelInfo *info = palloc0(sizeof(RolloutRelInfo));
	ListCell   *lc;

	info->opts = rollout_get_options(GetForeignTable(foreigntableid)->serverid,
									 InvalidOid, foreigntableid);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Expr	   *value = id_equality_value(baserel, foreigntableid,
											  ri->clause);

		if (value != NULL)
		{
			info->id_expr = value;
			break;
		}
	}
	baserel->fdw_private = info;

	if (info->id_expr != NULL)
		baserel->rows = 1;
	else
	{
		double		tuples = baserel->tuples > 0 ? baserel->tuples : DEFAULT_ROWS;

		baserel->rows = clamp_row_est(tuples *
									  clauselist_selectivity(root,
															 baserel->baserestrictinfo,
															 0, JOIN_INNER,
															 NULL));
	}
}

static void
rolloutGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	RolloutRelInfo *info = baserel->fdw_private;
	double		requests;
	Cost		startup = REQUEST_COST;
	Cost		total;

	if (info->id_expr != NULL)
		requests = 1;
	else
	{
		double		tuples = baserel->tuples > 0 ? baserel->tuples : DEFAULT_ROWS;

		requests = ceil(tuples / info->opts->page_size);
	}
	total = startup + REQUEST_COST * Max(requests - 1, 0) +
		cpu_tuple_cost * 10 * baserel->rows;

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, NIL, NULL, NULL, NIL));
}

static ForeignScan *
rolloutGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					  Oid foreigntableid, ForeignPath *best_path,
					  List *tlist, List *scan_clauses, Plan *outer_plan)
{
	RolloutRelInfo *info = baserel->fdw_private;
	Bitmapset  *attrs = NULL;
	List	   *retrieved = NIL;
	List	   *fdw_exprs = NIL;
	List	   *fdw_private;
	ListCell   *lc;
	Relation	rel;
	int			natts;
	bool		whole_row;

	scan_clauses = extract_actual_clauses(scan_clauses, false);

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, scan_clauses)
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

	if (info->id_expr != NULL)
		fdw_exprs = list_make1(info->id_expr);

	fdw_private = list_make4(retrieved,
							 makeString(pstrdup(info->opts->resource)),
							 makeInteger(info->opts->page_size),
							 makeInteger(info->id_expr != NULL ? 1 : 0));

	return make_foreignscan(tlist, scan_clauses, baserel->relid, fdw_exprs,
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
	st->ncolumns = list_length(retrieved);
	st->columns = palloc0(sizeof(RolloutColumn) * Max(st->ncolumns, 1));
	foreach(lc, retrieved)
		rollout_column_init(&st->columns[i++], rel, lfirst_int(lc));

	if (intVal(list_nth(plan->fdw_private, ScanPrivateById)))
		st->id_state = ExecInitExpr(linitial(plan->fdw_exprs),
									(PlanState *) node);

	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "rollout_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt,
										"rollout_fdw row",
										ALLOCSET_DEFAULT_SIZES);
	st->cursor_cxt = AllocSetContextCreate(estate->es_query_cxt,
										   "rollout_fdw cursors",
										   ALLOCSET_SMALL_SIZES);
	st->total = -1;
}

/* Remember a cursor; false when it was seen before in this scan. */
static bool
remember_cursor(RolloutScanState *st, const char *cursor)
{
	uint64		key = hash_bytes_extended((const unsigned char *) cursor,
										  (int) strlen(cursor), 0);
	bool		found;

	if (st->seen_cursors == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = st->cursor_cxt;
		st->seen_cursors = hash_create("rollout_fdw cursors", 64, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	hash_search(st->seen_cursors, &key, HASH_ENTER, &found);
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

/* GET /{resource}/{id}: at most one record; 404 is no row. */
static void
fetch_by_id(RolloutScanState *st, ExprContext *econtext)
{
	bool		isnull;
	Datum		value;
	Oid			typoutput;
	bool		varlena;
	char	   *path;
	RolloutResponse resp;
	json_t	   *record;
	Oid			type = exprType((Node *) st->id_state->expr);

	st->done = true;
	value = ExecEvalExpr(st->id_state, econtext, &isnull);
	if (isnull)
		return;
	getTypeOutputInfo(type, &typoutput, &varlena);
	path = psprintf("/%s/%s", st->resource,
					rollout_escape(OidOutputFunctionCall(typoutput, value)));

	rollout_api_request(st->conn, st->opts, "GET", st->opts->api_url, path,
						NULL, NULL, true, &resp);
	count_request(st, &resp);
	if (resp.status == 404)
		return;
	rollout_check_status("GET", path, &resp);
	record = rollout_json_parse(st->page_cxt, resp.body, resp.body_len,
								"GET", path);
	if (!json_is_object(record))
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to GET %s is not a JSON object",
						path)));
	st->pages++;
	st->single = record;
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

/* GET /{resource}?limit=N[&next=cursor]: one page of a list. */
static void
fetch_list_page(RolloutScanState *st)
{
	char	   *path;
	RolloutResponse resp;
	json_t	   *root;
	json_t	   *meta;
	json_t	   *next;
	json_t	   *total;
	json_t	   *collection;
	const char *list_key;
	const char *label;

	if (st->next_cursor == NULL)
		path = psprintf("/%s?limit=%d", st->resource, st->page_size);
	else
		path = psprintf("/%s?limit=%d&next=%s", st->resource, st->page_size,
						rollout_escape(st->next_cursor));
	label = st->next_cursor == NULL ? path :
		psprintf("/%s?limit=%d (page %lld)", st->resource, st->page_size,
				 (long long) st->pages + 1);

	rollout_api_request(st->conn, st->opts, "GET", st->opts->api_url, path,
						label, NULL, true, &resp);
	count_request(st, &resp);
	rollout_check_status("GET", label, &resp);
	root = rollout_json_parse(st->page_cxt, resp.body, resp.body_len, "GET",
							  label);
	st->pages++;

	if (!json_is_object(root))
		contract_error(label, "the body is not a JSON object");
	meta = json_object_get(root, "_metadata");
	if (!json_is_object(meta))
		contract_error(label, "no \"_metadata\" object");
	collection = json_object_get(meta, "collection");
	list_key = json_is_string(collection) ? json_string_value(collection) :
		st->resource;
	st->items = json_object_get(root, list_key);
	if (!json_is_array(st->items))
		contract_error(label, psprintf("no \"%s\" array", list_key));

	total = json_object_get(meta, "total");
	if (total != NULL && !json_is_null(total) && !json_is_integer(total))
		contract_error(label, "\"_metadata.total\" is not an integer");
	if (st->total < 0 && json_is_integer(total))
		st->total = json_integer_value(total);

	next = json_object_get(meta, "next");
	if (next != NULL && !json_is_null(next) && !json_is_string(next))
		contract_error(label, "\"_metadata.next\" is neither a string nor null");
	if (json_is_string(next) && json_string_length(next) > 0)
	{
		if (!remember_cursor(st, json_string_value(next)))
			contract_error(label, "\"_metadata.next\" repeats an earlier cursor (a pagination loop)");
		st->next_cursor = MemoryContextStrdup(st->cursor_cxt,
											  json_string_value(next));
	}
	else
		st->done = true;

	st->rows_seen += json_array_size(st->items);
	if (st->total >= 0 && st->rows_seen > st->total + st->page_size)
		contract_error(label, "more records than \"_metadata.total\" announced");
}

static void
store_record(RolloutScanState *st, json_t *record, TupleTableSlot *slot)
{
	MemoryContextReset(st->row_cxt);
	rollout_store_record(slot, record, st->rel, st->columns, st->ncolumns,
						 st->row_cxt);
}

static TupleTableSlot *
rolloutIterateForeignScan(ForeignScanState *node)
{
	RolloutScanState *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	ExecClearTuple(slot);
	for (;;)
	{
		json_t	   *record;

		if (st->single != NULL)
		{
			record = st->single;
			st->single = NULL;
			store_record(st, record, slot);
			return slot;
		}
		if (st->items != NULL && st->pos < json_array_size(st->items))
		{
			record = json_array_get(st->items, st->pos++);
			if (!json_is_object(record))
				ereport(ERROR,
						(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
						 errmsg("Rollout returned a record of \"%s\" that is not a JSON object",
								st->resource)));
			store_record(st, record, slot);
			return slot;
		}
		if (st->done)
			return slot;

		st->items = NULL;
		st->pos = 0;
		MemoryContextReset(st->page_cxt);
		{
			MemoryContext old = MemoryContextSwitchTo(st->page_cxt);

			if (st->id_state != NULL)
				fetch_by_id(st, node->ss.ps.ps_ExprContext);
			else
				fetch_list_page(st);
			MemoryContextSwitchTo(old);
		}
	}
}

static void
rolloutReScanForeignScan(ForeignScanState *node)
{
	RolloutScanState *st = node->fdw_state;

	st->items = NULL;
	st->single = NULL;
	st->pos = 0;
	st->done = false;
	st->next_cursor = NULL;
	st->total = -1;
	st->rows_seen = 0;
	st->seen_cursors = NULL;
	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->cursor_cxt);
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
	const char *resource = strVal(list_nth(plan->fdw_private,
										   ScanPrivateResource));
	int			page_size = intVal(list_nth(plan->fdw_private,
											ScanPrivatePageSize));
	bool		by_id = intVal(list_nth(plan->fdw_private, ScanPrivateById));
	RolloutScanState *st = node->fdw_state;

	if (by_id)
		ExplainPropertyText("Rollout Request",
							psprintf("GET /%s/{id}", resource), es);
	else
		ExplainPropertyText("Rollout Request",
							psprintf("GET /%s?limit=%d", resource, page_size),
							es);

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
