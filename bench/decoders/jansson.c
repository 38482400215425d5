/*
 * jansson.c: candidate 5, the old decoder's way (reference): json_loadb
 * builds the whole page as a tree, the fields are looked up in it, numbers
 * are printed back (jansson keeps no number text), the emails array is
 * printed back with json_dumps, and the tree is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "common.h"

static const char *const names[NF] = {
	"id", "firstName", "lastName", "emails", "tags", "created", "averagePrice"
};
static const char *const meta_names[NM] = {"total", "limit", "next"};

static void
keep(json_t *v, int *kind, Slice *out)
{
	char	   *p;

	if (v == NULL)
		return;
	*kind = K_VALUE;
	switch (json_typeof(v))
	{
		case JSON_NULL:
			*kind = K_NULL;
			return;
		case JSON_STRING:
			out->p = json_string_value(v);
			out->len = json_string_length(v);
			return;
		case JSON_INTEGER:
			p = arena_alloc(32);
			out->len = snprintf(p, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			out->p = p;
			return;
		case JSON_REAL:
			p = arena_alloc(32);
			out->len = snprintf(p, 32, "%.17g", json_real_value(v));
			out->p = p;
			return;
		case JSON_TRUE:
			out->p = "true";
			out->len = 4;
			return;
		case JSON_FALSE:
			out->p = "false";
			out->len = 5;
			return;
		default:
			{
				char	   *d = json_dumps(v, JSON_ENCODE_ANY);
				size_t		n = strlen(d);

				p = arena_alloc(n + 1);
				memcpy(p, d, n + 1);
				free(d);
				out->p = p;
				out->len = n;
				return;
			}
	}
}

static Rec	rec;

int
decode_jansson(const char *buf, size_t len, Out *o)
{
	json_error_t err;
	json_t	   *root = json_loadb(buf, len, 0, &err);
	json_t	   *people,
			   *meta;

	if (root == NULL)
		return -1;
	people = json_object_get(root, "people");
	if (json_is_array(people))
	{
		size_t		i;
		json_t	   *p;

		json_array_foreach(people, i, p)
		{
			if (!json_is_object(p))
				continue;
			rec_begin(&rec);
			for (int f = 0; f < NF; f++)
			{
				json_t	   *v = json_object_get(p, names[f]);

				if (f == F_TAGS && json_is_array(v))
				{
					size_t		t;
					json_t	   *e;

					rec.kind[F_TAGS] = K_VALUE;
					json_array_foreach(v, t, e)
					{
						Slice	   *s = &rec.tags[rec.ntags < MAX_TAGS - 1 ? rec.ntags++ : rec.ntags];
						int			kind = K_VALUE;

						keep(e, &kind, s);
						if (kind == K_NULL)
							s->p = NULL;
					}
				}
				else
					keep(v, &rec.kind[f], &rec.v[f]);
			}
			rec_end(o, &rec);
		}
	}
	meta = json_object_get(root, "_metadata");
	if (json_is_object(meta))
		for (int m = 0; m < NM; m++)
			keep(json_object_get(meta, meta_names[m]), &o->mkind[m], &o->meta[m]);
	/* the hash is taken before the tree goes (string values point into it) */
	out_end(o);
	json_decref(root);
	return 0;
}
