/*-------------------------------------------------------------------------
 *
 * keyjoin.c
 *		  The key join: an inner join of any relation with a rollout_fdw
 *		  table on its key columns (p.rollout_user_id = c.rollout_user
 *		  [AND p.rollout_credential_id = c.credential]) as one node, a
 *		  custom scan "Rollout Key Join".  It reads the outer rows first,
 *		  then reads every (user, credential) they name in one many-user
 *		  scan (fanout.c: many users' pages in flight together under the
 *		  one rate limit), and joins the two in memory by the key.  A
 *		  nested loop would read one user after the other: the sum of every
 *		  user's latency instead of the rate limit's time.
 *
 * Rules kept here:
 *	- offered for inner joins only, when the join clauses hold an equality
 *	  of the table's user key column (and maybe its credential key column)
 *	  with a plain column of the outer relation, and the table's own
 *	  conditions name no user; the planner weighs it against the nested
 *	  loop and the rest;
 *	- every join clause is still checked on each joined row;
 *	- outer rows whose key is NULL join nothing, and their user is never
 *	  read; each (user, credential) is read once, however many outer rows
 *	  name it;
 *	- the outer rows (those with a key) are kept in memory, the foreign
 *	  rows are streamed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "rollout_fdw.h"

/* custom_private of the plan, a list indexed by this enum */
enum KeyJoinPrivate
{
	KeyJoinSide,				/* Integer list: per scan tlist entry, 0 outer,
								 * 1 inner */
	KeyJoinPosition,			/* Integer list: ... its resno in that child */
	KeyJoinOuterKeys,			/* Integer list: outer resno of user, of
								 * credential (0: none) */
	KeyJoinInnerKeys			/* Integer list: inner resno of the same */
};

/* One key of the outer rows: (user, credential) -> the rows naming it. */
typedef struct KeyEntry
{
	RolloutPairKey key;
	List	   *rows;			/* Integer list: positions in outer_rows */
} KeyEntry;

typedef struct KeyJoinState
{
	CustomScanState css;
	List	   *side;
	List	   *position;
	AttrNumber	outer_key[ROLLOUT_NKEYS];
	AttrNumber	inner_key[ROLLOUT_NKEYS];
	bool		loaded;			/* the outer rows are read */
	MinimalTuple *outer_rows;	/* those with a key, in st->cxt */
	int			nouter;
	TupleTableSlot *outer_slot;
	HTAB	   *by_key;
	MemoryContext cxt;			/* the outer rows' keys, per (re)scan */
	TupleTableSlot *inner;		/* the current foreign row */
	List	   *matches;		/* its outer rows not joined yet */
	ListCell   *next_match;
} KeyJoinState;

static set_join_pathlist_hook_type prev_join_pathlist_hook = NULL;

static Plan *plan_key_join(PlannerInfo *root, RelOptInfo *rel,
						   CustomPath *best_path, List *tlist, List *clauses,
						   List *custom_plans);
static Node *create_key_join_state(CustomScan *cscan);
static void begin_key_join(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *exec_key_join(CustomScanState *node);
static void end_key_join(CustomScanState *node);
static void rescan_key_join(CustomScanState *node);

static const CustomPathMethods key_join_path_methods = {
	.CustomName = "Rollout Key Join",
	.PlanCustomPath = plan_key_join,
};

static const CustomScanMethods key_join_scan_methods = {
	.CustomName = "Rollout Key Join",
	.CreateCustomScanState = create_key_join_state,
};

static const CustomExecMethods key_join_exec_methods = {
	.CustomName = "Rollout Key Join",
	.BeginCustomScan = begin_key_join,
	.ExecCustomScan = exec_key_join,
	.EndCustomScan = end_key_join,
	.ReScanCustomScan = rescan_key_join,
};

/* ------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------ */

static Expr *
strip(Expr *e)
{
	while (e != NULL && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return e;
}

/* The Var of rel among the arguments of a clause, or NULL. */
static Var *
var_of(Expr *clause, RelOptInfo *rel)
{
	ListCell   *lc;

	if (!IsA(clause, OpExpr))
		return NULL;
	foreach(lc, ((OpExpr *) clause)->args)
	{
		Var		   *v = (Var *) strip(lfirst(lc));

		if (IsA(v, Var) && v->varlevelsup == 0 &&
			bms_is_member(v->varno, rel->relids))
			return v;
	}
	return NULL;
}

/*
 * The join clauses on the key columns: for each key, the outer column it
 * equals (a plain Var of the outer relation) and the table's key column,
 * or NULLs.
 */
static bool
find_key_clauses(PlannerInfo *root, RelOptInfo *outerrel,
				 RelOptInfo *innerrel, List *restrictlist,
				 Var *outer_vars[ROLLOUT_NKEYS], Var *inner_vars[ROLLOUT_NKEYS])
{
	ListCell   *lc;

	memset(outer_vars, 0, sizeof(Var *) * ROLLOUT_NKEYS);
	memset(inner_vars, 0, sizeof(Var *) * ROLLOUT_NKEYS);
	foreach(lc, restrictlist)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		RolloutKey	key;
		Expr	   *value;

		if (!rollout_match_key(root, innerrel, ri->clause, &key, &value))
			continue;
		value = strip(value);
		if (!IsA(value, Var) || ((Var *) value)->varlevelsup != 0 ||
			!bms_is_member(((Var *) value)->varno, outerrel->relids) ||
			outer_vars[key] != NULL)
			continue;
		outer_vars[key] = (Var *) value;
		inner_vars[key] = var_of(ri->clause, innerrel);
	}
	return outer_vars[ROLLOUT_KEY_USER] != NULL &&
		inner_vars[ROLLOUT_KEY_USER] != NULL;
}

/* Only plain Vars above the join: no placeholder, no expression. */
static bool
plain_vars_only(RelOptInfo *joinrel, List *restrictlist)
{
	ListCell   *lc;

	foreach(lc, joinrel->reltarget->exprs)
		if (!IsA(lfirst(lc), Var))
			return false;
	foreach(lc, pull_var_clause((Node *) extract_actual_clauses(restrictlist, false),
								PVC_INCLUDE_PLACEHOLDERS))
		if (!IsA(lfirst(lc), Var))
			return false;
	return true;
}

/*
 * set_join_pathlist_hook: offer the key join for an inner join of any
 * relation with a rollout_fdw table on its key columns.
 */
static void
key_join_paths(PlannerInfo *root, RelOptInfo *joinrel, RelOptInfo *outerrel,
			   RelOptInfo *innerrel, JoinType jointype,
			   JoinPathExtraData *extra)
{
	Var		   *outer_vars[ROLLOUT_NKEYS];
	Var		   *inner_vars[ROLLOUT_NKEYS];
	Path	   *outer_path = outerrel->cheapest_total_path;
	Path	   *inner_path;
	CustomPath *cp;

	if (prev_join_pathlist_hook)
		prev_join_pathlist_hook(root, joinrel, outerrel, innerrel, jointype,
								extra);
	if (jointype != JOIN_INNER || outer_path == NULL ||
		outer_path->param_info != NULL ||
		!rollout_key_joinable(root, innerrel) ||
		!find_key_clauses(root, outerrel, innerrel, extra->restrictlist,
						  outer_vars, inner_vars) ||
		!plain_vars_only(joinrel, extra->restrictlist))
		return;
	inner_path = rollout_key_join_inner_path(root, innerrel,
											 Max(outer_path->rows, 1));
	cp = makeNode(CustomPath);
	cp->path.pathtype = T_CustomScan;
	cp->path.parent = joinrel;
	cp->path.pathtarget = joinrel->reltarget;
	cp->path.param_info = NULL;
	cp->path.parallel_aware = false;
	cp->path.parallel_safe = false;
	cp->path.parallel_workers = 0;
	cp->path.rows = joinrel->rows;
	cp->path.startup_cost = outer_path->total_cost + inner_path->startup_cost;
	cp->path.total_cost = outer_path->total_cost + inner_path->total_cost +
		cpu_tuple_cost * (outer_path->rows + joinrel->rows);
	cp->path.pathkeys = NIL;
	cp->flags = 0;
	cp->custom_paths = list_make2(outer_path, inner_path);
	cp->custom_private = list_make1(extra->restrictlist);
	cp->methods = &key_join_path_methods;
	add_path(joinrel, (Path *) cp);
}

/* The resno of the child plan's output that is the column var. */
static AttrNumber
child_resno(Plan *child, Var *var)
{
	ListCell   *lc;

	foreach(lc, child->targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Var		   *out = (Var *) strip(tle->expr);

		if (IsA(out, Var) && out->varno == var->varno &&
			out->varattno == var->varattno && out->varlevelsup == 0)
			return tle->resno;
	}
	elog(ERROR, "rollout_fdw: a key join column is not in its child's output");
	return 0;
}

/*
 * The plan: the scan tuple is every Var the output and the join clauses
 * need, each taken from the outer or the inner child's output.
 */
static Plan *
plan_key_join(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
			  List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);
	Plan	   *outer_plan = linitial(custom_plans);
	Plan	   *inner_plan = lsecond(custom_plans);
	Path	   *outer_path = linitial(best_path->custom_paths);
	RelOptInfo *innerrel = ((Path *) lsecond(best_path->custom_paths))->parent;
	List	   *restrictlist = linitial(best_path->custom_private);
	List	   *quals = rollout_scanned_side_first(root,
											   extract_actual_clauses(restrictlist, false),
											   innerrel->relids);
	List	   *scan_tlist = NIL;
	List	   *side = NIL;
	List	   *position = NIL;
	List	   *outer_keys = NIL;
	List	   *inner_keys = NIL;
	Var		   *outer_vars[ROLLOUT_NKEYS];
	Var		   *inner_vars[ROLLOUT_NKEYS];
	ListCell   *lc;

	scan_tlist = add_to_flat_tlist(scan_tlist,
								   pull_var_clause((Node *) tlist, 0));
	scan_tlist = add_to_flat_tlist(scan_tlist,
								   pull_var_clause((Node *) quals, 0));
	foreach(lc, scan_tlist)
	{
		Var		   *var = (Var *) lfirst_node(TargetEntry, lc)->expr;
		bool		outer = bms_is_member(var->varno, outer_path->parent->relids);

		side = lappend_int(side, outer ? 0 : 1);
		position = lappend_int(position,
							   child_resno(outer ? outer_plan : inner_plan, var));
	}

	(void) find_key_clauses(root, outer_path->parent, innerrel, restrictlist,
							outer_vars, inner_vars);
	for (int k = 0; k < ROLLOUT_NKEYS; k++)
	{
		bool		both = outer_vars[k] != NULL && inner_vars[k] != NULL;

		outer_keys = lappend_int(outer_keys, both ?
								 child_resno(outer_plan, outer_vars[k]) : 0);
		inner_keys = lappend_int(inner_keys, both ?
								 child_resno(inner_plan, inner_vars[k]) : 0);
	}

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = quals;
	cscan->scan.scanrelid = 0;
	cscan->flags = best_path->flags;
	cscan->custom_plans = custom_plans;
	cscan->custom_exprs = NIL;
	cscan->custom_private = list_make4(side, position, outer_keys, inner_keys);
	cscan->custom_scan_tlist = scan_tlist;
	cscan->custom_relids = rel->relids;
	cscan->methods = &key_join_scan_methods;
	return (Plan *) cscan;
}

/* ------------------------------------------------------------------
 * Execution
 * ------------------------------------------------------------------ */

static Node *
create_key_join_state(CustomScan *cscan)
{
	KeyJoinState *st = palloc0(sizeof(KeyJoinState));

	NodeSetTag(st, T_CustomScanState);
	st->css.flags = cscan->flags;
	st->css.methods = &key_join_exec_methods;
	return (Node *) st;
}

static void
begin_key_join(CustomScanState *node, EState *estate, int eflags)
{
	KeyJoinState *st = (KeyJoinState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	PlanState  *outer;
	PlanState  *inner;

	st->side = linitial(cscan->custom_private);
	st->position = lsecond(cscan->custom_private);
	for (int k = 0; k < ROLLOUT_NKEYS; k++)
	{
		st->outer_key[k] = list_nth_int(lthird(cscan->custom_private), k);
		st->inner_key[k] = list_nth_int(lfourth(cscan->custom_private), k);
	}
	outer = ExecInitNode(linitial(cscan->custom_plans), estate, eflags);
	inner = ExecInitNode(lsecond(cscan->custom_plans), estate, eflags);
	node->custom_ps = list_make2(outer, inner);
	st->outer_slot = ExecInitExtraTupleSlot(estate, ExecGetResultType(outer),
											&TTSOpsMinimalTuple);
	st->cxt = AllocSetContextCreate(estate->es_query_cxt,
									"rollout_fdw key join",
									ALLOCSET_DEFAULT_SIZES);
}

/* A key column of a child's row as text, or NULL. */
static char *
slot_key_text(TupleTableSlot *slot, AttrNumber resno)
{
	bool		isnull;
	Datum		value;
	Oid			typoutput;
	bool		varlena;

	if (resno == 0)
		return NULL;
	value = slot_getattr(slot, resno, &isnull);
	if (isnull)
		return NULL;
	getTypeOutputInfo(TupleDescAttr(slot->tts_tupleDescriptor,
									resno - 1)->atttypid,
					  &typoutput, &varlena);
	return OidOutputFunctionCall(typoutput, value);
}

/*
 * Read every outer row, keep those with a key under it, and give the inner
 * scan the (user, credential) pairs they name.
 */
static void
load_outer(KeyJoinState *st)
{
	PlanState  *outer = linitial(st->css.custom_ps);
	PlanState  *inner = lsecond(st->css.custom_ps);
	MemoryContext old = MemoryContextSwitchTo(st->cxt);
	List	   *targets = NIL;
	HASHCTL		ctl;
	int			cap = 64;

	ctl.keysize = sizeof(RolloutPairKey);
	ctl.entrysize = sizeof(KeyEntry);
	ctl.hcxt = st->cxt;
	st->by_key = hash_create("rollout_fdw key join", 256, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	st->outer_rows = palloc(sizeof(MinimalTuple) * cap);
	st->nouter = 0;
	for (;;)
	{
		TupleTableSlot *slot;
		char	   *user;
		char	   *credential;
		RolloutPairKey key;
		KeyEntry   *entry;
		bool		found;

		MemoryContextSwitchTo(old);
		slot = ExecProcNode(outer);
		MemoryContextSwitchTo(st->cxt);
		if (TupIsNull(slot))
			break;
		user = slot_key_text(slot, st->outer_key[ROLLOUT_KEY_USER]);
		credential = slot_key_text(slot, st->outer_key[ROLLOUT_KEY_CREDENTIAL]);
		if (user == NULL ||
			(st->outer_key[ROLLOUT_KEY_CREDENTIAL] != 0 && credential == NULL))
			continue;			/* joins nothing */
		rollout_check_id(user, ROLLOUT_KEY_USER);
		if (credential != NULL)
			rollout_check_id(credential, ROLLOUT_KEY_CREDENTIAL);
		if (st->nouter == cap)
		{
			cap *= 2;
			st->outer_rows = repalloc_huge(st->outer_rows,
										   sizeof(MinimalTuple) * cap);
		}
		st->outer_rows[st->nouter] = ExecCopySlotMinimalTuple(slot);
		rollout_pair_key(&key, user, credential);
		entry = hash_search(st->by_key, &key, HASH_ENTER, &found);
		if (!found)
		{
			RolloutTarget *t = palloc(sizeof(RolloutTarget));

			entry->rows = NIL;
			t->user_id = user;
			t->credential_id = credential;
			targets = lappend(targets, t);
		}
		else
		{
			pfree(user);
			if (credential != NULL)
				pfree(credential);
		}
		entry->rows = lappend_int(entry->rows, st->nouter++);
	}
	rollout_scan_join_targets((ForeignScanState *) inner, targets);
	MemoryContextSwitchTo(old);
	st->loaded = true;
}

/* The scan tuple of an outer row and the current foreign row. */
static TupleTableSlot *
join_tuple(KeyJoinState *st)
{
	TupleTableSlot *scan = st->css.ss.ss_ScanTupleSlot;
	ListCell   *s;
	ListCell   *p;
	int			i = 0;

	ExecClearTuple(scan);
	forboth(s, st->side, p, st->position)
	{
		TupleTableSlot *from = lfirst_int(s) == 0 ? st->outer_slot : st->inner;

		scan->tts_values[i] = slot_getattr(from, lfirst_int(p),
										   &scan->tts_isnull[i]);
		i++;
	}
	return ExecStoreVirtualTuple(scan);
}

static TupleTableSlot *
exec_key_join(CustomScanState *node)
{
	KeyJoinState *st = (KeyJoinState *) node;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	PlanState  *inner = lsecond(node->custom_ps);

	if (!st->loaded)
		load_outer(st);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		while (st->next_match != NULL)
		{
			int			pos = lfirst_int(st->next_match);

			st->next_match = lnext(st->matches, st->next_match);
			ResetExprContext(econtext);
			ExecStoreMinimalTuple(st->outer_rows[pos], st->outer_slot, false);
			econtext->ecxt_scantuple = join_tuple(st);
			if (!ExecQual(node->ss.ps.qual, econtext))
				continue;
			/* no projection when the output is the scan tuple itself */
			if (node->ss.ps.ps_ProjInfo == NULL)
				return econtext->ecxt_scantuple;
			return ExecProject(node->ss.ps.ps_ProjInfo);
		}
		st->inner = ExecProcNode(inner);
		if (TupIsNull(st->inner))
			return ExecClearTuple(node->ss.ps.ps_ResultTupleSlot);
		st->matches = NIL;
		st->next_match = NULL;
		ResetExprContext(econtext);
		{
			MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
			char	   *user = slot_key_text(st->inner,
											 st->inner_key[ROLLOUT_KEY_USER]);
			char	   *credential = slot_key_text(st->inner,
												   st->inner_key[ROLLOUT_KEY_CREDENTIAL]);
			KeyEntry   *entry = NULL;

			/* an id no outer row can hold joins nothing */
			if (user != NULL && strlen(user) <= ROLLOUT_MAX_ID_LEN &&
				(credential == NULL || strlen(credential) <= ROLLOUT_MAX_ID_LEN))
			{
				RolloutPairKey key;

				rollout_pair_key(&key, user, credential);
				entry = hash_search(st->by_key, &key, HASH_FIND, NULL);
			}
			MemoryContextSwitchTo(old);
			if (entry != NULL)
			{
				st->matches = entry->rows;
				st->next_match = list_head(st->matches);
			}
		}
	}
}

static void
end_key_join(CustomScanState *node)
{
	KeyJoinState *st = (KeyJoinState *) node;
	ListCell   *lc;

	foreach(lc, node->custom_ps)
		ExecEndNode(lfirst(lc));
	MemoryContextReset(st->cxt);
}

static void
rescan_key_join(CustomScanState *node)
{
	KeyJoinState *st = (KeyJoinState *) node;
	ListCell   *lc;

	MemoryContextReset(st->cxt);
	st->outer_rows = NULL;
	st->nouter = 0;
	st->by_key = NULL;
	st->loaded = false;
	st->matches = NIL;
	st->next_match = NULL;
	foreach(lc, node->custom_ps)
		ExecReScan(lfirst(lc));
}

/* Install the planner hook (from _PG_init). */
void
rollout_keyjoin_init(void)
{
	RegisterCustomScanMethods(&key_join_scan_methods);
	prev_join_pathlist_hook = set_join_pathlist_hook;
	set_join_pathlist_hook = key_join_paths;
}
