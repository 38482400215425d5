/*-------------------------------------------------------------------------
 *
 * rollout_fdw.c
 *		  The handler and the FDW callbacks of rollout_fdw, in FdwRoutine
 *		  order.
 *
 * Rules kept here (paging and its guarantees are scan.c's):
 *	- a row's values live in a context reset per row;
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
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
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
	ScanPrivateConcurrency,		/* Integer: list pages in flight */
	ScanPrivateRowLimit,		/* Integer: rows the query needs, 0: all */
	ScanPrivateWindow,			/* Boolean: the scan applies the query's
								 * LIMIT and OFFSET, the last two of
								 * fdw_exprs */
	ScanPrivateKeys				/* Integer: bit k set when fdw_exprs holds
								 * the value of key k (RolloutKey), after
								 * the filters or the id */
};

/* fdw_private of a ForeignPath: NIL, or a list indexed by this enum. */
enum RolloutPathPrivate
{
	PathPrivateWindow,			/* Boolean: the path applies LIMIT / OFFSET */
	PathPrivateKeyJoin			/* Boolean: a key join gives the users */
};

/* ScanPrivateKeys: the users and credentials come from a key join */
#define KEYS_FROM_JOIN (1 << ROLLOUT_NKEYS)

/* Planner state of a foreign relation (baserel->fdw_private). */
typedef struct RolloutRelInfo
{
	RolloutOptions *opts;
	RolloutPushdown pushdown;	/* of the table's own conditions */
	double		table_rows;		/* records in the collection */
	double		list_rows;		/* records the list request brings */
	bool		needs_user_key; /* user_id '*' and no rollout_fdw.user_id */
} RolloutRelInfo;

typedef struct RolloutScanState
{
	RolloutScanMode mode;
	ExprState  *id_state;		/* the id modes */
	List	   *filter_names;	/* list mode: query parameters ... */
	List	   *filter_states;	/* ... and their values */
	bool		window;			/* the scan applies LIMIT and OFFSET: */
	ExprState  *count_state;	/* ... the LIMIT (NULL constant: none) */
	ExprState  *offset_state;	/* ... the OFFSET */
	ExprState  *key_states[ROLLOUT_NKEYS];	/* whose records, or NULL */
	bool		keys_from_join; /* ... or the key join's targets: */
	List	   *join_targets;
	bool		started;		/* the scan's request is decided */
	RolloutFanout *fanout;		/* where the records come from */
	MemoryContext row_cxt;		/* reset per row: converted values */
} RolloutScanState;

PG_FUNCTION_INFO_V1(rollout_fdw_handler);

/* ------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------ */

/*
 * The clauses (bare or RestrictInfos) but the key conditions: those say
 * whose collection is read, they filter none of its records.
 */
static List *
without_keys(List *clauses, RolloutPushdown *pd)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, clauses)
	{
		Node	   *c = lfirst(lc);
		Expr	   *e = IsA(c, RestrictInfo) ? ((RestrictInfo *) c)->clause :
			(Expr *) c;

		if (e != pd->key_clauses[ROLLOUT_KEY_USER] &&
			e != pd->key_clauses[ROLLOUT_KEY_CREDENTIAL])
			result = lappend(result, c);
	}
	return result;
}

static void
rolloutGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						 Oid foreigntableid)
{
	RolloutRelInfo *info = palloc0(sizeof(RolloutRelInfo));

	info->opts = rollout_get_options(GetForeignTable(foreigntableid)->serverid,
									 InvalidOid, foreigntableid);
	info->needs_user_key =
		rollout_needs_user_key(info->opts->serverid,
							   OidIsValid(baserel->userid) ?
							   baserel->userid : GetUserId());
	rollout_classify_clauses(root, baserel, foreigntableid,
							 baserel->baserestrictinfo, &info->pushdown);
	baserel->fdw_private = info;

	/*
	 * The collection's size: ANALYZE's count, else an assumption.  Set here,
	 * as postgres_fdw does, because PostgreSQL otherwise replaces an unknown
	 * size (-1) with the filtered row estimate once this callback returns,
	 * and a full scan would then be costed as one page.
	 */
	info->table_rows = baserel->tuples >= 0 ? baserel->tuples : DEFAULT_ROWS;
	baserel->tuples = info->table_rows;
	info->list_rows =
		clamp_row_est(info->table_rows *
					  clauselist_selectivity(root,
											 without_keys(info->pushdown.pushed,
														  &info->pushdown),
											 0, JOIN_INNER, NULL));

	/* each user read is a collection of table_rows */
	switch (info->pushdown.mode)
	{
		case ROLLOUT_SCAN_ID:
			baserel->rows = rollout_target_count(&info->pushdown);
			break;
		case ROLLOUT_SCAN_IDS:
			baserel->rows = rollout_target_count(&info->pushdown) *
				rollout_id_count(info->pushdown.id_value);
			break;
		case ROLLOUT_SCAN_LIST:
			baserel->rows =
				clamp_row_est(rollout_target_count(&info->pushdown) *
							  info->table_rows *
							  clauselist_selectivity(root,
													 without_keys(baserel->baserestrictinfo,
																  &info->pushdown),
													 0, JOIN_INNER, NULL));
			break;
	}
}

/*
 * Whether a parameterized path still lacks what its request needs: the
 * list's required parameter, or a user for a mapping with user_id '*'.
 * It gets the table's own conditions and every join clause of its outer
 * relations.
 */
static bool
path_lacks(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
		   ParamPathInfo *ppi)
{
	RolloutRelInfo *info = baserel->fdw_private;
	RolloutPushdown all;

	rollout_classify_clauses(root, baserel, relid,
							 list_concat(list_copy(baserel->baserestrictinfo),
										 ppi->ppi_clauses),
							 &all);
	return rollout_lacks_required(&all, relid) ||
		(info->needs_user_key && all.key_values[ROLLOUT_KEY_USER] == NULL);
}

/*
 * One unparameterized path (a list, or requests by id), and one path per
 * join clause with an outer value (id = outer column: a GET by id per outer
 * row; a list filter: a list per outer row).  A request costs REQUEST_COST;
 * a list costs one request per page of the records its filters select
 * (local conditions read every page all the same), at least one per list,
 * so a nested loop wins while the outer side has fewer rows than a full
 * scan has pages.  A path whose list lacks the parameter the list requires
 * costs disable_cost more: the planner takes it only when nothing else
 * answers, and then rolloutGetForeignPlan refuses it.
 */
static void
rolloutGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	RolloutRelInfo *info = baserel->fdw_private;
	bool		lacks = rollout_lacks_required(&info->pushdown, foreigntableid) ||
		(info->needs_user_key &&
		 info->pushdown.key_values[ROLLOUT_KEY_USER] == NULL);
	ListCell   *lc;

	add_path(baserel, (Path *)
			 rollout_foreignscan_path(root, baserel, baserel->rows,
									  REQUEST_COST,
									  REQUEST_COST *
									  rollout_request_count(&info->pushdown,
															info->list_rows,
															info->opts->page_size) +
									  cpu_tuple_cost * 10 * baserel->rows,
									  NULL, NIL, lacks));

	foreach(lc, rollout_join_clauses(root, baserel, foreigntableid))
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Relids		outer = bms_difference(ri->clause_relids, baserel->relids);
		ParamPathInfo *ppi = get_baserel_parampathinfo(root, baserel, outer);
		RolloutPushdown pd;

		rollout_classify_clauses(root, baserel, foreigntableid,
								 list_make1(ri), &pd);
		add_path(baserel, (Path *)
				 rollout_foreignscan_path(root, baserel, ppi->ppi_rows,
										 REQUEST_COST,
										 REQUEST_COST *
										 rollout_request_count(&pd,
															   without_keys(list_make1(ri), &pd) == NIL ?
															   info->list_rows :
															   clamp_row_est(info->table_rows *
																			 clauselist_selectivity(root, list_make1(ri),
																									baserel->relid,
																									JOIN_INNER, NULL)),
															   info->opts->page_size) +
										 cpu_tuple_cost * 10 * ppi->ppi_rows,
										 outer, NIL,
										 lacks && path_lacks(root, baserel,
															 foreigntableid, ppi)));
	}
}

/*
 * Can the table be the inner side of a key join (keyjoin.c)?  One of ours,
 * whose own conditions name no user or credential, and give the parameter
 * its list requires (text messages: personId) if any.
 */
bool
rollout_key_joinable(PlannerInfo *root, RelOptInfo *rel)
{
	RolloutRelInfo *info;

	if (rel->reloptkind != RELOPT_BASEREL || rel->fdwroutine == NULL ||
		rel->fdwroutine->GetForeignPaths != rolloutGetForeignPaths)
		return false;
	info = rel->fdw_private;
	return info != NULL &&
		info->pushdown.key_values[ROLLOUT_KEY_USER] == NULL &&
		info->pushdown.key_values[ROLLOUT_KEY_CREDENTIAL] == NULL &&
		!rollout_lacks_required(&info->pushdown,
								planner_rt_fetch(rel->relid, root)->relid);
}

/*
 * The inner path of a key join: the table's own request for each of about
 * targets users, ROLLOUT_MAX_INFLIGHT of them in flight at a time.
 */
Path *
rollout_key_join_inner_path(PlannerInfo *root, RelOptInfo *rel,
							double targets)
{
	RolloutRelInfo *info = rel->fdw_private;
	double		requests = targets *
		rollout_request_count(&info->pushdown, info->list_rows,
							  info->opts->page_size);
	double		rows = clamp_row_est(rel->rows * targets);

	return (Path *) rollout_foreignscan_path(root, rel, rows, REQUEST_COST,
											 REQUEST_COST +
											 REQUEST_COST * requests / ROLLOUT_MAX_INFLIGHT +
											 cpu_tuple_cost * 10 * rows,
											 NULL,
											 list_make2(makeBoolean(false),
														makeBoolean(true)),
											 false);
}

/*
 * The key join's outer rows name these targets: the scan reads them (the
 * same checks as targets named by key conditions).
 */
void
rollout_scan_join_targets(ForeignScanState *node, List *targets)
{
	RolloutScanState *st = node->fdw_state;

	st->join_targets = rollout_check_targets(st->fanout->opts, st->fanout->um,
											 targets);
	st->started = false;
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
	bool		window = best_path->fdw_private != NIL &&
		boolVal(list_nth(best_path->fdw_private, PathPrivateWindow));
	bool		key_join = list_length(best_path->fdw_private) > PathPrivateKeyJoin &&
		boolVal(list_nth(best_path->fdw_private, PathPrivateKeyJoin));
	Node	   *count = NULL;
	Node	   *offset = NULL;
	int			keys = 0;

	rollout_classify_clauses(root, baserel, foreigntableid, scan_clauses, &pd);
	if (pd.mode == ROLLOUT_SCAN_LIST)
		rollout_check_required_filter(foreigntableid, info->opts->resource,
									  pd.filter_names);
	if (info->needs_user_key && pd.key_values[ROLLOUT_KEY_USER] == NULL &&
		!key_join)
		rollout_refuse_no_user(info->opts->servername);
	local = rollout_scanned_side_first(root,
									   extract_actual_clauses(scan_clauses, false),
									   baserel->relids);

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

	limit = pd.mode == ROLLOUT_SCAN_LIST && !window ?
		rollout_limit_rows(root, baserel, pd.all_pushed) : 0;
	if (limit > 0 && limit < page_size)
		page_size = (int) limit;

	fdw_exprs = pd.mode == ROLLOUT_SCAN_LIST ? pd.filter_values :
		list_make1(pd.id_value);
	for (int k = 0; k < ROLLOUT_NKEYS; k++)
		if (pd.key_values[k] != NULL)
		{
			fdw_exprs = lappend(list_copy(fdw_exprs), pd.key_values[k]);
			keys |= 1 << k;
		}
	if (window)
	{
		count = root->parse->limitCount != NULL ?
			copyObject(root->parse->limitCount) :
			(Node *) makeNullConst(INT8OID, -1, InvalidOid);
		offset = copyObject(root->parse->limitOffset);
		fdw_exprs = lappend(lappend(list_copy(fdw_exprs), count), offset);
	}
	fdw_private = list_make5(retrieved,
							 makeString(pstrdup(info->opts->resource)),
							 makeInteger(page_size),
							 makeInteger(pd.mode),
							 pd.filter_names);
	{
		char	   *request = rollout_describe_request(&pd, info->opts->resource,
													   page_size,
													   best_path->path.param_info != NULL,
													   window, count, offset);

		if (key_join)
			request = psprintf("%s for each user and credential of the outer rows",
							   request);
		fdw_private = lappend(fdw_private, makeString(request));
	}
	fdw_private = lappend(fdw_private,
						  makeString(rollout_describe_pushed(root, baserel,
															 foreigntableid,
															 &pd)));
	fdw_private = lappend(fdw_private,
						  makeInteger(info->opts->scan_concurrency));
	fdw_private = lappend(fdw_private,
						  makeInteger((int) Min(limit, (int64) PG_INT32_MAX)));
	fdw_private = lappend(fdw_private, makeBoolean(window));
	fdw_private = lappend(fdw_private,
						  makeInteger(keys | (key_join ? KEYS_FROM_JOIN : 0)));

	return make_foreignscan(tlist, local, baserel->relid, fdw_exprs,
							fdw_private, NIL, NIL, outer_plan);
}

/*
 * The query's LIMIT and OFFSET taken over by the scan, when it is a plain
 * SELECT of this table alone with every condition pushed (pushdown.c):
 * the OFFSET is sent as the list's offset, so OFFSET 1000 LIMIT 10 is one
 * request rather than the pages before row 1010.  The path stands for
 * the scan and the Limit node both, as postgres_fdw's final paths do.
 */
static void
rolloutGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage,
							RelOptInfo *input_rel, RelOptInfo *output_rel,
							void *extra)
{
	FinalPathExtraData *final = extra;
	RolloutRelInfo *info;
	double		skipped;
	double		rows;

	if (stage != UPPERREL_FINAL || input_rel->reloptkind != RELOPT_BASEREL)
		return;
	info = input_rel->fdw_private;
	if (info == NULL || info->pushdown.mode != ROLLOUT_SCAN_LIST ||
		rollout_endpoint(info->opts->resource)->list_is_array ||
		!final->limit_needed ||
		!rollout_offset_pushable(root, input_rel, &info->pushdown))
		return;

	/* unknown values (parameters): a tenth of the rows, as the planner guesses */
	skipped = final->offset_est >= 0 ? final->offset_est : input_rel->rows / 10;
	rows = Max(input_rel->rows - skipped, 1);
	if (final->count_est != 0)
		rows = Min(rows, final->count_est > 0 ? final->count_est :
				   input_rel->rows / 10);
	rows = clamp_row_est(rows);
	add_path(output_rel, (Path *)
			 rollout_foreign_upper_path(root, input_rel,
										root->upper_targets[UPPERREL_FINAL],
										rows, REQUEST_COST,
										REQUEST_COST *
										Max(1, ceil(rows / info->opts->page_size)) +
										cpu_tuple_cost * 10 * rows,
										list_make1(makeBoolean(true))));
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
	Oid			userid;
	ForeignTable *table;
	RolloutOptions *opts;
	RolloutColumn *columns;
	int			ncolumns;
	List	   *retrieved;
	List	   *exprs = plan->fdw_exprs;
	int			nexprs = list_length(exprs);
	int			keys;
	ListCell   *lc;
	int			i = 0;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st = palloc0(sizeof(RolloutScanState));
	node->fdw_state = st;

	userid = OidIsValid(rollout_scan_check_as(node)) ?
		rollout_scan_check_as(node) : GetUserId();
	table = GetForeignTable(relid);
	opts = rollout_get_options(table->serverid, userid, relid);

	retrieved = (List *) list_nth(plan->fdw_private, ScanPrivateRetrievedAttrs);
	st->mode = intVal(list_nth(plan->fdw_private, ScanPrivateMode));
	st->filter_names = (List *) list_nth(plan->fdw_private,
										 ScanPrivateFilterNames);
	ncolumns = list_length(retrieved);
	columns = palloc0(sizeof(RolloutColumn) * Max(ncolumns, 1));
	foreach(lc, retrieved)
		rollout_column_init(&columns[i++], rel, lfirst_int(lc));

	/* fdw_exprs: the filters or the id, the keys, the LIMIT and OFFSET */
	st->window = boolVal(list_nth(plan->fdw_private, ScanPrivateWindow));
	if (st->window)
	{
		st->count_state = ExecInitExpr(list_nth(exprs, nexprs - 2),
									   (PlanState *) node);
		st->offset_state = ExecInitExpr(list_nth(exprs, nexprs - 1),
										(PlanState *) node);
		nexprs -= 2;
	}
	keys = intVal(list_nth(plan->fdw_private, ScanPrivateKeys));
	st->keys_from_join = (keys & KEYS_FROM_JOIN) != 0;
	for (int k = ROLLOUT_NKEYS - 1; k >= 0; k--)
		if (keys & (1 << k))
			st->key_states[k] = ExecInitExpr(list_nth(exprs, --nexprs),
											 (PlanState *) node);
	exprs = list_truncate(list_copy(exprs), nexprs);
	if (st->mode == ROLLOUT_SCAN_LIST)
		st->filter_states = ExecInitExprList(exprs, (PlanState *) node);
	else
		st->id_state = ExecInitExpr(linitial(exprs), (PlanState *) node);

	st->fanout =
		rollout_fanout_create(rollout_scan_create(rel, opts, NULL, columns,
												  ncolumns,
												  strVal(list_nth(plan->fdw_private,
																  ScanPrivateResource)),
												  intVal(list_nth(plan->fdw_private,
																  ScanPrivatePageSize)),
												  intVal(list_nth(plan->fdw_private,
																  ScanPrivateConcurrency)),
												  estate->es_query_cxt),
							  GetUserMapping(userid, table->serverid),
							  intVal(list_nth(plan->fdw_private,
											  ScanPrivateRowLimit)),
							  estate->es_query_cxt);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt,
										"rollout_fdw row",
										ALLOCSET_DEFAULT_SIZES);
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

/*
 * A pushed value, evaluated, as text: the value, or each element of an
 * array (NULL elements left out); a NULL is no value.
 */
static List *
expr_texts(ExprState *state, ExprContext *econtext)
{
	bool		isnull;

	if (type_is_array(exprType((Node *) state->expr)))
	{
		Datum		array = ExecEvalExpr(state, econtext, &isnull);

		return isnull ? NIL : rollout_array_texts(array);
	}
	else
	{
		char	   *value = value_text(state, econtext, &isnull);

		return isnull ? NIL : list_make1(value);
	}
}

/*
 * The "&name=value..." queries of the list filters, evaluated: one, or one
 * per value of the filter with several; *asked, for each, the value of the
 * parameter the list requires (or NULL).  A NULL value matches nothing:
 * then no query, and no request.
 */
static List *
filter_queries(RolloutScanState *st, ExprContext *econtext, List **asked)
{
	const char *required = rollout_endpoint(st->fanout->scans[0]->resource)->required_param;
	List	   *queries = list_make1("");
	ListCell   *name;
	ListCell   *state;

	*asked = list_make1(NULL);
	forboth(name, st->filter_names, state, st->filter_states)
	{
		bool		is_required = required != NULL &&
			strcmp(strVal(lfirst(name)), required) == 0;
		List	   *values = expr_texts(lfirst(state), econtext);
		List	   *longer = NIL;
		List	   *longer_asked = NIL;
		ListCell   *q;
		ListCell   *v;

		foreach(q, queries)
			foreach(v, values)
			{
				longer = lappend(longer,
								 psprintf("%s&%s=%s", (char *) lfirst(q),
										  strVal(lfirst(name)),
										  rollout_escape(lfirst(v))));
				longer_asked = lappend(longer_asked, is_required ? lfirst(v) :
									   list_nth(*asked, foreach_current_index(q)));
			}
		queries = longer;
		*asked = longer_asked;
	}
	return queries;
}

/* Whose records: the users and credentials the key conditions name. */
static List *
scan_targets(RolloutScanState *st, ExprContext *econtext)
{
	List	   *values[ROLLOUT_NKEYS] = {NIL, NIL};

	for (int k = 0; k < ROLLOUT_NKEYS; k++)
		if (st->key_states[k] != NULL)
			values[k] = expr_texts(st->key_states[k], econtext);
	return rollout_targets(st->fanout->opts, st->fanout->um,
						   values[ROLLOUT_KEY_USER],
						   st->key_states[ROLLOUT_KEY_USER] != NULL,
						   values[ROLLOUT_KEY_CREDENTIAL],
						   st->key_states[ROLLOUT_KEY_CREDENTIAL] != NULL);
}

/*
 * A pushed LIMIT (count) or OFFSET, evaluated as the Limit node would:
 * NULL is no limit (-1) or no offset (0), a negative value an error.
 */
static int64
window_value(ExprState *state, ExprContext *econtext, bool count)
{
	bool		isnull;
	Datum		value = ExecEvalExprSwitchContext(state, econtext, &isnull);
	int64		n;

	if (isnull)
		return count ? -1 : 0;
	n = DatumGetInt64(value);
	if (n < 0 && count)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE),
				 errmsg("LIMIT must not be negative")));
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE),
				 errmsg("OFFSET must not be negative")));
	return n;
}

static TupleTableSlot *
rolloutIterateForeignScan(ForeignScanState *node)
{
	RolloutScanState *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;

	if (!st->started)
	{
		RolloutFanout *f = st->fanout;
		List	   *queries = NIL;
		List	   *asked = NIL;
		List	   *ids = NIL;
		int64		offset = 0;
		int64		count = -1;

		if (st->mode == ROLLOUT_SCAN_LIST)
		{
			queries = filter_queries(st, econtext, &asked);
			if (st->window)
			{
				offset = window_value(st->offset_state, econtext, false);
				count = window_value(st->count_state, econtext, true);
			}
		}
		else
			ids = expr_texts(st->id_state, econtext);
		rollout_fanout_start(f, st->keys_from_join ? st->join_targets :
							 scan_targets(st, econtext));
		for (int i = 0; i < f->nscans; i++)
		{
			if (st->mode != ROLLOUT_SCAN_LIST)
				rollout_scan_ids(f->scans[i], ids);
			else
			{
				rollout_scan_lists(f->scans[i], queries, asked);
				if (st->window)
					rollout_scan_window(f->scans[i], offset, count);
			}
		}
		st->started = true;
	}
	rollout_fanout_next(st->fanout, slot, st->row_cxt);
	return slot;
}

static void
rolloutReScanForeignScan(ForeignScanState *node)
{
	RolloutScanState *st = node->fdw_state;

	/* parameters may have changed: the request is decided anew */
	st->started = false;
}

static void
rolloutEndForeignScan(ForeignScanState *node)
{
	RolloutScanState *st = node->fdw_state;

	/* Everything lives in contexts of the executor's query context. */
	if (st != NULL)
		rollout_fanout_end(st->fanout);
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
		RolloutStats stats;
		int64		pages;
		int64		repairs;
		int64		duplicates;

		rollout_fanout_counters(st->fanout, &stats, &pages, &repairs,
								&duplicates);
		rollout_explain_counters(&stats, pages, es);
		if (repairs > 0)
			ExplainPropertyInteger("Rollout Repairs", NULL, repairs, es);
		if (duplicates > 0)
			ExplainPropertyInteger("Rollout Duplicates Skipped", NULL,
								   duplicates, es);
		if (stats.users_skipped > 0)
			ExplainPropertyInteger("Rollout Users Skipped", NULL,
								   stats.users_skipped, es);
	}
}

/*
 * ANALYZE: a sample from the first pages (at most 10 requests), read by the
 * scan's own pager, and the row count the API reports as _metadata.total,
 * which the planner then uses for its estimates.
 */
static int
acquire_sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows,
					double *totalrows, double *totaldeadrows)
{
	Oid			relid = RelationGetRelid(rel);
	ForeignTable *table = GetForeignTable(relid);
	RolloutOptions *opts = rollout_get_options(table->serverid, GetUserId(),
											   relid);
	UserMapping *um = GetUserMapping(GetUserId(), table->serverid);
	RolloutTarget *target;
	RolloutConn *conn;
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	RolloutColumn *columns = palloc0(sizeof(RolloutColumn) * Max(desc->natts, 1));
	int			ncolumns = 0;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "rollout_fdw analyze",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext row_cxt = AllocSetContextCreate(cxt, "rollout_fdw row",
												  ALLOCSET_DEFAULT_SIZES);
	RolloutScan *scan;
	int			n = 0;

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			rollout_column_init(&columns[ncolumns++], rel, i + 1);

	/* whose records: the settings' user, else the mapping's (checked) */
	target = linitial(rollout_targets(opts, um, NIL, false, NIL, false));
	conn = rollout_get_conn(um, target->user_id);
	scan = rollout_scan_create(rel, opts, conn, columns, ncolumns,
							   opts->resource, opts->page_size, 1, cxt);
	scan->credential = target->credential_id;
	scan->key_values[ROLLOUT_KEY_USER] = target->user_id;
	scan->key_values[ROLLOUT_KEY_CREDENTIAL] = target->credential_id;
	scan->max_pages = 10;
	rollout_check_required_filter(relid, opts->resource, NIL);
	rollout_scan_list(scan, "", NULL);
	while (n < targrows && rollout_scan_next(scan, slot, row_cxt))
		rows[n++] = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);

	*totalrows = scan->first_total >= 0 ? (double) scan->first_total : (double) n;
	*totaldeadrows = 0;
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(cxt);
	ereport(elevel,
			(errmsg("\"%s\": sampled %d records; Rollout reports %.0f",
					RelationGetRelationName(rel), n, *totalrows)));
	return n;
}

static bool
rolloutAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						   BlockNumber *totalpages)
{
	const RolloutEndpoint *ep = rollout_table_endpoint(RelationGetRelid(relation));

	/*
	 * A list that needs a query parameter (GET /textMessages, personId) has
	 * no sample to give: ANALYZE skips the table with PostgreSQL's WARNING.
	 */
	if (ep->required_param != NULL || !(ep->routes & ROLLOUT_ROUTE_LIST))
		return false;
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
	routine->GetForeignUpperPaths = rolloutGetForeignUpperPaths;
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
	routine->BeginForeignInsert = rolloutBeginForeignInsert;
	routine->IsForeignRelUpdatable = rolloutIsForeignRelUpdatable;
	routine->ExplainForeignModify = rolloutExplainForeignModify;
	routine->ImportForeignSchema = rolloutImportForeignSchema;
	routine->AnalyzeForeignTable = rolloutAnalyzeForeignTable;

	PG_RETURN_POINTER(routine);
}
