/*-------------------------------------------------------------------------
 *
 * jsonvalue.c
 *		  One JSON value the decoder kept (a slice of the body) -> its parts:
 *		  a string's text, an array's elements, the value at a path inside.
 *
 * Rules kept here:
 *	- a string becomes text only when it can be: \u0000, an unpaired
 *	  surrogate or a bad escape is reported, never cut or replaced;
 *	- the bytes stay UTF-8 here; the conversion to the database encoding,
 *	  which also validates them, is the column's (convert.c);
 *	- an array's elements are slices of the same body, containers inside
 *	  them whole: nothing is copied.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"

#include "rollout_fdw.h"

/* ------------------------------------------------------------------
 * Strings
 * ------------------------------------------------------------------ */

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int32
read_u_escape(const char *p, const char *end)
{
	int32		ch = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++)
	{
		int			h = hex_value(p[i]);

		if (h < 0)
			return -1;
		ch = (ch << 4) | h;
	}
	return ch;
}

/*
 * The UTF-8 text of a JSON string's contents (raw: between the quotes, as
 * sent), in palloc'd memory, NUL-terminated.  NULL when it cannot be text:
 * *problem (when not NULL) then says why.  The raw bytes are not validated
 * here: the conversion to the database encoding does that.
 */
char *
rollout_json_unescape(const char *raw, int len, const char **problem)
{
	const char *end = raw + len;
	const char *bs = memchr(raw, '\\', len);
	StringInfoData buf;

	if (problem)
		*problem = NULL;
	if (memchr(raw, '\0', len) != NULL)
	{
		if (problem)
			*problem = "a NUL byte";
		return NULL;
	}
	if (bs == NULL)
		return pnstrdup(raw, len);

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, raw, (int) (bs - raw));
	for (const char *p = bs; p < end; p++)
	{
		if (*p != '\\')
		{
			appendStringInfoChar(&buf, *p);
			continue;
		}
		if (++p >= end)
			goto bad_escape;
		if (*p != 'u')
		{
			static const char from[] = "\"\\/bfnrt";
			static const char to[] = "\"\\/\b\f\n\r\t";
			const char *e = *p != '\0' ? strchr(from, *p) : NULL;

			if (e == NULL)
				goto bad_escape;
			appendStringInfoChar(&buf, to[e - from]);
			continue;
		}
		/* \uXXXX, a surrogate pair as one character */
		{
			int32		ch = read_u_escape(p + 1, end);
			int32		lo = -1;
			unsigned char utf8[8];

			if (ch < 0)
				goto bad_escape;
			p += 4;
			if (ch >= 0xD800 && ch <= 0xDBFF && end - p >= 7 &&
				p[1] == '\\' && p[2] == 'u')
				lo = read_u_escape(p + 3, end);
			if (ch >= 0xD800 && ch <= 0xDBFF && lo >= 0xDC00 && lo <= 0xDFFF)
			{
				p += 6;
				ch = 0x10000 + ((ch - 0xD800) << 10) + (lo - 0xDC00);
			}
			else if (ch >= 0xD800 && ch <= 0xDFFF)
			{
				if (problem)
					*problem = "an unpaired Unicode surrogate";
				return NULL;
			}
			else if (ch == 0)
			{
				if (problem)
					*problem = "\\u0000, which PostgreSQL text cannot hold";
				return NULL;
			}
			unicode_to_utf8((pg_wchar) ch, utf8);
			appendBinaryStringInfo(&buf, (char *) utf8, pg_utf_mblen(utf8));
		}
	}
	return buf.data;

bad_escape:
	if (problem)
		*problem = "an invalid escape sequence";
	return NULL;
}

/*
 * The elements of an array value (a slice the decoder kept), each as a
 * value of its own; containers inside it are skipped as whole slices.
 */
RolloutValue *
rollout_decode_elements(const char *body, RolloutValue *array, int *nelems)
{
	JsonLexContext *lex;
	RolloutValue *elems;
	int			cap = 8;
	int			n = 0;
	int			depth = 0;
	int			start = 0;
	RolloutValueType type = ROLLOUT_JSON_NULL;

	lex = rollout_json_lexer(unconstify(char *, body + array->off),
									   array->len, PG_UTF8, false);
	elems = palloc(sizeof(RolloutValue) * cap);
	for (;;)
	{
		JsonParseErrorType rc = json_lex(lex);
		JsonTokenType tok = lex->token_type;
		int			here;

		if (rc != JSON_SUCCESS || tok == JSON_TOKEN_END ||
			lex->token_start == NULL)
			break;				/* the slice was checked when it was kept */
		here = (int) (lex->token_start - lex->input);
		switch (tok)
		{
			case JSON_TOKEN_OBJECT_START:
			case JSON_TOKEN_ARRAY_START:
				if (depth == 1)
				{
					start = here;
					type = tok == JSON_TOKEN_OBJECT_START ?
						ROLLOUT_JSON_OBJECT : ROLLOUT_JSON_ARRAY;
				}
				depth++;
				continue;
			case JSON_TOKEN_OBJECT_END:
			case JSON_TOKEN_ARRAY_END:
				depth--;
				if (depth != 1)
					continue;
				break;
			case JSON_TOKEN_STRING:
			case JSON_TOKEN_NUMBER:
			case JSON_TOKEN_TRUE:
			case JSON_TOKEN_FALSE:
			case JSON_TOKEN_NULL:
				if (depth != 1)
					continue;
				start = here;
				type = tok == JSON_TOKEN_STRING ? ROLLOUT_JSON_STRING :
					tok == JSON_TOKEN_NUMBER ? ROLLOUT_JSON_NUMBER :
					tok == JSON_TOKEN_TRUE ? ROLLOUT_JSON_TRUE :
					tok == JSON_TOKEN_FALSE ? ROLLOUT_JSON_FALSE :
					ROLLOUT_JSON_NULL;
				break;
			default:
				continue;
		}
		if (n >= (int) MaxArraySize)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a JSON array of more than %d elements cannot become an SQL array",
							(int) MaxArraySize)));
		if (n == cap)
		{
			cap *= 2;
			elems = repalloc_huge(elems, sizeof(RolloutValue) * cap);
		}
		elems[n].off = array->off + start;
		elems[n].len = (int) (lex->token_terminator - lex->input) - start;
		elems[n].type = type;
		elems[n].col = array->col;
		elems[n].alt = 0;
		n++;
	}
	pfree(lex);
	*nelems = n;
	return elems;
}

/* ------------------------------------------------------------------
 * A path inside a value
 * ------------------------------------------------------------------ */

/* Is this key token (with its quotes) the UTF-8 key wanted? */
static bool
key_is(const char *token, int len, const char *wanted)
{
	const char *raw = token + 1;
	int			rawlen = len - 2;
	char	   *text;
	bool		same;

	if (rawlen < 0)
		return false;
	if (memchr(raw, '\\', rawlen) == NULL)
		return strncmp(raw, wanted, rawlen) == 0 && wanted[rawlen] == '\0';
	text = rollout_json_unescape(raw, rawlen, NULL);
	same = text != NULL && strcmp(text, wanted) == 0;
	if (text != NULL)
		pfree(text);
	return same;
}

/*
 * The value of an object's member by key (the last one, when the key is
 * repeated, as the decoder reads a record's keys).
 */
static bool
object_member(const char *body, RolloutValue *object, const char *key,
			  RolloutValue *found)
{
	RolloutValue obj = *object; /* found may be object */
	JsonLexContext *lex;
	int			depth = 0;
	int			start = 0;
	bool		expect_key = false;
	bool		matched = false;
	bool		any = false;
	RolloutValueType type = ROLLOUT_JSON_NULL;

	lex = rollout_json_lexer(unconstify(char *, body + obj.off),
									   obj.len, PG_UTF8, false);
	for (;;)
	{
		JsonParseErrorType rc = json_lex(lex);
		JsonTokenType tok = lex->token_type;
		int			here;

		if (rc != JSON_SUCCESS || tok == JSON_TOKEN_END ||
			lex->token_start == NULL)
			break;				/* the slice was checked when it was kept */
		here = (int) (lex->token_start - lex->input);
		switch (tok)
		{
			case JSON_TOKEN_OBJECT_START:
			case JSON_TOKEN_ARRAY_START:
				if (depth == 0)
					expect_key = true;
				else if (depth == 1)
				{
					start = here;
					type = tok == JSON_TOKEN_OBJECT_START ?
						ROLLOUT_JSON_OBJECT : ROLLOUT_JSON_ARRAY;
				}
				depth++;
				continue;
			case JSON_TOKEN_OBJECT_END:
			case JSON_TOKEN_ARRAY_END:
				depth--;
				if (depth != 1)
					continue;
				break;
			case JSON_TOKEN_COMMA:
				if (depth == 1)
					expect_key = true;
				continue;
			case JSON_TOKEN_STRING:
				if (depth != 1)
					continue;
				if (expect_key)
				{
					matched = key_is(lex->token_start,
									 (int) (lex->token_terminator -
											lex->token_start), key);
					expect_key = false;
					continue;
				}
				start = here;
				type = ROLLOUT_JSON_STRING;
				break;
			case JSON_TOKEN_NUMBER:
			case JSON_TOKEN_TRUE:
			case JSON_TOKEN_FALSE:
			case JSON_TOKEN_NULL:
				if (depth != 1)
					continue;
				start = here;
				type = tok == JSON_TOKEN_NUMBER ? ROLLOUT_JSON_NUMBER :
					tok == JSON_TOKEN_TRUE ? ROLLOUT_JSON_TRUE :
					tok == JSON_TOKEN_FALSE ? ROLLOUT_JSON_FALSE :
					ROLLOUT_JSON_NULL;
				break;
			default:
				continue;
		}
		/* a member's value ended */
		if (matched)
		{
			found->off = obj.off + start;
			found->len = (int) (lex->token_terminator - lex->input) - start;
			found->type = type;
			found->col = obj.col;
			found->alt = 0;
			any = true;
		}
		matched = false;
	}
	pfree(lex);
	return any;
}

/*
 * The value at a path inside a container the decoder kept (objects by
 * key, arrays by index), as a slice of the same body; false when the path
 * leads nowhere (a missing key, an index past the end, a scalar on the
 * way).
 */
bool
rollout_decode_path(const char *body, RolloutValue *container,
					RolloutFieldPath *path, RolloutValue *found)
{
	RolloutValue cur = *container;

	for (int i = 0; i < path->nkeys; i++)
	{
		if (cur.type == ROLLOUT_JSON_OBJECT)
		{
			if (!object_member(body, &cur, path->keys[i], &cur))
				return false;
		}
		else if (cur.type == ROLLOUT_JSON_ARRAY && path->index[i] >= 0)
		{
			int			n;
			RolloutValue *items = rollout_decode_elements(body, &cur, &n);

			if (path->index[i] >= n)
				return false;
			cur = items[path->index[i]];
			pfree(items);
		}
		else
			return false;
	}
	*found = cur;
	return true;
}
