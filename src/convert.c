/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  A value the decoder kept -> the column's Datum: what each column
 *		  reads (its field paths), and the type table of README "Types".
 *
 * Rules kept here:
 *	- null or a missing key is NULL; "" is NULL for every non-text type;
 *	- numbers reach the type's input function as the API wrote them, so
 *	  numeric, text and jsonb keep every digit and only the column's type
 *	  may refuse a number;
 *	- every string and JSON text is converted from UTF-8 to the database
 *	  encoding (which validates it); a character the database cannot hold
 *	  is an error;
 *	- everything goes through the column type's input function, domains
 *	  included (their CHECKs apply to values read), so PostgreSQL's own
 *	  rules and SQLSTATEs apply;
 *	- a value that does not convert raises an error whose context names the
 *	  column, the record id and the value (made safe to print).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "rollout_fdw.h"

static RolloutConvKind
kind_of(Oid typid)
{
	switch (typid)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			return ROLLOUT_CONV_TEXT;
		case BOOLOID:
			return ROLLOUT_CONV_BOOL;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case OIDOID:
			return ROLLOUT_CONV_NUMBER;
		case JSONOID:
		case JSONBOID:
			return ROLLOUT_CONV_JSON;
	}
	if (OidIsValid(get_element_type(typid)))
		return ROLLOUT_CONV_ARRAY;
	return ROLLOUT_CONV_OTHER;
}

static bool
is_integer_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
		typid == OIDOID;
}

/* first_name -> firstName; NULL when that is the name itself. */
static char *
camel_case(const char *name)
{
	char	   *out = palloc(strlen(name) + 1);
	char	   *o = out;
	bool		upper = false;

	for (const char *p = name; *p; p++)
	{
		if (*p == '_' && o != out)
		{
			upper = true;
			continue;
		}
		*o++ = upper ? pg_toupper((unsigned char) *p) : *p;
		upper = false;
	}
	*o = '\0';
	if (strcmp(out, name) == 0)
	{
		pfree(out);
		return NULL;
	}
	return out;
}

/* A key in UTF-8, as the API writes it, with its value as an array index. */
static void
set_path_key(RolloutFieldPath *p, int i, const char *key)
{
	size_t		digits = strspn(key, "0123456789");

	p->keys[i] = pg_server_to_any(key, (int) strlen(key), PG_UTF8);
	p->index[i] = -1;
	if (digits > 0 && digits == strlen(key) && digits <= 9)
		p->index[i] = (int32) strtol(key, NULL, 10);
}

static void
make_path(RolloutFieldPath *p, List *keys)
{
	int			i = 0;
	ListCell   *lc;

	p->nkeys = list_length(keys);
	p->keys = palloc(sizeof(char *) * Max(p->nkeys, 1));
	p->index = palloc(sizeof(int32) * Max(p->nkeys, 1));
	foreach(lc, keys)
		set_path_key(p, i++, strVal(lfirst(lc)));
}

/* The keys of a dot-separated path, empty ones too: the validator refuses those. */
static List *
split_keys(const char *path)
{
	char	   *part = pstrdup(path);
	List	   *keys = NIL;

	for (;;)
	{
		char	   *dot = strchr(part, '.');

		if (dot != NULL)
			*dot = '\0';
		keys = lappend(keys, makeString(part));
		if (dot == NULL)
			return keys;
		part = dot + 1;
	}
}

/*
 * A wildcard field 'key[*].sub.path' (option.c checked its form): the
 * decoder keeps the array at key, the conversion reads sub.path in each
 * element.  Only an array column can hold what it reads.
 */
static void
init_wildcard(RolloutColumn *col, Relation rel)
{
	const char *star = strstr(col->field, "[*]");

	if (col->kind != ROLLOUT_CONV_ARRAY)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("column \"%s\" of foreign table \"%s\" must be an array to read field \"%s\"",
						col->attname, RelationGetRelationName(rel),
						col->field),
				 errdetail("A \"[*]\" path reads a value from every element of an array."),
				 errhint("Declare the column as an array type, such as text[].")));
	col->wildcard = true;
	col->path = split_keys(pnstrdup(col->field, star - col->field));
	make_path(&col->paths[0], col->path);
	col->npaths = 1;
	make_path(&col->elem_path, split_keys(star + 4));
}

/* Prepare everything a column needs to read and convert its value. */
void
rollout_column_init(RolloutColumn *col, Relation rel, AttrNumber attnum)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	char	   *field = rollout_column_field(RelationGetRelid(rel), attnum);
	Oid			basetype;
	Oid			infunc;

	memset(col, 0, sizeof(RolloutColumn));
	col->attnum = attnum;
	col->attname = pstrdup(NameStr(att->attname));
	col->field = field;
	col->key = rollout_key_of_field(field);

	col->typid = att->atttypid;
	col->typmod = att->atttypmod;
	basetype = getBaseType(att->atttypid);
	col->is_domain = basetype != att->atttypid;
	col->kind = kind_of(basetype);
	col->is_integer = is_integer_type(basetype);
	getTypeInputInfo(att->atttypid, &infunc, &col->ioparam);
	fmgr_info(infunc, &col->infunc);

	if (col->kind == ROLLOUT_CONV_ARRAY)
	{
		col->elemtype = get_element_type(basetype);
		col->elemkind = kind_of(getBaseType(col->elemtype));
		col->elem_is_integer = is_integer_type(getBaseType(col->elemtype));
		getTypeInputInfo(col->elemtype, &infunc, &col->elem_ioparam);
		fmgr_info(infunc, &col->elem_infunc);
		get_typlenbyvalalign(col->elemtype, &col->elemlen, &col->elembyval,
							 &col->elemalign);
	}

	if (col->key != ROLLOUT_KEY_NONE)
		col->npaths = 0;		/* not in the record: the scan fills it */
	else if (field != NULL && strcmp(field, "*") == 0)
		col->whole_record = true;
	else if (field != NULL && strstr(field, "[*]") != NULL)
		init_wildcard(col, rel);
	else if (field != NULL)
	{
		col->path = split_keys(field);
		make_path(&col->paths[0], col->path);
		col->npaths = 1;
	}
	else
	{
		col->key_exact = col->attname;
		col->key_camel = camel_case(col->attname);
		make_path(&col->paths[0], list_make1(makeString(col->key_exact)));
		col->npaths = 1;
		if (col->key_camel != NULL)
		{
			make_path(&col->paths[1], list_make1(makeString(col->key_camel)));
			col->npaths = 2;
		}
	}
}

/* ------------------------------------------------------------------
 * Text of a value, in the database encoding
 * ------------------------------------------------------------------ */

/*
 * A slice of the body (UTF-8) in the database encoding, NUL-terminated.
 * pg_any_to_server validates the UTF-8 and raises 22021 or 22P05.
 */
static char *
server_text(const char *s, int len)
{
	char	   *converted = pg_any_to_server(s, len, PG_UTF8);

	if (converted == s)
		return pnstrdup(s, len);
	return converted;
}

/* A JSON string's text, unescaped and converted. */
static char *
string_text(RolloutPage *page, RolloutValue *v)
{
	const char *problem;
	char	   *utf8 = rollout_json_unescape(page->body + v->off + 1,
											 v->len - 2, &problem);

	if (utf8 == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("a JSON string holds %s", problem)));
	return server_text(utf8, (int) strlen(utf8));
}

/* What a text column reads: strings unescaped, anything else as written. */
static char *
value_text(RolloutPage *page, RolloutValue *v)
{
	if (v->type == ROLLOUT_JSON_STRING)
		return string_text(page, v);
	return server_text(page->body + v->off, v->len);
}

static const char *
json_type_name(RolloutValueType type)
{
	switch (type)
	{
		case ROLLOUT_JSON_OBJECT:
			return "object";
		case ROLLOUT_JSON_ARRAY:
			return "array";
		case ROLLOUT_JSON_STRING:
			return "string";
		case ROLLOUT_JSON_NUMBER:
			return "number";
		case ROLLOUT_JSON_TRUE:
		case ROLLOUT_JSON_FALSE:
			return "boolean";
		case ROLLOUT_JSON_NULL:
			return "null";
	}
	return "value";
}

static void
cannot_convert(RolloutValueType type, Oid typid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("cannot convert a JSON %s to type %s",
					json_type_name(type), format_type_be(typid))));
}

/*
 * A non-array value by conversion kind, through the given input function
 * (the column's, so a domain's checks apply).
 */
/*
 * A JSON number written with a fraction or an exponent (5.0, 1e2) for an
 * integer column: its integral value as digits, else the text unchanged
 * (the integer type's input function then refuses it).
 */
static const char *
integral_text(const char *text)
{
	Datum		num;
	Datum		trunc;

	if (strpbrk(text, ".eE") == NULL)
		return text;
	num = DirectFunctionCall3(numeric_in, CStringGetDatum(text),
							  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	trunc = DirectFunctionCall2(numeric_trunc, num, Int32GetDatum(0));
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, num, trunc)))
		return text;
	return DatumGetCString(DirectFunctionCall1(numeric_out, trunc));
}

static Datum
convert_scalar(RolloutPage *page, RolloutValue *v, RolloutConvKind kind,
			   Oid typid, FmgrInfo *infunc, Oid ioparam, int32 typmod,
			   bool is_integer, bool *isnull)
{
	const char *text = NULL;
	RolloutValueType type = (RolloutValueType) v->type;

	*isnull = false;
	if (type == ROLLOUT_JSON_NULL ||
		(type == ROLLOUT_JSON_STRING && kind != ROLLOUT_CONV_TEXT &&
		 v->len == 2))
	{
		*isnull = true;
		return InputFunctionCall(infunc, NULL, ioparam, typmod);
	}

	switch (kind)
	{
		case ROLLOUT_CONV_TEXT:
			break;
		case ROLLOUT_CONV_BOOL:
			if (type == ROLLOUT_JSON_NUMBER && v->len == 1 &&
				(page->body[v->off] == '0' || page->body[v->off] == '1'))
				text = page->body[v->off] == '1' ? "true" : "false";
			else if (type != ROLLOUT_JSON_TRUE && type != ROLLOUT_JSON_FALSE &&
					 type != ROLLOUT_JSON_STRING)
				cannot_convert(type, typid);
			break;
		case ROLLOUT_CONV_NUMBER:
			if (type != ROLLOUT_JSON_NUMBER && type != ROLLOUT_JSON_STRING)
				cannot_convert(type, typid);
			break;
		case ROLLOUT_CONV_JSON:
			text = server_text(page->body + v->off, v->len);
			break;
		case ROLLOUT_CONV_ARRAY:
		case ROLLOUT_CONV_OTHER:
			if (type == ROLLOUT_JSON_OBJECT || type == ROLLOUT_JSON_ARRAY ||
				type == ROLLOUT_JSON_TRUE || type == ROLLOUT_JSON_FALSE)
				cannot_convert(type, typid);
			break;
	}
	if (text == NULL)
		text = value_text(page, v);
	if (is_integer && type == ROLLOUT_JSON_NUMBER)
		text = integral_text(text);
	return InputFunctionCall(infunc, unconstify(char *, text), ioparam,
							 typmod);
}

/* An element of an array value, converted like the array's elements. */
static Datum
convert_element(RolloutPage *page, RolloutValue *item, RolloutColumn *col,
				bool *isnull)
{
	if ((item->type == ROLLOUT_JSON_OBJECT ||
		 item->type == ROLLOUT_JSON_ARRAY) &&
		col->elemkind != ROLLOUT_CONV_TEXT &&
		col->elemkind != ROLLOUT_CONV_JSON)
		cannot_convert(item->type, col->elemtype);
	return convert_scalar(page, item, col->elemkind, col->elemtype,
						  &col->elem_infunc, col->elem_ioparam, col->typmod,
						  col->elem_is_integer, isnull);
}

/* The column's 1-D array of n converted elements (a domain checked). */
static Datum
make_array(RolloutColumn *col, Datum *elems, bool *nulls, int n)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	Datum		result;

	result = PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
												col->elemtype, col->elemlen,
												col->elembyval,
												col->elemalign));
	if (col->is_domain)
		domain_check(result, false, col->typid, &col->domain_extra,
					 col->infunc.fn_mcxt);
	return result;
}

static Datum
convert_array(RolloutPage *page, RolloutValue *v, RolloutColumn *col)
{
	int			n;
	RolloutValue *items = rollout_decode_elements(page->body, v, &n);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = convert_element(page, &items[i], col, &nulls[i]);
	return make_array(col, elems, nulls, n);
}

/*
 * A wildcard column (field 'emails[*].value'): the value at the element
 * path of each element of the array, in order.  No array (null, missing)
 * is NULL; an element where the path leads nowhere or to null adds
 * nothing, so the array holds only values; anything but an array at the
 * wildcard is an error.
 */
static Datum
convert_wildcard(RolloutPage *page, RolloutValue *v, RolloutColumn *col,
				 bool *isnull)
{
	int			n;
	int			kept = 0;
	RolloutValue *items;
	Datum	   *elems;
	bool	   *nulls;

	if (v == NULL || v->type == ROLLOUT_JSON_NULL)
	{
		*isnull = true;
		return InputFunctionCall(&col->infunc, NULL, col->ioparam,
								 col->typmod);
	}
	*isnull = false;
	if (v->type != ROLLOUT_JSON_ARRAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("cannot read field \"%s\": the value before \"[*]\" is a JSON %s, not an array",
						col->field,
						json_type_name((RolloutValueType) v->type))));
	items = rollout_decode_elements(page->body, v, &n);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	nulls = palloc(sizeof(bool) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		RolloutValue item;

		if (!rollout_decode_path(page->body, &items[i], &col->elem_path,
								 &item) ||
			item.type == ROLLOUT_JSON_NULL)
			continue;
		elems[kept] = convert_element(page, &item, col, &nulls[kept]);
		if (!nulls[kept])
			kept++;
	}
	return make_array(col, elems, nulls, kept);
}

/* Convert a record's value (NULL when absent) to the column's type. */
static Datum
value_to_datum(RolloutPage *page, RolloutValue *v, RolloutColumn *col,
			   bool *isnull)
{
	if (col->wildcard)
		return convert_wildcard(page, v, col, isnull);
	if (v == NULL)
	{
		*isnull = true;
		return InputFunctionCall(&col->infunc, NULL, col->ioparam,
								 col->typmod);
	}
	if (col->kind == ROLLOUT_CONV_ARRAY && v->type == ROLLOUT_JSON_ARRAY)
	{
		*isnull = false;
		return convert_array(page, v, col);
	}
	return convert_scalar(page, v, col->kind, col->typid, &col->infunc,
						  col->ioparam, col->typmod, col->is_integer, isnull);
}

/* ------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------ */

/*
 * Text from outside made safe for a message: at most maxbytes, cut on a
 * character boundary; bytes that are not valid in the database encoding
 * (or not ASCII, when it is not UTF-8) written as \xNN.
 */
char *
rollout_safe_text(const char *s, int len, int maxbytes)
{
	StringInfoData buf;
	bool		utf8_db = GetDatabaseEncoding() == PG_UTF8;
	int			i = 0;

	initStringInfo(&buf);
	while (i < len && buf.len < maxbytes)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c < 0x7f)
		{
			appendStringInfoChar(&buf, (char) c);
			i++;
			continue;
		}
		if (utf8_db && c >= 0x80)
		{
			int			l = pg_utf_mblen((const unsigned char *) s + i);

			if (i + l <= len && pg_utf8_islegal((const unsigned char *) s + i, l))
			{
				appendBinaryStringInfo(&buf, s + i, l);
				i += l;
				continue;
			}
		}
		appendStringInfo(&buf, "\\x%02x", c);
		i++;
	}
	if (i < len)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

static RolloutValue *
record_id_value(RolloutPage *page, int recno)
{
	RolloutRecord *r = &page->records[recno];

	for (int i = 0; i < r->nvalues; i++)
		if (page->values[r->first + i].col == -1)
			return &page->values[r->first + i];
	return NULL;
}

/* A record's id as text safe for a message, or NULL when it has none. */
char *
rollout_record_id(RolloutPage *page, int recno)
{
	RolloutValue *v = record_id_value(page, recno);

	if (v == NULL || v->type == ROLLOUT_JSON_NULL)
		return NULL;
	if (v->type == ROLLOUT_JSON_STRING)
		return rollout_safe_text(page->body + v->off + 1, v->len - 2, 100);
	return rollout_safe_text(page->body + v->off, v->len, 100);
}

/* What a conversion error's context line names. */
typedef struct ConversionPosition
{
	Relation	rel;
	RolloutColumn *column;
	RolloutPage *page;
	int			recno;
	RolloutValue *value;
} ConversionPosition;

static void
conversion_error_callback(void *arg)
{
	ConversionPosition *pos = (ConversionPosition *) arg;
	char	   *id;

	if (pos->column == NULL)
		return;
	id = rollout_record_id(pos->page, pos->recno);
	errcontext("column \"%s\" of foreign table \"%s\", record id %s, value %s",
			   pos->column->attname, RelationGetRelationName(pos->rel),
			   id ? rollout_redact(id) : "(none)",
			   pos->value ?
			   rollout_redact(rollout_safe_text(pos->page->body + pos->value->off,
												pos->value->len, 100)) :
			   "(none)");
}

/*
 * Store record recno of a page in a slot: the given columns converted,
 * every other column NULL.  The values are allocated in cxt.
 */
void
rollout_store_record(TupleTableSlot *slot, RolloutPage *page, int recno,
					 Relation rel, RolloutColumn *columns, int ncolumns,
					 MemoryContext cxt)
{
	RolloutRecord *r = &page->records[recno];
	ErrorContextCallback errcb;
	ConversionPosition pos = {rel, NULL, page, recno, NULL};
	MemoryContext old;
	RolloutValue whole;
	RolloutValue **found;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true,
		   sizeof(bool) * slot->tts_tupleDescriptor->natts);
	old = MemoryContextSwitchTo(cxt);

	/* each column's value, by the decoder's column numbers */
	found = palloc0(sizeof(RolloutValue *) * Max(ncolumns, 1));
	for (int i = 0; i < r->nvalues; i++)
	{
		RolloutValue *v = &page->values[r->first + i];

		if (v->col >= 0 && v->col < ncolumns)
			found[v->col] = v;
	}
	whole.off = r->off;
	whole.len = r->len;
	whole.type = ROLLOUT_JSON_OBJECT;
	whole.col = -1;
	whole.alt = 0;

	errcb.callback = conversion_error_callback;
	errcb.arg = &pos;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	for (int i = 0; i < ncolumns; i++)
	{
		RolloutColumn *col = &columns[i];
		int			att = col->attnum - 1;

		pos.column = col;
		pos.value = col->whole_record ? &whole : found[i];
		slot->tts_values[att] = value_to_datum(page, pos.value, col,
											   &slot->tts_isnull[att]);
	}
	error_context_stack = errcb.previous;

	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
}
