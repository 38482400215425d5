/*
 * pgparse.c: candidate 2, PostgreSQL's pg_parse_json with semantic action
 * callbacks (need_escapes true, as jsonfuncs.c uses it: every key and every
 * scalar arrives as a de-escaped, palloc'd string).
 */
#include "postgres_fe.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#include "common.h"

enum
{
	R_OTHER, R_PEOPLE, R_META
};

typedef struct PS
{
	JsonLexContext *lex;
	Out		   *o;
	Rec			r;
	int			depth;
	int			root_field;
	bool		people_array;	/* depth 2 is the people array */
	bool		in_record;		/* depth 3 is a record */
	int			cur_field;
	int			cur_meta;
	bool		in_tags;		/* depth 4 is the tags array */
	const char *cap_start;		/* a kept container's first byte */
	int			cap_depth;
} PS;

static void
container_start(PS *s, bool is_array)
{
	int			d = ++s->depth;

	if (s->cap_start)
		return;
	if (d == 2 && s->root_field == R_PEOPLE && is_array)
		s->people_array = true;
	else if (d == 3 && s->people_array && !is_array)
	{
		rec_begin(&s->r);
		s->in_record = true;
		s->cur_field = -1;
	}
	else if (d == 4 && s->in_record && s->cur_field >= 0)
	{
		if (s->cur_field == F_TAGS && is_array)
		{
			s->in_tags = true;
			s->r.kind[F_TAGS] = K_VALUE;
			s->r.ntags = 0;
		}
		else
		{
			s->cap_start = s->lex->token_start;
			s->cap_depth = d;
		}
	}
	else if (d == 3 && s->root_field == R_META && s->cur_meta >= 0)
	{
		s->cap_start = s->lex->token_start;
		s->cap_depth = d;
	}
}

static void
container_end(PS *s)
{
	int			d = s->depth--;

	if (s->cap_start)
	{
		if (d == s->cap_depth)
		{
			Slice		v = {s->cap_start, s->lex->prev_token_terminator - s->cap_start};

			if (d == 3)
			{
				s->o->mkind[s->cur_meta] = K_VALUE;
				s->o->meta[s->cur_meta] = v;
			}
			else
			{
				s->r.kind[s->cur_field] = K_VALUE;
				s->r.v[s->cur_field] = v;
			}
			s->cap_start = NULL;
		}
		return;
	}
	if (d == 4 && s->in_tags)
		s->in_tags = false;
	else if (d == 3 && s->in_record)
	{
		rec_end(s->o, &s->r);
		s->in_record = false;
	}
	else if (d == 2)
		s->people_array = false;
}

static void
object_start(void *state)
{
	container_start(state, false);
}

static void
array_start(void *state)
{
	container_start(state, true);
}

static void
object_end(void *state)
{
	container_end(state);
}

static void
array_end(void *state)
{
	container_end(state);
}

static void
field_start(void *state, char *fname, bool isnull)
{
	PS		   *s = state;

	(void) isnull;
	if (s->cap_start)
		return;
	if (s->depth == 1)
	{
		s->root_field = strcmp(fname, "people") == 0 ? R_PEOPLE :
			strcmp(fname, "_metadata") == 0 ? R_META : R_OTHER;
		s->cur_meta = -1;
	}
	else if (s->depth == 2 && s->root_field == R_META)
		s->cur_meta = meta_index(fname, strlen(fname));
	else if (s->depth == 3 && s->in_record)
		s->cur_field = field_index(fname, strlen(fname));
}

static void
scalar(void *state, char *token, JsonTokenType type)
{
	PS		   *s = state;
	Slice		v = {token, 0};
	int			kind = type == JSON_TOKEN_NULL ? K_NULL : K_VALUE;

	if (s->cap_start)
		return;
	if (kind == K_VALUE)
		v.len = strlen(token);
	if (s->depth == 3 && s->in_record && s->cur_field >= 0)
	{
		s->r.kind[s->cur_field] = kind;
		s->r.v[s->cur_field] = v;
	}
	else if (s->depth == 4 && s->in_tags)
	{
		if (kind == K_NULL)
			v.p = NULL;
		s->r.tags[s->r.ntags < MAX_TAGS - 1 ? s->r.ntags++ : s->r.ntags] = v;
	}
	else if (s->depth == 2 && s->root_field == R_META && s->cur_meta >= 0)
	{
		s->o->mkind[s->cur_meta] = kind;
		s->o->meta[s->cur_meta] = v;
	}
}

int
decode_pgparse(const char *buf, size_t len, Out *o)
{
	static PS	s;
	JsonSemAction sem = {0};

	if (pg_encoding_verifymbstr(PG_UTF8, buf, (int) len) != (int) len)
		return -1;
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.cur_meta = -1;
	s.cur_field = -1;
	s.lex = makeJsonLexContextCstringLen((char *) buf, (int) len, PG_UTF8, true);
	sem.semstate = &s;
	sem.object_start = object_start;
	sem.object_end = object_end;
	sem.array_start = array_start;
	sem.array_end = array_end;
	sem.object_field_start = field_start;
	sem.scalar = scalar;
	return pg_parse_json(s.lex, &sem) == JSON_SUCCESS ? 0 : -1;
}
