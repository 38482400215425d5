/*-------------------------------------------------------------------------
 *
 * modify.c
 *		  Writes: INSERT -> POST /{resource}, UPDATE -> PUT /{resource}/{id},
 *		  DELETE -> DELETE /{resource}/{id}, with RETURNING filled from the
 *		  API's answer, and batches of INSERTs sent concurrently.
 *
 * Rules kept here:
 *	- a body is built, and every value converted to JSON, before anything is
 *	  sent: a value JSON cannot hold (NaN, ...) is an error with nothing sent;
 *	- the id column identifies the row: it is never sent, cannot be set by
 *	  an INSERT (the CRM assigns it) nor changed by an UPDATE;
 *	- writes are not transactional: when a batch fails part-way, the error
 *	  says how many rows this statement created and their ids;
 *	- retries follow http.c: a POST only when the API cannot have acted, PUT
 *	  and DELETE like reads; a DELETE whose retry finds the record gone
 *	  (404) has done its work.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/inherit.h"
#include "optimizer/pathnode.h"
#include "parser/parsetree.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "rollout_fdw.h"

/* How many ids of created rows an error lists at most. */
#define MAX_IDS_LISTED 20

/* fdw_private of a foreign ModifyTable: a list indexed by this enum. */
enum RolloutModifyPrivate
{
	ModifyPrivateTargetAttrs,	/* Integer list: the columns sent */
	ModifyPrivateReturning,		/* Integer: 1 when RETURNING is asked */
	ModifyPrivateResource		/* String: the collection path */
};

typedef struct RolloutModifyState
{
	Relation	rel;
	CmdType		operation;
	RolloutOptions *opts;
	RolloutConn *conn;
	const char *resource;
	List	   *target_attrs;
	bool		returning;
	int			ncolumns;
	RolloutColumn *columns;		/* every live column, for bodies and RETURNING */
	AttrNumber	id_attno;		/* the table's id column, or 0 */
	AttrNumber	junk_attno;		/* rollout_id in the subplan's output */
	MemoryContext temp_cxt;		/* reset per row or batch */

	/* rows this statement created, for the error of a later failure */
	int64		created;
	StringInfoData created_ids;
	int			ids_listed;

	RolloutColumn *cur_column;	/* error context while building a body */
} RolloutModifyState;

/* One key of a JSON body: a path of keys and the value's JSON text. */
typedef struct BodyEntry
{
	List	   *path;			/* String nodes, outermost first */
	char	   *json;
	bool		weak;			/* from a field '*' column: columns win */
} BodyEntry;

static AttrNumber
find_id_attno(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			rollout_is_id_column(RelationGetRelid(rel), i + 1))
			return i + 1;
	return InvalidAttrNumber;
}

/*
 * UPDATE and DELETE find their rows by the scan; the id column rides along
 * as the row identity "rollout_id".
 */
void
rolloutAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
							   RangeTblEntry *target_rte,
							   Relation target_relation)
{
	AttrNumber	attno = find_id_attno(target_relation);
	Form_pg_attribute att;

	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no id column",
						RelationGetRelationName(target_relation)),
				 errhint("UPDATE and DELETE need a column named id, or one with OPTIONS (field 'id').")));
	att = TupleDescAttr(RelationGetDescr(target_relation), attno - 1);
	add_row_identity_var(root,
						 makeVar(rtindex, attno, att->atttypid,
								 att->atttypmod, att->attcollation, 0),
						 rtindex, "rollout_id");
}

static void
id_cannot_change(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_GENERATED_ALWAYS),
			 errmsg("cannot change the id of a record of foreign table \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("The id identifies the CRM record; Rollout assigns it.")));
}

List *
rolloutPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
						 Index resultRelation, int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	Relation	rel = table_open(rte->relid, NoLock);
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *target_attrs = NIL;
	bool		returning;
	RolloutOptions *opts;

	if (plan->operation == CMD_INSERT)
	{
		for (int i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped &&
				!TupleDescAttr(desc, i)->attgenerated)
				target_attrs = lappend_int(target_attrs, i + 1);
	}
	else if (plan->operation == CMD_UPDATE)
	{
		RelOptInfo *baserel = find_base_rel(root, resultRelation);
		Bitmapset  *cols = get_rel_all_updated_cols(root, baserel);
		int			col = -1;

		while ((col = bms_next_member(cols, col)) >= 0)
		{
			AttrNumber	attno = col + FirstLowInvalidHeapAttributeNumber;

			if (attno <= InvalidAttrNumber)
				continue;
			if (rollout_is_id_column(rte->relid, attno))
				id_cannot_change(rel);
			target_attrs = lappend_int(target_attrs, attno);
		}
	}

	returning = plan->returningLists != NIL &&
		list_nth(plan->returningLists, subplan_index) != NIL;
	opts = rollout_get_options(GetForeignTable(rte->relid)->serverid,
							   InvalidOid, rte->relid);
	table_close(rel, NoLock);

	return list_make3(target_attrs, makeInteger(returning ? 1 : 0),
					  makeString(pstrdup(opts->resource)));
}

static RolloutModifyState *
create_modify_state(ResultRelInfo *rinfo, EState *estate, CmdType operation,
					List *target_attrs, bool returning)
{
	RolloutModifyState *st = palloc0(sizeof(RolloutModifyState));
	Relation	rel = rinfo->ri_RelationDesc;
	Oid			relid = RelationGetRelid(rel);
	Oid			serverid = GetForeignTable(relid)->serverid;
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			userid = GetUserId();

	if (rinfo->ri_RangeTableIndex > 0)
	{
		RangeTblEntry *rte = exec_rt_fetch(rinfo->ri_RangeTableIndex, estate);

		if (OidIsValid(rte->checkAsUser))
			userid = rte->checkAsUser;
	}

	st->rel = rel;
	st->operation = operation;
	st->opts = rollout_get_options(serverid, userid, relid);
	st->conn = rollout_get_conn(GetUserMapping(userid, serverid));
	st->resource = st->opts->resource;
	st->target_attrs = target_attrs;
	st->returning = returning;
	st->id_attno = find_id_attno(rel);
	st->columns = palloc0(sizeof(RolloutColumn) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			rollout_column_init(&st->columns[st->ncolumns++], rel, i + 1);
	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "rollout_fdw modify",
										 ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&st->created_ids);
	return st;
}

void
rolloutBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						  List *fdw_private, int subplan_index, int eflags)
{
	RolloutModifyState *st;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st = create_modify_state(rinfo, mtstate->ps.state, mtstate->operation,
							 (List *) list_nth(fdw_private,
											   ModifyPrivateTargetAttrs),
							 intVal(list_nth(fdw_private,
											 ModifyPrivateReturning)) != 0);
	if (mtstate->operation != CMD_INSERT)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		st->junk_attno = ExecFindJunkAttributeInTlist(subplan->targetlist,
													  "rollout_id");
		if (!AttributeNumberIsValid(st->junk_attno))
			elog(ERROR, "could not find the rollout_id junk column");
	}
	rinfo->ri_FdwState = st;
}

/* COPY into the table, and rows routed to it as a partition. */
void
rolloutBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	TupleDesc	desc = RelationGetDescr(rinfo->ri_RelationDesc);
	List	   *target_attrs = NIL;
	EState	   *estate = mtstate ? mtstate->ps.state : NULL;

	if (estate == NULL)
		elog(ERROR, "rollout_fdw: no executor state for an insert");
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			!TupleDescAttr(desc, i)->attgenerated)
			target_attrs = lappend_int(target_attrs, i + 1);
	rinfo->ri_FdwState = create_modify_state(rinfo, estate, CMD_INSERT,
											 target_attrs,
											 rinfo->ri_returningList != NIL);
}

static void
body_error_callback(void *arg)
{
	RolloutModifyState *st = (RolloutModifyState *) arg;

	if (st->cur_column != NULL)
		errcontext("column \"%s\" of foreign table \"%s\"",
				   st->cur_column->attname, RelationGetRelationName(st->rel));
}

/* The JSON key path a column writes: its field, else its camelCase name. */
static List *
write_path(RolloutColumn *col)
{
	ListCell   *lc;

	if (col->path == NIL)
		return list_make1(makeString(col->key_camel ? col->key_camel :
									 col->key_exact));
	foreach(lc, col->path)
	{
		const char *key = strVal(lfirst(lc));

		if (strspn(key, "0123456789") == strlen(key))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" cannot be written: its field goes through an array index",
							col->attname),
					 errhint("Write the whole array through a jsonb column instead.")));
	}
	return col->path;
}

/* The keys of a field '*' value (a JSON object) as weak entries. */
static List *
whole_record_entries(List *entries, RolloutColumn *col, Datum value)
{
	Oid			typoutput;
	bool		varlena;
	char	   *text;
	json_t	   *root;
	const char *key;
	json_t	   *item;

	getTypeOutputInfo(col->typid, &typoutput, &varlena);
	text = OidOutputFunctionCall(typoutput, value);
	root = rollout_json_parse(CurrentMemoryContext, text, strlen(text),
							  "writing", col->attname);
	if (!json_is_object(root))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a field '*' column must hold a JSON object to be written")));
	json_object_foreach(root, key, item)
	{
		BodyEntry  *e = palloc0(sizeof(BodyEntry));
		StringInfoData buf;

		initStringInfo(&buf);
		rollout_json_append(&buf, item);
		e->path = list_make1(makeString(pstrdup(key)));
		e->json = buf.data;
		e->weak = true;
		entries = lappend(entries, e);
	}
	return entries;
}

/* Emit entries (all sharing the path prefix of length depth) as an object. */
static void
emit_object(StringInfo buf, List *entries, int depth)
{
	int			n = list_length(entries);
	bool	   *done = palloc0(sizeof(bool) * Max(n, 1));
	bool		first = true;

	appendStringInfoChar(buf, '{');
	for (int i = 0; i < n; i++)
	{
		BodyEntry  *e = list_nth(entries, i);
		const char *key = strVal(list_nth(e->path, depth));
		List	   *group = NIL;
		bool		leaf = false;

		if (done[i])
			continue;
		for (int j = i; j < n; j++)
		{
			BodyEntry  *o = list_nth(entries, j);

			if (done[j] || strcmp(strVal(list_nth(o->path, depth)), key) != 0)
				continue;
			done[j] = true;
			group = lappend(group, o);
			leaf |= list_length(o->path) == depth + 1;
		}
		if (leaf && list_length(group) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("two columns write the JSON field \"%s\"", key)));
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, key);
		appendStringInfoChar(buf, ':');
		if (leaf)
			appendStringInfoString(buf, e->json);
		else
			emit_object(buf, group, depth + 1);
	}
	appendStringInfoChar(buf, '}');
}

/*
 * The JSON body of a row: the given columns through their field mapping.
 * INSERT leaves NULLs out; UPDATE sends them as null (to clear a field).
 * The keys of a field '*' column are merged in, the other columns winning.
 */
static char *
build_body(RolloutModifyState *st, TupleTableSlot *slot, bool skip_nulls)
{
	List	   *entries = NIL;
	List	   *strong_keys = NIL;
	List	   *kept = NIL;
	ListCell   *lc;
	StringInfoData buf;
	ErrorContextCallback errcb;

	errcb.callback = body_error_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	foreach(lc, st->target_attrs)
	{
		AttrNumber	attnum = lfirst_int(lc);
		RolloutColumn *col = NULL;
		bool		isnull;
		Datum		value = slot_getattr(slot, attnum, &isnull);

		for (int i = 0; i < st->ncolumns; i++)
			if (st->columns[i].attnum == attnum)
				col = &st->columns[i];
		if (col == NULL)
			continue;
		st->cur_column = col;
		if (attnum == st->id_attno)
		{
			if (!isnull && st->operation == CMD_INSERT)
				ereport(ERROR,
						(errcode(ERRCODE_GENERATED_ALWAYS),
						 errmsg("cannot insert a value into the id column \"%s\"",
								col->attname),
						 errdetail("Rollout assigns the id of a new record; use RETURNING %s to get it.",
								   col->attname)));
			continue;
		}
		if (isnull && (skip_nulls || col->whole_record))
			continue;
		if (col->whole_record)
			entries = whole_record_entries(entries, col, value);
		else
		{
			BodyEntry  *e = palloc0(sizeof(BodyEntry));
			StringInfoData json;

			initStringInfo(&json);
			if (isnull)
				appendStringInfoString(&json, "null");
			else
				rollout_datum_to_json(&json, value, col->typid);
			e->path = write_path(col);
			e->json = json.data;
			entries = lappend(entries, e);
			strong_keys = lappend(strong_keys, linitial(e->path));
		}
	}
	st->cur_column = NULL;
	error_context_stack = errcb.previous;

	foreach(lc, entries)
	{
		BodyEntry  *e = lfirst(lc);
		bool		shadowed = false;
		ListCell   *k;

		if (e->weak)
			foreach(k, strong_keys)
				shadowed |= strcmp(strVal(lfirst(k)),
								   strVal(linitial(e->path))) == 0;
		if (!shadowed)
			kept = lappend(kept, e);
	}

	initStringInfo(&buf);
	emit_object(&buf, kept, 0);
	return buf.data;
}

static void
created_rows_callback(void *arg)
{
	RolloutModifyState *st = (RolloutModifyState *) arg;

	if (st->created > 0)
		errcontext("%lld row(s) of this statement were created in the CRM before the failure and stay there (a ROLLBACK cannot undo them); ids: %s%s",
				   (long long) st->created, st->created_ids.data,
				   st->created > st->ids_listed ? ", ..." : "");
}

/* Raise the error of a failed job, saying what the statement created. */
static void
report_failure(RolloutModifyState *st, RolloutHttpJob *job)
{
	ErrorContextCallback errcb;

	errcb.callback = created_rows_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	rollout_http_raise_failure(st->opts, job);
	rollout_check_status(job->method, job->label, &job->resp);
	error_context_stack = errcb.previous;
}

static void
remember_created(RolloutModifyState *st, json_t *record)
{
	json_t	   *id = json_is_object(record) ? json_object_get(record, "id") : NULL;

	/* created_ids lives in the query context: appending keeps it there */
	st->created++;
	if (st->ids_listed < MAX_IDS_LISTED)
	{
		appendStringInfo(&st->created_ids, "%s%s",
						 st->ids_listed > 0 ? ", " : "",
						 id ? rollout_json_scalar_text(id) : "(unknown)");
		st->ids_listed++;
	}
}

/*
 * Store the record a response carries in slot (decoded like a scan's
 * records); false when the body is not one JSON object.
 */
static bool
store_record_body(RolloutModifyState *st, RolloutResponse *resp,
				  const char *method, TupleTableSlot *slot)
{
	MemoryContext old = MemoryContextSwitchTo(st->temp_cxt);
	RolloutPage *page = rollout_decode_record(resp->body, resp->body_len,
											  psprintf("%s /%s", method,
													   st->resource),
											  st->columns, st->ncolumns);

	MemoryContextSwitchTo(old);
	if (page->nrecords != 1 || !page->records[0].is_object)
		return false;
	rollout_store_record(slot, page, 0, st->rel, st->columns, st->ncolumns,
						 st->temp_cxt);
	return true;
}

/* Parse a write's answer: the record (a JSON object), or NULL. */
static json_t *
answer_record(RolloutModifyState *st, RolloutHttpJob *job)
{
	json_t	   *root;

	if (job->resp.body_len == 0)
		return NULL;
	root = rollout_json_parse(st->temp_cxt, job->resp.body,
							  job->resp.body_len, job->method, job->label);
	return json_is_object(root) ? root : NULL;
}

/*
 * POST each row, all of them in flight at once (paced by the rate
 * limiter).  With RETURNING (a batch of one) the row is replaced by the
 * record the API answered.  A failure is raised once every request of the
 * batch has finished, so the error can say what was created.
 */
static void
insert_rows(RolloutModifyState *st, TupleTableSlot **slots, int n)
{
	MemoryContext old;
	RolloutHttpJob *jobs;
	char	   *url;
	char	   *label;
	int			failed = -1;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);

	url = psprintf("%s/%s", st->opts->api_url, st->resource);
	label = psprintf("/%s", st->resource);
	jobs = palloc0(sizeof(RolloutHttpJob) * n);
	for (int i = 0; i < n; i++)
	{
		jobs[i].method = "POST";
		jobs[i].url = url;
		jobs[i].label = label;
		jobs[i].body = build_body(st, slots[i], true);
	}

	rollout_api_run(st->conn, st->opts, jobs, n, true);

	for (int i = 0; i < n; i++)
	{
		if (jobs[i].failure == ROLLOUT_FAIL_NONE &&
			jobs[i].resp.status >= 200 && jobs[i].resp.status <= 299)
			remember_created(st, answer_record(st, &jobs[i]));
		else if (failed < 0)
			failed = i;
	}
	if (failed >= 0)
		report_failure(st, &jobs[failed]);

	if (st->returning)
		for (int i = 0; i < n; i++)
		{
			json_t	   *record = answer_record(st, &jobs[i]);

			if (record == NULL)
				ereport(ERROR,
						(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
						 errmsg("Rollout answered POST %s without the created record",
								label),
						 errdetail("The record was created; RETURNING cannot show it.")));
			store_record_body(st, &jobs[i].resp, "POST", slots[i]);
		}
	MemoryContextSwitchTo(old);
}

TupleTableSlot *
rolloutExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	insert_rows(rinfo->ri_FdwState, &slot, 1);
	return slot;
}

TupleTableSlot **
rolloutExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
							  TupleTableSlot **slots, TupleTableSlot **planSlots,
							  int *numSlots)
{
	insert_rows(rinfo->ri_FdwState, slots, *numSlots);
	return slots;
}

/*
 * How many rows an INSERT may hand over at once: batch_size, or 1 when
 * each row must come back (RETURNING, row triggers, WITH CHECK OPTION).
 */
int
rolloutGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	RolloutModifyState *st = rinfo->ri_FdwState;
	Relation	rel = rinfo->ri_RelationDesc;

	if (rinfo->ri_projectReturning != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	if (st != NULL)
		return st->opts->batch_size;
	return rollout_get_options(GetForeignTable(RelationGetRelid(rel))->serverid,
							   InvalidOid, RelationGetRelid(rel))->batch_size;
}

/* The id of the row an UPDATE or DELETE acts on, as text for the URL. */
static char *
row_id(RolloutModifyState *st, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		value = ExecGetJunkAttribute(planSlot, st->junk_attno, &isnull);
	Oid			typoutput;
	bool		varlena;
	Oid			type = TupleDescAttr(RelationGetDescr(st->rel),
									 st->id_attno - 1)->atttypid;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a record of foreign table \"%s\" has no id",
						RelationGetRelationName(st->rel))));
	getTypeOutputInfo(type, &typoutput, &varlena);
	return OidOutputFunctionCall(typoutput, value);
}

/* Send one request about one record; returns its response. */
static RolloutResponse
record_request(RolloutModifyState *st, const char *method, const char *id,
			   const char *body)
{
	RolloutResponse resp;
	char	   *path = psprintf("/%s/%s", st->resource, rollout_escape(id));

	rollout_api_request(st->conn, st->opts, method, st->opts->api_url, path,
						NULL, body, true, &resp);
	if (resp.status != 404)
		rollout_check_status(method, path, &resp);
	return resp;
}

static void
store_answer(RolloutModifyState *st, RolloutResponse *resp,
			 const char *method, TupleTableSlot *slot)
{
	if (!store_record_body(st, resp, method, slot))
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout answered %s /%s/{id} without the record",
						method, st->resource)));
}

/*
 * Start work on the row an UPDATE or DELETE acts on: a fresh temporary
 * context (returned switched to, the previous one in *old) and its id.
 */
static char *
begin_row(RolloutModifyState *st, TupleTableSlot *planSlot,
		  MemoryContext *old)
{
	MemoryContextReset(st->temp_cxt);
	*old = MemoryContextSwitchTo(st->temp_cxt);
	return row_id(st, planSlot);
}

TupleTableSlot *
rolloutExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	RolloutModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	char	   *id = begin_row(st, planSlot, &old);
	RolloutResponse resp;

	resp = record_request(st, "PUT", id, build_body(st, slot, false));
	MemoryContextSwitchTo(old);
	if (resp.status == 404)
		return NULL;			/* gone since the scan: not updated */
	if (st->returning)
		store_answer(st, &resp, "PUT", slot);
	return slot;
}

TupleTableSlot *
rolloutExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	RolloutModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	char	   *id = begin_row(st, planSlot, &old);
	RolloutResponse resp;

	if (st->returning)
	{
		/* the deleted record, as it was: DELETE answers only [] */
		resp = record_request(st, "GET", id, NULL);
		if (resp.status == 404)
		{
			MemoryContextSwitchTo(old);
			return NULL;
		}
		store_answer(st, &resp, "GET", slot);
	}
	resp = record_request(st, "DELETE", id, NULL);
	MemoryContextSwitchTo(old);

	/* 404 after a retry: an earlier attempt did delete it */
	if (resp.status == 404 && resp.retries == 0)
		return NULL;
	return slot;
}

void
rolloutEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	/* everything lives in the executor's query context */
}

void
rolloutEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
	/* as EndForeignModify */
}

int
rolloutIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

void
rolloutExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
							List *fdw_private, int subplan_index,
							ExplainState *es)
{
	const char *resource = strVal(list_nth(fdw_private, ModifyPrivateResource));
	bool		returning = intVal(list_nth(fdw_private,
											ModifyPrivateReturning)) != 0;

	switch (mtstate->operation)
	{
		case CMD_INSERT:
			ExplainPropertyText("Rollout Request",
								psprintf("POST /%s", resource), es);
			if (rinfo->ri_BatchSize > 1)
				ExplainPropertyInteger("Batch Size", NULL,
									   rinfo->ri_BatchSize, es);
			break;
		case CMD_UPDATE:
			ExplainPropertyText("Rollout Request",
								psprintf("PUT /%s/{id}", resource), es);
			break;
		case CMD_DELETE:
			ExplainPropertyText("Rollout Request",
								returning ?
								psprintf("GET /%s/{id}, then DELETE /%s/{id}",
										 resource, resource) :
								psprintf("DELETE /%s/{id}", resource), es);
			break;
		default:
			break;
	}
}
