/*-------------------------------------------------------------------------
 *
 * decode.c
 *		  A response body's bytes -> the values the query's columns read, in
 *		  one pass of PostgreSQL's own JSON parser.
 *
 * A list page ({"people": [...], "_metadata": {...}}, keys in any order)
 * or a single record ({...}) is parsed once.  For each record only the
 * values of the retrieved columns (and the record's "id") are kept, as
 * slices of the body: nothing is built for fields nobody asked for, and
 * no tree of the document exists.  The columns then convert their slices
 * (convert.c).
 *
 * Rules kept here:
 *	- numbers keep their JSON text: a column's own type reads them, so
 *	  nothing is rounded through double or int64;
 *	- strings are kept as the UTF-8 the API sent; the conversion to the
 *	  database encoding, which also validates them, happens per column;
 *	- memory is a small multiple of the body: a record costs one entry and
 *	  each kept value one entry, whatever the JSON holds; sizes are taken
 *	  from what was received, never from what the API announced;
 *	- nesting deeper than ROLLOUT_MAX_JSON_DEPTH is a broken response, not
 *	  a stack overflow;
 *	- a parse error's message names the byte where it happened but never
 *	  repeats the body's bytes, which may be in any encoding or hold a
 *	  secret the API echoed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "rollout_fdw.h"

/* The hidden column every record keeps: its "id". */
#define ID_COLUMN (-1)

typedef enum FrameRole
{
	FRAME_SKIP,					/* nothing inside is kept */
	FRAME_ENVELOPE,				/* the root object of a list page */
	FRAME_META,					/* _metadata */
	FRAME_LIST,					/* a top-level array of a list page */
	FRAME_RECORD,				/* a record */
	FRAME_INNER					/* a container inside a record */
} FrameRole;

/* A column that may read a value, by one of its field paths. */
typedef struct Candidate
{
	int16		col;			/* index in the columns, or ID_COLUMN */
	int16		alt;			/* which path: 0 wins over 1 */
} Candidate;

typedef struct Frame
{
	FrameRole	role;
	bool		is_array;
	int			index;			/* arrays: the current element's index */
	int			start;			/* offset of '{' or '[' */
	int			depth;			/* keys from the record to this frame */
	int			cand_off;		/* candidates of the children, in pool */
	int			cand_n;
	int			cap_off;		/* columns that read this container whole */
	int			cap_n;
	int			list;			/* FRAME_LIST: its number */
	int			record;			/* FRAME_RECORD: its index */
} Frame;

/* What a body is expected to be. */
typedef enum DecodeShape
{
	SHAPE_RECORD,				/* one record: an object */
	SHAPE_PAGE,					/* a list page: {"_metadata", "<list>": [...]} */
	SHAPE_ARRAY					/* a bare array of records */
} DecodeShape;

typedef struct DecodeState
{
	JsonLexContext *lex;
	RolloutPage *page;
	RolloutColumn *columns;
	int			ncolumns;
	DecodeShape shape;

	Frame	   *frames;
	int			nframes;

	Candidate  *pool;			/* stack of candidate sets */
	int			pool_top;
	int			pool_cap;

	/* the value about to start: set by field/element start */
	FrameRole	pending_role;
	int			pending_off;	/* candidates of the pending value */
	int			pending_n;
	int			pending_meta;	/* FRAME_META: which field, or -1 */
	char	   *pending_key;	/* FRAME_ENVELOPE: the field's name */
	int			pending_list;	/* FRAME_LIST: the list of the element */

	/* per record: where each column's value is among page->values */
	int32	   *slot_of;		/* ncolumns + 1 (the id last) */
	int			cur_record;
} DecodeState;

static const char *const meta_names[ROLLOUT_META_COUNT] = {
	"total", "limit", "offset", "next", "collection"
};

static void
broken_body(const char *what, const char *label, int offset)
{
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
			 errmsg("Rollout response to %s is not valid JSON", label),
			 errdetail("%s at byte %d.", what, offset)));
}

/* What went wrong, in words that repeat nothing of the body. */
static const char *
parse_problem(JsonParseErrorType error)
{
	switch (error)
	{
		case JSON_ESCAPING_INVALID:
		case JSON_UNICODE_ESCAPE_FORMAT:
			return "Invalid escape sequence";
		case JSON_ESCAPING_REQUIRED:
			return "Unescaped control character in a string";
		case JSON_UNICODE_CODE_POINT_ZERO:
			return "A string holds \\u0000, which PostgreSQL text cannot hold";
		case JSON_UNICODE_HIGH_ESCAPE:
			return "Unicode escape not valid in this encoding";
		case JSON_UNICODE_HIGH_SURROGATE:
		case JSON_UNICODE_LOW_SURROGATE:
			return "Unpaired Unicode surrogate";
		case JSON_EXPECTED_END:
			return "Unexpected data after the end of the document";
		case JSON_EXPECTED_MORE:
			return "The document ends early";
		default:
			return "Unexpected or invalid token";
	}
}

/* ------------------------------------------------------------------
 * Candidates: which columns read a value, by its path from the record
 * ------------------------------------------------------------------ */

static void
pool_reserve(DecodeState *ds, int n)
{
	if (ds->pool_top + n > ds->pool_cap)
	{
		int			cap = Max(ds->pool_cap * 2, ds->pool_top + n);

		ds->pool = repalloc(ds->pool, sizeof(Candidate) * cap);
		ds->pool_cap = cap;
	}
}

static RolloutFieldPath *
candidate_path(DecodeState *ds, Candidate c)
{
	static char *id_keys[1] = {"id"};
	static int32 id_index[1] = {-1};
	static RolloutFieldPath id_path = {1, id_keys, id_index};

	if (c.col == ID_COLUMN)
		return &id_path;
	return &ds->columns[c.col].paths[c.alt];
}

/*
 * The candidates of a record's direct fields: every column by each of its
 * paths, and the id.
 */
static void
push_record_candidates(DecodeState *ds, Frame *f)
{
	int			n = 0;

	pool_reserve(ds, ds->ncolumns * 2 + 1);
	f->cand_off = ds->pool_top;
	for (int i = 0; i < ds->ncolumns; i++)
		for (int a = 0; a < ds->columns[i].npaths; a++)
		{
			ds->pool[f->cand_off + n].col = i;
			ds->pool[f->cand_off + n].alt = a;
			n++;
		}
	ds->pool[f->cand_off + n].col = ID_COLUMN;
	ds->pool[f->cand_off + n].alt = 0;
	n++;
	f->cand_n = n;
	ds->pool_top += n;
}

/*
 * The candidates of a child of frame f, by key (an object's field) or by
 * index (an array's element): those whose path goes on through it.  They
 * are placed at the top of the pool as the pending set.
 */
static void
select_pending(DecodeState *ds, Frame *f, const char *key, int keylen,
			   int index)
{
	ds->pending_off = ds->pool_top;
	ds->pending_n = 0;
	if (f->cand_n == 0)
		return;
	pool_reserve(ds, f->cand_n);
	for (int i = 0; i < f->cand_n; i++)
	{
		Candidate	c = ds->pool[f->cand_off + i];
		RolloutFieldPath *p = candidate_path(ds, c);
		bool		match;

		if (p->nkeys <= f->depth)
			continue;
		if (key != NULL)
			match = p->keys[f->depth][0] == key[0] &&
				strncmp(p->keys[f->depth], key, keylen) == 0 &&
				p->keys[f->depth][keylen] == '\0';
		else
			match = p->index[f->depth] == index;
		if (!match)
			continue;
		ds->pool[ds->pending_off + ds->pending_n++] = c;

		/*
		 * A repeated key on the way to a value: the later one wins, as it
		 * does for a value's own key, so what came through the earlier one
		 * is forgotten (an exact name still wins over camelCase).
		 */
		if (key != NULL && p->nkeys > f->depth + 1)
		{
			int32		slot = ds->slot_of[c.col == ID_COLUMN ?
										   ds->ncolumns : c.col];

			if (slot >= 0 && ds->page->values[slot].alt >= c.alt)
				ds->page->values[slot].type = ROLLOUT_JSON_NULL;
		}
	}
}

/* Keep a value for a column of the current record. */
static void
keep_value(DecodeState *ds, Candidate c, RolloutValueType type, int start,
		   int end)
{
	RolloutPage *page = ds->page;
	int			slot_index = c.col == ID_COLUMN ? ds->ncolumns : c.col;
	int32		slot = ds->slot_of[slot_index];
	RolloutValue *v;

	if (slot >= 0)
	{
		/* a duplicate key wins over the earlier one, an exact name over camelCase */
		if (page->values[slot].alt < c.alt)
			return;
		v = &page->values[slot];
	}
	else
	{
		if (page->nvalues == page->values_cap)
		{
			page->values_cap = Max(64, page->values_cap * 2);
			page->values = repalloc_huge(page->values,
										 sizeof(RolloutValue) * page->values_cap);
		}
		ds->slot_of[slot_index] = page->nvalues;
		v = &page->values[page->nvalues++];
		page->records[ds->cur_record].nvalues++;
	}
	v->col = c.col;
	v->alt = c.alt;
	v->type = type;
	v->off = start;
	v->len = end - start;
}

/* A value ended: keep it for the pending candidates whose path ends here. */
static bool
keep_pending(DecodeState *ds, int depth, RolloutValueType type, int start,
			 int end)
{
	bool		kept = false;

	for (int i = 0; i < ds->pending_n; i++)
	{
		Candidate	c = ds->pool[ds->pending_off + i];

		if (candidate_path(ds, c)->nkeys == depth)
		{
			keep_value(ds, c, type, start, end);
			kept = true;
		}
	}
	return kept;
}

/* ------------------------------------------------------------------
 * The parse: json_lex's tokens, walked with an explicit stack
 * ------------------------------------------------------------------ */

static void
add_record(DecodeState *ds, int list, int start)
{
	RolloutPage *page = ds->page;
	RolloutRecord *r;

	if (page->nrecords == page->records_cap)
	{
		page->records_cap = Max(16, page->records_cap * 2);
		page->records = repalloc_huge(page->records,
									  sizeof(RolloutRecord) * page->records_cap);
	}
	r = &page->records[page->nrecords];
	r->list = list;
	r->off = start;
	r->len = 0;
	r->first = page->nvalues;
	r->nvalues = 0;
	ds->cur_record = page->nrecords++;
	for (int i = 0; i <= ds->ncolumns; i++)
		ds->slot_of[i] = -1;
}

static void
push_frame(DecodeState *ds, bool is_array, int start)
{
	Frame	   *parent = ds->nframes > 0 ? &ds->frames[ds->nframes - 1] : NULL;
	Frame	   *f;

	if (ds->nframes >= ROLLOUT_MAX_JSON_DEPTH)
		broken_body(psprintf("Nesting deeper than %d levels",
							 ROLLOUT_MAX_JSON_DEPTH),
					ds->page->label, start);
	f = &ds->frames[ds->nframes++];
	memset(f, 0, sizeof(Frame));
	f->is_array = is_array;
	f->start = start;
	f->index = -1;

	if (parent == NULL)
	{
		/* the document's root */
		if (ds->shape == SHAPE_PAGE)
			f->role = is_array ? FRAME_SKIP : FRAME_ENVELOPE;
		else if (ds->shape == SHAPE_ARRAY)
		{
			f->role = is_array ? FRAME_LIST : FRAME_SKIP;
			ds->pending_key = "";
		}
		else if (!is_array)
		{
			f->role = FRAME_RECORD;
			add_record(ds, 0, start);
		}
		else
			f->role = FRAME_SKIP;
	}
	else
		f->role = ds->pending_role;

	switch (f->role)
	{
		case FRAME_ENVELOPE:
			ds->page->root_is_object = true;
			break;
		case FRAME_META:
			if (is_array)
				f->role = FRAME_SKIP;
			else
				ds->page->meta_is_object = true;
			break;
		case FRAME_LIST:
			if (!is_array)
				f->role = FRAME_SKIP;
			else
			{
				f->list = ds->page->nlists++;
				ds->page->list_names = lappend(ds->page->list_names,
											   ds->pending_key);
			}
			break;
		case FRAME_RECORD:
			if (is_array)
			{
				/* a record that is not an object: the list is refused */
				if (parent != NULL)
					ds->page->nonobject_lists =
						bms_add_member(ds->page->nonobject_lists,
									   ds->pending_list);
				f->role = FRAME_SKIP;
			}
			else
			{
				if (parent != NULL)
					add_record(ds, ds->pending_list, start);
				push_record_candidates(ds, f);
			}
			break;
		case FRAME_INNER:
			/* the pending set: those reading it whole, those going deeper */
			f->depth = parent->depth + 1;
			f->cap_off = ds->pending_off;
			f->cap_n = ds->pending_n;
			f->cand_off = ds->pending_off;
			f->cand_n = ds->pending_n;
			ds->pool_top = ds->pending_off + ds->pending_n;
			if (f->cand_n == 0)
				f->role = FRAME_SKIP;
			break;
		case FRAME_SKIP:
			break;
	}

	/* a _metadata field that is an object or array: its type is enough */
	if (parent != NULL && parent->role == FRAME_META && ds->pending_meta >= 0)
	{
		RolloutMetaValue *m = &ds->page->meta[ds->pending_meta];

		m->present = true;
		m->type = is_array ? ROLLOUT_JSON_ARRAY : ROLLOUT_JSON_OBJECT;
		m->text = NULL;
	}
	ds->pending_n = 0;
	ds->pending_meta = -1;
}

static void
pop_frame(DecodeState *ds, int end)
{
	Frame	   *f = &ds->frames[ds->nframes - 1];

	if (f->role == FRAME_RECORD)
	{
		ds->page->records[ds->cur_record].len = end - f->start;
		ds->pool_top = f->cand_off;
	}
	else if (f->role == FRAME_INNER)
	{
		/* the whole container, for the columns whose path ends here */
		ds->pending_off = f->cap_off;
		ds->pending_n = f->cap_n;
		keep_pending(ds, f->depth, f->is_array ? ROLLOUT_JSON_ARRAY :
					 ROLLOUT_JSON_OBJECT, f->start, end);
		ds->pool_top = f->cap_off;
	}
	ds->nframes--;
	ds->pending_n = 0;
	ds->pending_role = FRAME_SKIP;
}

/*
 * A field of the innermost object begins: raw is its key, quotes excluded.
 * A key without escapes (nearly all) is compared where it lies in the body.
 */
static void
field_start(DecodeState *ds, const char *raw, int rawlen)
{
	Frame	   *f = &ds->frames[ds->nframes - 1];
	const char *key = raw;
	int			keylen = rawlen;
	char	   *copy = NULL;

	ds->pending_role = FRAME_SKIP;
	ds->pending_n = 0;
	ds->pending_meta = -1;
	if (f->role == FRAME_SKIP)
		return;
	if (memchr(raw, '\\', rawlen) != NULL || memchr(raw, '\0', rawlen) != NULL)
	{
		copy = rollout_json_unescape(raw, rawlen, NULL);
		if (copy == NULL)
			return;				/* a key no column can name */
		key = copy;
		keylen = (int) strlen(copy);
	}
	switch (f->role)
	{
		case FRAME_ENVELOPE:
			if (keylen == 9 && memcmp(key, "_metadata", 9) == 0)
			{
				/* a repeated _metadata replaces the earlier one */
				memset(ds->page->meta, 0, sizeof(ds->page->meta));
				ds->page->meta_is_object = false;
				ds->pending_role = FRAME_META;
			}
			else
			{
				ds->pending_role = FRAME_LIST;
				ds->pending_key = copy != NULL ? copy : pnstrdup(key, keylen);
				return;			/* kept as the list's name */
			}
			break;
		case FRAME_META:
			for (int i = 0; i < ROLLOUT_META_COUNT; i++)
				if (strncmp(key, meta_names[i], keylen) == 0 &&
					meta_names[i][keylen] == '\0')
					ds->pending_meta = i;
			break;
		case FRAME_RECORD:
		case FRAME_INNER:
			select_pending(ds, f, key, keylen, -1);
			ds->pending_role = FRAME_INNER;
			break;
		default:
			break;
	}
	if (copy != NULL)
		pfree(copy);
}

/* An element of the innermost array begins. */
static void
element_start(DecodeState *ds)
{
	Frame	   *f = &ds->frames[ds->nframes - 1];

	f->index = f->index < INT_MAX ? f->index + 1 : INT_MAX;
	ds->pending_role = FRAME_SKIP;
	ds->pending_n = 0;
	ds->pending_meta = -1;
	switch (f->role)
	{
		case FRAME_LIST:
			/* an element: a record when it is an object (push_frame) */
			ds->pending_list = f->list;
			ds->pending_role = FRAME_RECORD;
			break;
		case FRAME_RECORD:
		case FRAME_INNER:
			select_pending(ds, f, NULL, 0, f->index);
			ds->pending_role = FRAME_INNER;
			break;
		default:
			break;
	}
}

static void
scalar(DecodeState *ds, JsonTokenType tokentype, int start, int end)
{
	Frame	   *f = ds->nframes > 0 ? &ds->frames[ds->nframes - 1] : NULL;
	RolloutValueType type;

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			type = ROLLOUT_JSON_STRING;
			break;
		case JSON_TOKEN_NUMBER:
			type = ROLLOUT_JSON_NUMBER;
			break;
		case JSON_TOKEN_TRUE:
			type = ROLLOUT_JSON_TRUE;
			break;
		case JSON_TOKEN_FALSE:
			type = ROLLOUT_JSON_FALSE;
			break;
		default:
			type = ROLLOUT_JSON_NULL;
			break;
	}

	if (f == NULL)
		;						/* a bare scalar document */
	else if (f->role == FRAME_META && ds->pending_meta >= 0)
	{
		RolloutMetaValue *m = &ds->page->meta[ds->pending_meta];

		m->present = true;
		m->type = type;
		m->text = type == ROLLOUT_JSON_STRING ?
			rollout_json_unescape(ds->page->body + start + 1,
								  end - start - 2, NULL) :
			pnstrdup(ds->page->body + start, end - start);
	}
	else if (f->role == FRAME_LIST)
		ds->page->nonobject_lists = bms_add_member(ds->page->nonobject_lists,
												   f->list);
	else if ((f->role == FRAME_RECORD || f->role == FRAME_INNER) &&
			 ds->pending_n > 0)
		keep_pending(ds, f->depth + 1, type, start, end);
	ds->pending_n = 0;
	ds->pending_meta = -1;
}

#define LEX_NEXT(ds) \
	do { \
		JsonParseErrorType rc_ = json_lex((ds)->lex); \
		if (rc_ != JSON_SUCCESS) \
			broken_body(parse_problem(rc_), (ds)->page->label, \
						token_offset(ds)); \
	} while (0)

static int
token_offset(DecodeState *ds)
{
	if (ds->lex->token_start == NULL)
		return ds->lex->input_length;
	return (int) (ds->lex->token_start - ds->lex->input);
}

static void
unexpected(DecodeState *ds)
{
	broken_body(ds->lex->token_type == JSON_TOKEN_END ?
				"The document ends early" : "Unexpected token",
				ds->page->label, token_offset(ds));
}

/*
 * Walk the document token by token.  An explicit stack instead of
 * recursion: depth is bounded by ROLLOUT_MAX_JSON_DEPTH, never by the C
 * stack.
 */
static void
walk(DecodeState *ds)
{
	JsonLexContext *lex = ds->lex;

	LEX_NEXT(ds);
	for (;;)
	{
		JsonTokenType tok = lex->token_type;
		int			start = token_offset(ds);
		Frame	   *f;

		/* a value */
		if (tok == JSON_TOKEN_OBJECT_START || tok == JSON_TOKEN_ARRAY_START)
		{
			bool		is_array = tok == JSON_TOKEN_ARRAY_START;

			push_frame(ds, is_array, start);
			LEX_NEXT(ds);
			if (lex->token_type == (is_array ? JSON_TOKEN_ARRAY_END :
									JSON_TOKEN_OBJECT_END))
			{
				pop_frame(ds, (int) (lex->token_terminator - lex->input));
				LEX_NEXT(ds);
			}
			else if (is_array)
			{
				element_start(ds);
				continue;
			}
			else
				goto key;
		}
		else if (tok == JSON_TOKEN_STRING || tok == JSON_TOKEN_NUMBER ||
				 tok == JSON_TOKEN_TRUE || tok == JSON_TOKEN_FALSE ||
				 tok == JSON_TOKEN_NULL)
		{
			scalar(ds, tok, start, (int) (lex->token_terminator - lex->input));
			LEX_NEXT(ds);
		}
		else
			unexpected(ds);

		/* after a value: a separator, or the end of containers */
		for (;;)
		{
			if (ds->nframes == 0)
			{
				if (lex->token_type != JSON_TOKEN_END)
					broken_body("Unexpected data after the end of the document",
								ds->page->label, token_offset(ds));
				return;
			}
			f = &ds->frames[ds->nframes - 1];
			if (lex->token_type == JSON_TOKEN_COMMA)
			{
				LEX_NEXT(ds);
				if (f->is_array)
				{
					element_start(ds);
					break;
				}
				goto key;
			}
			if (lex->token_type != (f->is_array ? JSON_TOKEN_ARRAY_END :
									JSON_TOKEN_OBJECT_END))
				unexpected(ds);
			pop_frame(ds, (int) (lex->token_terminator - lex->input));
			LEX_NEXT(ds);
		}
		continue;

key:
		if (lex->token_type != JSON_TOKEN_STRING)
			unexpected(ds);
		field_start(ds, lex->token_start + 1,
					(int) (lex->token_terminator - lex->token_start) - 2);
		LEX_NEXT(ds);
		if (lex->token_type != JSON_TOKEN_COLON)
			unexpected(ds);
		LEX_NEXT(ds);
	}
}

/*
 * Keep only the records of the list named by _metadata.collection (else
 * the resource): the last top-level array of that name.
 */
static void
choose_list(RolloutPage *page, const char *resource)
{
	RolloutMetaValue *collection = &page->meta[ROLLOUT_META_COLLECTION];
	const char *key = resource;
	int			chosen = -1;
	int			i = 0;
	int			kept = 0;
	ListCell   *lc;

	if (collection->present && collection->type == ROLLOUT_JSON_STRING &&
		collection->text != NULL)
		key = collection->text;
	page->list_key = key;
	foreach(lc, page->list_names)
	{
		if (strcmp((char *) lfirst(lc), key) == 0)
			chosen = i;
		i++;
	}
	page->list_found = chosen >= 0;
	page->list_has_nonobject = chosen >= 0 &&
		bms_is_member(chosen, page->nonobject_lists);
	for (int r = 0; r < page->nrecords; r++)
		if (page->records[r].list == chosen)
			page->records[kept++] = page->records[r];
	page->nrecords = kept;
}

static void
decode(RolloutPage *page, RolloutColumn *columns, int ncolumns,
	   DecodeShape shape)
{
	DecodeState ds;

	/* RFC 8259: a JSON text is UTF-8; a NUL byte is not JSON either */
	{
		int			valid = pg_encoding_verifymbstr(PG_UTF8, page->body,
													page->len);

		if (valid < page->len)
			broken_body(page->body[valid] == '\0' ? "A NUL byte" :
						"Invalid UTF-8", page->label, valid);
	}

	memset(&ds, 0, sizeof(ds));
	ds.page = page;
	ds.columns = columns;
	ds.ncolumns = ncolumns;
	ds.shape = shape;
	ds.frames = palloc(sizeof(Frame) * ROLLOUT_MAX_JSON_DEPTH);
	ds.pool_cap = ncolumns * 4 + 8;
	ds.pool = palloc(sizeof(Candidate) * ds.pool_cap);
	ds.slot_of = palloc(sizeof(int32) * (ncolumns + 1));
	ds.pending_meta = -1;
	ds.lex = rollout_json_lexer(unconstify(char *, page->body),
										  page->len, PG_UTF8, false);

	page->records_cap = 16;
	page->records = palloc(sizeof(RolloutRecord) * page->records_cap);
	page->values_cap = 64;
	page->values = palloc(sizeof(RolloutValue) * page->values_cap);

	walk(&ds);

	pfree(ds.frames);
	pfree(ds.pool);
	pfree(ds.slot_of);
	pfree(ds.lex);
}

static RolloutPage *
new_page(const char *body, size_t len, const char *label)
{
	RolloutPage *page = palloc0(sizeof(RolloutPage));

	if (len > MaxAllocSize)
		broken_body("The body is too large", label, 0);
	page->body = body;
	page->len = (int) len;
	page->label = label;
	return page;
}

/*
 * Decode a list page: its envelope (_metadata's scalars) and the records
 * of its list, each with the values of the given columns.  The page lives
 * in the current memory context, and points into body.  Broken JSON raises
 * an error; a broken envelope is for the caller to judge (scan.c).
 */
RolloutPage *
rollout_decode_page(const char *body, size_t len, const char *label,
					const char *resource, RolloutColumn *columns,
					int ncolumns)
{
	RolloutPage *page = new_page(body, len, label);

	decode(page, columns, ncolumns, SHAPE_PAGE);
	choose_list(page, resource);
	return page;
}

/*
 * Decode a body that is one record (GET by id, a write's answer): the page
 * has one record when the body is a JSON object, none otherwise.
 */
RolloutPage *
rollout_decode_record(const char *body, size_t len, const char *label,
					  RolloutColumn *columns, int ncolumns)
{
	RolloutPage *page = new_page(body, len, label);

	decode(page, columns, ncolumns, SHAPE_RECORD);
	page->list_found = true;
	return page;
}

/*
 * Decode a body that is a bare array of records (a list answered without
 * an envelope, POST /users's [record]): list_found when it is an array,
 * list_has_nonobject when an element is not an object.
 */
RolloutPage *
rollout_decode_array(const char *body, size_t len, const char *label,
					 RolloutColumn *columns, int ncolumns)
{
	RolloutPage *page = new_page(body, len, label);

	decode(page, columns, ncolumns, SHAPE_ARRAY);
	page->list_key = "(array)";
	page->list_found = page->nlists == 1;
	page->list_has_nonobject = bms_is_member(0, page->nonobject_lists);
	return page;
}
