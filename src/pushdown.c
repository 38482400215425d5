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
 *			'a@b.com' = ANY (email_addresses)        ->  email=a@b.com
 *			  (a text[] column of field 'emails[*].value'; phones alike)
 *			phones @> '[{"value": "7185550166"}]'    ->  phone=7185550166
 *			person_id = '11' (textMessages)          ->  personId=11
 *			person_id IN ('11', '12'), x && ARRAY[..] ->  a list per value
 *			rollout_user_id = 'u' (field '@user_id'),
 *			  = ANY, IN, and '@credential_id' alike   ->  whose records are
 *			                                              read (fanout.c)
 *
 *		  with constants, parameters and the outer rows of a nested loop
 *		  (parameterized paths); a list that requires its parameter
 *		  (textMessages: personId) is refused without it.  Then, of the
 *		  request chosen: how many requests and rows it takes, the LIMIT it
 *		  may pass on as its page size, whether it may take over the
 *		  query's OFFSET, and how EXPLAIN describes it.
 *
 * Rules kept here:
 *	- pushing a condition never changes a result: every condition is still
 *	  checked locally on the rows that come back;
 *	- only values without a Var of the scanned table and without volatile
 *	  functions are pushed (constants, parameters, outer columns of a
 *	  nested loop);
 *	- the API may match a filter more loosely than SQL (email= ignoring
 *	  case, phone= by digits), never more strictly: a comparison under a
 *	  nondeterministic collation is not pushed;
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
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"
#include "foreign/foreign.h"
#include <math.h>

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

/* e as a column of the scanned table (a user column), or NULL. */
static Var *
scanned_column(RelOptInfo *baserel, Expr *e)
{
	Var		   *var;

	e = strip_relabel(e);
	if (!IsA(e, Var))
		return NULL;
	var = (Var *) e;
	if (var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0)
		return NULL;
	return var;
}

/* Is e a column of the scanned table whose key is "key"? */
static bool
is_column(RelOptInfo *baserel, Oid relid, Expr *e, const char *key)
{
	Var		   *var = scanned_column(baserel, e);
	char	   *k;

	if (var == NULL)
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

/* ------------------------------------------------------------------
 * List filters: conditions on a column as query parameters of the list
 * ------------------------------------------------------------------ */

/*
 * The query parameters a list takes, and the field of the column each
 * answers for.  An array column (a person's tags, e-mail addresses and
 * phone numbers) is matched by 'x' = ANY (col), col @> ARRAY[x, ...] and
 * col && ARRAY[x, y]; a scalar column (personId) by col = x and
 * col = ANY (ARRAY[x, y]).  Several values ask one list per value.
 */
typedef struct ListFilter
{
	const char *param;			/* the query parameter */
	const char *field;			/* the field the column reads */
	bool		array;			/* the column holds an array of values */
} ListFilter;

static const ListFilter list_filters[] = {
	{"tags", "tags", true},
	{"email", "emails[*].value", true},
	{"phone", "phones[*].value", true},
	{"personId", "personId", false},
};

/* A condition a list filter answers. */
typedef struct FilterMatch
{
	const char *param;
	Expr	   *value;			/* the value, or an array of values ... */
	bool		multi;			/* ... one list request per element */
} FilterMatch;

/* The collection path of a foreign table. */
static const char *
table_resource(Oid relid)
{
	return rollout_get_options(GetForeignTable(relid)->serverid, InvalidOid,
							   relid)->resource;
}

/*
 * Does the collection's list take the query parameter?  Its required
 * parameter (textMessages: personId), and the filters documented for
 * people (ROLLOUT_API.md section 3.1) on people or on a path the snapshot
 * does not know.
 */
static bool
list_takes(const char *resource, const char *param)
{
	const RolloutEndpoint *endpoint = rollout_endpoint(resource);

	if (endpoint->required_param != NULL &&
		strcmp(endpoint->required_param, param) == 0)
		return true;
	if (strcmp(param, "personId") == 0)
		return false;
	return endpoint->resource == NULL ||
		strcmp(endpoint->resource, "people") == 0;
}

/* Is name, in camelCase, field (person_id and personId)? */
static bool
camel_is(const char *name, const char *field)
{
	bool		upper = false;

	for (const char *p = name; *p; p++)
	{
		if (*p == '_' && p != name)
		{
			upper = true;
			continue;
		}
		if (*field++ != (upper ? pg_toupper((unsigned char) *p) : *p))
			return false;
		upper = false;
	}
	return *field == '\0';
}

/*
 * Is e a column of the scanned table reading field: its field option, else
 * its name or its name in camelCase?
 */
static bool
reads_field(RelOptInfo *baserel, Oid relid, Expr *e, const char *field)
{
	Var		   *var = scanned_column(baserel, e);
	char	   *option;
	char	   *name;

	if (var == NULL)
		return false;
	option = rollout_column_field(relid, var->varattno);
	if (option != NULL)
		return strcmp(option, field) == 0;
	name = get_attname(relid, var->varattno, true);
	return name != NULL && (strcmp(name, field) == 0 || camel_is(name, field));
}

/*
 * A comparison the API answers as SQL does or more loosely: a deterministic
 * collation (a case-insensitive one would match rows the API leaves out).
 */
static bool
comparable(Oid collid)
{
	return !OidIsValid(collid) || get_collation_isdeterministic(collid);
}

/* One element of an array that must contain them all, or NULL. */
static Expr *
some_element(Expr *array)
{
	array = strip_relabel(array);
	if (IsA(array, ArrayExpr) && !((ArrayExpr *) array)->multidims &&
		((ArrayExpr *) array)->elements != NIL)
		return linitial(((ArrayExpr *) array)->elements);
	if (IsA(array, Const) && !((Const *) array)->constisnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(((Const *) array)->constvalue);
		Oid			elemtype = ARR_ELEMTYPE(arr);
		int16		elemlen;
		bool		elembyval;
		char		elemalign;
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		get_typlenbyvalalign(elemtype, &elemlen, &elembyval, &elemalign);
		deconstruct_array(arr, elemtype, elemlen, elembyval, elemalign,
						  &elems, &nulls, &nelems);
		for (int k = 0; k < nelems; k++)
			if (!nulls[k])
				return (Expr *) makeConst(elemtype, -1,
										  ((Const *) array)->constcollid,
										  elemlen,
										  datumCopy(elems[k], elembyval, elemlen),
										  false, elembyval);
	}
	return NULL;
}

/* The forms of an array column: x = ANY (col), col @> a, a <@ col, col && a. */
static bool
match_array_column(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
				   Expr *clause, const char *field, FilterMatch *m)
{
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		Expr	   *col = lsecond(saop->args);
		Oid			elemtype = get_element_type(exprType((Node *) col));

		if (!saop->useOr || !reads_field(baserel, relid, col, field) ||
			!OidIsValid(elemtype) || !is_equality(saop->opno, elemtype) ||
			!comparable(saop->inputcollid))
			return false;
		m->value = linitial(saop->args);
		m->multi = false;
	}
	else if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		bool		col_left = reads_field(baserel, relid, linitial(op->args), field);
		Expr	   *other = col_left ? lsecond(op->args) : linitial(op->args);

		if ((!col_left && !reads_field(baserel, relid, lsecond(op->args), field)) ||
			!comparable(op->inputcollid))
			return false;
		if (op->opno == OID_ARRAY_OVERLAP_OP)
		{
			m->value = other;
			m->multi = true;
		}
		else if (op->opno == (col_left ? OID_ARRAY_CONTAINS_OP :
							  OID_ARRAY_CONTAINED_OP))
		{
			/* any one of the values asks for a superset */
			m->value = some_element(other);
			m->multi = false;
		}
		else
			return false;
	}
	else
		return false;
	return m->value != NULL && pushable_value(root, baserel, m->value);
}

/* The forms of a scalar column: col = x, col = ANY (a). */
static bool
match_scalar_column(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
					Expr *clause, const char *field, FilterMatch *m)
{
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		Expr	   *col = linitial(saop->args);

		if (!saop->useOr || !reads_field(baserel, relid, col, field) ||
			type_is_array(exprType((Node *) col)) ||
			!is_equality(saop->opno, exprType((Node *) strip_relabel(col))) ||
			!comparable(saop->inputcollid))
			return false;
		m->value = lsecond(saop->args);
		m->multi = true;
	}
	else if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		bool		col_left = reads_field(baserel, relid, linitial(op->args), field);
		Expr	   *col = col_left ? linitial(op->args) : lsecond(op->args);

		if ((!col_left && !reads_field(baserel, relid, col, field)) ||
			type_is_array(exprType((Node *) col)) ||
			!is_equality(op->opno, exprType((Node *) strip_relabel(col))) ||
			!comparable(op->inputcollid))
			return false;
		m->value = col_left ? lsecond(op->args) : linitial(op->args);
		m->multi = false;
	}
	else
		return false;
	return pushable_value(root, baserel, m->value);
}

static bool match_filter(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
						 const char *resource, Expr *clause, FilterMatch *m);

/*
 * An OR of single values for one filter ('a' = ANY (emails) OR
 * u.email = ANY (emails)): the array of the values, a list per value.
 */
static bool
match_or(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
		 const char *resource, BoolExpr *or, FilterMatch *m)
{
	List	   *values = NIL;
	ListCell   *lc;
	Oid			type = InvalidOid;
	ArrayExpr  *array;

	foreach(lc, or->args)
	{
		FilterMatch arm;

		if (is_orclause(lfirst(lc)) ||
			!match_filter(root, baserel, relid, resource, lfirst(lc), &arm) ||
			arm.multi || (values != NIL && strcmp(arm.param, m->param) != 0) ||
			(values != NIL && exprType((Node *) arm.value) != type))
			return false;
		m->param = arm.param;
		type = exprType((Node *) arm.value);
		values = lappend(values, arm.value);
	}
	if (!OidIsValid(get_array_type(type)))
		return false;
	array = makeNode(ArrayExpr);
	array->array_typeid = get_array_type(type);
	array->element_typeid = type;
	array->elements = values;
	array->multidims = false;
	array->location = -1;
	m->value = (Expr *) array;
	m->multi = true;
	return true;
}

/* The field option of each key column, by RolloutKey. */
static const char *const key_fields[ROLLOUT_NKEYS] = {"@user_id", "@credential_id"};

/*
 * A key column (field '@user_id' or '@credential_id') = value, = ANY
 * (array), IN (...): which key, and its value or array of values.  The
 * scan reads that user's or credential's records; the condition is still
 * checked on every row.
 */
static bool
match_key(PlannerInfo *root, RelOptInfo *baserel, Oid relid, Expr *clause,
		  RolloutKey *key, Expr **value)
{
	for (int k = 0; k < ROLLOUT_NKEYS; k++)
	{
		FilterMatch m;

		if (match_scalar_column(root, baserel, relid, clause, key_fields[k],
								&m))
		{
			*key = (RolloutKey) k;
			*value = m.value;
			return true;
		}
	}
	return false;
}

/* Which list filter answers this clause, and with what value(s)? */
static bool
match_filter(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
			 const char *resource, Expr *clause, FilterMatch *m)
{
	static const char *const contacts[][2] = {{"emails", "email"},
	{"phones", "phone"}};
	const char *required = rollout_endpoint(resource)->required_param;

	/* the parameter the list requires (personId, transactionType) */
	if (required != NULL &&
		match_scalar_column(root, baserel, relid, clause, required, m))
	{
		m->param = required;
		return true;
	}
	for (int i = 0; i < lengthof(list_filters); i++)
	{
		const ListFilter *f = &list_filters[i];

		if (list_takes(resource, f->param) &&
			(f->array ?
			 match_array_column(root, baserel, relid, clause, f->field, m) :
			 match_scalar_column(root, baserel, relid, clause, f->field, m)))
		{
			m->param = f->param;
			return true;
		}
	}
	for (int i = 0; i < lengthof(contacts); i++)
	{
		if (list_takes(resource, contacts[i][1]) &&
			(m->value = match_contact(relid, baserel, clause,
									  contacts[i][0])) != NULL)
		{
			m->param = contacts[i][1];
			m->multi = false;
			return true;
		}
	}
	if (is_orclause(clause))
		return match_or(root, baserel, relid, resource, (BoolExpr *) clause, m);
	return false;
}

/* A key condition of the table's columns (the key join's). */
bool
rollout_match_key(PlannerInfo *root, RelOptInfo *baserel, Expr *clause,
				  RolloutKey *key, Expr **value)
{
	return match_key(root, baserel, planner_rt_fetch(baserel->relid, root)->relid,
					 clause, key, value);
}

/* The key conditions are answered too: by whose records are read. */
static void
add_key_clauses(RolloutPushdown *pd)
{
	for (int k = 0; k < ROLLOUT_NKEYS; k++)
		if (pd->key_clauses[k] != NULL)
		{
			pd->pushed = lappend(pd->pushed, pd->key_clauses[k]);
			pd->pushed_params = lappend(pd->pushed_params,
										makeString(pstrdup(key_fields[k])));
		}
}

/*
 * Sort the clauses (RestrictInfos) of a scan into what the request answers.
 * The id forms win over the list filters; one condition per query
 * parameter, and one parameter with several values (the lists asked are
 * one per value).
 */
void
rollout_classify_clauses(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
						 List *clauses, RolloutPushdown *pd)
{
	ListCell   *lc;
	const char *resource = table_resource(relid);
	bool		has_multi = false;

	memset(pd, 0, sizeof(RolloutPushdown));
	pd->mode = ROLLOUT_SCAN_LIST;

	/* whose records: the key columns, one condition each */
	foreach(lc, clauses)
	{
		Expr	   *clause = lfirst_node(RestrictInfo, lc)->clause;
		RolloutKey	key;
		Expr	   *value;

		if (match_key(root, baserel, relid, clause, &key, &value) &&
			pd->key_values[key] == NULL)
		{
			pd->key_values[key] = value;
			pd->key_clauses[key] = clause;
		}
	}

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
		pd->pushed_params = list_make1(makeString("id"));
		add_key_clauses(pd);
		pd->all_pushed = list_length(pd->pushed) == list_length(clauses);
		return;
	}

	foreach(lc, clauses)
	{
		Expr	   *clause = lfirst_node(RestrictInfo, lc)->clause;
		FilterMatch m;
		ListCell   *name;
		bool		taken = false;

		if (!match_filter(root, baserel, relid, resource, clause, &m))
			continue;
		foreach(name, pd->filter_names)
			taken |= strcmp(strVal(lfirst(name)), m.param) == 0;
		if (taken || (m.multi && has_multi))
			continue;
		has_multi |= m.multi;
		pd->several_lists |= m.multi;
		pd->filter_names = lappend(pd->filter_names,
								   makeString(pstrdup(m.param)));
		pd->filter_values = lappend(pd->filter_values, m.value);
		pd->pushed = lappend(pd->pushed, clause);
		pd->pushed_params = lappend(pd->pushed_params,
									makeString(pstrdup(m.param)));
	}
	add_key_clauses(pd);
	pd->all_pushed = list_length(pd->pushed) == list_length(clauses);
}

/* Does the request lack the query parameter its list requires? */
bool
rollout_lacks_required(RolloutPushdown *pd, Oid relid)
{
	const char *required = rollout_endpoint(table_resource(relid))->required_param;
	ListCell   *lc;

	if (pd->mode != ROLLOUT_SCAN_LIST || required == NULL)
		return false;
	foreach(lc, pd->filter_names)
		if (strcmp(strVal(lfirst(lc)), required) == 0)
			return false;
	return true;
}

/* Is this equivalence member the column (the Var in arg)? */
static bool
is_column_member(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				 EquivalenceMember *em, void *arg)
{
	return equal(strip_relabel(em->em_expr), arg);
}

/*
 * The join clauses a parameterized path can answer, one request per outer
 * row: id = <outer column> (GET /{resource}/{id}), the list filters
 * with an outer value (personId = t.person_id, u.email = ANY
 * (p.email_addresses)), and the key columns (one user's scan per outer
 * row).  Those the planner keeps as join clauses, and
 * the equalities it derives from equivalence classes (an inner join's
 * p.id = f.person_id lives there).
 */
List *
rollout_join_clauses(PlannerInfo *root, RelOptInfo *baserel, Oid relid)
{
	List	   *candidates = NIL;
	List	   *result = NIL;
	ListCell   *lc;
	const char *resource = table_resource(relid);
	Relation	rel = RelationIdGetRelation(relid);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		id_found = false;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Var		   *var;
		bool		wanted = false;

		if (att->attisdropped)
			continue;
		var = makeVar(baserel->relid, i + 1, att->atttypid, att->atttypmod,
					  att->attcollation, 0);
		if (!id_found && has_get_by_id(relid) &&
			rollout_is_id_column(relid, i + 1))
			wanted = id_found = true;
		for (int f = 0; f < lengthof(list_filters) && !wanted; f++)
			wanted = !list_filters[f].array &&
				list_takes(resource, list_filters[f].param) &&
				reads_field(baserel, relid, (Expr *) var, list_filters[f].field);
		for (int k = 0; k < ROLLOUT_NKEYS && !wanted; k++)
			wanted = reads_field(baserel, relid, (Expr *) var, key_fields[k]);
		if (wanted)
			candidates = list_concat(candidates,
									 generate_implied_equalities_for_column(root, baserel,
																			is_column_member,
																			var,
																			baserel->lateral_referencers));
	}
	RelationClose(rel);
	candidates = list_concat(candidates, list_copy(baserel->joininfo));

	foreach(lc, candidates)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		FilterMatch m;
		RolloutKey	key;
		Expr	   *value;

		if (!join_clause_is_movable_to(ri, baserel) ||
			bms_is_subset(ri->clause_relids, baserel->relids) ||
			((!has_get_by_id(relid) ||
			  match_id_equality(root, baserel, relid, ri->clause) == NULL) &&
			 !match_filter(root, baserel, relid, resource, ri->clause, &m) &&
			 !match_key(root, baserel, relid, ri->clause, &key, &value)))
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

/* Is a filter's value an array of values, one list each? */
static bool
is_multi(Expr *value)
{
	return type_is_array(exprType((Node *) value));
}

/* How many users and credentials the key conditions name (1: none). */
double
rollout_target_count(RolloutPushdown *pd)
{
	double		targets = 1;

	for (int k = 0; k < ROLLOUT_NKEYS; k++)
		if (pd->key_values[k] != NULL && is_multi(pd->key_values[k]))
			targets *= rollout_id_count(pd->key_values[k]);
	return targets;
}

/*
 * The requests of the request chosen: one by id, one per id; for lists a
 * page per page_size of the records they bring, and at least one per list.
 */
double
rollout_request_count(RolloutPushdown *pd, double list_rows, int page_size)
{
	double		lists = 1;
	ListCell   *lc;

	double		targets = rollout_target_count(pd);

	switch (pd->mode)
	{
		case ROLLOUT_SCAN_ID:
			return targets;
		case ROLLOUT_SCAN_IDS:
			return targets * rollout_id_count(pd->id_value);
		case ROLLOUT_SCAN_LIST:
			break;
	}
	foreach(lc, pd->filter_values)
		if (is_multi(lfirst(lc)))
			lists = rollout_id_count(lfirst(lc));
	return targets * Max(lists, ceil(list_rows / page_size));
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
 * the list's offset parameter)?  Only for a plain scan of this table with
 * no condition at all, so the rows the API skips are the rows the query
 * would skip: how the API matches a filter (tags, email, phone) is not
 * known (ROLLOUT_API.md section 12), and the rows it skips that the local
 * recheck would have dropped would shift the window; with an OFFSET that is not a constant zero or
 * NULL (without one the LIMIT alone is passed on, rollout_limit_rows), and
 * LIMIT and OFFSET values known when the scan starts (constants,
 * parameters).
 */
bool
rollout_offset_pushable(PlannerInfo *root, RelOptInfo *baserel,
						const RolloutPushdown *pd)
{
	Node	   *offset = root->parse->limitOffset;

	if (!pd->all_pushed || pd->pushed != NIL || pd->filter_names != NIL ||
		offset == NULL || !plain_scan_of(root, baserel))
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
/* A constant as it is sent, percent-encoded; else NULL. */
static char *
const_text(Expr *e)
{
	Oid			typoutput;
	bool		varlena;

	e = strip_relabel(e);
	if (!IsA(e, Const) || ((Const *) e)->constisnull)
		return NULL;
	getTypeOutputInfo(((Const *) e)->consttype, &typoutput, &varlena);
	return rollout_escape(OidOutputFunctionCall(typoutput,
												((Const *) e)->constvalue));
}

/*
 * A filter's value for EXPLAIN: a constant written out, several values as
 * {each of a, b} (one list each), else {value} or {each value}.
 */
static void
describe_value(StringInfo buf, Expr *value)
{
	List	   *texts = NIL;
	ListCell   *lc;

	if (!is_multi(value))
	{
		char	   *text = const_text(value);

		appendStringInfoString(buf, text ? text : "{value}");
		return;
	}
	value = strip_relabel(value);
	if (IsA(value, ArrayExpr))
	{
		foreach(lc, ((ArrayExpr *) value)->elements)
		{
			char	   *text = const_text(lfirst(lc));

			if (text == NULL)
			{
				texts = NIL;
				break;
			}
			texts = lappend(texts, text);
		}
	}
	else if (IsA(value, Const) && !((Const *) value)->constisnull)
	{
		foreach(lc, rollout_array_texts(((Const *) value)->constvalue))
			texts = lappend(texts, rollout_escape(lfirst(lc)));
		if (texts == NIL)
		{
			appendStringInfoString(buf, "{no value: nothing is sent}");
			return;
		}
	}
	if (texts == NIL)
	{
		appendStringInfoString(buf, "{each value}");
		return;
	}
	appendStringInfoString(buf, "{each of ");
	foreach(lc, texts)
		appendStringInfo(buf, "%s%s", lc == list_head(texts) ? "" : ", ",
						 (char *) lfirst(lc));
	appendStringInfoChar(buf, '}');
}

/* The request as EXPLAIN shows it; constant filter values written out. */
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
				appendStringInfo(&buf, "%s=", strVal(lfirst(name)));
				describe_value(&buf, lfirst(value));
				appendStringInfoChar(&buf, '&');
			}
			buf.data[--buf.len] = '\0';	/* the last '&' or '?' */
			if (parameterized)
				appendStringInfoString(&buf, " for each outer row");
			break;
	}
	for (int k = 0; k < ROLLOUT_NKEYS; k++)
		if (pd->key_values[k] != NULL)
		{
			appendStringInfo(&buf, "%s %s=",
							 k == 0 || pd->key_values[0] == NULL ? " as" : ",",
							 k == ROLLOUT_KEY_USER ? "user" : "credential");
			describe_value(&buf, pd->key_values[k]);
		}
	return buf.data;
}

/* The pushed conditions as SQL, for EXPLAIN VERBOSE. */
char *
rollout_describe_pushed(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
						RolloutPushdown *pd)
{
	StringInfoData buf;
	List	   *context = deparse_context_for(get_rel_name(relid), relid);
	ListCell   *lc;
	ListCell   *param;

	initStringInfo(&buf);
	forboth(lc, pd->pushed, param, pd->pushed_params)
	{
		Node	   *clause = lfirst(lc);

		if (buf.len > 0)
			appendStringInfoString(&buf, " AND ");
		if (bms_is_subset(pull_varnos(root, clause), baserel->relids) &&
			(ROLLOUT_DEPARSE_EXEC_PARAMS || !contains_exec_param(clause, NULL)))
		{
			/* the context knows the table as range table entry 1 */
			clause = copyObject(clause);
			ChangeVarNodes(clause, baserel->relid, 1, 0);
			appendStringInfoString(&buf,
								   deparse_expression(clause, context, false, false));
		}
		else
			appendStringInfo(&buf, "%s = (the outer row's value)",
							 strVal(lfirst(param)));
	}
	return buf.data;
}

/* The non-NULL elements of an array, as text. */
List *
rollout_array_texts(Datum array)
{
	ArrayType  *arr = DatumGetArrayTypeP(array);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	Oid			typoutput;
	bool		varlena;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	List	   *texts = NIL;

	get_typlenbyvalalign(elemtype, &elemlen, &elembyval, &elemalign);
	getTypeOutputInfo(elemtype, &typoutput, &varlena);
	deconstruct_array(arr, elemtype, elemlen, elembyval, elemalign,
					  &elems, &nulls, &nelems);
	for (int k = 0; k < nelems; k++)
		if (!nulls[k])
			texts = lappend(texts, OidOutputFunctionCall(typoutput, elems[k]));
	return texts;
}

/*
 * The conditions left to check locally, each comparison of a scanned
 * relation's column with an outer relation's value written column first
 * ("id = d.person_id"), as PostgreSQL 16 and later write the ones they
 * derive from a join's equivalence classes and 15 did not: EXPLAIN then
 * reads the same on every version.  Commuted copies: the RestrictInfos'
 * clauses are shared with the rest of the plan.
 */
List *
rollout_scanned_side_first(PlannerInfo *root, List *clauses, Relids scanned)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, clauses)
	{
		Expr	   *clause = (Expr *) lfirst(lc);

		if (is_opclause(clause) && list_length(((OpExpr *) clause)->args) == 2)
		{
			OpExpr	   *op = (OpExpr *) clause;
			Relids		left = pull_varnos(root, linitial(op->args));
			Relids		right = pull_varnos(root, lsecond(op->args));

			if (!bms_is_empty(left) && !bms_overlap(left, scanned) &&
				!bms_is_empty(right) && bms_is_subset(right, scanned) &&
				OidIsValid(get_commutator(op->opno)))
			{
				op = copyObject(op);
				CommuteOpExpr(op);
				clause = (Expr *) op;
			}
		}
		result = lappend(result, clause);
	}
	return result;
}
