/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE conditions a request can answer: id = v becomes
 *		  GET /{resource}/{id}, id = ANY(array) several of them (where the
 *		  collection has that route; else the list is read), and the
 *		  documented filter forms become query parameters of the list
 *		  request:
 *
 *			'buyer' = ANY (tags)                     ->  tags=buyer
 *			emails @> '[{"value": "a@b.com"}]'       ->  email=a@b.com
 *			phones @> '[{"value": "7185550166"}]'    ->  phone=7185550166
 *
 *		  Then, of the request chosen: how many rows it brings, the LIMIT
 *		  it may pass on as its page size, whether it may take over the
 *		  query's OFFSET, and how EXPLAIN describes it.
 *
 * Rules kept here:
 *	- pushing a condition never changes a result: every condition is still
 *	  checked locally on the rows that come back;
 *	- only values without a Var of the scanned table and without volatile
 *	  functions are pushed (constants, parameters, outer columns of a
 *	  nested loop);
 *	- Rollout's filters are case-sensitive, as the local check is;
 *	- a LIMIT or an OFFSET is passed on only when it cannot change the
 *	  answer;
 *	- EXPLAIN shows a filter value only when it is a constant, and
 *	  percent-encoded as it is sent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "rewrite/rewriteManip.h"
#include "utils/jsonb.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"

#include "rollout_fdw.h"

static Expr *
strip_relabel(Expr *e)
{
	while (e && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return e;
}

/* The JSON key a column reads, when it is a single key. */
static char *
column_key(Oid relid, AttrNumber attnum)
{
	char	   *field = rollout_column_field(relid, attnum);

	if (field != NULL)
		return strchr(field, '.') ? NULL : field;
	return get_attname(relid, attnum, true);
}

/* Is e a column of the scanned table whose key is "key"? */
static bool
is_column(RelOptInfo *baserel, Oid relid, Expr *e, const char *key)
{
	Var		   *var;
	char	   *k;

	e = strip_relabel(e);
	if (!IsA(e, Var))
		return false;
	var = (Var *) e;
	if (var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0)
		return false;
	if (strcmp(key, "id") == 0)
		return rollout_is_id_column(relid, var->varattno);
	k = column_key(relid, var->varattno);
	return k != NULL && strcmp(k, key) == 0;
}

/* Can this value be computed before the scan asks for it? */
static bool
pushable_value(PlannerInfo *root, RelOptInfo *baserel, Expr *value)
{
	return !bms_is_member(baserel->relid, pull_varnos(root, (Node *) value)) &&
		!contain_volatile_functions((Node *) value) &&
		!contain_subplans((Node *) value);
}

/* Is opno the equality of the btree family of type? */
static bool
is_equality(Oid opno, Oid type)
{
	TypeCacheEntry *tce = lookup_type_cache(type, TYPECACHE_BTREE_OPFAMILY);

	return OidIsValid(tce->btree_opf) &&
		get_op_opfamily_strategy(opno, tce->btree_opf) == BTEqualStrategyNumber;
}

/* column = value (either side), the column reading key: the value, or NULL. */
static Expr *
match_key_equality(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
				   Expr *clause, const char *key)
{
	OpExpr	   *op;
	Expr	   *left;
	Expr	   *right;

	if (!IsA(clause, OpExpr) || list_length(((OpExpr *) clause)->args) != 2)
		return NULL;
	op = (OpExpr *) clause;
	left = linitial(op->args);
	right = lsecond(op->args);
	if (is_column(baserel, relid, right, key))
	{
		Expr	   *tmp = left;

		left = right;
		right = tmp;
	}
	if (!is_column(baserel, relid, left, key) ||
		!is_equality(op->opno, exprType((Node *) strip_relabel(left))) ||
		!pushable_value(root, baserel, right))
		return NULL;
	return right;
}

/* id = value (either side): the value, or NULL. */
static Expr *
match_id_equality(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
				  Expr *clause)
{
	return match_key_equality(root, baserel, relid, clause, "id");
}

/* id = ANY (array): the array, or NULL. */
static Expr *
match_id_any(PlannerInfo *root, RelOptInfo *baserel, Oid relid, Expr *clause)
{
	ScalarArrayOpExpr *saop;

	if (!IsA(clause, ScalarArrayOpExpr))
		return NULL;
	saop = (ScalarArrayOpExpr *) clause;
	if (!saop->useOr ||
		!is_column(baserel, relid, linitial(saop->args), "id") ||
		!is_equality(saop->opno,
					 exprType((Node *) strip_relabel(linitial(saop->args)))) ||
		!pushable_value(root, baserel, lsecond(saop->args)))
		return NULL;
	return lsecond(saop->args);
}

/* 'x' = ANY (tags): the value x, or NULL. */
static Expr *
match_tag(PlannerInfo *root, RelOptInfo *baserel, Oid relid, Expr *clause)
{
	ScalarArrayOpExpr *saop;
	Expr	   *value;

	if (!IsA(clause, ScalarArrayOpExpr))
		return NULL;
	saop = (ScalarArrayOpExpr *) clause;
	value = linitial(saop->args);
	if (!saop->useOr ||
		!is_column(baserel, relid, lsecond(saop->args), "tags") ||
		exprType((Node *) strip_relabel(lsecond(saop->args))) != TEXTARRAYOID ||
		exprType((Node *) value) != TEXTOID ||
		!is_equality(saop->opno, TEXTOID) ||
		!pushable_value(root, baserel, value))
		return NULL;
	return value;
}

/*
 * emails @> '[{"value": "x"}]' (or phones): the constant x as a text
 * Const, or NULL.  Only that exact shape: one element, one key.
 */
static Expr *
match_contact(Oid relid, RelOptInfo *baserel, Expr *clause, const char *key)
{
	OpExpr	   *op;
	Const	   *c;
	char	   *text;
	json_t	   *root;
	json_t	   *item;
	json_t	   *value;
	Expr	   *result = NULL;

	if (!IsA(clause, OpExpr) || list_length(((OpExpr *) clause)->args) != 2)
		return NULL;
	op = (OpExpr *) clause;
	if (!is_column(baserel, relid, linitial(op->args), key) ||
		!IsA(lsecond(op->args), Const) ||
		((Const *) lsecond(op->args))->constisnull ||
		((Const *) lsecond(op->args))->consttype != JSONBOID ||
		exprType(linitial(op->args)) != JSONBOID)
		return NULL;
	{
		char	   *name = get_opname(op->opno);

		if (name == NULL || strcmp(name, "@>") != 0)
			return NULL;
	}
	c = (Const *) lsecond(op->args);
	text = JsonbToCString(NULL, &DatumGetJsonbP(c->constvalue)->root, -1);
	root = rollout_json_parse(CurrentMemoryContext, text, strlen(text),
							  "planning", key);
	if (json_is_array(root) && json_array_size(root) == 1 &&
		json_is_object(item = json_array_get(root, 0)) &&
		json_object_size(item) == 1 &&
		json_is_string(value = json_object_get(item, "value")))
		result = (Expr *) makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
									CStringGetTextDatum(json_string_value(value)),
									false, false);
	return result;
}

/* Does the table's collection answer GET /{resource}/{id}? */
static bool
has_get_by_id(Oid relid)
{
	return (rollout_table_endpoint(relid)->routes & ROLLOUT_ROUTE_GET) != 0;
}

/*
 * Sort the clauses (RestrictInfos) of a scan into what the request answers.
 * The id forms win over the list filters; one value per filter.
 */
void
rollout_classify_clauses(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
						 List *clauses, RolloutPushdown *pd)
{
	ListCell   *lc;
	bool		has_tags = false;
	bool		has_email = false;
	bool		has_phone = false;
	const char *required = rollout_table_endpoint(relid)->required_param;
	List	   *filtered = NIL;

	memset(pd, 0, sizeof(RolloutPushdown));
	pd->mode = ROLLOUT_SCAN_LIST;

	/* without GET /{resource}/{id}, ids are read through the list */
	foreach(lc, has_get_by_id(relid) ? clauses : NIL)
	{
		Expr	   *clause = lfirst_node(RestrictInfo, lc)->clause;
		Expr	   *value;

		if (pd->mode == ROLLOUT_SCAN_LIST &&
			(value = match_id_equality(root, baserel, relid, clause)) != NULL)
		{
			pd->mode = ROLLOUT_SCAN_ID;
			pd->id_value = value;
			pd->pushed = lappend(pd->pushed, clause);
		}
		else if (pd->mode == ROLLOUT_SCAN_LIST &&
				 (value = match_id_any(root, baserel, relid, clause)) != NULL)
		{
			pd->mode = ROLLOUT_SCAN_IDS;
			pd->id_value = value;
			pd->pushed = lappend(pd->pushed, clause);
		}
	}
	if (pd->mode != ROLLOUT_SCAN_LIST)
	{
		pd->all_pushed = list_length(pd->pushed) == list_length(clauses);
		return;
	}

	foreach(lc, clauses)
	{
		Expr	   *clause = lfirst_node(RestrictInfo, lc)->clause;
		Expr	   *value;
		const char *name = NULL;

		/* the query parameter the list requires: <its column> = value */
		if (required != NULL &&
			(value = match_key_equality(root, baserel, relid, clause,
										required)) != NULL)
		{
			name = required;
			required = NULL;
		}
		else if (!has_tags && (value = match_tag(root, baserel, relid, clause)))
		{
			has_tags = true;
			name = "tags";
		}
		else if (!has_email &&
				 (value = match_contact(relid, baserel, clause, "emails")))
		{
			has_email = true;
			name = "email";
		}
		else if (!has_phone &&
				 (value = match_contact(relid, baserel, clause, "phones")))
		{
			has_phone = true;
			name = "phone";
		}
		if (name == NULL)
			continue;
		pd->filter_names = lappend(pd->filter_names, makeString((char *) name));
		pd->filter_values = lappend(pd->filter_values, value);
		filtered = lappend(filtered, clause);
	}
	pd->pushed = filtered;
	pd->all_pushed = list_length(filtered) == list_length(clauses);
}

/* Is this equivalence member the id column (the Var in arg)? */
static bool
is_id_member(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
			 EquivalenceMember *em, void *arg)
{
	return equal(strip_relabel(em->em_expr), arg);
}

/*
 * The join clauses "id = <columns of other tables>" a parameterized path
 * can answer, one GET /{resource}/{id} per outer row: those the planner
 * keeps as join clauses, and those it derives from equivalence classes
 * (an inner join's p.id = f.person_id lives there).
 */
List *
rollout_id_join_clauses(PlannerInfo *root, RelOptInfo *baserel, Oid relid)
{
	List	   *candidates = NIL;
	List	   *result = NIL;
	ListCell   *lc;
	Relation	rel = RelationIdGetRelation(relid);
	TupleDesc	desc = RelationGetDescr(rel);

	if (!has_get_by_id(relid))
	{
		RelationClose(rel);
		return NIL;				/* a list per outer row: never cheaper */
	}
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || !rollout_is_id_column(relid, i + 1))
			continue;
		candidates = generate_implied_equalities_for_column(root, baserel,
															is_id_member,
															makeVar(baserel->relid, i + 1,
																	att->atttypid,
																	att->atttypmod,
																	att->attcollation, 0),
															baserel->lateral_referencers);
		break;
	}
	RelationClose(rel);
	candidates = list_concat(candidates, list_copy(baserel->joininfo));

	foreach(lc, candidates)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (!join_clause_is_movable_to(ri, baserel) ||
			bms_is_subset(ri->clause_relids, baserel->relids) ||
			match_id_equality(root, baserel, relid, ri->clause) == NULL)
			continue;
		result = lappend(result, ri);
	}
	return result;
}

/* ------------------------------------------------------------------
 * The request chosen: its rows, its LIMIT, its description
 * ------------------------------------------------------------------ */

/* How many ids a constant array holds, else a guess. */
double
rollout_id_count(Expr *array)
{
	if (IsA(array, Const) && !((Const *) array)->constisnull)
		return ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) array)->constvalue)),
							  ARR_DIMS(DatumGetArrayTypeP(((Const *) array)->constvalue)));
	if (IsA(array, ArrayExpr))
		return list_length(((ArrayExpr *) array)->elements);
	return 10;
}

/*
 * Does the query read this table alone, with nothing (sorting, grouping,
 * DISTINCT, aggregates, window functions, set-returning functions,
 * locking) between the scan and its LIMIT / OFFSET?
 */
static bool
plain_scan_of(PlannerInfo *root, RelOptInfo *baserel)
{
	Query	   *parse = root->parse;

	return parse->commandType == CMD_SELECT &&
		parse->limitOption != LIMIT_OPTION_WITH_TIES &&
		!parse->sortClause && !parse->groupClause && !parse->groupingSets &&
		!parse->distinctClause && !parse->hasAggs && !parse->hasWindowFuncs &&
		!parse->hasTargetSRFs && !parse->havingQual && !parse->setOperations &&
		!parse->rowMarks && bms_num_members(root->all_baserels) == 1 &&
		bms_equal(root->all_baserels, baserel->relids);
}

/*
 * The row count a LIMIT asks of this scan, when passing it on cannot
 * change the answer: the query is a plain scan of this table and every
 * condition is answered by the request.  Else 0.
 */
int64
rollout_limit_rows(PlannerInfo *root, RelOptInfo *baserel, bool all_pushed)
{
	Query	   *parse = root->parse;
	int64		count;
	int64		offset = 0;

	if (!all_pushed || parse->limitCount == NULL ||
		!IsA(parse->limitCount, Const) ||
		((Const *) parse->limitCount)->constisnull ||
		parse->limitOption != LIMIT_OPTION_COUNT ||
		!plain_scan_of(root, baserel))
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

/* Does the expression hold a PARAM_EXEC (an outer value or an InitPlan's)? */
static bool
contains_exec_param(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param))
		return ((Param *) node)->paramkind != PARAM_EXTERN;
	return expression_tree_walker(node, contains_exec_param, context);
}

/* Can the scan evaluate this LIMIT or OFFSET expression when it starts? */
static bool
window_value_ok(Node *value)
{
	return value == NULL ||
		(!contain_var_clause(value) && !contain_volatile_functions(value) &&
		 !contain_subplans(value) && !contains_exec_param(value, NULL));
}

/*
 * May the scan take over the query's LIMIT and OFFSET (the OFFSET sent as
 * the list's offset parameter)?  Only for a plain scan of this table whose
 * every condition the request answers, so the rows the API skips are the
 * rows the query would skip; with an OFFSET that is not a constant zero or
 * NULL (without one the LIMIT alone is passed on, rollout_limit_rows), and
 * LIMIT and OFFSET values known when the scan starts (constants,
 * parameters).
 */
bool
rollout_offset_pushable(PlannerInfo *root, RelOptInfo *baserel,
						bool all_pushed)
{
	Node	   *offset = root->parse->limitOffset;

	if (!all_pushed || offset == NULL || !plain_scan_of(root, baserel))
		return false;
	if (IsA(offset, Const) &&
		(((Const *) offset)->constisnull ||
		 DatumGetInt64(((Const *) offset)->constvalue) == 0))
		return false;
	return window_value_ok(offset) &&
		window_value_ok(root->parse->limitCount);
}

/* A LIMIT or OFFSET as EXPLAIN shows it: its value, or {name}. */
static char *
window_text(Node *value, const char *name, int64 at_most)
{
	if (value == NULL || (IsA(value, Const) && ((Const *) value)->constisnull))
		return psprintf("%lld", (long long) at_most);
	if (IsA(value, Const))
		return psprintf("%lld",
						(long long) Min(DatumGetInt64(((Const *) value)->constvalue),
										at_most));
	return psprintf("{%s}", name);
}

/*
 * The request as EXPLAIN shows it; constant filter values written out.
 * With a pushed OFFSET (count and offset: the query's LIMIT and OFFSET),
 * the first request's limit and offset.
 */
char *
rollout_describe_request(RolloutPushdown *pd, const char *resource,
						 int page_size, bool parameterized, bool window,
						 Node *count, Node *offset)
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
			/* a list answered by a bare array is not paged: no limit */
			if (rollout_endpoint(resource)->list_is_array)
				appendStringInfo(&buf, "GET /%s?", resource);
			else if (window)
				appendStringInfo(&buf, "GET /%s?limit=%s&offset=%s&", resource,
								 window_text(count, "limit", page_size),
								 window_text(offset, "offset", PG_INT64_MAX));
			else
				appendStringInfo(&buf, "GET /%s?limit=%d&", resource, page_size);
			forboth(name, pd->filter_names, value, pd->filter_values)
			{
				Expr	   *v = lfirst(value);

				if (IsA(v, Const) && !((Const *) v)->constisnull)
				{
					Oid			typoutput;
					bool		varlena;

					getTypeOutputInfo(((Const *) v)->consttype, &typoutput,
									  &varlena);
					appendStringInfo(&buf, "%s=%s&", strVal(lfirst(name)),
									 rollout_escape(OidOutputFunctionCall(typoutput,
																		  ((Const *) v)->constvalue)));
				}
				else
					appendStringInfo(&buf, "%s={value}&", strVal(lfirst(name)));
			}
			buf.data[--buf.len] = '\0';	/* the last '&' or '?' */
			break;
	}
	return buf.data;
}

/* The pushed conditions as SQL, for EXPLAIN VERBOSE. */
char *
rollout_describe_pushed(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
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
		{
			/* the context knows the table as range table entry 1 */
			clause = copyObject(clause);
			ChangeVarNodes(clause, baserel->relid, 1, 0);
			appendStringInfoString(&buf,
								   deparse_expression(clause, context, false, false));
		}
		else
			appendStringInfoString(&buf, "id = (the outer row's value)");
	}
	return buf.data;
}
