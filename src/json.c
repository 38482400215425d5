/*-------------------------------------------------------------------------
 *
 * json.c
 *		  jansson <-> Datum conversion both ways, and parsing of API
 *		  responses.
 *
 * Rules kept here:
 *	- a parsed document (malloc'd by jansson) is owned by a memory context
 *	  from the moment it exists: a reset callback registered before the
 *	  parse releases it, on success and on error alike;
 *	- conversions follow the type table of INTERFACE.md section 3: null or a
 *	  missing key is NULL, "" is NULL for every non-text type, numbers keep
 *	  their exact value (integers as such, reals in their shortest
 *	  round-trip form), anything else goes through the type's input
 *	  function so PostgreSQL's own rules and SQLSTATEs apply;
 *	- a value that does not convert raises an error; the caller's error
 *	  context names the column, the record id and the value.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "common/shortest_dec.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
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
	if (field != NULL && strcmp(field, "*") == 0)
		col->whole_record = true;
	else if (field != NULL)
	{
		char	   *copy = pstrdup(field);
		char	   *part;
		char	   *save;

		for (part = strtok_r(copy, ".", &save); part != NULL;
			 part = strtok_r(NULL, ".", &save))
			col->path = lappend(col->path, makeString(part));
	}
	else
	{
		col->key_exact = col->attname;
		col->key_camel = camel_case(col->attname);
	}

	col->typid = att->atttypid;
	col->typmod = att->atttypmod;
	basetype = getBaseType(att->atttypid);
	col->kind = kind_of(basetype);
	getTypeInputInfo(att->atttypid, &infunc, &col->ioparam);
	fmgr_info(infunc, &col->infunc);

	if (col->kind == ROLLOUT_CONV_ARRAY)
	{
		col->elemtype = get_element_type(basetype);
		col->elemkind = kind_of(col->elemtype);
		getTypeInputInfo(col->elemtype, &infunc, &col->elem_ioparam);
		fmgr_info(infunc, &col->elem_infunc);
		get_typlenbyvalalign(col->elemtype, &col->elemlen, &col->elembyval,
							 &col->elemalign);
	}
}

/*
 * The JSON value a column reads from a record, or NULL when absent.  A
 * dotted path walks objects by key and arrays by index (emails.0.value).
 */
static json_t *
record_value(json_t *record, RolloutColumn *col)
{
	json_t	   *v;
	ListCell   *lc;

	if (col->whole_record)
		return record;
	if (col->path != NIL)
	{
		v = record;
		foreach(lc, col->path)
		{
			const char *key = strVal(lfirst(lc));

			if (json_is_array(v) && strspn(key, "0123456789") == strlen(key))
				v = json_array_get(v, strtoul(key, NULL, 10));
			else if (json_is_object(v))
				v = json_object_get(v, key);
			else
				return NULL;
		}
		return v;
	}
	v = json_object_get(record, col->key_exact);
	if (v == NULL && col->key_camel != NULL)
		v = json_object_get(record, col->key_camel);
	return v;
}

static void
append_real(StringInfo buf, double d)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(d, tmp);
	appendStringInfoString(buf, tmp);
}

/* Append a JSON value as compact JSON text. */
void
rollout_json_append(StringInfo buf, json_t *value)
{
	const char *key;
	json_t	   *item;
	size_t		i;
	bool		first = true;

	switch (json_typeof(value))
	{
		case JSON_OBJECT:
			appendStringInfoChar(buf, '{');
			json_object_foreach(value, key, item)
			{
				if (!first)
					appendStringInfoChar(buf, ',');
				first = false;
				escape_json(buf, key);
				appendStringInfoChar(buf, ':');
				rollout_json_append(buf, item);
			}
			appendStringInfoChar(buf, '}');
			break;
		case JSON_ARRAY:
			appendStringInfoChar(buf, '[');
			json_array_foreach(value, i, item)
			{
				if (i > 0)
					appendStringInfoChar(buf, ',');
				rollout_json_append(buf, item);
			}
			appendStringInfoChar(buf, ']');
			break;
		case JSON_STRING:
			escape_json(buf, json_string_value(value));
			break;
		case JSON_INTEGER:
			appendStringInfo(buf, "%lld", (long long) json_integer_value(value));
			break;
		case JSON_REAL:
			append_real(buf, json_real_value(value));
			break;
		case JSON_TRUE:
			appendStringInfoString(buf, "true");
			break;
		case JSON_FALSE:
			appendStringInfoString(buf, "false");
			break;
		case JSON_NULL:
			appendStringInfoString(buf, "null");
			break;
	}
}

/* A value as text: strings as they are, anything else as JSON text. */
char *
rollout_json_scalar_text(json_t *value)
{
	StringInfoData buf;

	if (json_is_string(value))
		return pstrdup(json_string_value(value));
	initStringInfo(&buf);
	rollout_json_append(&buf, value);
	return buf.data;
}

static const char *
json_type_name(json_t *value)
{
	switch (json_typeof(value))
	{
		case JSON_OBJECT:
			return "object";
		case JSON_ARRAY:
			return "array";
		case JSON_STRING:
			return "string";
		case JSON_INTEGER:
		case JSON_REAL:
			return "number";
		case JSON_TRUE:
		case JSON_FALSE:
			return "boolean";
		case JSON_NULL:
			return "null";
	}
	return "value";
}

static void
cannot_convert(json_t *value, Oid typid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("cannot convert a JSON %s to type %s",
					json_type_name(value), format_type_be(typid))));
}

/* A non-array value by conversion kind, through the given input function. */
static Datum
convert_scalar(json_t *value, RolloutConvKind kind, Oid typid,
			   FmgrInfo *infunc, Oid ioparam, int32 typmod, bool *isnull)
{
	*isnull = false;
	if (json_is_string(value) && kind != ROLLOUT_CONV_TEXT &&
		json_string_length(value) == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}

	switch (kind)
	{
		case ROLLOUT_CONV_TEXT:
			break;
		case ROLLOUT_CONV_BOOL:
			if (json_is_boolean(value))
				return BoolGetDatum(json_is_true(value));
			if (json_is_integer(value) &&
				(json_integer_value(value) == 0 ||
				 json_integer_value(value) == 1))
				return BoolGetDatum(json_integer_value(value) == 1);
			if (!json_is_string(value))
				cannot_convert(value, typid);
			break;
		case ROLLOUT_CONV_NUMBER:
			if (!json_is_number(value) && !json_is_string(value))
				cannot_convert(value, typid);
			break;
		case ROLLOUT_CONV_JSON:
			{
				StringInfoData buf;

				initStringInfo(&buf);
				rollout_json_append(&buf, value);
				return InputFunctionCall(infunc, buf.data, ioparam, typmod);
			}
		case ROLLOUT_CONV_ARRAY:
		case ROLLOUT_CONV_OTHER:
			if (json_is_object(value) || json_is_array(value) ||
				json_is_boolean(value))
				cannot_convert(value, typid);
			break;
	}
	return InputFunctionCall(infunc, rollout_json_scalar_text(value),
							 ioparam, typmod);
}

static Datum
convert_array(json_t *value, RolloutColumn *col)
{
	size_t		n = json_array_size(value);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1];
	int			lbs[1] = {1};
	json_t	   *item;
	size_t		i;

	json_array_foreach(value, i, item)
	{
		if (json_is_null(item))
		{
			nulls[i] = true;
			elems[i] = (Datum) 0;
			continue;
		}
		if ((json_is_object(item) || json_is_array(item)) &&
			col->elemkind != ROLLOUT_CONV_TEXT &&
			col->elemkind != ROLLOUT_CONV_JSON)
			cannot_convert(item, col->elemtype);
		elems[i] = convert_scalar(item, col->elemkind, col->elemtype,
								  &col->elem_infunc, col->elem_ioparam, -1,
								  &nulls[i]);
	}
	dims[0] = (int) n;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  col->elemtype, col->elemlen,
											  col->elembyval, col->elemalign));
}

/* Convert a record's value (NULL when absent) to the column's type. */
static Datum
json_to_datum(json_t *value, RolloutColumn *col, bool *isnull)
{
	*isnull = false;
	if (value == NULL || json_is_null(value))
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (col->kind == ROLLOUT_CONV_ARRAY && json_is_array(value))
		return convert_array(value, col);
	return convert_scalar(value, col->kind, col->typid, &col->infunc,
						  col->ioparam, col->typmod, isnull);
}

static void
release_json(void *arg)
{
	json_t	  **holder = (json_t **) arg;

	if (*holder != NULL)
		json_decref(*holder);
	*holder = NULL;
}

/*
 * A slot for a jansson document owned by a memory context: whatever is
 * stored in it is released when the context is reset or deleted.  Made
 * before the document exists, so no error can come between the two.
 */
static json_t **
owned_slot(MemoryContext owner)
{
	json_t	  **holder = MemoryContextAllocZero(owner, sizeof(json_t *));
	MemoryContextCallback *cb = MemoryContextAlloc(owner,
												   sizeof(MemoryContextCallback));

	cb->func = release_json;
	cb->arg = holder;
	MemoryContextRegisterResetCallback(owner, cb);
	return holder;
}

/*
 * Parse a response body.  The document belongs to the memory context
 * "owner": it is released when that context is reset or deleted, on the
 * error path too.  A body that is not JSON raises a protocol error.
 */
json_t *
rollout_json_parse(MemoryContext owner, const char *body, size_t len,
				   const char *method, const char *path)
{
	json_t	  **holder = owned_slot(owner);
	json_error_t err;

	*holder = json_loadb(body, len, JSON_DECODE_ANY, &err);
	if (*holder == NULL)
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to %s %s is not valid JSON",
						method, path),
				 errdetail_internal("%s at byte %d of %zu.", err.text,
									err.position, len)));
	return *holder;
}

static void
append_errors(StringInfo buf, json_t *errors)
{
	size_t		i;
	json_t	   *e;

	json_array_foreach(errors, i, e)
	{
		json_t	   *msg = json_object_get(e, "message");
		json_t	   *path = json_object_get(e, "path");

		if (buf->len > 0)
			appendStringInfoString(buf, "; ");
		if (json_is_string(path))
			appendStringInfo(buf, "%s: ", json_string_value(path));
		if (json_is_string(msg))
			appendStringInfoString(buf, json_string_value(msg));
		else
			rollout_json_append(buf, e);
	}
}

/*
 * The API's own explanation of an error response: errorMessage (or
 * message, error, errors[]) of a JSON body, else the start of the body.
 * NULL when the body is empty.
 */
char *
rollout_api_message(const char *body, size_t len)
{
	static const char *const keys[] = {"errorMessage", "message", "error"};
	MemoryContext cxt;
	MemoryContext old;
	json_t	  **holder;
	json_t	   *root;
	StringInfoData buf;
	char	   *result;

	if (body == NULL || len == 0)
		return NULL;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "rollout error body",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	initStringInfo(&buf);
	holder = owned_slot(cxt);
	*holder = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	root = *holder;
	if (root != NULL)
	{
		for (int i = 0; i < lengthof(keys) && buf.len == 0; i++)
		{
			json_t	   *v = json_object_get(root, keys[i]);

			if (json_is_string(v))
				appendStringInfoString(&buf, json_string_value(v));
		}
		if (buf.len == 0 && json_is_array(json_object_get(root, "errors")))
			append_errors(&buf, json_object_get(root, "errors"));
		if (buf.len == 0)
			rollout_json_append(&buf, root);
	}
	else if (pg_verifymbstr(body, (int) Min(len, INT_MAX), true))
	{
		int			clip = pg_mbcliplen(body, (int) Min(len, INT_MAX), 200);

		appendStringInfo(&buf, "Response body (not JSON): %.*s%s",
						 clip, body, (size_t) clip < len ? "..." : "");
	}
	else
		appendStringInfoString(&buf, "Response body is neither JSON nor text.");
	MemoryContextSwitchTo(old);
	result = pstrdup(buf.data);
	MemoryContextDelete(cxt);
	return result;
}

static void
not_representable(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s cannot be sent to Rollout", what),
			 errdetail("JSON has no representation for it; nothing was sent.")));
}

/* A timestamp (taken as UTC) as ISO-8601 with a Z. */
static void
append_timestamp(StringInfo buf, Timestamp ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts))
		not_representable("an infinite timestamp");
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d",
					 tm.tm_year, tm.tm_mon, tm.tm_mday,
					 tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (fsec != 0)
	{
		char		frac[8];
		int			len;

		snprintf(frac, sizeof(frac), "%06d", (int) fsec);
		for (len = 6; len > 0 && frac[len - 1] == '0'; len--)
			;
		appendStringInfo(buf, ".%.*s", len, frac);
	}
	appendStringInfoString(buf, "Z\"");
}

/*
 * Append a SQL value as JSON: booleans and numbers as JSON literals (NaN
 * and infinities refused), json/jsonb embedded, timestamps as ISO-8601 UTC,
 * dates as YYYY-MM-DD, 1-D arrays as JSON arrays, anything else as the
 * string of its output function.
 */
void
rollout_datum_to_json(StringInfo buf, Datum value, Oid typid)
{
	Oid			base = getBaseType(typid);
	Oid			elemtype = get_element_type(base);
	Oid			outfunc;
	bool		varlena;

	if (OidIsValid(elemtype))
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		int16		elemlen;
		bool		elembyval;
		char		elemalign;
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		if (ARR_NDIM(arr) > 1)
			not_representable("a multidimensional array");
		get_typlenbyvalalign(elemtype, &elemlen, &elembyval, &elemalign);
		deconstruct_array(arr, elemtype, elemlen, elembyval, elemalign,
						  &elems, &nulls, &n);
		appendStringInfoChar(buf, '[');
		for (int i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoChar(buf, ',');
			if (nulls[i])
				appendStringInfoString(buf, "null");
			else
				rollout_datum_to_json(buf, elems[i], elemtype);
		}
		appendStringInfoChar(buf, ']');
		return;
	}

	switch (base)
	{
		case BOOLOID:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case FLOAT4OID:
			if (isnan(DatumGetFloat4(value)) || isinf(DatumGetFloat4(value)))
				not_representable("a NaN or infinite real");
			break;
		case FLOAT8OID:
			if (isnan(DatumGetFloat8(value)) || isinf(DatumGetFloat8(value)))
				not_representable("a NaN or infinite double precision");
			break;
		case NUMERICOID:
			if (numeric_is_nan(DatumGetNumeric(value)) ||
				numeric_is_inf(DatumGetNumeric(value)))
				not_representable("numeric NaN or Infinity");
			break;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			append_timestamp(buf, DatumGetTimestamp(value));
			return;
		case DATEOID:
			{
				DateADT		d = DatumGetDateADT(value);
				int			y,
							m,
							dd;

				if (DATE_NOT_FINITE(d))
					not_representable("an infinite date");
				j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
				appendStringInfo(buf, "\"%04d-%02d-%02d\"", y, m, dd);
				return;
			}
	}

	getTypeOutputInfo(typid, &outfunc, &varlena);
	switch (base)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case JSONOID:
		case JSONBOID:
			appendStringInfoString(buf, OidOutputFunctionCall(outfunc, value));
			return;
	}
	escape_json(buf, OidOutputFunctionCall(outfunc, value));
}

/* What a conversion error's context line names. */
typedef struct ConversionPosition
{
	Relation	rel;
	RolloutColumn *column;
	json_t	   *record;
	json_t	   *value;
} ConversionPosition;

static void
conversion_error_callback(void *arg)
{
	ConversionPosition *pos = (ConversionPosition *) arg;
	json_t	   *id = json_object_get(pos->record, "id");
	StringInfoData value;
	int			clip;

	if (pos->column == NULL)
		return;
	initStringInfo(&value);
	if (pos->value != NULL)
		rollout_json_append(&value, pos->value);
	clip = pg_mbcliplen(value.data, value.len, 100);
	errcontext("column \"%s\" of foreign table \"%s\", record id %s, value %.*s%s",
			   pos->column->attname, RelationGetRelationName(pos->rel),
			   id ? rollout_json_scalar_text(id) : "(none)",
			   clip, value.data, clip < value.len ? "..." : "");
}

/*
 * Store a record in a slot: the given columns converted, every other
 * column NULL.  The values are allocated in cxt.  A value that does not
 * convert raises an error whose context names the column, the record's id
 * and the value.
 */
void
rollout_store_record(TupleTableSlot *slot, json_t *record, Relation rel,
					 RolloutColumn *columns, int ncolumns, MemoryContext cxt)
{
	ErrorContextCallback errcb;
	ConversionPosition pos = {rel, NULL, record, NULL};
	MemoryContext old;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true,
		   sizeof(bool) * slot->tts_tupleDescriptor->natts);
	old = MemoryContextSwitchTo(cxt);

	errcb.callback = conversion_error_callback;
	errcb.arg = &pos;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	for (int i = 0; i < ncolumns; i++)
	{
		RolloutColumn *col = &columns[i];
		int			att = col->attnum - 1;

		pos.column = col;
		pos.value = record_value(record, col);
		slot->tts_values[att] = json_to_datum(pos.value, col,
													  &slot->tts_isnull[att]);
	}
	error_context_stack = errcb.previous;

	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
}
