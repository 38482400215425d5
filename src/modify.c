/*-------------------------------------------------------------------------
 *
 * modify.c
 *		  Writes: INSERT -> POST /{resource}, UPDATE -> PUT /{resource}/{id},
 *		  DELETE -> DELETE /{resource}/{id}, with the row filled from the
 *		  API's answer when RETURNING, WITH CHECK OPTION or an AFTER ROW
 *		  trigger needs it, and batches of INSERTs sent concurrently.
 *
 * Rules kept here (the bodies' own are body.c's):
 *	- a row's body is built before anything is sent (body.c), and an id is
 *	  sent in UTF-8;
 *	- the id identifies the row: an INSERT cannot set it (the CRM assigns
 *	  it), an UPDATE cannot change it;
 *	- writes are not transactional: whenever the API may have acted (a 2xx
 *	  whose answer is then unreadable included), the error says how many
 *	  rows this statement created, updated or deleted and their ids;
 *	- retries follow api.c: a POST only when the API cannot have acted, PUT
 *	  and DELETE like reads; a DELETE whose retry finds the record gone
 *	  (404) has done its work.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "common/string.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/inherit.h"
#include "optimizer/pathnode.h"
#include "parser/parsetree.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/jsonb.h"
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
	ModifyPrivateRetrieve,		/* Integer: 1 when the row is filled from the
								 * API's answer (RETURNING, WITH CHECK OPTION,
								 * AFTER ROW trigger) */
	ModifyPrivateResource,		/* String: the collection path */
	ModifyPrivateSkipExisting	/* Integer: 1 for INSERT ... ON CONFLICT DO
								 * NOTHING (rows a person holds are skipped) */
};



static void fill_row(RolloutModifyState *st, TupleTableSlot *slot,
					 RolloutPage *record);
static void fill_keys(RolloutModifyState *st, TupleTableSlot *slot);

/* The row identities of the key columns: whose record the row is. */
static const char *const key_junk_names[ROLLOUT_NKEYS] = {
	"rollout_user_id_key", "rollout_credential_id_key"
};

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
 * as the row identity "rollout_id", and the key columns, whose CRM the row
 * is in, as "rollout_user_id_key" and "rollout_credential_id_key".  A DELETE ... RETURNING on a collection
 * without GET /{resource}/{id} returns the row the scan read (its list):
 * the whole row rides along too, as "rollout_row".
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
	for (int i = 0; i < RelationGetDescr(target_relation)->natts; i++)
	{
		RolloutKey	key;

		att = TupleDescAttr(RelationGetDescr(target_relation), i);
		if (att->attisdropped)
			continue;
		key = rollout_key_of_field(rollout_column_field(RelationGetRelid(target_relation),
														i + 1));
		if (key != ROLLOUT_KEY_NONE)
			add_row_identity_var(root,
								 makeVar(rtindex, i + 1, att->atttypid,
										 att->atttypmod, att->attcollation, 0),
								 rtindex, key_junk_names[key]);
	}
	if (root->parse->commandType == CMD_DELETE &&
		root->parse->returningList != NIL &&
		!(rollout_table_endpoint(RelationGetRelid(target_relation))->routes &
		  ROLLOUT_ROUTE_GET))
		add_row_identity_var(root,
							 makeWholeRowVar(target_rte, rtindex, 0, false),
							 rtindex, "rollout_row");
}

/*
 * Whether an INSERT skips the rows that conflict: ON CONFLICT DO NOTHING,
 * on a collection whose records can be looked up by e-mail (conflict.c).
 * Elsewhere Rollout has no key to conflict on, and DO NOTHING would
 * silently create the record: refused.  (PostgreSQL itself refuses DO
 * UPDATE on a foreign table.)
 */
static bool
skips_existing(OnConflictAction action, Relation rel, const char *resource)
{
	if (action == ONCONFLICT_NONE)
		return false;
	if (action == ONCONFLICT_NOTHING && rollout_conflict_supported(resource))
		return true;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("INSERT with ON CONFLICT is not supported on foreign table \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("Rollout has no unique key to detect a conflict on in collection \"%s\": the record would be created anyway.",
					   resource),
			 errhint("ON CONFLICT DO NOTHING works on people, whose records are looked up by e-mail; here, look the record up first and insert only when it is absent.")));
	return false;
}

/*
 * Must the row come back from the API's answer?  For RETURNING, a WITH
 * CHECK OPTION and the NEW row of an AFTER ROW trigger, as postgres_fdw
 * retrieves the remote row for them.  A DELETE's AFTER ROW trigger sees
 * the OLD row the scan read (its whole-row junk column), so only its
 * RETURNING needs the record read before deleting it.
 */
static bool
must_retrieve(CmdType operation, TriggerDesc *trig, bool returning,
			  bool check_options)
{
	if (returning)
		return true;
	switch (operation)
	{
		case CMD_INSERT:
			return check_options || (trig && trig->trig_insert_after_row);
		case CMD_UPDATE:
			return check_options || (trig && trig->trig_update_after_row);
		default:
			return false;
	}
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
	bool		check_options;
	bool		retrieve;
	RolloutOptions *opts = rollout_get_options(GetForeignTable(rte->relid)->serverid,
											   InvalidOid, rte->relid);
	bool		skip_existing;

	skip_existing = skips_existing(plan->onConflictAction, rel, opts->resource);
	rollout_check_modify_route(rel, opts->resource, plan->operation);
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
				rollout_id_cannot_change(rel);
			target_attrs = lappend_int(target_attrs, attno);
		}
	}

	returning = plan->returningLists != NIL &&
		list_nth(plan->returningLists, subplan_index) != NIL;
	check_options = plan->withCheckOptionLists != NIL &&
		list_nth(plan->withCheckOptionLists, subplan_index) != NIL;
	retrieve = must_retrieve(plan->operation, rel->trigdesc, returning,
							 check_options);
	table_close(rel, NoLock);

	return list_make4(target_attrs, makeInteger(retrieve ? 1 : 0),
					  makeString(pstrdup(opts->resource)),
					  makeInteger(skip_existing ? 1 : 0));
}

static RolloutModifyState *
create_modify_state(ResultRelInfo *rinfo, EState *estate, CmdType operation,
					List *target_attrs, bool retrieve)
{
	RolloutModifyState *st = palloc0(sizeof(RolloutModifyState));
	Relation	rel = rinfo->ri_RelationDesc;
	Oid			relid = RelationGetRelid(rel);
	Oid			serverid = GetForeignTable(relid)->serverid;
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			userid = GetUserId();

	if (OidIsValid(rollout_modify_check_as(rinfo, estate)))
		userid = rollout_modify_check_as(rinfo, estate);

	st->rel = rel;
	st->operation = operation;
	st->opts = rollout_get_options(serverid, userid, relid);
	st->um = GetUserMapping(userid, serverid);
	st->resource = st->opts->resource;
	st->target_attrs = target_attrs;
	st->retrieve = retrieve;
	st->id_attno = find_id_attno(rel);
	st->columns = palloc0(sizeof(RolloutColumn) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
		{
			RolloutColumn *col = &st->columns[st->ncolumns++];

			rollout_column_init(col, rel, i + 1);
			if (col->key != ROLLOUT_KEY_NONE)
				st->key_attno[col->key] = col->attnum;
		}
	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "rollout_fdw modify",
										 ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&st->acted_ids);
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
											 ModifyPrivateRetrieve)) != 0);
	st->skip_existing = intVal(list_nth(fdw_private,
										ModifyPrivateSkipExisting)) != 0;
	if (mtstate->operation != CMD_INSERT)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		st->junk_attno = ExecFindJunkAttributeInTlist(subplan->targetlist,
													  "rollout_id");
		if (!AttributeNumberIsValid(st->junk_attno))
			elog(ERROR, "could not find the rollout_id junk column");
		st->row_attno = ExecFindJunkAttributeInTlist(subplan->targetlist,
													 "rollout_row");
		for (int k = 0; k < ROLLOUT_NKEYS; k++)
			st->key_junk[k] = ExecFindJunkAttributeInTlist(subplan->targetlist,
														   key_junk_names[k]);
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
	RolloutModifyState *st;

	if (estate == NULL)
		elog(ERROR, "rollout_fdw: no executor state for an insert");
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			!TupleDescAttr(desc, i)->attgenerated)
			target_attrs = lappend_int(target_attrs, i + 1);
	st = create_modify_state(rinfo, estate, CMD_INSERT, target_attrs,
							 must_retrieve(CMD_INSERT, rinfo->ri_TrigDesc,
										   rinfo->ri_returningList != NIL,
										   rinfo->ri_WithCheckOptions != NIL));
	/* rows routed to a partition by INSERT ... ON CONFLICT */
	if (mtstate->ps.plan != NULL)
		st->skip_existing =
			skips_existing(((ModifyTable *) mtstate->ps.plan)->onConflictAction,
						   rinfo->ri_RelationDesc, st->resource);
	rinfo->ri_FdwState = st;
}

/* What the rows this statement acted on became, for the error context. */
static void
acted_rows_callback(void *arg)
{
	RolloutModifyState *st = (RolloutModifyState *) arg;
	const char *done = st->operation == CMD_INSERT ? "created" :
		st->operation == CMD_UPDATE ? "updated" : "deleted";

	if (st->in_flight > 0)
		errcontext("%d POST /%s request(s) had been sent when the statement stopped: Rollout may have created those records; check before running it again",
				   st->in_flight, st->resource);
	if (st->acted > 0)
		errcontext("%lld row(s) of this statement were %s in the CRM before the failure and stay %s (a ROLLBACK cannot undo them); ids: %s%s",
				   (long long) st->acted, done,
				   st->operation == CMD_INSERT ? "there" : done,
				   st->acted_ids.data,
				   st->acted > st->ids_listed ? ", ..." : "");
}

/* Push the error context saying what this statement did to the CRM. */
static void
push_acted_context(RolloutModifyState *st, ErrorContextCallback *errcb)
{
	errcb->callback = acted_rows_callback;
	errcb->arg = st;
	errcb->previous = error_context_stack;
	error_context_stack = errcb;
}

/*
 * Add an id to the list of rows acted on (st->acted is counted by the
 * caller): NULL when the answer did not say it.  An id from the API is
 * UTF-8; it is listed only when it is ASCII, which reads the same in any
 * database encoding.
 */
void
rollout_remember_id(RolloutModifyState *st, const char *id)
{
	if (id != NULL && !pg_is_ascii(id))
		id = "(not ASCII)";
	/* acted_ids lives in the query context: appending keeps it there */
	if (st->ids_listed < MAX_IDS_LISTED)
	{
		appendStringInfo(&st->acted_ids, "%s%s",
						 st->ids_listed > 0 ? ", " : "",
						 id ? id : "(unknown)");
		st->ids_listed++;
	}
}

/*
 * Read a write's 2xx answer: the record, a JSON object with an id, or NULL
 * with *problem saying what is wrong with it.  A collection whose POST
 * answers an array (POST /users: [record]) answers an array of one record;
 * any other length leaves unsaid whether the record was created.  Raises no error of its own:
 * the API has acted, and the caller's error must say so.  Errors other than
 * an unreadable body (a cancel, out of memory) pass through, under the
 * caller's error context.
 */
static RolloutPage *
read_answer(RolloutModifyState *st, RolloutResponse *resp, const char *method,
			const char *label, char **problem, bool *uncertain)
{
	MemoryContext old = CurrentMemoryContext;
	RolloutPage *volatile root = NULL;

	if (resp->body_len == 0)
	{
		*problem = pstrdup("The answer has no body.");
		return NULL;
	}
	PG_TRY();
	{
		MemoryContextSwitchTo(st->temp_cxt);
		if (strcmp(method, "POST") == 0 &&
			rollout_endpoint(st->resource)->create_is_array)
			root = rollout_decode_array(resp->body, resp->body_len,
										psprintf("%s %s", method, label),
										st->columns, st->ncolumns);
		else
			root = rollout_decode_record(resp->body, resp->body_len,
										 psprintf("%s %s", method, label),
										 st->columns, st->ncolumns);
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * The parser holds nothing but memory of temp_cxt (its document is
		 * released with it): a parse error caught here leaves nothing behind.
		 */
		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
			PG_RE_THROW();
		FlushErrorState();
		*problem = psprintf("%s%s%s", edata->message,
							edata->detail ? ": " : ".",
							edata->detail ? edata->detail : "");
		FreeErrorData(edata);
		return NULL;
	}
	PG_END_TRY();

	if (root->list_key != NULL && (!root->list_found ||
									root->list_has_nonobject))
	{
		*problem = pstrdup("The answer is JSON but not an array of records.");
		return NULL;
	}
	if (root->list_key != NULL && root->nrecords != 1)
	{
		*problem = psprintf("The answer is an array of %d records where one was expected.",
							root->nrecords);
		if (uncertain != NULL)
			*uncertain = true;
		return NULL;
	}
	if (root->nrecords != 1)
	{
		*problem = pstrdup("The answer is JSON but not an object.");
		return NULL;
	}
	/* the id matters when the row goes back to the executor */
	if (st->retrieve && rollout_record_id(root, 0) == NULL)
	{
		*problem = pstrdup("The answer has no \"id\".");
		return NULL;
	}
	return root;
}

/*
 * Fill a slot from the record Rollout answered: every row that goes back
 * to the executor filled (RETURNING, WITH CHECK OPTION, AFTER ROW
 * triggers) is stored here, and only here.
 */
static void
fill_row(RolloutModifyState *st, TupleTableSlot *slot, RolloutPage *record)
{
	rollout_store_record(slot, record, 0, st->rel, st->columns, st->ncolumns,
						 st->temp_cxt);
	fill_keys(st, slot);
}

/*
 * POST each row, all of them in flight at once (paced by the rate
 * limiter), then read every answer.  Every 2xx counts as created, even
 * when its answer is then unreadable: a failure is raised once every
 * request of the batch has finished, and the error says what was created.
 * With ON CONFLICT DO NOTHING the rows a CRM person holds an e-mail of are
 * skipped first (conflict.c).  Returns how many rows were created, their
 * slots in *done (until the next batch); when the rows must come back (a batch of one) each is
 * replaced by the record the API answered.
 */
/* A key column's value (of type the column's) as text, or NULL. */
static char *
key_text(RolloutModifyState *st, RolloutKey key, Datum value, bool isnull)
{
	Oid			typoutput;
	bool		varlena;

	if (isnull)
		return NULL;
	getTypeOutputInfo(TupleDescAttr(RelationGetDescr(st->rel),
									st->key_attno[key] - 1)->atttypid,
					  &typoutput, &varlena);
	return OidOutputFunctionCall(typoutput, value);
}

/* A key column of a row: in the row (slot), or as read (a junk column). */
static char *
row_key(RolloutModifyState *st, RolloutKey key, TupleTableSlot *slot,
		AttrNumber attno, bool junk)
{
	bool		isnull;
	Datum		value;

	if (!AttributeNumberIsValid(attno))
		return NULL;
	value = junk ? ExecGetJunkAttribute(slot, attno, &isnull) :
		slot_getattr(slot, attno, &isnull);
	return key_text(st, key, value, isnull);
}

/*
 * Whose CRM the row goes to: its key columns (the row read, for UPDATE and
 * DELETE), else the settings' or the mapping's user; st->conn and
 * st->credential are set for its requests.  An UPDATE cannot move a
 * record to another user or credential.
 */
static void
use_row_target(RolloutModifyState *st, TupleTableSlot *slot,
			   TupleTableSlot *planSlot)
{
	char	   *values[ROLLOUT_NKEYS];
	RolloutTarget *t;

	for (int k = 0; k < ROLLOUT_NKEYS; k++)
	{
		if (st->operation == CMD_INSERT)
			values[k] = row_key(st, (RolloutKey) k, slot, st->key_attno[k],
								false);
		else
		{
			values[k] = row_key(st, (RolloutKey) k, planSlot, st->key_junk[k],
								true);
			if (values[k] != NULL && st->operation == CMD_UPDATE &&
				list_member_int(st->target_attrs, st->key_attno[k]))
			{
				char	   *now = row_key(st, (RolloutKey) k, slot,
										  st->key_attno[k], false);

				if (now == NULL || strcmp(now, values[k]) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot move a record of foreign table \"%s\" to another Rollout %s",
									RelationGetRelationName(st->rel),
									k == ROLLOUT_KEY_USER ? "user" : "credential"),
							 errdetail("Column \"%s\" says whose CRM holds the record; nothing was sent.",
									   get_attname(RelationGetRelid(st->rel),
												   st->key_attno[k], false)),
							 errhint("Insert the record into the other CRM and delete it from this one.")));
			}
		}
	}
	t = linitial(rollout_targets(st->opts, st->um,
								 values[ROLLOUT_KEY_USER] ?
								 list_make1(values[ROLLOUT_KEY_USER]) : NIL,
								 values[ROLLOUT_KEY_USER] != NULL,
								 values[ROLLOUT_KEY_CREDENTIAL] ?
								 list_make1(values[ROLLOUT_KEY_CREDENTIAL]) : NIL,
								 values[ROLLOUT_KEY_CREDENTIAL] != NULL));
	st->conn = rollout_get_conn(st->um, t->user_id);
	st->credential = t->credential_id;
	if (st->credential == NULL && !rollout_any_user(st->opts) &&
		strcmp(t->user_id, st->opts->user_id) == 0)
		st->credential = st->opts->credential_id;
}

/* The key columns of a row Rollout answered: whose CRM it is in. */
static void
fill_keys(RolloutModifyState *st, TupleTableSlot *slot)
{
	for (int k = 0; k < ROLLOUT_NKEYS; k++)
	{
		RolloutColumn *col = NULL;
		const char *value = k == ROLLOUT_KEY_USER ? st->conn->user_id :
			st->credential ? st->credential : st->conn->credential_id;

		for (int i = 0; i < st->ncolumns; i++)
			if (st->columns[i].key == k)
				col = &st->columns[i];
		if (col == NULL || value == NULL)
			continue;
		slot->tts_values[col->attnum - 1] =
			InputFunctionCall(&col->infunc, unconstify(char *, value),
							  col->ioparam, col->typmod);
		slot->tts_isnull[col->attnum - 1] = false;
	}
}

static int
insert_rows(RolloutModifyState *st, TupleTableSlot **slots, int n,
			TupleTableSlot ***done)
{
	MemoryContext old;
	RolloutApiJob *jobs;
	RolloutPage **records;
	char	  **bodies;
	bool	   *skip;
	int		   *row_of;
	RolloutConn **conns;
	const char **credentials;
	int			njobs = 0;
	char	   *url;
	char	   *label;
	char	   *problem = NULL;
	int			failed = -1;
	int			created = 0;
	int			unreadable = 0;
	int			uncertain = 0;
	char	   *uncertain_why = NULL;
	ErrorContextCallback errcb;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);
	push_acted_context(st, &errcb);

	url = psprintf("%s/%s", st->opts->api_url, st->resource);
	label = psprintf("/%s", st->resource);
	bodies = palloc(sizeof(char *) * n);
	skip = palloc0(sizeof(bool) * n);
	conns = palloc(sizeof(RolloutConn *) * n);
	credentials = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
	{
		use_row_target(st, slots[i], NULL);
		conns[i] = st->conn;
		credentials[i] = st->credential;
		bodies[i] = rollout_build_body(st, slots[i], NULL);
	}
	/* one row a batch on a table with key columns (GetForeignModifyBatchSize) */
	if (st->skip_existing)
		rollout_skip_existing(st, bodies, n, skip);

	jobs = palloc0(sizeof(RolloutApiJob) * n);
	records = palloc0(sizeof(RolloutPage *) * n);
	row_of = palloc(sizeof(int) * n);
	*done = palloc(sizeof(TupleTableSlot *) * n);
	for (int i = 0; i < n; i++)
	{
		if (skip[i])
			continue;
		jobs[njobs].method = "POST";
		jobs[njobs].url = url;
		jobs[njobs].label = label;
		jobs[njobs].body = bodies[i];
		jobs[njobs].conn = conns[i];
		jobs[njobs].credential = credentials[i];
		row_of[njobs++] = i;
	}

	/* a row's user's own credential, found once the bodies are built */
	for (int j = 0; j < njobs; j++)
	{
		if (jobs[j].credential != NULL)
			continue;
		if (jobs[j].conn->credential_id == NULL)
			rollout_resolve_credential(jobs[j].conn, st->opts);
		jobs[j].credential = jobs[j].conn->credential_id;
	}
	st->in_flight = njobs;
	if (njobs > 0)
		rollout_api_run_jobs(st->opts, jobs, njobs);
	st->in_flight = 0;
	for (int j = 0; j < njobs; j++)
		rollout_stats_sum(&st->stats, &jobs[j].resp.stats);

	/* count first: whatever happens next, these exist */
	for (int j = 0; j < njobs; j++)
	{
		if (jobs[j].failure == ROLLOUT_FAIL_NONE &&
			jobs[j].resp.status >= 200 && jobs[j].resp.status <= 299)
			created++;
		else if (failed < 0)
			failed = j;
	}
	st->acted += created;
	for (int j = 0; j < njobs; j++)
	{
		char	   *why;
		bool		unsure = false;

		if (jobs[j].failure != ROLLOUT_FAIL_NONE ||
			jobs[j].resp.status < 200 || jobs[j].resp.status > 299)
			continue;
		records[j] = read_answer(st, &jobs[j].resp, "POST", label, &why,
								 &unsure);
		if (unsure)
		{
			/* not known to be created: said of as a request sent */
			st->acted--;
			uncertain++;
			uncertain_why = why;
			continue;
		}
		if (records[j] == NULL)
		{
			unreadable++;
			if (problem == NULL)
				problem = why;
		}
		rollout_remember_id(st, records[j] ? rollout_record_id(records[j], 0) : NULL);
	}
	st->in_flight = uncertain;
	if (failed >= 0)
		rollout_raise_insert_failure(st, jobs, njobs, failed);
	if (uncertain > 0)
	{
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout's answer to POST %s does not say which record it created",
						label),
				 errdetail_internal("%s", uncertain_why),
				 errhint("Rollout may have created the record: check the CRM before running the statement again.")));
	}
	if (unreadable > 0)
	{
		if (created == 1)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout created the record but its answer to POST %s could not be read",
							label),
					 errdetail_internal("%s", problem),
					 errhint("The record exists in the CRM: running the statement again would create it twice.")));
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout created %d records but %d of its answers to POST %s could not be read",
						created, unreadable, label),
				 errdetail_internal("%s", problem),
				 errhint("The records exist in the CRM: running the statement again would create them twice.")));
	}

	for (int j = 0; j < njobs; j++)
	{
		st->conn = conns[row_of[j]];
		st->credential = credentials[row_of[j]];
		if (st->retrieve)
			fill_row(st, slots[row_of[j]], records[j]);
		(*done)[j] = slots[row_of[j]];
	}
	error_context_stack = errcb.previous;
	MemoryContextSwitchTo(old);
	return njobs;
}

/* One row; NULL when ON CONFLICT DO NOTHING skipped it. */
TupleTableSlot *
rolloutExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	TupleTableSlot **done;

	if (insert_rows(rinfo->ri_FdwState, &slot, 1, &done) == 0)
		return NULL;
	return done[0];
}

/*
 * A batch; *numSlots becomes the number of rows created, which are
 * returned in order (ON CONFLICT DO NOTHING may have skipped some).  The
 * array returned lives until the next batch.
 */
TupleTableSlot **
rolloutExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
							  TupleTableSlot **slots, TupleTableSlot **planSlots,
							  int *numSlots)
{
	TupleTableSlot **done;

	*numSlots = insert_rows(rinfo->ri_FdwState, slots, *numSlots, &done);
	return done;
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
	/* ON CONFLICT looks each row up in its own user's CRM */
	if (st != NULL && st->skip_existing &&
		(st->key_attno[ROLLOUT_KEY_USER] || st->key_attno[ROLLOUT_KEY_CREDENTIAL]))
		return 1;
	if (st != NULL)
		return st->opts->batch_size;
	return rollout_get_options(GetForeignTable(RelationGetRelid(rel))->serverid,
							   InvalidOid, RelationGetRelid(rel))->batch_size;
}

/* The id of the row an UPDATE or DELETE acts on, as text. */
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

/*
 * Send one request about one record; returns its response.  The id goes
 * into the URL in UTF-8, percent-encoded.
 */
static RolloutResponse
record_request(RolloutModifyState *st, const char *method, const char *id,
			   const char *body)
{
	RolloutResponse resp;
	char	   *path = psprintf("/%s/%s%s", st->resource,
								rollout_escape(rollout_api_text(id)),
								strcmp(method, "PUT") == 0 ?
								rollout_update_query(st->opts) : "");

	rollout_api_request_as(st->conn, st->credential, st->opts, method, path,
						   body, &resp);
	rollout_stats_sum(&st->stats, &resp.stats);
	if (resp.status != 404)
		rollout_check_status(method, path, &resp);
	return resp;
}

/*
 * Start work on the row an UPDATE or DELETE acts on: a fresh temporary
 * context (returned switched to, the previous one in *old), the error
 * context saying what the statement did so far, and the row's id.
 */
static char *
begin_row(RolloutModifyState *st, TupleTableSlot *slot,
		  TupleTableSlot *planSlot, MemoryContext *old,
		  ErrorContextCallback *errcb)
{
	MemoryContextReset(st->temp_cxt);
	*old = MemoryContextSwitchTo(st->temp_cxt);
	push_acted_context(st, errcb);
	use_row_target(st, slot, planSlot);
	return row_id(st, planSlot);
}

static void
end_row(MemoryContext old, ErrorContextCallback *errcb)
{
	error_context_stack = errcb->previous;
	MemoryContextSwitchTo(old);
}

TupleTableSlot *
rolloutExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	RolloutModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	ErrorContextCallback errcb;
	char	   *id = begin_row(st, slot, planSlot, &old, &errcb);
	RolloutResponse resp;
	RolloutPage *record;
	char	   *problem;

	resp = record_request(st, "PUT", id, rollout_build_body(st, slot, id));
	if (resp.status == 404)
	{
		end_row(old, &errcb);
		return NULL;			/* gone since the scan: not updated */
	}
	st->acted++;
	rollout_remember_id(st, id);
	if (st->retrieve)
	{
		record = read_answer(st, &resp, "PUT",
							 psprintf("/%s/%s", st->resource, id), &problem, NULL);
		if (record == NULL)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout updated the record %s but its answer to PUT /%s/{id} could not be read",
							id, st->resource),
					 errdetail_internal("%s", problem),
					 errhint("The update was done; RETURNING and triggers cannot see the record as Rollout holds it.")));
		fill_row(st, slot, record);
	}
	end_row(old, &errcb);
	return slot;
}

/*
 * Fill a DELETE's slot with the row the scan read (the "rollout_row" junk
 * column): the record as it was, for a collection without GET by id.
 */
static void
row_as_read(RolloutModifyState *st, TupleTableSlot *slot,
			TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		row = ExecGetJunkAttribute(planSlot, st->row_attno, &isnull);
	HeapTupleHeader header;
	HeapTupleData tuple;

	ExecClearTuple(slot);
	if (isnull)
		return;					/* the executor makes it a row of NULLs */
	header = (HeapTupleHeader) PG_DETOAST_DATUM(row);
	tuple.t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = RelationGetRelid(st->rel);
	tuple.t_data = header;
	heap_deform_tuple(&tuple, slot->tts_tupleDescriptor, slot->tts_values,
					  slot->tts_isnull);
	ExecStoreVirtualTuple(slot);
	ExecMaterializeSlot(slot);
}

TupleTableSlot *
rolloutExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	RolloutModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	ErrorContextCallback errcb;
	char	   *id = begin_row(st, slot, planSlot, &old, &errcb);
	RolloutResponse resp;

	if (st->retrieve && AttributeNumberIsValid(st->row_attno))
		row_as_read(st, slot, planSlot);
	else if (st->retrieve)
	{
		/* the deleted record, as it was: DELETE answers only [] */
		RolloutPage *record;
		char	   *problem;

		resp = record_request(st, "GET", id, NULL);
		if (resp.status == 404)
		{
			end_row(old, &errcb);
			return NULL;
		}
		record = read_answer(st, &resp, "GET",
							 psprintf("/%s/%s", st->resource, id), &problem, NULL);
		if (record == NULL)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout's answer to GET /%s/{id} for record %s could not be read",
							st->resource, id),
					 errdetail_internal("%s", problem),
					 errhint("The record was not deleted.")));
		fill_row(st, slot, record);
	}
	resp = record_request(st, "DELETE", id, NULL);

	/* 404 after a retry: an earlier attempt did delete it */
	if (resp.status == 404 && resp.retries == 0)
	{
		end_row(old, &errcb);
		return NULL;
	}
	st->acted++;
	rollout_remember_id(st, id);
	end_row(old, &errcb);
	return slot;
}

/* What the table's collection allows (endpoint.c). */
int
rolloutIsForeignRelUpdatable(Relation rel)
{
	return rollout_endpoint_updatable(rollout_table_endpoint(RelationGetRelid(rel)));
}

void
rolloutExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
							List *fdw_private, int subplan_index,
							ExplainState *es)
{
	const char *resource = strVal(list_nth(fdw_private, ModifyPrivateResource));
	bool		retrieve = intVal(list_nth(fdw_private,
										   ModifyPrivateRetrieve)) != 0;

	switch (mtstate->operation)
	{
		case CMD_INSERT:
			ExplainPropertyText("Rollout Request",
								psprintf("POST /%s", resource), es);
			if (intVal(list_nth(fdw_private, ModifyPrivateSkipExisting)))
				ExplainPropertyText("Rollout Conflict Check",
									psprintf("GET /%s?email={each e-mail of the row}",
											 resource), es);
			if (rinfo->ri_BatchSize > 1)
				ExplainPropertyInteger("Batch Size", NULL,
									   rinfo->ri_BatchSize, es);
			break;
		case CMD_UPDATE:
			{
				Oid			relid = RelationGetRelid(rinfo->ri_RelationDesc);
				RolloutOptions *opts =
					rollout_get_options(GetForeignTable(relid)->serverid,
										InvalidOid, relid);

				ExplainPropertyText("Rollout Request",
									psprintf("PUT /%s/{id}%s", resource,
											 rollout_update_query(opts)), es);
			}
			break;
		case CMD_DELETE:
			ExplainPropertyText("Rollout Request",
								retrieve &&
								rollout_endpoint_has(resource, ROLLOUT_ROUTE_GET) ?
								psprintf("GET /%s/{id}, then DELETE /%s/{id}",
										 resource, resource) :
								psprintf("DELETE /%s/{id}", resource), es);
			break;
		default:
			break;
	}

	/* what the statement's requests cost, as a scan shows it */
	if (es->analyze && rinfo->ri_FdwState != NULL)
		rollout_explain_counters(&((RolloutModifyState *) rinfo->ri_FdwState)->stats,
								 -1, es);
}
