/* common.c: helpers shared by every candidate (see common.h). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "common.h"

/* ---- a per-page arena, as a memory context reset after each page ---- */

#define ARENA_SIZE (256u << 20)
static char *arena;
static size_t arena_used;

void *
arena_alloc(size_t n)
{
	void	   *p;

	if (arena == NULL && (arena = malloc(ARENA_SIZE)) == NULL)
		abort();
	n = (n + 15) & ~(size_t) 15;
	if (arena_used + n > ARENA_SIZE)
	{
		fprintf(stderr, "arena exhausted\n");
		abort();
	}
	p = arena + arena_used;
	arena_used += n;
	return p;
}

void
arena_reset(void)
{
	arena_used = 0;
}

/* ---- keys ---- */

int
field_index(const char *k, size_t len)
{
	switch (len)
	{
		case 2:
			return memcmp(k, "id", 2) == 0 ? F_ID : -1;
		case 9:
			return memcmp(k, "firstName", 9) == 0 ? F_FIRST : -1;
		case 8:
			return memcmp(k, "lastName", 8) == 0 ? F_LAST : -1;
		case 6:
			return memcmp(k, "emails", 6) == 0 ? F_EMAILS : -1;
		case 4:
			return memcmp(k, "tags", 4) == 0 ? F_TAGS : -1;
		case 7:
			return memcmp(k, "created", 7) == 0 ? F_CREATED : -1;
		case 12:
			return memcmp(k, "averagePrice", 12) == 0 ? F_PRICE : -1;
	}
	return -1;
}

int
meta_index(const char *k, size_t len)
{
	if (len == 5 && memcmp(k, "total", 5) == 0)
		return M_TOTAL;
	if (len == 5 && memcmp(k, "limit", 5) == 0)
		return M_LIMIT;
	if (len == 4 && memcmp(k, "next", 4) == 0)
		return M_NEXT;
	return -1;
}

/* ---- strings ---- */

static int
hex4(const char *p, const char *end)
{
	int			v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

int
json_unescape(const char *raw, size_t len, Slice *out)
{
	const char *end = raw + len;
	const char *bs = memchr(raw, '\\', len);
	char	   *buf,
			   *w;

	if (bs == NULL)
	{
		out->p = raw;
		out->len = len;
		return 0;
	}
	buf = arena_alloc(len + 1);
	memcpy(buf, raw, bs - raw);
	w = buf + (bs - raw);
	for (const char *p = bs; p < end; p++)
	{
		int			ch;

		if (*p != '\\')
		{
			*w++ = *p;
			continue;
		}
		if (++p >= end)
			return -1;
		switch (*p)
		{
			case '"': *w++ = '"'; continue;
			case '\\': *w++ = '\\'; continue;
			case '/': *w++ = '/'; continue;
			case 'b': *w++ = '\b'; continue;
			case 'f': *w++ = '\f'; continue;
			case 'n': *w++ = '\n'; continue;
			case 'r': *w++ = '\r'; continue;
			case 't': *w++ = '\t'; continue;
			case 'u': break;
			default: return -1;
		}
		if ((ch = hex4(p + 1, end)) < 0)
			return -1;
		p += 4;
		if (ch >= 0xD800 && ch <= 0xDBFF)
		{
			int			lo = (end - p >= 7 && p[1] == '\\' && p[2] == 'u') ?
				hex4(p + 3, end) : -1;

			if (lo < 0xDC00 || lo > 0xDFFF)
				return -1;
			p += 6;
			ch = 0x10000 + ((ch - 0xD800) << 10) + (lo - 0xDC00);
		}
		else if ((ch >= 0xDC00 && ch <= 0xDFFF) || ch == 0)
			return -1;
		if (ch < 0x80)
			*w++ = (char) ch;
		else if (ch < 0x800)
		{
			*w++ = (char) (0xC0 | (ch >> 6));
			*w++ = (char) (0x80 | (ch & 0x3F));
		}
		else if (ch < 0x10000)
		{
			*w++ = (char) (0xE0 | (ch >> 12));
			*w++ = (char) (0x80 | ((ch >> 6) & 0x3F));
			*w++ = (char) (0x80 | (ch & 0x3F));
		}
		else
		{
			*w++ = (char) (0xF0 | (ch >> 18));
			*w++ = (char) (0x80 | ((ch >> 12) & 0x3F));
			*w++ = (char) (0x80 | ((ch >> 6) & 0x3F));
			*w++ = (char) (0x80 | (ch & 0x3F));
		}
	}
	out->p = buf;
	out->len = w - buf;
	return 0;
}

/* ---- the checksum ---- */

static inline uint64_t
fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static uint64_t
hash_value(uint64_t h, int tag, int kind, Slice s)
{
	unsigned char t[2] = {(unsigned char) tag, (unsigned char) kind};

	h = fnv(h, t, 2);
	if (kind == K_VALUE && s.p != NULL)
	{
		h = fnv(h, &s.len, sizeof(s.len));
		h = fnv(h, s.p, s.len);
	}
	return h;
}

void
out_begin(Out *o)
{
	memset(o, 0, sizeof(*o));
	o->h = 14695981039346656037ULL;
}

void
out_end(Out *o)
{
	if (!hashing)
	{
		o->hashed = 1;
		return;
	}
	for (int i = 0; i < NM; i++)
		o->h = hash_value(o->h, 100 + i, o->mkind[i], o->meta[i]);
	o->hashed = 1;
}

void
rec_begin(Rec *r)
{
	memset(r->kind, 0, sizeof(r->kind));
	r->ntags = 0;
}

int			hashing = 1;

void
rec_end(Out *o, Rec *r)
{
	if (!hashing)
	{
		/* timed runs: the values are only touched, not hashed */
		for (int i = 0; i < NF; i++)
			o->h += r->kind[i] + r->v[i].len;
		o->h += r->ntags;
		o->records++;
		return;
	}
	for (int i = 0; i < NF; i++)
	{
		if (i == F_TAGS && r->kind[i] == K_VALUE)
		{
			o->h = fnv(o->h, &r->ntags, sizeof(r->ntags));
			for (int t = 0; t < r->ntags; t++)
				o->h = hash_value(o->h, 50, r->tags[t].p ? K_VALUE : K_NULL,
								  r->tags[t]);
			continue;
		}
		o->h = hash_value(o->h, i, r->kind[i], r->v[i]);
	}
	o->records++;
}
