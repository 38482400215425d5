/*-------------------------------------------------------------------------
 *
 * option.c
 *		  The option table of rollout_fdw, its validator, the merged option
 *		  lookup used at run time, and _PG_init.
 *
 * One table drives everything: an option not listed for an object is
 * rejected with the list of valid names for that object; every value is
 * parsed and range-checked when it is set; client_secret is accepted only on
 * a user mapping (server and table options are readable by every role); a
 * non-https URL and ca_file may be set only by a superuser.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"

#include "rollout_fdw.h"

PG_MODULE_MAGIC;

typedef enum OptKind
{
	OPT_URL,
	OPT_STRING,
	OPT_INT,
	OPT_REAL,
	OPT_RESOURCE,
	OPT_FIELD
} OptKind;

typedef struct RolloutOptionDef
{
	const char *name;
	Oid			context;		/* catalog of the object that takes it */
	OptKind		kind;
	double		min;			/* numeric range, inclusive */
	double		max;
	bool		required;
	bool		superuser_only;
} RolloutOptionDef;

#define SRV ForeignServerRelationId
#define UM UserMappingRelationId
#define TBL ForeignTableRelationId
#define COL AttributeRelationId

static const RolloutOptionDef option_defs[] = {
	{"api_url", SRV, OPT_URL, 0, 0, false, false},
	{"auth_url", SRV, OPT_URL, 0, 0, false, false},
	{"client_id", SRV, OPT_STRING, 0, 0, false, false},
	{"page_size", SRV, OPT_INT, 1, 1000, false, false},
	{"scan_concurrency", SRV, OPT_INT, 1, 64, false, false},
	{"timeout_ms", SRV, OPT_INT, 100, 86400000, false, false},
	{"connect_timeout_ms", SRV, OPT_INT, 100, 3600000, false, false},
	{"max_retries", SRV, OPT_INT, 0, 100, false, false},
	{"retry_base_ms", SRV, OPT_INT, 1, 3600000, false, false},
	{"retry_max_ms", SRV, OPT_INT, 1, 3600000, false, false},
	{"not_ready_timeout_s", SRV, OPT_INT, 0, 86400, false, false},
	{"rate_limit", SRV, OPT_REAL, 0, 100000, false, false},
	{"token_ttl_s", SRV, OPT_INT, 60, 3600, false, false},
	{"batch_size", SRV, OPT_INT, 1, 1000, false, false},
	{"max_response_bytes", SRV, OPT_INT, 1024, 1073741824, false, false},
	{"ca_file", SRV, OPT_STRING, 0, 0, false, true},

	{"client_secret", UM, OPT_STRING, 0, 0, true, false},
	{"user_id", UM, OPT_STRING, 0, 0, true, false},
	{"credential_id", UM, OPT_STRING, 0, 0, false, false},
	{"client_id", UM, OPT_STRING, 0, 0, false, false},

	{"resource", TBL, OPT_RESOURCE, 0, 0, false, false},
	{"page_size", TBL, OPT_INT, 1, 1000, false, false},
	{"scan_concurrency", TBL, OPT_INT, 1, 64, false, false},
	{"batch_size", TBL, OPT_INT, 1, 1000, false, false},

	{"field", COL, OPT_FIELD, 0, 0, false, false},
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

static double
parse_number(const RolloutOptionDef *def, const char *value)
{
	char	   *end;
	double		num;

	errno = 0;
	num = strtod(value, &end);
	while (*end == ' ')
		end++;
	if (errno != 0 || end == value || *end != '\0' ||
		(def->kind == OPT_INT && num != (double) (int64) num))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						def->name, value),
				 errhint("\"%s\" takes %s.", def->name,
						 def->kind == OPT_INT ? "an integer" : "a number")));
	if (num < def->min || num > def->max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value %s for option \"%s\" is out of range",
						value, def->name),
				 errhint("\"%s\" must be between %.0f and %.0f.",
						 def->name, def->min, def->max)));
	return num;
}

/*
 * Parse a base URL with libcurl's URL parser: http or https only, no user
 * name or password (it would be readable by every role), no query or
 * fragment.  Only a superuser may point a server at a non-https URL.
 */
static void
check_url(const char *name, const char *value)
{
	CURLU	   *url = curl_url();
	char	   *scheme = NULL;
	char	   *user = NULL;
	char	   *query = NULL;
	char	   *fragment = NULL;
	CURLUcode	rc;
	const char *problem = NULL;
	bool		https = false;

	if (url == NULL)
		elog(ERROR, "out of memory");
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

static void
check_value(const RolloutOptionDef *def, const char *value)
{
	if (def->superuser_only && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may set option \"%s\"", def->name)));

	switch (def->kind)
	{
		case OPT_URL:
			check_url(def->name, value);
			break;
		case OPT_INT:
		case OPT_REAL:
			(void) parse_number(def, value);
			break;
		case OPT_STRING:
		case OPT_FIELD:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" may not be empty", def->name)));
			break;
		case OPT_RESOURCE:
			if (value[0] == '\0' ||
				strspn(value, "abcdefghijklmnopqrstuvwxyz"
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/") != strlen(value) ||
				value[0] == '/' || value[strlen(value) - 1] == '/' ||
				strstr(value, "//") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"resource\": \"%s\"",
								value),
						 errhint("A resource is a collection path such as \"people\" or \"smart-lists\".")));
			break;
	}
}

PG_FUNCTION_INFO_V1(rollout_fdw_validator);

/*
 * Validate the options given to CREATE/ALTER of a wrapper, server, user
 * mapping, foreign table or column.  ALTER passes the resulting list, so the
 * required options are checked here too.
 */
Datum
rollout_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			context = PG_GETARG_OID(1);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);
		const RolloutOptionDef *def = find_option(d->defname, context);

		if (def == NULL)
			report_unknown_option(d->defname, context);
		check_value(def, defGetString(d));
	}

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

static char *
strip_slash(const char *url)
{
	char	   *copy = pstrdup(url);
	size_t		len = strlen(copy);

	while (len > 0 && copy[len - 1] == '/')
		copy[--len] = '\0';
	return copy;
}

static void
apply_options(RolloutOptions *opts, List *options, Oid context)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);
		const char *name = d->defname;
		const char *value = defGetString(d);
		const RolloutOptionDef *def = find_option(name, context);
		int			num = 0;

		/* Options in the catalog passed the validator; be lenient here. */
		if (def == NULL)
			continue;
		if (def->kind == OPT_INT)
			num = (int) strtol(value, NULL, 10);

		if (strcmp(name, "api_url") == 0)
			opts->api_url = strip_slash(value);
		else if (strcmp(name, "auth_url") == 0)
			opts->auth_url = strip_slash(value);
		else if (strcmp(name, "client_id") == 0)
			opts->client_id = pstrdup(value);
		else if (strcmp(name, "page_size") == 0)
			opts->page_size = num;
		else if (strcmp(name, "scan_concurrency") == 0)
			opts->scan_concurrency = num;
		else if (strcmp(name, "timeout_ms") == 0)
			opts->timeout_ms = num;
		else if (strcmp(name, "connect_timeout_ms") == 0)
			opts->connect_timeout_ms = num;
		else if (strcmp(name, "max_retries") == 0)
			opts->max_retries = num;
		else if (strcmp(name, "retry_base_ms") == 0)
			opts->retry_base_ms = num;
		else if (strcmp(name, "retry_max_ms") == 0)
			opts->retry_max_ms = num;
		else if (strcmp(name, "not_ready_timeout_s") == 0)
			opts->not_ready_timeout_s = num;
		else if (strcmp(name, "rate_limit") == 0)
			opts->rate_limit = strtod(value, NULL);
		else if (strcmp(name, "token_ttl_s") == 0)
			opts->token_ttl_s = num;
		else if (strcmp(name, "batch_size") == 0)
			opts->batch_size = num;
		else if (strcmp(name, "max_response_bytes") == 0)
			opts->max_response_bytes = strtoll(value, NULL, 10);
		else if (strcmp(name, "ca_file") == 0)
			opts->ca_file = pstrdup(value);
		else if (strcmp(name, "client_secret") == 0)
			opts->client_secret = pstrdup(value);
		else if (strcmp(name, "user_id") == 0)
			opts->user_id = pstrdup(value);
		else if (strcmp(name, "credential_id") == 0)
			opts->credential_id = pstrdup(value);
		else if (strcmp(name, "resource") == 0)
			opts->resource = pstrdup(value);
	}
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
 * The options in force for a scan or modify of a table by a user.  relid is
 * InvalidOid for server-level work such as credential listing; userid is
 * InvalidOid while planning, which needs no user mapping.
 */
RolloutOptions *
rollout_get_options(Oid serverid, Oid userid, Oid relid)
{
	RolloutOptions *opts = palloc0(sizeof(RolloutOptions));
	ForeignServer *server = GetForeignServer(serverid);

	opts->serverid = serverid;
	opts->servername = server->servername;
	opts->api_url = ROLLOUT_DEFAULT_API_URL;
	opts->auth_url = ROLLOUT_DEFAULT_AUTH_URL;
	opts->page_size = 100;
	opts->scan_concurrency = 1;
	opts->timeout_ms = 30000;
	opts->connect_timeout_ms = 10000;
	opts->max_retries = 5;
	opts->retry_base_ms = 500;
	opts->retry_max_ms = 30000;
	opts->not_ready_timeout_s = 90;
	opts->rate_limit = 50;
	opts->token_ttl_s = 900;
	opts->batch_size = 10;
	opts->max_response_bytes = 67108864;
	opts->resource = "people";

	apply_options(opts, server->options, ForeignServerRelationId);
	if (OidIsValid(relid))
		apply_options(opts, GetForeignTable(relid)->options,
					  ForeignTableRelationId);
	if (OidIsValid(userid))
	{
		UserMapping *mapping = GetUserMapping(userid, serverid);

		apply_options(opts, mapping->options, UserMappingRelationId);
		check_mapping(opts, server->servername);
	}
	return opts;
}

/* The "field" option of a column, or NULL. */
char *
rollout_column_field(Oid relid, AttrNumber attnum)
{
	List	   *options = GetForeignColumnOptions(relid, attnum);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "field") == 0)
			return defGetString(d);
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

void		_PG_init(void);

void
_PG_init(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));
	rollout_limiter_init();
}
