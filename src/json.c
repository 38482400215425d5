/*-------------------------------------------------------------------------
 *
 * json.c
 *		  SQL values -> JSON text for request bodies, and the jansson
 *		  documents that are simplest as a tree (error bodies, the credential
 *		  list, a pushed-down jsonb constant): parsed under a memory
 *		  context's ownership, printed back as JSON text.  Pages and records
 *		  are read by decode.c.
 *
 * Rules kept here:
 *	- a parsed document (malloc'd by jansson) is owned by a memory context
 *	  from the moment it exists: a reset callback registered before the
 *	  parse releases it, on success and on error alike;
 *	- a value JSON cannot hold (NaN, infinities) is refused before anything
 *	  is sent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
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
 * Parse a document that belongs to the memory context "owner": it is
 * released when that context is reset or deleted, on the error path too.
 * NULL when the text is not JSON (error, when not NULL, says why).
 */
json_t *
rollout_json_load(MemoryContext owner, const char *body, size_t len,
				  json_error_t *error)
{
	json_t	  **holder = owned_slot(owner);

	*holder = json_loadb(body, len, JSON_DECODE_ANY, error);
	return *holder;
}

/*
 * Parse a response body, owned by "owner" as rollout_json_load's.  A body
 * that is not JSON raises a protocol error.
 */
json_t *
rollout_json_parse(MemoryContext owner, const char *body, size_t len,
				   const char *method, const char *path)
{
	json_error_t err;
	json_t	   *root = rollout_json_load(owner, body, len, &err);

	if (root == NULL)
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to %s %s is not valid JSON",
						method, path),
				 errdetail_internal("%s at byte %d of %zu.", err.text,
									err.position, len)));
	return root;
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
