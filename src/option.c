/*-------------------------------------------------------------------------
 *
 * option.c
 *		  The option table of rollout_fdw, its validator, the merged option
 *		  lookup used at run time, and _PG_init.
 *
 * One table drives everything: an option not listed for an object is
 * rejected with the list of valid names for that object; each entry says
 * where the value is stored in RolloutOptions and what it defaults to.
 * One function parses a value, for the validator and again at run time, so
 * a value means the same in both: numbers are written in decimal (no hex,
 * no exponent in integers, no NaN or infinity), with a unit where one fits
 * (PostgreSQL's parse_real and its GUC units); text that goes into a
 * request header or a JWT claim holds no control character; a column's
 * field path has no empty key and at most one "[*]".  A value stored before these rules that
 * breaks one is an error at use, naming the option and its object.
 * client_secret is accepted only on a user mapping (server and table
 * options are readable by every role); a non-https URL and ca_file may be
 * set only by a superuser.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include <curl/curl.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "rollout_fdw.h"

PG_MODULE_MAGIC;

/* How a value is checked, and the type of its field in RolloutOptions. */
typedef enum OptKind
{
	OPT_URL,					/* char *: http(s) base URL, no trailing '/' */
	OPT_STRING,					/* char *: any non-empty text */
	OPT_HEADER,					/* char *: non-empty, no control character:
								 * it goes into a request header or a JWT */
	OPT_INT,					/* int: decimal integer, with a unit if any */
	OPT_INT64,					/* int64: the same */
	OPT_REAL,					/* double: finite decimal number */
	OPT_RESOURCE,				/* char *: collection path */
	OPT_BOOL,					/* bool: a boolean as PostgreSQL spells it */
	OPT_ON_ERROR,				/* bool: 'skip' true, 'fail' false */
	OPT_FIELD					/* column's JSON path: not in RolloutOptions */
} OptKind;

typedef struct RolloutOptionDef
{
	const char *name;
	Oid			context;		/* catalog of the object that takes it */
	OptKind		kind;
	int			unit;			/* GUC_UNIT_* of a bare number, or 0: none */
	double		min;			/* numeric range, inclusive */
	double		max;
	bool		zero_off;		/* 0 is allowed too: it turns the thing off */
	size_t		offset;			/* of its field in RolloutOptions */
	const char *dflt;			/* parsed like a set value; NULL: none */
	bool		required;
	bool		superuser_only;
} RolloutOptionDef;

#define SRV ForeignServerRelationId
#define UM UserMappingRelationId
#define TBL ForeignTableRelationId
#define COL AttributeRelationId

#define NUM(name, ctx, kind, unit, min, max, field, dflt) \
	{name, ctx, kind, unit, min, max, false, \
	 offsetof(RolloutOptions, field), dflt, false, false}
#define TEXT(name, ctx, kind, field, dflt, required, superuser_only) \
	{name, ctx, kind, 0, 0, 0, false, \
	 offsetof(RolloutOptions, field), dflt, required, superuser_only}

/*
 * Ranges: README "Options" states them.  A response body is palloc'd with
 * its terminating zero, hence MaxAllocSize - 1.  rate_limit is 0 (off) or
 * 0.1-1000 requests per second: a token is never more than 10 s away.
 */
static const RolloutOptionDef option_defs[] = {
	TEXT("api_url", SRV, OPT_URL, api_url, ROLLOUT_DEFAULT_API_URL, false, false),
	TEXT("auth_url", SRV, OPT_URL, auth_url, ROLLOUT_DEFAULT_AUTH_URL, false, false),
	TEXT("client_id", SRV, OPT_HEADER, client_id, NULL, false, false),
	NUM("page_size", SRV, OPT_INT, 0, 1, 1000, page_size, "100"),
	NUM("scan_concurrency", SRV, OPT_INT, 0, 1, 64, scan_concurrency, "8"),
	NUM("timeout_ms", SRV, OPT_INT, GUC_UNIT_MS, 100, 86400000, timeout_ms, "30000"),
	NUM("connect_timeout_ms", SRV, OPT_INT, GUC_UNIT_MS, 100, 3600000,
		connect_timeout_ms, "10000"),
	NUM("max_retries", SRV, OPT_INT, 0, 0, 100, max_retries, "5"),
	NUM("retry_base_ms", SRV, OPT_INT, GUC_UNIT_MS, 1, 3600000, retry_base_ms, "500"),
	NUM("retry_max_ms", SRV, OPT_INT, GUC_UNIT_MS, 1, 3600000, retry_max_ms, "30000"),
	NUM("not_ready_timeout_s", SRV, OPT_INT, GUC_UNIT_S, 0, 86400,
		not_ready_timeout_s, "90"),
	{"rate_limit", SRV, OPT_REAL, 0, 0.1, 1000, true,
	 offsetof(RolloutOptions, rate_limit), "50", false, false},
	NUM("token_ttl_s", SRV, OPT_INT, GUC_UNIT_S, 60, 3600, token_ttl_s, "900"),
	NUM("batch_size", SRV, OPT_INT, 0, 1, 1000, batch_size, "10"),
	NUM("max_response_bytes", SRV, OPT_INT64, GUC_UNIT_BYTE, 1024,
		(double) (MaxAllocSize - 1), max_response_bytes, "64MB"),
	TEXT("ca_file", SRV, OPT_STRING, ca_file, NULL, false, true),
	TEXT("on_user_error", SRV, OPT_ON_ERROR, skip_user_errors, "fail", false, false),

	TEXT("client_secret", UM, OPT_STRING, client_secret, NULL, true, false),
	TEXT("user_id", UM, OPT_HEADER, user_id, NULL, true, false),
	TEXT("credential_id", UM, OPT_HEADER, credential_id, NULL, false, false),
	TEXT("client_id", UM, OPT_HEADER, client_id, NULL, false, false),

	TEXT("resource", TBL, OPT_RESOURCE, resource, "people", false, false),
	NUM("page_size", TBL, OPT_INT, 0, 1, 1000, page_size, NULL),
	NUM("scan_concurrency", TBL, OPT_INT, 0, 1, 64, scan_concurrency, NULL),
	NUM("batch_size", TBL, OPT_INT, 0, 1, 1000, batch_size, NULL),
	TEXT("merge_tags", TBL, OPT_BOOL, merge_tags, "false", false, false),
	TEXT("on_user_error", TBL, OPT_ON_ERROR, skip_user_errors, NULL, false, false),

	{"field", COL, OPT_FIELD, 0, 0, 0, false, 0, NULL, false, false},
};

#define N_OPTION_DEFS lengthof(option_defs)

static const char *
context_name(Oid context)
{
	switch (context)
	{
		case ForeignDataWrapperRelationId:
			return "foreign-data wrapper";
		case ForeignServerRelationId:
			return "server";
		case UserMappingRelationId:
			return "user mapping";
		case ForeignTableRelationId:
			return "foreign table";
		case AttributeRelationId:
			return "column";
	}
	return "object";
}

static const RolloutOptionDef *
find_option(const char *name, Oid context)
{
	for (int i = 0; i < N_OPTION_DEFS; i++)
		if (option_defs[i].context == context &&
			strcmp(option_defs[i].name, name) == 0)
			return &option_defs[i];
	return NULL;
}

static void report_unknown_option(const char *name, Oid context) pg_attribute_noreturn();

static void
report_unknown_option(const char *name, Oid context)
{
	StringInfoData valid;

	if (strcmp(name, "client_secret") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"client_secret\" may be set only on a user mapping"),
				 errdetail("Options of a %s are readable by every role.",
						   context_name(context)),
				 errhint("Use CREATE USER MAPPING ... OPTIONS (client_secret '...').")));

	initStringInfo(&valid);
	for (int i = 0; i < N_OPTION_DEFS; i++)
		if (option_defs[i].context == context)
			appendStringInfo(&valid, "%s%s", valid.len > 0 ? ", " : "",
							 option_defs[i].name);

	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\" for a rollout_fdw %s",
					name, context_name(context)),
			 valid.len > 0
			 ? errhint("Valid options for a %s are: %s.",
					   context_name(context), valid.data)
			 : errhint("A rollout_fdw %s takes no options.",
					   context_name(context))));
}

/* What a number of this option is written as, for hints. */
static const char *
number_syntax(const RolloutOptionDef *def)
{
	if (def->kind == OPT_REAL)
		return "a decimal number";
	switch (def->unit)
	{
		case GUC_UNIT_MS:
			return "a whole number of milliseconds, or of a unit: us, ms, s, min, h, d";
		case GUC_UNIT_S:
			return "a whole number of seconds, or of a unit: us, ms, s, min, h, d";
		case GUC_UNIT_BYTE:
			return "a whole number of bytes, or of a unit: B, kB, MB, GB, TB";
	}
	return "a whole number in decimal digits";
}

/*
 * The number an option's value stands for, in the option's base unit, or an
 * error.  The number is written in decimal (an integer option takes digits
 * only, a real one a fraction and an exponent too): what strtod reads must
 * be exactly that, which refuses hex, "inf" and "nan".  Then parse_real
 * reads it with its unit, as a GUC would.  An integer option's value must
 * come out whole: 1500ms is not a number of seconds.
 */
static double
parse_number(const RolloutOptionDef *def, const char *value)
{
	const char *p = value;
	char	   *strtod_end;
	size_t		digits;
	double		num = 0;
	bool		ok;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '+' || *p == '-')
		p++;
	digits = strspn(p, "0123456789");
	p += digits;
	if (def->kind == OPT_REAL)
	{
		if (*p == '.')
		{
			size_t		fraction = strspn(p + 1, "0123456789");

			p += 1 + fraction;
			digits += fraction;
		}
		if (digits > 0 && (*p == 'e' || *p == 'E'))
		{
			const char *e = p + 1;

			if (*e == '+' || *e == '-')
				e++;
			if (isdigit((unsigned char) *e))
				p = e + strspn(e, "0123456789");
		}
	}

	errno = 0;
	(void) strtod(value, &strtod_end);
	ok = digits > 0 && strtod_end == p &&
		parse_real(value, &num, def->unit, NULL) && isfinite(num);
	if (ok && def->kind != OPT_REAL && num != rint(num))
		ok = false;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						def->name, value),
				 errhint("\"%s\" takes %s.", def->name, number_syntax(def))));

	if ((num < def->min || num > def->max) && !(def->zero_off && num == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value %s for option \"%s\" is out of range",
						value, def->name),
				 def->zero_off
				 ? errhint("\"%s\" must be 0 (off) or between %g and %g.",
						   def->name, def->min, def->max)
				 : errhint("\"%s\" must be between %.0f and %.0f%s.",
						   def->name, def->min, def->max,
						   def->unit == GUC_UNIT_MS ? " milliseconds" :
						   def->unit == GUC_UNIT_S ? " seconds" :
						   def->unit == GUC_UNIT_BYTE ? " bytes" : "")));
	return num;
}

/*
 * Text that goes into a request header or a JWT claim: a control character
 * (CR and LF above all) would inject headers.  The value is not echoed.
 */
static void
check_no_control(const char *name, const char *value)
{
	for (const char *c = value; *c != '\0'; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"%s\": it contains a control character",
							name),
					 errdetail("Byte 0x%02x at position %d.",
							   (unsigned char) *c, (int) (c - value) + 1),
					 errhint("Carriage returns, line feeds and other control characters are not allowed.")));
}

/* The key a field names ('@user_id', '@credential_id'), or none. */
RolloutKey
rollout_key_of_field(const char *field)
{
	if (field == NULL)
		return ROLLOUT_KEY_NONE;
	if (strcmp(field, "@user_id") == 0)
		return ROLLOUT_KEY_USER;
	if (strcmp(field, "@credential_id") == 0)
		return ROLLOUT_KEY_CREDENTIAL;
	return ROLLOUT_KEY_NONE;
}

/*
 * A column's field: '*' (the whole record), a key ('@user_id',
 * '@credential_id': which user's and credential's record), or a
 * dot-separated path of
 * non-empty keys ("emails.0.value"), where one key may end in "[*]" when
 * more of the path follows ("emails[*].value": that path in every element
 * of the array).  An empty key ('.', 'a.', '.a', 'a..b') would leave a
 * body builder without a key.
 */
static void
check_field(const char *value)
{
	size_t		len = strlen(value);
	const char *star = strstr(value, "[*]");
	const char *problem = NULL;

	check_no_control("field", value);
	if (strcmp(value, "*") == 0 || rollout_key_of_field(value) != ROLLOUT_KEY_NONE)
		return;
	if (value[0] == '@')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"field\": \"%s\"", value),
				 errdetail("A field beginning with \"@\" is a key column: \"@user_id\" or \"@credential_id\".")));
	if (len == 0 || value[0] == '.' || value[len - 1] == '.' ||
		strstr(value, "..") != NULL)
		problem = "A field path has an empty key.";
	else if (star == NULL)
		return;
	else if (star == value || star[-1] == '.')
		problem = "\"[*]\" must follow the key of an array.";
	else if (star[3] == '\0')
		problem = "Nothing follows \"[*]\": name what to read from each element, as in \"emails[*].value\".";
	else if (star[3] != '.')
		problem = "\"[*]\" must end a key.";
	else if (strstr(star + 3, "[*]") != NULL)
		problem = "A field path may hold one \"[*]\" only.";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"field\": \"%s\"", value),
				 errdetail("%s", problem),
				 errhint("A field is a JSON key, a dot-separated path of keys such as \"emails.0.value\", a path through every element of an array such as \"emails[*].value\", or \"*\" for the whole record.")));
}

/*
 * Parse a base URL with libcurl's URL parser: http or https only, no user
 * name or password (it would be readable by every role), no query or
 * fragment.  Only a superuser may point a server at a non-https URL.
 */
static void
check_url(const char *name, const char *value)
{
	CURLU	   *url;
	char	   *scheme = NULL;
	char	   *user = NULL;
	char	   *query = NULL;
	char	   *fragment = NULL;
	CURLUcode	rc;
	const char *problem = NULL;
	bool		https = false;

	rollout_curl_init();
	url = curl_url();
	if (url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("libcurl could not allocate a URL handle.")));
	rc = curl_url_set(url, CURLUPART_URL, value, 0);
	if (rc != CURLUE_OK)
		problem = curl_url_strerror(rc);
	else
	{
		curl_url_get(url, CURLUPART_SCHEME, &scheme, 0);
		curl_url_get(url, CURLUPART_USER, &user, 0);
		curl_url_get(url, CURLUPART_QUERY, &query, 0);
		curl_url_get(url, CURLUPART_FRAGMENT, &fragment, 0);
		if (scheme == NULL ||
			(pg_strcasecmp(scheme, "https") != 0 &&
			 pg_strcasecmp(scheme, "http") != 0))
			problem = "The scheme must be https or http.";
		else if (user != NULL)
			problem = "A URL may not carry a user name or password.";
		else if (query != NULL || fragment != NULL)
			problem = "A base URL may not have a query or fragment.";
		else
			https = pg_strcasecmp(scheme, "https") == 0;
	}
	curl_free(scheme);
	curl_free(user);
	curl_free(query);
	curl_free(fragment);
	curl_url_cleanup(url);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL for option \"%s\": \"%s\"", name, value),
				 errdetail("%s%s", problem,
						   problem[strlen(problem) - 1] == '.' ? "" : ".")));
	if (!https && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may set a non-https URL for option \"%s\"",
						name),
				 errhint("Use an https URL.")));
}

/* A base URL as requests use it: without its trailing slashes. */
static char *
strip_slash(const char *url)
{
	char	   *copy = pstrdup(url);
	size_t		len = strlen(copy);

	while (len > 0 && copy[len - 1] == '/')
		copy[--len] = '\0';
	return copy;
}

/*
 * Parse a value and store it where its definition says (a column's field is
 * only checked).  The validator and the run time both come here.
 */
static void
store_value(const RolloutOptionDef *def, const char *value,
			RolloutOptions *opts)
{
	char	   *field = (char *) opts + def->offset;

	if (def->kind != OPT_INT && def->kind != OPT_INT64 &&
		def->kind != OPT_REAL && def->kind != OPT_BOOL && value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" may not be empty", def->name)));

	switch (def->kind)
	{
		case OPT_URL:
			check_no_control(def->name, value);
			*(char **) field = strip_slash(value);
			break;
		case OPT_HEADER:
			check_no_control(def->name, value);
			*(char **) field = pstrdup(value);
			break;
		case OPT_STRING:
			*(char **) field = pstrdup(value);
			break;
		case OPT_INT:
			*(int *) field = (int) parse_number(def, value);
			break;
		case OPT_INT64:
			*(int64 *) field = (int64) parse_number(def, value);
			break;
		case OPT_REAL:
			*(double *) field = parse_number(def, value);
			break;
		case OPT_RESOURCE:
			if (strspn(value, "abcdefghijklmnopqrstuvwxyz"
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/") != strlen(value) ||
				value[0] == '/' || value[strlen(value) - 1] == '/' ||
				strstr(value, "//") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"resource\": \"%s\"",
								value),
						 errhint("A resource is a collection path such as \"people\" or \"smart-lists\".")));
			*(char **) field = pstrdup(value);
			break;
		case OPT_FIELD:
			check_field(value);
			break;
		case OPT_ON_ERROR:
			if (strcmp(value, "skip") != 0 && strcmp(value, "fail") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"",
								def->name, value),
						 errhint("\"%s\" is \"fail\" (one user's error fails the statement) or \"skip\" (a WARNING, and the user's rows are left out).",
								 def->name)));
			*(bool *) field = strcmp(value, "skip") == 0;
			break;
		case OPT_BOOL:
			if (!parse_bool(value, (bool *) field))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"",
								def->name, value),
						 errhint("\"%s\" takes a boolean: true or false.",
								 def->name)));
			break;
	}
}

/*
 * merge_tags only on a collection whose update takes mergeTags (people):
 * elsewhere Rollout would ignore it, and UPDATE would replace the tags.
 */
static void
check_merge_tags(List *options)
{
	const char *resource = "people";
	bool		merge = false;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "resource") == 0)
			resource = defGetString(d);
		else if (strcmp(d->defname, "merge_tags") == 0)
			(void) parse_bool(defGetString(d), &merge);
	}
	if (merge && !rollout_endpoint_has(resource, ROLLOUT_ROUTE_MERGE_TAGS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"merge_tags\" needs a collection whose update takes mergeTags, not \"%s\"",
						resource),
				 errhint("Only people has it.")));
}

/*
 * A mapping for any user (user_id '*') has no credential of its own: each
 * query names the user, and the credential or it is discovered.
 */
static void
check_any_user(List *options)
{
	bool		any = false;
	bool		credential = false;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "user_id") == 0)
			any = strcmp(defGetString(d), ROLLOUT_ANY_USER) == 0;
		else if (strcmp(d->defname, "credential_id") == 0)
			credential = true;
	}
	if (any && credential)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"credential_id\" cannot go with user_id '*'"),
				 errdetail("A user mapping with user_id '*' acts for any Rollout user; each user's credential comes from the query, rollout_fdw.credential_id or GET /credentials."),
				 errhint("Drop credential_id, or set user_id to one Rollout user.")));
}

/*
 * The user_id option of the mapping a user would use for a server, or NULL
 * when there is none; for planning, which must not fail without one.
 */
char *
rollout_mapping_user_id(Oid serverid, Oid userid)
{
	HeapTuple	tp;
	List	   *options = NIL;
	ListCell   *lc;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NULL;
	{
		bool		isnull;
		Datum		datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
											Anum_pg_user_mapping_umoptions,
											&isnull);

		if (!isnull)
			options = untransformRelOptions(datum);
	}
	ReleaseSysCache(tp);
	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "user_id") == 0)
			return defGetString(d);
	}
	return NULL;
}

PG_FUNCTION_INFO_V1(rollout_fdw_validator);

/*
 * Validate the options given to CREATE/ALTER of a wrapper, server, user
 * mapping, foreign table or column.  ALTER passes the resulting list, so the
 * required options are checked here too.  Each value is parsed by the
 * function that parses it at run time, into a scratch RolloutOptions.
 */
Datum
rollout_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			context = PG_GETARG_OID(1);
	RolloutOptions scratch;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);
		const RolloutOptionDef *def = find_option(d->defname, context);
		const char *value = defGetString(d);

		if (def == NULL)
			report_unknown_option(d->defname, context);
		if (def->superuser_only && !superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser may set option \"%s\"", def->name)));
		store_value(def, value, &scratch);
		if (def->kind == OPT_URL)
			check_url(def->name, value);
	}
	if (context == ForeignTableRelationId)
		check_merge_tags(options);
	if (context == UserMappingRelationId)
		check_any_user(options);

	for (int i = 0; i < N_OPTION_DEFS; i++)
	{
		bool		found = false;

		if (option_defs[i].context != context || !option_defs[i].required)
			continue;
		foreach(lc, options)
			if (strcmp(lfirst_node(DefElem, lc)->defname,
					   option_defs[i].name) == 0)
				found = true;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("option \"%s\" is required for a rollout_fdw %s",
							option_defs[i].name, context_name(context)),
					 errhint("A user mapping needs client_secret and user_id.")));
	}

	PG_RETURN_VOID();
}

/* Where a stored option came from, for the CONTEXT line of its error. */
typedef struct OptionSource
{
	const char *object;			/* "server \"s\"", ... */
	const char *option;			/* the option being read */
} OptionSource;

static void
option_error_callback(void *arg)
{
	OptionSource *src = (OptionSource *) arg;

	if (src->option != NULL)
		errcontext("option \"%s\" of %s", src->option, src->object);
}

/*
 * Apply the options of one object over opts.  They passed the validator
 * when set, but maybe an older one: a value that no longer parses is an
 * error naming the option and the object, never a silent default.
 */
static void
apply_options(RolloutOptions *opts, List *options, Oid context,
			  const char *object)
{
	OptionSource src = {object, NULL};
	ErrorContextCallback errcb;
	ListCell   *lc;

	errcb.callback = option_error_callback;
	errcb.arg = &src;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);
		const RolloutOptionDef *def = find_option(d->defname, context);

		/* a name the validator knew when it was set, no longer used */
		if (def == NULL)
			continue;
		src.option = def->name;
		store_value(def, defGetString(d), opts);
	}

	error_context_stack = errcb.previous;
}

/* Fail early, with a hint, when the JWT cannot be built. */
static void
check_mapping(RolloutOptions *opts, const char *server)
{
	if (opts->client_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("no client_id for server \"%s\"", server),
				 errhint("Set client_id on the server or on the user mapping.")));
	if (opts->client_secret == NULL || opts->user_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("the user mapping for server \"%s\" lacks client_secret or user_id",
						server)));
}

/*
 * The options in force for a scan or modify of a table by a user: the
 * table's defaults, then the server's options, the table's, the user
 * mapping's.  relid is InvalidOid for server-level work such as credential
 * listing; userid is InvalidOid while planning, which needs no user mapping.
 */
RolloutOptions *
rollout_get_options(Oid serverid, Oid userid, Oid relid)
{
	RolloutOptions *opts = palloc0(sizeof(RolloutOptions));
	ForeignServer *server = GetForeignServer(serverid);

	opts->serverid = serverid;
	opts->servername = server->servername;
	for (int i = 0; i < N_OPTION_DEFS; i++)
		if (option_defs[i].dflt != NULL)
			store_value(&option_defs[i], option_defs[i].dflt, opts);

	apply_options(opts, server->options, ForeignServerRelationId,
				  psprintf("server \"%s\"", server->servername));
	if (OidIsValid(relid))
		apply_options(opts, GetForeignTable(relid)->options,
					  ForeignTableRelationId,
					  psprintf("foreign table \"%s\"", get_rel_name(relid)));
	if (OidIsValid(userid))
	{
		UserMapping *mapping = GetUserMapping(userid, serverid);

		apply_options(opts, mapping->options, UserMappingRelationId,
					  psprintf("the user mapping for server \"%s\"",
							   server->servername));
		check_mapping(opts, server->servername);
	}
	return opts;
}

/* Which column a field option error is about. */
typedef struct FieldColumn
{
	Oid			relid;
	AttrNumber	attnum;
} FieldColumn;

static void
column_error_callback(void *arg)
{
	FieldColumn  *col = (FieldColumn *) arg;

	errcontext("option \"field\" of column \"%s\" of foreign table \"%s\"",
			   get_attname(col->relid, col->attnum, true),
			   get_rel_name(col->relid));
}

/*
 * The "field" option of a column, or NULL.  Checked again here: a path with
 * an empty key stored before the validator refused it is an error.
 */
char *
rollout_column_field(Oid relid, AttrNumber attnum)
{
	List	   *options = GetForeignColumnOptions(relid, attnum);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "field") == 0)
		{
			char	   *field = defGetString(d);
			FieldColumn	col = {relid, attnum};
			ErrorContextCallback errcb;

			errcb.callback = column_error_callback;
			errcb.arg = &col;
			errcb.previous = error_context_stack;
			error_context_stack = &errcb;
			check_field(field);
			error_context_stack = errcb.previous;
			return field;
		}
	}
	return NULL;
}

/* Is this attribute the record's id (field "id", or a column "id")? */
bool
rollout_is_id_column(Oid relid, AttrNumber attnum)
{
	char	   *field = rollout_column_field(relid, attnum);
	char	   *name;

	if (field != NULL)
		return strcmp(field, "id") == 0;
	name = get_attname(relid, attnum, true);
	return name != NULL && strcmp(name, "id") == 0;
}

/*
 * libcurl's global state, set up once per backend before its first use.
 * Not in _PG_init when the library is preloaded: that is the postmaster,
 * which forks every other process and must not fail to start over libcurl.
 */
void
rollout_curl_init(void)
{
	static bool done = false;

	if (done)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not initialize libcurl")));
	done = true;
}

/* Settings rollout_fdw.user_id and rollout_fdw.credential_id. */
char	   *rollout_setting_user_id = NULL;
char	   *rollout_setting_credential_id = NULL;

/* A setting's value must be fit for a JWT claim or a header. */
static bool
check_setting(char **newval, void **extra, GucSource source)
{
	for (const char *c = *newval ? *newval : ""; *c; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c == 0x7f)
		{
			GUC_check_errdetail("Control characters are not allowed.");
			return false;
		}
	if (*newval != NULL && strcmp(*newval, ROLLOUT_ANY_USER) == 0)
	{
		GUC_check_errdetail("\"*\" is not a Rollout user.");
		return false;
	}
	return true;
}

static void
define_settings(void)
{
	DefineCustomStringVariable("rollout_fdw.user_id",
							   "Rollout user whose CRM a query reads when it names none.",
							   "Used with a user mapping of user_id '*' when the query has no condition on a column of field '@user_id'.  Only roles granted SET on it may set it.",
							   &rollout_setting_user_id, "", PGC_SUSET, 0,
							   check_setting, NULL, NULL);
	DefineCustomStringVariable("rollout_fdw.credential_id",
							   "Credential a query reads when it names none, with rollout_fdw.user_id.",
							   NULL, &rollout_setting_credential_id, "",
							   PGC_SUSET, 0, check_setting, NULL, NULL);
	MarkGUCPrefixReserved("rollout_fdw");
}

void		_PG_init(void);

void
_PG_init(void)
{
	define_settings();
	rollout_keyjoin_init();
	if (!process_shared_preload_libraries_in_progress)
	{
		rollout_curl_init();
		return;
	}
	/* preloaded: the shared buckets, counters and scans' progress */
	rollout_limiter_init();
	rollout_stats_init();
	rollout_progress_init();
}
