/*
 * pglex.c: candidate 1, PostgreSQL's JSON lexer (json_lex, need_escapes
 * false) driven token by token, as src/decode.c drives it: kept strings
 * are slices of the body, unescaped only when they hold a backslash.
 */
#include "postgres_fe.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#include "common.h"

static JsonLexContext *lex;
static Rec	rec;

#define NEXT() do { if (json_lex(lex) != JSON_SUCCESS) return -1; } while (0)
#define TOK (lex->token_type)

/* skip one value; *end (when given) receives the byte after it */
static int
skip_value(int depth, const char **end)
{
	switch (TOK)
	{
		case JSON_TOKEN_OBJECT_START:
		case JSON_TOKEN_ARRAY_START:
			{
				bool		is_array = TOK == JSON_TOKEN_ARRAY_START;
				JsonTokenType close = is_array ? JSON_TOKEN_ARRAY_END : JSON_TOKEN_OBJECT_END;

				if (depth > 64)
					return -1;
				NEXT();
				if (TOK == close)
					break;
				for (;;)
				{
					if (!is_array)
					{
						if (TOK != JSON_TOKEN_STRING)
							return -1;
						NEXT();
						if (TOK != JSON_TOKEN_COLON)
							return -1;
						NEXT();
					}
					if (skip_value(depth + 1, NULL))
						return -1;
					if (TOK == JSON_TOKEN_COMMA)
					{
						NEXT();
						continue;
					}
					if (TOK == close)
						break;
					return -1;
				}
				break;
			}
		case JSON_TOKEN_STRING:
		case JSON_TOKEN_NUMBER:
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
		case JSON_TOKEN_NULL:
			break;
		default:
			return -1;
	}
	if (end)
		*end = lex->token_terminator;
	NEXT();
	return 0;
}

/* a scalar or container value for a kept field */
static int
keep(int *kind, Slice *v)
{
	const char *start = lex->token_start;
	const char *end;

	switch (TOK)
	{
		case JSON_TOKEN_NULL:
			*kind = K_NULL;
			NEXT();
			return 0;
		case JSON_TOKEN_STRING:
			*kind = K_VALUE;
			if (json_unescape(start + 1, lex->token_terminator - start - 2, v))
				return -1;
			NEXT();
			return 0;
		default:
			if (skip_value(0, &end))
				return -1;
			*kind = K_VALUE;
			v->p = start;
			v->len = end - start;
			return 0;
	}
}

static int
key_index(int meta)
{
	Slice		k;

	if (TOK != JSON_TOKEN_STRING)
		return -2;
	if (json_unescape(lex->token_start + 1,
					  lex->token_terminator - lex->token_start - 2, &k))
		return -2;
	return meta ? meta_index(k.p, k.len) : field_index(k.p, k.len);
}

#define KEY_COLON(idx, meta) do { \
		if (((idx) = key_index(meta)) == -2) return -1; \
		NEXT(); \
		if (TOK != JSON_TOKEN_COLON) return -1; \
		NEXT(); \
	} while (0)

static int
parse_tags(Rec *r)
{
	r->kind[F_TAGS] = K_VALUE;
	r->ntags = 0;
	NEXT();
	if (TOK == JSON_TOKEN_ARRAY_END)
	{
		NEXT();
		return 0;
	}
	for (;;)
	{
		Slice	   *t = &r->tags[r->ntags < MAX_TAGS - 1 ? r->ntags++ : r->ntags];
		int			kind;

		if (keep(&kind, t))
			return -1;
		if (kind == K_NULL)
			t->p = NULL;
		if (TOK == JSON_TOKEN_COMMA)
		{
			NEXT();
			continue;
		}
		if (TOK != JSON_TOKEN_ARRAY_END)
			return -1;
		NEXT();
		return 0;
	}
}

static int
parse_record(Out *o)
{
	Rec		   *r = &rec;

	if (TOK != JSON_TOKEN_OBJECT_START)
		return skip_value(1, NULL);
	rec_begin(r);
	NEXT();
	if (TOK != JSON_TOKEN_OBJECT_END)
		for (;;)
		{
			int			fi;

			KEY_COLON(fi, 0);
			if (fi < 0)
			{
				if (skip_value(2, NULL))
					return -1;
			}
			else if (fi == F_TAGS && TOK == JSON_TOKEN_ARRAY_START)
			{
				if (parse_tags(r))
					return -1;
			}
			else if (keep(&r->kind[fi], &r->v[fi]))
				return -1;
			if (TOK == JSON_TOKEN_COMMA)
			{
				NEXT();
				continue;
			}
			if (TOK != JSON_TOKEN_OBJECT_END)
				return -1;
			break;
		}
	NEXT();
	rec_end(o, r);
	return 0;
}

static int
parse_meta(Out *o)
{
	if (TOK != JSON_TOKEN_OBJECT_START)
		return skip_value(1, NULL);
	NEXT();
	if (TOK != JSON_TOKEN_OBJECT_END)
		for (;;)
		{
			int			mi;

			KEY_COLON(mi, 1);
			if (mi < 0)
			{
				if (skip_value(2, NULL))
					return -1;
			}
			else if (keep(&o->mkind[mi], &o->meta[mi]))
				return -1;
			if (TOK == JSON_TOKEN_COMMA)
			{
				NEXT();
				continue;
			}
			if (TOK != JSON_TOKEN_OBJECT_END)
				return -1;
			break;
		}
	NEXT();
	return 0;
}

static int
parse_people(Out *o)
{
	if (TOK != JSON_TOKEN_ARRAY_START)
		return skip_value(1, NULL);
	NEXT();
	if (TOK != JSON_TOKEN_ARRAY_END)
		for (;;)
		{
			if (parse_record(o))
				return -1;
			if (TOK == JSON_TOKEN_COMMA)
			{
				NEXT();
				continue;
			}
			if (TOK != JSON_TOKEN_ARRAY_END)
				return -1;
			break;
		}
	NEXT();
	return 0;
}

int
decode_pglex(const char *buf, size_t len, Out *o)
{
	/* RFC 8259: UTF-8; json_lex checks only escapes (decode.c does this too) */
	if (pg_encoding_verifymbstr(PG_UTF8, buf, (int) len) != (int) len)
		return -1;
	lex = makeJsonLexContextCstringLen((char *) buf, (int) len, PG_UTF8, false);
	NEXT();
	if (TOK != JSON_TOKEN_OBJECT_START)
		return -1;
	NEXT();
	if (TOK != JSON_TOKEN_OBJECT_END)
		for (;;)
		{
			Slice		k;

			if (TOK != JSON_TOKEN_STRING ||
				json_unescape(lex->token_start + 1,
							  lex->token_terminator - lex->token_start - 2, &k))
				return -1;
			NEXT();
			if (TOK != JSON_TOKEN_COLON)
				return -1;
			NEXT();
			if (k.len == 6 && memcmp(k.p, "people", 6) == 0)
			{
				if (parse_people(o))
					return -1;
			}
			else if (k.len == 9 && memcmp(k.p, "_metadata", 9) == 0)
			{
				if (parse_meta(o))
					return -1;
			}
			else if (skip_value(1, NULL))
				return -1;
			if (TOK == JSON_TOKEN_COMMA)
			{
				NEXT();
				continue;
			}
			if (TOK != JSON_TOKEN_OBJECT_END)
				return -1;
			break;
		}
	NEXT();
	return TOK == JSON_TOKEN_END ? 0 : -1;
}
