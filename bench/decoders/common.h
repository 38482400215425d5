/*
 * common.h: what every decoder candidate produces, and the helpers they
 * share (field lookup, string unescaping, a per-page arena, the checksum).
 *
 * The work is the extension's for a 7-column scan of people: for each
 * record of a list page, the values of id, firstName, lastName, emails
 * (the array's raw JSON text), tags (each string element unescaped),
 * created and averagePrice (a number kept as its text); every other field
 * skipped without being built; and _metadata's total, limit and next.
 */
#ifndef DECODERS_COMMON_H
#define DECODERS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum
{
	F_ID, F_FIRST, F_LAST, F_EMAILS, F_TAGS, F_CREATED, F_PRICE, NF
};
enum
{
	M_TOTAL, M_LIMIT, M_NEXT, NM
};
enum
{
	K_ABSENT, K_NULL, K_VALUE
};

#define MAX_TAGS 256

typedef struct Slice
{
	const char *p;				/* NULL: JSON null */
	size_t		len;
} Slice;

typedef struct Rec
{
	int			kind[NF];
	Slice		v[NF];			/* F_TAGS: unused, see tags */
	int			ntags;
	Slice		tags[MAX_TAGS];
} Rec;

typedef struct Out
{
	uint64_t	h;				/* FNV-1a of every value, in a fixed order */
	long		records;
	int			hashed;			/* out_end done */
	int			mkind[NM];
	Slice		meta[NM];
} Out;

/* the field a record key names (-1: none), by its unescaped text */
int			field_index(const char *key, size_t len);
/* the _metadata field a key names (-1: none) */
int			meta_index(const char *key, size_t len);

/* unescape a JSON string's contents; no backslash: the slice itself */
int			json_unescape(const char *raw, size_t len, Slice *out);

void	   *arena_alloc(size_t n);
void		arena_reset(void);

extern int	hashing;			/* 0: timed runs skip the checksum */
void		rec_begin(Rec *r);
void		rec_end(Out *o, Rec *r);
void		out_begin(Out *o);
void		out_end(Out *o);	/* hashes the metadata */

/* candidates: 0 on success */
int			decode_pglex(const char *buf, size_t len, Out *o);
int			decode_pgparse(const char *buf, size_t len, Out *o);
int			decode_yajl(const char *buf, size_t len, Out *o);
int			decode_jansson(const char *buf, size_t len, Out *o);
/* buf must have SIMDJSON_PADDING readable bytes after len */
int			decode_simdjson(const char *buf, size_t len, size_t cap, Out *o);
int			decode_simdjson_avx2(const char *buf, size_t len, size_t cap, Out *o);

#ifdef __cplusplus
}
#endif
#endif
