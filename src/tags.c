/*-------------------------------------------------------------------------
 *
 * tags.c
 *		  Set changes that need no read-then-rewrite: tags applied to or
 *		  removed from a person (rollout_fdw_apply_tags,
 *		  rollout_fdw_remove_tags: POST /people/{id}/tags/apply|delete),
 *		  people added to or removed from a list (rollout_fdw_add_to_list,
 *		  rollout_fdw_remove_from_list: POST|DELETE /lists/{id}/people),
 *		  and the merge_tags query of an UPDATE's PUT (?mergeTags=true).
 *
 * `SET tags = tags || '{x}'` reads the tags and writes them all back: a
 * tag another session applied in between is lost.  These requests change
 * only what they name, on Rollout's side.
 *
 * Rules kept here:
 *	- a function acts through a foreign table of rollout_fdw: its server,
 *	  its collection (which must have the route), the calling user's
 *	  mapping, and the UPDATE privilege on the table that an UPDATE of it
 *	  would need;
 *	- requests go through api.c: the same token, credential, rate limit,
 *	  retries, errors and counters as a scan;
 *	- everything sent is UTF-8 (rollout_api_text), the id percent-encoded
 *	  in the URL; a NULL element is an error with nothing sent;
 *	- the answer is the record's field as Rollout holds it afterwards, read
 *	  with GET /{resource}/{id}; a record the API does not find (404) is
 *	  NULL, as an UPDATE of a vanished record is no row;
 *	- a change Rollout answered 2xx is done: when reading the field back
 *	  then fails, the error's context says the change was made.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "rollout_fdw.h"

/* The table a function acts through, resolved for the calling user. */
typedef struct SetTarget
{
	RolloutOptions *opts;
	RolloutConn *conn;
	const char *credential;		/* or NULL: the user's own */
} SetTarget;

/*
 * The foreign table tbl, locked as a scan locks it and checked: a
 * rollout_fdw table, the caller holding UPDATE on it, its collection
 * having route (route_name says which in messages).
 */
static SetTarget
open_target(Oid relid, int route, const char *route_name,
			const char *collection_hint)
{
	SetTarget	t;
	Oid			userid = GetUserId();
	Relation	rel = try_relation_open(relid, AccessShareLock);
	char	   *relname;
	AclResult	aclresult;
	ForeignTable *table;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relname = pstrdup(RelationGetRelationName(rel));
	/* the lock is kept to the end of the transaction, as a scan's */
	relation_close(rel, NoLock);
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table", relname)));
	aclresult = pg_class_aclcheck(relid, userid, ACL_UPDATE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_TABLE, relname);
	table = GetForeignTable(relid);
	if (!rollout_uses_fdw(GetForeignServer(table->serverid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("foreign table \"%s\" does not use rollout_fdw",
						relname)));

	t.opts = rollout_get_options(table->serverid, userid, relid);
	if (!rollout_endpoint_has(t.opts->resource, route))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the collection \"%s\" of foreign table \"%s\" has no %s",
						t.opts->resource, relname, route_name),
				 errhint("%s", collection_hint)));
	{
		/* whose CRM: the settings' user, else the mapping's (checked) */
		UserMapping *um = GetUserMapping(userid, table->serverid);
		RolloutTarget *whose = linitial(rollout_targets(t.opts, um, NIL, false,
														NIL, false));

		t.conn = rollout_get_conn(um, whose->user_id);
		t.credential = whose->credential_id;
	}
	return t;
}

/*
 * {"key": [...]} of a text[] in UTF-8; *count is its element count.  A
 * NULL element is an error: nothing is sent.
 */
static char *
array_body(const char *key, ArrayType *values, const char *what, int *count)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	StringInfoData buf;

	deconstruct_array(values, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	escape_json(&buf, key);
	appendStringInfoString(&buf, ":[");
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the %s may not contain NULL", what),
					 errdetail("Nothing was sent.")));
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, TextDatumGetCString(elems[i]));
	}
	appendStringInfoString(&buf, "]}");
	*count = n;
	return rollout_api_text(buf.data);
}

/*
 * One request about the record id of the target's collection: path
 * /{resource}/{id}{suffix}.  False when the API does not find it (404);
 * any other failure raises.  *resp gets the answer.
 */
static bool
record_request(SetTarget *t, const char *method, const char *id,
			   const char *suffix, const char *body, RolloutResponse *resp)
{
	char	   *path = psprintf("/%s/%s%s", t->opts->resource,
								rollout_escape(rollout_api_text(id)), suffix);

	rollout_api_request_as(t->conn, t->credential, t->opts, method, path,
						   body, resp);
	if (resp->status == 404)
		return false;
	rollout_check_status(method, path, resp);
	return true;
}

/* One element of an answered array as text in the database encoding. */
static Datum
element_text(json_t *elem, const char *label, const char *key, bool *isnull)
{
	*isnull = false;
	if (json_is_string(elem))
	{
		const char *s = json_string_value(elem);
		size_t		len = json_string_length(elem);

		if (strlen(s) != len)
			ereport(ERROR,
					(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
					 errmsg("Rollout response to %s holds a \"%s\" element with a \\u0000",
							label, key)));
		return CStringGetTextDatum(pg_any_to_server(s, (int) len, PG_UTF8));
	}
	if (json_is_number(elem))
		return CStringGetTextDatum(rollout_json_scalar_text(elem));
	if (json_is_null(elem))
	{
		*isnull = true;
		return (Datum) 0;
	}
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
			 errmsg("Rollout response to %s holds a \"%s\" element that is not a string",
					label, key)));
	return (Datum) 0;			/* keep the compiler quiet */
}

/*
 * The field key of record id as Rollout holds it now (GET
 * /{resource}/{id}), as text[]: an absent or null field is an empty array.
 * False when the record is not found.
 */
static bool
read_set(SetTarget *t, const char *id, const char *key, Datum *result)
{
	RolloutResponse resp;
	json_t	   *root;
	json_t	   *field;
	char	   *label;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			dims[1];
	int			lbs[1] = {1};

	if (!record_request(t, "GET", id, "", NULL, &resp))
		return false;
	label = psprintf("GET /%s/%s", t->opts->resource, id);
	root = rollout_json_parse(CurrentMemoryContext, resp.body, resp.body_len,
							  "GET", psprintf("/%s/%s", t->opts->resource, id));
	if (!json_is_object(root))
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to %s is not a JSON object", label)));
	field = json_object_get(root, key);
	if (field != NULL && !json_is_null(field) && !json_is_array(field))
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to %s holds a \"%s\" that is not an array",
						label, key)));
	n = field && json_is_array(field) ? (int) json_array_size(field) : 0;
	elems = palloc(sizeof(Datum) * Max(n, 1));
	nulls = palloc(sizeof(bool) * Max(n, 1));
	for (int i = 0; i < n; i++)
		elems[i] = element_text(json_array_get(field, i), label, key,
								&nulls[i]);
	dims[0] = n;
	*result = PointerGetDatum(n == 0 ? construct_empty_array(TEXTOID) :
							  construct_md_array(elems, nulls, 1, dims, lbs,
												 TEXTOID, -1, false,
												 TYPALIGN_INT));
	return true;
}

/* What one of the four functions sends, and what it reads back. */
typedef struct SetChange
{
	int			route;			/* ROLLOUT_ROUTE_* the collection needs */
	const char *route_name;		/* ... as messages name it */
	const char *hint;			/* which collection has it */
	const char *method;
	const char *suffix;			/* after /{resource}/{id} */
	const char *key;			/* the body's key */
	const char *what;			/* the array, as messages name it */
	const char *read_key;		/* the record's field returned */
} SetChange;

#define TAGS(method_suffix) \
	{ROLLOUT_ROUTE_TAGS, \
	 "tag requests (POST /{id}/tags/apply and /{id}/tags/delete)", \
	 "Use a foreign table with resource 'people'.", \
	 "POST", method_suffix, "tags", "tags", "tags"}
#define MEMBERS(method) \
	{ROLLOUT_ROUTE_MEMBERS, \
	 "member requests (POST and DELETE /{id}/people)", \
	 "Use a foreign table with resource 'lists'.", \
	 method, "/people", "personIds", "person ids", "peopleParticipantIds"}

static const SetChange apply_tags = TAGS("/tags/apply");
static const SetChange remove_tags = TAGS("/tags/delete");
static const SetChange add_members = MEMBERS("POST");
static const SetChange remove_members = MEMBERS("DELETE");

/* The change a failed read-back follows, for the error context. */
typedef struct DoneChange
{
	const SetChange *change;
	const char *resource;
	const char *id;
} DoneChange;

static void
change_done_callback(void *arg)
{
	DoneChange *d = (DoneChange *) arg;

	errcontext("%s /%s/%s%s was answered 2xx: Rollout made the change before the failure (running the call again does it again, harmlessly)",
			   d->change->method, d->resource, d->id, d->change->suffix);
}

/*
 * The body of the four functions (tbl regclass, id text, values text[]):
 * the change on record id, then its field as Rollout holds it.  An empty
 * array sends no change, only the read.
 */
static Datum
change_set(FunctionCallInfo fcinfo, const SetChange *c)
{
	SetTarget	t = open_target(PG_GETARG_OID(0), c->route, c->route_name,
								c->hint);
	char	   *id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			count;
	char	   *body = array_body(c->key, PG_GETARG_ARRAYTYPE_P(2), c->what,
								  &count);
	RolloutResponse resp;
	Datum		result;
	bool		found;
	DoneChange	done = {c, t.opts->resource, id};
	ErrorContextCallback errcb;

	if (count > 0 && !record_request(&t, c->method, id, c->suffix, body, &resp))
		PG_RETURN_NULL();
	errcb.callback = change_done_callback;
	errcb.arg = &done;
	errcb.previous = error_context_stack;
	if (count > 0)
		error_context_stack = &errcb;
	found = read_set(&t, id, c->read_key, &result);
	error_context_stack = errcb.previous;
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(rollout_fdw_apply_tags);
PG_FUNCTION_INFO_V1(rollout_fdw_remove_tags);
PG_FUNCTION_INFO_V1(rollout_fdw_add_to_list);
PG_FUNCTION_INFO_V1(rollout_fdw_remove_from_list);

/* rollout_fdw_apply_tags(tbl, id, tags): the person's tags afterwards. */
Datum
rollout_fdw_apply_tags(PG_FUNCTION_ARGS)
{
	return change_set(fcinfo, &apply_tags);
}

/* rollout_fdw_remove_tags(tbl, id, tags): the person's tags afterwards. */
Datum
rollout_fdw_remove_tags(PG_FUNCTION_ARGS)
{
	return change_set(fcinfo, &remove_tags);
}

/* rollout_fdw_add_to_list(tbl, list_id, person_ids): the list's people. */
Datum
rollout_fdw_add_to_list(PG_FUNCTION_ARGS)
{
	return change_set(fcinfo, &add_members);
}

/* rollout_fdw_remove_from_list(tbl, list_id, person_ids): the list's people. */
Datum
rollout_fdw_remove_from_list(PG_FUNCTION_ARGS)
{
	return change_set(fcinfo, &remove_members);
}

/*
 * The query string of an UPDATE's PUT: "?mergeTags=true" when the table's
 * merge_tags is on (tags sent are added to the record's, none removed),
 * else "".  The validator refuses merge_tags on a collection whose PUT has
 * no mergeTags; checked again here, whatever changed since.
 */
const char *
rollout_update_query(RolloutOptions *opts)
{
	if (!opts->merge_tags)
		return "";
	if (!rollout_endpoint_has(opts->resource, ROLLOUT_ROUTE_MERGE_TAGS))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("option \"merge_tags\" needs a collection whose update takes mergeTags, not \"%s\"",
						opts->resource),
				 errhint("Only people has it: remove merge_tags from the table.")));
	return "?mergeTags=true";
}
