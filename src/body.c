/*-------------------------------------------------------------------------
 *
 * body.c
 *		  The JSON body of a row an INSERT or UPDATE sends: the columns
 *		  through their field paths, nested objects, a field '*' column's
 *		  keys, in UTF-8.
 *
 * Rules kept here:
 *	- a body is built, and every value converted to JSON, before anything is
 *	  sent: a value JSON cannot hold (NaN, ...) is an error with nothing sent;
 *	- everything sent is UTF-8, converted from the database encoding; a
 *	  SQL_ASCII database's bytes must already be UTF-8;
 *	- no body carries the key "id", whatever writes it (the id column,
 *	  another column with field 'id', the keys of a field '*' value);
 *	- no body carries a read-only field of its collection (crm_fields.h,
 *	  generated from the OpenAPI snapshot: answered, accepted by no create
 *	  or update): a column that writes one with a value is an error naming
 *	  it (an INSERT's NULL is left out like every NULL), a field '*' value's
 *	  key is left out (a record read back carries them);
 *	- a column wins over the same key from a field '*' value.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "common/string.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "rollout_fdw.h"

/* The read-only fields of a collection (crm_fields.h). */
typedef struct ReadOnlyFields
{
	const char *resource;
	const char *const *fields;	/* NULL-terminated */
} ReadOnlyFields;

#include "crm_fields.h"

static const ReadOnlyFields read_only_fields[] = {
	ROLLOUT_GENERATED_READ_ONLY
};

/* One key of a JSON body: a path of keys and the value's JSON text. */
typedef struct BodyEntry
{
	List	   *path;			/* String nodes, outermost first */
	char	   *json;
	bool		weak;			/* from a field '*' column: columns win */
} BodyEntry;

/* An UPDATE that would change the id: refused, nothing sent. */
void
rollout_id_cannot_change(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_GENERATED_ALWAYS),
			 errmsg("cannot change the id of a record of foreign table \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("The id identifies the CRM record; Rollout assigns it.")));
}

static void
body_error_callback(void *arg)
{
	RolloutModifyState *st = (RolloutModifyState *) arg;

	if (st->cur_column != NULL)
		errcontext("column \"%s\" of foreign table \"%s\"",
				   st->cur_column->attname, RelationGetRelationName(st->rel));
}

/*
 * A wildcard column (field 'emails[*].value') reads a value of each
 * element: it writes nothing, since the elements' other keys would be
 * lost.  NULL is simply left out; a value is refused.
 */
static void
wildcard_not_written(RolloutColumn *col, bool isnull)
{
	int			prefix = (int) (strstr(col->field, "[*]") - col->field);

	if (!isnull)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column \"%s\" cannot be written: its field \"%s\" reads every element of an array",
						col->attname, col->field),
				 errhint("Write the whole array, field \"%.*s\", through a jsonb column instead.",
						 prefix, col->field)));
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

/*
 * Text sent to Rollout, which reads UTF-8: converted from the database
 * encoding.  A SQL_ASCII database knows no encoding: its bytes go as they
 * are, and must be UTF-8 already (pg_server_to_any does not check them).
 */
char *
rollout_api_text(const char *text)
{
	size_t		len = strlen(text);

	if (GetDatabaseEncoding() != PG_SQL_ASCII)
		return pg_server_to_any(text, len, PG_UTF8);
	if (!pg_verify_mbstr(PG_UTF8, text, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("text sent to Rollout is not valid UTF-8"),
				 errdetail("A SQL_ASCII database passes its bytes to Rollout as they are, and Rollout reads only UTF-8; nothing was sent."),
				 errhint("Store text in this database as UTF-8, or use a database with a real encoding.")));
	return unconstify(char *, text);
}

/*
 * Is key a read-only field of the collection at path resource: answered by
 * the API, accepted by none of its requests?  A collection the snapshot does
 * not list has none.
 */
static bool
is_read_only(const char *resource, const char *key)
{
	for (int i = 0; i < lengthof(read_only_fields); i++)
	{
		if (strcmp(read_only_fields[i].resource, resource) != 0)
			continue;
		for (const char *const *f = read_only_fields[i].fields; *f; f++)
			if (strcmp(*f, key) == 0)
				return true;
		return false;
	}
	return false;
}

/* Is this JSON text the row's id, as a string or as a number? */
static bool
is_row_id(const char *json, const char *row_id)
{
	StringInfoData quoted;

	if (strcmp(json, row_id) == 0)
		return true;
	initStringInfo(&quoted);
	escape_json(&quoted, row_id);
	return strcmp(json, quoted.data) == 0;
}

/*
 * Add a key of the body, unless it writes the record's id or a read-only
 * field.  No body sends the key "id", whatever writes it: an INSERT cannot
 * set it (a null asks for nothing and is dropped); an UPDATE drops the
 * row's own id (a field '*' value read back with the record carries it)
 * and refuses any other.  A read-only field is refused from a column and
 * dropped from a field '*' value (weak).  row_id is the id of the row an
 * UPDATE acts on, NULL for an INSERT.
 */
static List *
add_entry(RolloutModifyState *st, List *entries, List *path, char *json,
		  bool weak, const char *row_id)
{
	BodyEntry  *e;

	if (GetDatabaseEncoding() == PG_SQL_ASCII)
	{
		ListCell   *lc;

		/* checked here for an error naming the column */
		foreach(lc, path)
			(void) rollout_api_text(strVal(lfirst(lc)));
		(void) rollout_api_text(json);
	}
	if (is_read_only(st->resource, strVal(linitial(path))))
	{
		if (weak)
			return entries;
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("column \"%s\" is read-only in the CRM",
						st->cur_column->attname),
				 errdetail("Rollout sets the field \"%s\" of a record of \"%s\" itself: no create or update request accepts it.",
						   strVal(linitial(path)), st->resource),
				 row_id == NULL
				 ? errhint("Leave the column out of the INSERT, or insert NULL.")
				 : errhint("Leave the column out of the SET list.")));
	}
	if (strcmp(strVal(linitial(path)), "id") == 0)
	{
		bool		scalar = list_length(path) == 1;

		if (row_id == NULL && scalar && strcmp(json, "null") == 0)
			return entries;
		if (row_id == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_GENERATED_ALWAYS),
					 errmsg("cannot set the id of a new record of foreign table \"%s\"",
							RelationGetRelationName(st->rel)),
					 errdetail("Column \"%s\" writes the field \"id\"; Rollout assigns the id of a new record.",
							   st->cur_column->attname),
					 errhint("Leave \"id\" out of the value, or make it null.")));
		if (scalar && is_row_id(json, row_id))
			return entries;
		rollout_id_cannot_change(st->rel);
	}
	e = palloc0(sizeof(BodyEntry));
	e->path = path;
	e->json = json;
	e->weak = weak;
	return lappend(entries, e);
}

/*
 * The keys of a field '*' value (a JSON object) as weak entries.  The
 * value is read as jsonb: its text stays in the database encoding like
 * every other value of the body, and its numbers stay exact.
 */
static List *
whole_record_entries(RolloutModifyState *st, List *entries,
					 RolloutColumn *col, Datum value, const char *row_id)
{
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (getBaseType(col->typid) == JSONBOID)
		jb = DatumGetJsonbP(value);
	else
	{
		Oid			typoutput;
		bool		varlena;

		getTypeOutputInfo(col->typid, &typoutput, &varlena);
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												CStringGetDatum(OidOutputFunctionCall(typoutput, value))));
	}
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a field '*' column must hold a JSON object to be written")));

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;
		Jsonb	   *item;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);
		item = JsonbValueToJsonb(&v);
		entries = add_entry(st, entries, list_make1(makeString(key)),
							JsonbToCString(NULL, &item->root, VARSIZE(item)),
							true, row_id);
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
 * The JSON body of a row, in UTF-8: the given columns through their field
 * mapping.  INSERT (row_id NULL) leaves NULLs out; UPDATE (row_id the id
 * of its row) sends them as null, to clear a field.  The keys of a field
 * '*' column are merged in, the other columns winning.
 */
char *
rollout_build_body(RolloutModifyState *st, TupleTableSlot *slot, const char *row_id)
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
		if (col->wildcard)
		{
			wildcard_not_written(col, isnull);
			continue;
		}
		if (col->key != ROLLOUT_KEY_NONE)
			continue;			/* whose CRM: where the request goes */
		if (isnull && (row_id == NULL || col->whole_record))
			continue;
		if (col->whole_record)
			entries = whole_record_entries(st, entries, col, value, row_id);
		else
		{
			StringInfoData json;
			int			before = list_length(entries);

			initStringInfo(&json);
			if (isnull)
				appendStringInfoString(&json, "null");
			else
				rollout_datum_to_json(&json, value, col->typid);
			entries = add_entry(st, entries, write_path(col), json.data,
								false, row_id);
			if (list_length(entries) > before)
				strong_keys = lappend(strong_keys,
									  linitial(((BodyEntry *) llast(entries))->path));
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
	return rollout_api_text(buf.data);
}
