/*
 * yajl.c: candidate 3, yajl 2's streaming parser with callbacks.  Strings
 * arrive unescaped; a kept one is copied to the arena unless it points
 * into the body (when the body arrives in chunks, every kept value must be
 * copied: the chunk goes away).  A kept container's raw text is located
 * with yajl_get_bytes_consumed.
 */
#include <string.h>
#include <yajl/yajl_parse.h>

#include "common.h"

enum
{
	R_OTHER, R_PEOPLE, R_META
};

typedef struct YS
{
	yajl_handle h;
	const char *buf;
	size_t		len;
	Out		   *o;
	Rec			r;
	int			depth;
	int			root_field;
	int			people_array;
	int			in_record;
	int			cur_field;
	int			cur_meta;
	int			in_tags;
	size_t		cap_start;
	int			cap_depth;		/* 0: not capturing */
} YS;

static Slice
kept(YS *s, const unsigned char *p, size_t len)
{
	Slice		v;

	if ((const char *) p >= s->buf && (const char *) p + len <= s->buf + s->len)
		v.p = (const char *) p;
	else
	{
		char	   *c = arena_alloc(len + 1);

		memcpy(c, p, len);
		v.p = c;
	}
	v.len = len;
	return v;
}

static void
value(YS *s, int kind, Slice v)
{
	if (s->cap_depth)
		return;
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

static int
cb_null(void *ctx)
{
	Slice		v = {NULL, 0};

	value(ctx, K_NULL, v);
	return 1;
}

static int
cb_boolean(void *ctx, int b)
{
	Slice		v = {b ? "true" : "false", b ? 4 : 5};

	value(ctx, K_VALUE, v);
	return 1;
}

static int
cb_number(void *ctx, const char *p, size_t len)
{
	YS		   *s = ctx;

	if (!s->cap_depth)
		value(s, K_VALUE, kept(s, (const unsigned char *) p, len));
	return 1;
}

static int
cb_string(void *ctx, const unsigned char *p, size_t len)
{
	YS		   *s = ctx;

	if (!s->cap_depth)
		value(s, K_VALUE, kept(s, p, len));
	return 1;
}

static void
container_start(YS *s, int is_array)
{
	int			d = ++s->depth;

	if (s->cap_depth)
		return;
	if (d == 2 && s->root_field == R_PEOPLE && is_array)
		s->people_array = 1;
	else if (d == 3 && s->people_array && !is_array)
	{
		rec_begin(&s->r);
		s->in_record = 1;
		s->cur_field = -1;
	}
	else if ((d == 4 && s->in_record && s->cur_field >= 0) ||
			 (d == 3 && s->root_field == R_META && s->cur_meta >= 0))
	{
		if (d == 4 && s->cur_field == F_TAGS && is_array)
		{
			s->in_tags = 1;
			s->r.kind[F_TAGS] = K_VALUE;
			s->r.ntags = 0;
		}
		else
		{
			/* the bracket was the last byte consumed */
			s->cap_start = yajl_get_bytes_consumed(s->h) - 1;
			s->cap_depth = d;
		}
	}
}

static void
container_end(YS *s)
{
	int			d = s->depth--;

	if (s->cap_depth)
	{
		if (d == s->cap_depth)
		{
			Slice		v = {s->buf + s->cap_start,
			yajl_get_bytes_consumed(s->h) - s->cap_start};

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
			s->cap_depth = 0;
		}
		return;
	}
	if (d == 4 && s->in_tags)
		s->in_tags = 0;
	else if (d == 3 && s->in_record)
	{
		rec_end(s->o, &s->r);
		s->in_record = 0;
	}
	else if (d == 2)
		s->people_array = 0;
}

static int
cb_start_map(void *ctx)
{
	container_start(ctx, 0);
	return 1;
}

static int
cb_start_array(void *ctx)
{
	container_start(ctx, 1);
	return 1;
}

static int
cb_end(void *ctx)
{
	container_end(ctx);
	return 1;
}

static int
cb_map_key(void *ctx, const unsigned char *k, size_t len)
{
	YS		   *s = ctx;

	if (s->cap_depth)
		return 1;
	if (s->depth == 1)
	{
		s->root_field = len == 6 && memcmp(k, "people", 6) == 0 ? R_PEOPLE :
			len == 9 && memcmp(k, "_metadata", 9) == 0 ? R_META : R_OTHER;
		s->cur_meta = -1;
	}
	else if (s->depth == 2 && s->root_field == R_META)
		s->cur_meta = meta_index((const char *) k, len);
	else if (s->depth == 3 && s->in_record)
		s->cur_field = field_index((const char *) k, len);
	return 1;
}

static const yajl_callbacks callbacks = {
	cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
	cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end
};

int
decode_yajl(const char *buf, size_t len, Out *o)
{
	static YS	s;
	int			rc = 0;

	memset(&s, 0, sizeof(s));
	s.buf = buf;
	s.len = len;
	s.o = o;
	s.cur_meta = -1;
	s.cur_field = -1;
	s.h = yajl_alloc(&callbacks, NULL, &s);
	if (yajl_parse(s.h, (const unsigned char *) buf, len) != yajl_status_ok ||
		yajl_complete_parse(s.h) != yajl_status_ok)
		rc = -1;
	yajl_free(s.h);
	return rc;
}
