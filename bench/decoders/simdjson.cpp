/*
 * simdjson.cpp: candidate 4, simdjson's on-demand API, built with
 * -fno-exceptions: every call is checked through its error code, and the
 * one entry point is a C function, so nothing can throw across C.
 * Kept strings are unescaped by simdjson into its own buffer (valid until
 * the next page); numbers keep their text (raw_json_token); the emails
 * array's text is array::raw_json().  Fields nobody reads are skipped by
 * the iterator without being parsed.
 */
#include <cstring>
#include <simdjson.h>

#include "common.h"

/* built twice: for any x86-64 (simdjson's portable kernel, as a Debian
 * build gets) and with -march=haswell (its AVX2 kernel) */
#ifndef DECODE_SIMDJSON
#define DECODE_SIMDJSON decode_simdjson
#endif

using namespace simdjson;

static ondemand::parser *parser;

/* a key's text: raw points after the opening quote, into the body */
static int
key_slice(const char *raw, Slice *k)
{
	const char *p = raw;
	bool		escaped = false;

	for (; *p != '"'; p++)
		if (*p == '\\')
		{
			escaped = true;
			p++;
		}
	if (!escaped)
	{
		k->p = raw;
		k->len = p - raw;
		return 0;
	}
	return json_unescape(raw, p - raw, k);
}

static std::string_view
trim_ws(std::string_view s)
{
	while (!s.empty() && (s.back() == ' ' || s.back() == '\n' ||
						  s.back() == '\r' || s.back() == '\t'))
		s.remove_suffix(1);
	return s;
}

static int
keep(ondemand::value &v, int *kind, Slice *out)
{
	ondemand::json_type t;
	std::string_view sv;

	if (v.type().get(t))
		return -1;
	switch (t)
	{
		case ondemand::json_type::null:
			*kind = K_NULL;
			return 0;
		case ondemand::json_type::string:
			if (v.get_string().get(sv))
				return -1;
			break;
		case ondemand::json_type::array:
			{
				ondemand::array a;

				if (v.get_array().get(a) || a.raw_json().get(sv))
					return -1;
				break;
			}
		case ondemand::json_type::object:
			{
				ondemand::object o;

				if (v.get_object().get(o) || o.raw_json().get(sv))
					return -1;
				break;
			}
		default:
			sv = trim_ws(v.raw_json_token());
			break;
	}
	*kind = K_VALUE;
	out->p = sv.data();
	out->len = sv.size();
	return 0;
}

static int
parse_tags(ondemand::value &v, Rec *r)
{
	ondemand::array a;

	if (v.get_array().get(a))
		return -1;
	r->kind[F_TAGS] = K_VALUE;
	r->ntags = 0;
	for (auto er : a)
	{
		ondemand::value e;
		Slice	   *t = &r->tags[r->ntags < MAX_TAGS - 1 ? r->ntags++ : r->ntags];
		int			kind;

		if (er.get(e) || keep(e, &kind, t))
			return -1;
		if (kind == K_NULL)
			t->p = NULL;
	}
	return 0;
}

static Rec	rec;

static int
parse_record(ondemand::object &obj, Out *o)
{
	rec_begin(&rec);
	for (auto fr : obj)
	{
		ondemand::raw_json_string rk;
		ondemand::value v;
		ondemand::json_type t;
		Slice		k;
		int			fi;

		if (fr.key().get(rk) || key_slice(rk.raw(), &k))
			return -1;
		fi = field_index(k.p, k.len);
		if (fi < 0)
			continue;			/* the iterator skips the value */
		if (fr.value().get(v))
			return -1;
		if (fi == F_TAGS)
		{
			if (v.type().get(t))
				return -1;
			if (t == ondemand::json_type::array)
			{
				if (parse_tags(v, &rec))
					return -1;
				continue;
			}
		}
		if (keep(v, &rec.kind[fi], &rec.v[fi]))
			return -1;
	}
	rec_end(o, &rec);
	return 0;
}

extern "C" int
DECODE_SIMDJSON(const char *buf, size_t len, size_t cap, Out *o)
{
	ondemand::document doc;
	ondemand::object root;

	if (parser == NULL)
		parser = new (std::nothrow) ondemand::parser();
	if (parser == NULL)
		return -1;
	if (parser->iterate(buf, len, cap).get(doc) || doc.get_object().get(root))
		return -1;
	for (auto fr : root)
	{
		ondemand::raw_json_string rk;
		ondemand::value v;
		ondemand::json_type t;
		Slice		k;

		if (fr.key().get(rk) || key_slice(rk.raw(), &k))
			return -1;
		if (k.len == 6 && memcmp(k.p, "people", 6) == 0)
		{
			ondemand::array a;

			if (fr.value().get(v) || v.type().get(t))
				return -1;
			if (t != ondemand::json_type::array)
				continue;
			if (v.get_array().get(a))
				return -1;
			for (auto rr : a)
			{
				ondemand::value rv;
				ondemand::object obj;

				if (rr.get(rv) || rv.type().get(t))
					return -1;
				if (t != ondemand::json_type::object)
					continue;
				if (rv.get_object().get(obj) || parse_record(obj, o))
					return -1;
			}
		}
		else if (k.len == 9 && memcmp(k.p, "_metadata", 9) == 0)
		{
			ondemand::object m;

			if (fr.value().get(v) || v.type().get(t))
				return -1;
			if (t != ondemand::json_type::object)
				continue;
			if (v.get_object().get(m))
				return -1;
			for (auto mr : m)
			{
				ondemand::value mv;
				int			mi;

				if (mr.key().get(rk) || key_slice(rk.raw(), &k))
					return -1;
				if ((mi = meta_index(k.p, k.len)) < 0)
					continue;
				if (mr.value().get(mv) || keep(mv, &o->mkind[mi], &o->meta[mi]))
					return -1;
			}
		}
	}
	return 0;
}
