/*-------------------------------------------------------------------------
 *
 * rollout_fdw.h
 *		  The one private header of rollout_fdw, grouped by the file that
 *		  defines each symbol.
 *
 * Rules kept throughout the extension:
 *	- no secret (client secret, JWT, Authorization header) is ever placed in
 *	  a message, a log line, EXPLAIN output or a plan;
 *	- memory from libcurl, jansson and libjwt (malloc) always has an owner on
 *	  the error path;
 *	- every wait is interruptible.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ROLLOUT_FDW_H
#define ROLLOUT_FDW_H

#include "postgres.h"

#include <curl/curl.h>

#include "access/attnum.h"
#include "commands/explain.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/relcache.h"

#include "compat.h"

/*
 * PostgreSQL declares its SQL function json_object() in utils/builtins.h,
 * jansson its constructor of the same name.  We use only jansson's: the
 * other is renamed while builtins.h is read.  Source files include
 * builtins.h only through this header.
 */
#define json_object pg_sql_json_object
#include "utils/builtins.h"
#undef json_object
#include <jansson.h>
/*
 * At run time the name json_object resolves to the postgres executable's
 * SQL function, not to jansson's constructor: never call it.
 */
#pragma GCC poison json_object

/* SQLSTATEs of the API error classes (README "Errors") */
#define ROLLOUT_ERRCODE_AUTH			ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
#define ROLLOUT_ERRCODE_FORBIDDEN		ERRCODE_INSUFFICIENT_PRIVILEGE
#define ROLLOUT_ERRCODE_NOT_FOUND		ERRCODE_FDW_TABLE_NOT_FOUND
#define ROLLOUT_ERRCODE_BAD_REQUEST		ERRCODE_INVALID_PARAMETER_VALUE
#define ROLLOUT_ERRCODE_NOT_READY		ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
#define ROLLOUT_ERRCODE_RATE_LIMITED	ERRCODE_CONFIGURATION_LIMIT_EXCEEDED
#define ROLLOUT_ERRCODE_SERVER			ERRCODE_SYSTEM_ERROR
#define ROLLOUT_ERRCODE_NETWORK			ERRCODE_CONNECTION_FAILURE
#define ROLLOUT_ERRCODE_BAD_RESPONSE	ERRCODE_PROTOCOL_VIOLATION
#define ROLLOUT_ERRCODE_CREDENTIAL		ERRCODE_FDW_OPTION_NAME_NOT_FOUND

#define ROLLOUT_DEFAULT_API_URL		"https://crm.universal.rollout.com/api"
#define ROLLOUT_DEFAULT_AUTH_URL	"https://universal.rollout.com/api"

/*
 * Every option of a server, user mapping and foreign table, merged: table
 * options override the server's, the user mapping's client_id overrides the
 * server's.
 */
typedef struct RolloutOptions
{
	Oid			serverid;
	char	   *servername;
	char	   *api_url;
	char	   *auth_url;
	char	   *client_id;
	int			page_size;
	int			scan_concurrency;
	int			timeout_ms;
	int			connect_timeout_ms;
	int			max_retries;
	int			retry_base_ms;
	int			retry_max_ms;
	int			not_ready_timeout_s;
	double		rate_limit;
	int			token_ttl_s;
	int			batch_size;
	int64		max_response_bytes;
	char	   *ca_file;
	/* user mapping */
	char	   *client_secret;
	char	   *user_id;
	char	   *credential_id;
	/* foreign table */
	char	   *resource;
	bool		merge_tags;		/* UPDATE's PUT adds tags (?mergeTags=true) */
	bool		skip_user_errors;	/* on_user_error 'skip' */
} RolloutOptions;

/* user_id '*' on a user mapping: it may act for any Rollout user. */
#define ROLLOUT_ANY_USER "*"

/* A key column (field '@user_id' or '@credential_id'), or neither. */
typedef enum RolloutKey
{
	ROLLOUT_KEY_NONE = -1,
	ROLLOUT_KEY_USER = 0,		/* field '@user_id' */
	ROLLOUT_KEY_CREDENTIAL = 1	/* field '@credential_id' */
} RolloutKey;

#define ROLLOUT_NKEYS 2

/* The longest Rollout user or credential id taken from a query, in bytes. */
#define ROLLOUT_MAX_ID_LEN 255

/* Most requests one backend has in flight at once (a batch of INSERTs). */
#define ROLLOUT_MAX_INFLIGHT 32

/*
 * A (user, credential) as a hash key compared byte for byte: the user id,
 * NUL, the credential id (none: NUL); the rest zeroes.
 */
typedef struct RolloutPairKey
{
	char		ids[2 * (ROLLOUT_MAX_ID_LEN + 1)];
} RolloutPairKey;

/* The key of a RolloutConn: a user mapping and a Rollout user of it. */
typedef struct RolloutConnKey
{
	Oid			umid;			/* user mapping OID */
	RolloutPairKey user;		/* the Rollout user id, no credential */
} RolloutConnKey;

/*
 * Per (user mapping, Rollout user) state kept for the life of the backend
 * (connection.c): the user's token and discovered credential.
 */
typedef struct RolloutConn
{
	RolloutConnKey key;			/* hash key */
	char	   *user_id;		/* the JWT's sub (TopMemoryContext) */
	char	   *token;			/* current JWT (TopMemoryContext) or NULL */
	int64		token_expires;	/* Unix seconds */
	char	   *credential_id;	/* resolved credential (TopMemoryContext) */
	bool		invalidated;
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	uint64		last_used;		/* tick of its latest use, for eviction */
	LocalTransactionId used_in; /* the transaction that last used it */
} RolloutConn;

/* Counters of requests: per server (rollout_fdw_stats) and per scan. */
typedef struct RolloutStats
{
	int64		requests;		/* attempts sent, retries included */
	int64		status_2xx;
	int64		status_3xx;
	int64		status_4xx;
	int64		status_5xx;
	int64		network_errors;
	int64		retries;
	int64		rate_limited;	/* 429 answers */
	int64		throttled_us;	/* waiting for the rate limiter */
	int64		backoff_us;		/* waiting between retries */
	int64		bytes;
	int64		users_skipped;	/* on_user_error 'skip': users left out */
	int64		tokens_minted;
} RolloutStats;

/* An API response, body in palloc'd memory of the caller's context. */
typedef struct RolloutResponse
{
	long		status;
	char	   *body;
	size_t		body_len;
	int			retries;		/* how many retries it took */
	RolloutStats stats;			/* what this request cost */
} RolloutResponse;

/* How an API request ended when it has no response to show (api.c). */
typedef enum RolloutFailure
{
	ROLLOUT_FAIL_NONE,			/* a response is in resp */
	ROLLOUT_FAIL_NETWORK,		/* transport failure after the retries */
	ROLLOUT_FAIL_AMBIGUOUS,		/* a POST failed after it was sent */
	ROLLOUT_FAIL_TOO_BIG,		/* over max_response_bytes */
	ROLLOUT_FAIL_OUT_OF_MEMORY,
	ROLLOUT_FAIL_BAD_HEADER,	/* response headers over the limit */
	ROLLOUT_FAIL_RATE_LIMITED	/* not sent: the limiter's wait outlasts
								 * statement_timeout (wait_ms) */
} RolloutFailure;

/* One request for rollout_api_run: the input, then the outcome (api.c). */
typedef struct RolloutApiJob
{
	const char *method;
	const char *url;
	const char *label;			/* the request as messages name it */
	const char *body;			/* JSON or NULL */
	RolloutConn *conn;			/* whose token it carries */
	const char *credential;		/* X-Rollout-Credential-Id, or NULL: none */
	bool		defer_not_ready;	/* a 409 ends the job (the caller waits) */
	RolloutResponse resp;		/* final response (palloc'd body) */
	RolloutFailure failure;
	CURLcode	curl_error;
	long		wait_ms;		/* ROLLOUT_FAIL_RATE_LIMITED: the wait refused */
	bool		wait_paused;	/* ... a 429's pause rather than rate_limit */
	bool		out_of_time;	/* a wait (limiter, retry) was refused: it
								 * outlasted statement_timeout */
} RolloutApiJob;

/* The most response header bytes a transfer accepts, all lines together. */
#define ROLLOUT_HTTP_MAX_HEADER_BYTES (256 * 1024)

/* How the latest attempt of a transfer ended, as the transport sees it. */
typedef enum RolloutHttpError
{
	ROLLOUT_HTTP_OK,			/* a response came: status, data */
	ROLLOUT_HTTP_TOO_BIG,		/* the body passed max_response_bytes */
	ROLLOUT_HTTP_BAD_HEADER,	/* the headers passed their limit */
	ROLLOUT_HTTP_OUT_OF_MEMORY, /* the body could not be kept */
	ROLLOUT_HTTP_FAILED			/* any other failure: curl_error */
} RolloutHttpError;

/* One transfer of rollout_http_run: the request, then its latest attempt. */
typedef struct RolloutHttpTransfer
{
	const char *method;
	const char *url;
	const char *body;			/* or NULL */
	struct curl_slist *headers;
	CURL	   *easy;			/* a handle no other transfer of the run uses */
	/* set when an attempt is over, for RolloutHttpHooks.attempt_over */
	RolloutHttpError error;
	CURLcode	curl_error;
	bool		sent;			/* the request may have reached the server */
	long		status;			/* HTTP status; 0 unless error is OK */
	curl_off_t	retry_after_s;	/* Retry-After as libcurl reads it, or 0 */
	const char *data;			/* the body (http.c's memory, hook only) */
	size_t		len;
	struct RolloutTransferState *state; /* http.c's, during the run */
} RolloutHttpTransfer;

/*
 * What the caller of rollout_http_run decides about transfer i.
 * may_start: 0 to start it now, > 0 to ask again after that many ms, < 0
 * when it is over without an attempt.  attempt_over: true when it is over,
 * else false and *retry_at, the time to send it again.
 */
typedef struct RolloutHttpHooks
{
	long		(*may_start) (void *arg, int i, TimestampTz now);
	bool		(*attempt_over) (void *arg, int i, RolloutHttpTransfer *x,
								 TimestampTz *retry_at);
	void	   *arg;
} RolloutHttpHooks;

/* How a scan is answered. */
typedef enum RolloutScanMode
{
	ROLLOUT_SCAN_LIST,			/* GET /{resource}?limit=..., paged */
	ROLLOUT_SCAN_ID,			/* GET /{resource}/{id} */
	ROLLOUT_SCAN_IDS			/* GET /{resource}/{id} for each id */
} RolloutScanMode;

/* What the request of a scan answers of its conditions (pushdown.c). */
typedef struct RolloutPushdown
{
	RolloutScanMode mode;
	Expr	   *id_value;		/* the id (ID) or the array of ids (IDS) */
	List	   *filter_names;	/* LIST: String query parameters ... */
	List	   *filter_values;	/* ... and the Exprs of their values */
	List	   *pushed;			/* the clauses the request answers ... */
	List	   *pushed_params;	/* ... and the String parameter of each */
	bool		all_pushed;		/* every clause is among them */
	bool		several_lists;	/* a filter with several values */
	Expr	   *key_values[ROLLOUT_NKEYS];	/* key column = value (an array:
											 * = ANY), or NULL ... */
	Expr	   *key_clauses[ROLLOUT_NKEYS]; /* ... and its condition */
} RolloutPushdown;

/* How a column reads its JSON value and converts it to its type. */
typedef enum RolloutConvKind
{
	ROLLOUT_CONV_TEXT,			/* text, varchar, bpchar, name */
	ROLLOUT_CONV_BOOL,
	ROLLOUT_CONV_NUMBER,		/* integers, numeric, floats */
	ROLLOUT_CONV_JSON,			/* json, jsonb */
	ROLLOUT_CONV_ARRAY,			/* 1-D array of a scalar type */
	ROLLOUT_CONV_OTHER			/* timestamps, dates, uuid, ...: by input fn */
} RolloutConvKind;

/* Deepest nesting of a JSON document the decoder follows. */
#define ROLLOUT_MAX_JSON_DEPTH 1000

/* A field path: keys from the record down (UTF-8), and array indexes. */
typedef struct RolloutFieldPath
{
	int			nkeys;
	char	  **keys;
	int32	   *index;			/* the key as an array index, or -1 */
} RolloutFieldPath;

typedef struct RolloutColumn
{
	AttrNumber	attnum;
	char	   *attname;
	bool		whole_record;	/* field '*' */
	List	   *path;			/* explicit field: list of String keys */
	char	   *key_exact;		/* default field: the column name ... */
	char	   *key_camel;		/* ... else its camelCase */
	RolloutFieldPath paths[2];	/* what the decoder matches, best first */
	int			npaths;
	char	   *field;			/* the field option as written, or NULL */
	RolloutKey	key;			/* a key column: not in the record */
	bool		wildcard;		/* field 'key[*].sub': paths[0] is the array */
	RolloutFieldPath elem_path; /* wildcard: the path in each element */
	Oid			typid;
	int32		typmod;
	RolloutConvKind kind;
	bool		is_integer;		/* int2, int4, int8, oid */
	bool		is_domain;
	void	   *domain_extra;	/* domain_check's cache */
	FmgrInfo	infunc;
	Oid			ioparam;
	/* arrays only */
	Oid			elemtype;
	RolloutConvKind elemkind;
	bool		elem_is_integer;
	FmgrInfo	elem_infunc;
	Oid			elem_ioparam;
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
} RolloutColumn;

/* The JSON type of a value the decoder kept. */
typedef enum RolloutValueType
{
	ROLLOUT_JSON_NULL,
	ROLLOUT_JSON_STRING,
	ROLLOUT_JSON_NUMBER,
	ROLLOUT_JSON_TRUE,
	ROLLOUT_JSON_FALSE,
	ROLLOUT_JSON_OBJECT,
	ROLLOUT_JSON_ARRAY
} RolloutValueType;

/* A value of a record, as a slice of the body (strings with their quotes). */
typedef struct RolloutValue
{
	int32		off;
	int32		len;
	int16		col;			/* which column reads it (-1: the id) */
	uint8		alt;			/* by which of the column's paths */
	uint8		type;			/* a RolloutValueType */
} RolloutValue;

typedef struct RolloutRecord
{
	int32		off;			/* the record's slice of the body */
	int32		len;
	int32		first;			/* its values: values[first .. first+nvalues) */
	int32		nvalues;
	int32		list;			/* which top-level array it came from */
} RolloutRecord;

/* The _metadata fields a list page is checked by. */
typedef enum RolloutMetaField
{
	ROLLOUT_META_TOTAL,
	ROLLOUT_META_LIMIT,
	ROLLOUT_META_OFFSET,
	ROLLOUT_META_NEXT,
	ROLLOUT_META_COLLECTION,
	ROLLOUT_META_COUNT
} RolloutMetaField;

typedef struct RolloutMetaValue
{
	bool		present;
	RolloutValueType type;
	char	   *text;			/* scalars: the number's text, the string */
} RolloutMetaValue;

/*
 * A decoded body: a list page, or one record (decode.c).  Only JSON
 * objects become records; a list holding anything else is flagged.
 */
typedef struct RolloutPage
{
	const char *body;
	int			len;
	const char *label;			/* the request, for messages */
	bool		root_is_object;
	bool		meta_is_object;
	RolloutMetaValue meta[ROLLOUT_META_COUNT];
	List	   *list_names;		/* names of the top-level arrays */
	Bitmapset  *nonobject_lists;	/* arrays holding a non-object */
	bool		list_has_nonobject;	/* the chosen one does */
	int			nlists;
	const char *list_key;		/* the list the records came from */
	bool		list_found;
	RolloutRecord *records;
	int			nrecords;
	int			records_cap;
	RolloutValue *values;
	int			nvalues;
	int			values_cap;
} RolloutPage;

/* A scan's source of records (scan.c); also used by ANALYZE. */
typedef struct RolloutScan
{
	Relation	rel;
	RolloutOptions *opts;
	RolloutConn *conn;
	RolloutColumn *columns;		/* the columns to convert */
	int			ncolumns;
	const char *resource;
	int			page_size;
	int			concurrency;
	int			max_pages;		/* stop after this many list pages (0: no) */
	int64		row_limit;		/* the query needs no more rows (0: all) */
	int			table_page_size;	/* page_size before a LIMIT lowered it */
	int64		max_rows;		/* a pushed LIMIT: rows returned at most, or -1 */
	int64		walk_start;		/* a pushed OFFSET: where this walk starts */
	int64		skip;			/* records still to skip (an OFFSET not taken) */

	MemoryContext page_cxt;		/* reset per wave: bodies, decoded pages */
	MemoryContext scan_cxt;		/* per (re)scan: cursors and ids seen */

	/* what is asked */
	bool		by_ids;
	List	   *ids;			/* by ids: the ids, as text */
	const char *filter_query;	/* list: "&name=value..." */
	const char *asked_value;	/* list: its required parameter's value */
	List	   *queries;		/* several lists: (query, asked value)
								 * pairs not asked yet ... */
	List	   *long_lists;		/* ... and those longer than a page */

	/* where it stands */
	RolloutPage **wave;			/* the pages of the last requests */
	int			npages;
	int			pages_cap;
	int			cur_page;
	int			cur_rec;
	bool		done;			/* no request left to send */
	char	   *next_cursor;	/* cursor paging: the next page's cursor */
	bool		offset_paging;	/* overlapping offset pages in flight */
	bool		repairing;		/* the cursor again, over the whole list */
	int64		next_offset;	/* offset paging: the next page's offset */
	int64		page_limit;		/* offset paging: records per page */
	int64		overlap;		/* offset paging: records repeated per page */
	uint64	   *link_ids;		/* the last linked page's ids, sorted */
	int			nlink_ids;
	int			link_cap;
	int64		link_offset;	/* ... and its offset */
	int			rewinds;		/* rewinds since the last linked page */
	int64		first_total;	/* _metadata.total of the first page, or -1 */
	int64		last_total;		/* ... of the latest page */
	int64		max_total;		/* ... the largest */
	int64		rows_seen;		/* records received by this walk, and
								 * those before a pushed OFFSET */
	int64		rows_returned;	/* rows handed to the executor */
	int64		list_pages;
	int			empty_pages;	/* cursor paging: empty pages in a row */
	HTAB	   *seen_cursors;
	struct idset_hash *returned;	/* the ids returned (64-bit hashes) */

	/* EXPLAIN ANALYZE: what repairs cost */
	int64		duplicates;		/* records skipped: returned before */
	int			repairs;		/* rewinds, or the switch to the cursor */

	/* EXPLAIN ANALYZE counters */
	int64		pages;
	RolloutStats stats;

	struct RolloutProgress *progress;	/* progress.c's slot, or NULL */

	/* whose records (fanout.c) */
	const char *credential;		/* X-Rollout-Credential-Id, or NULL: the
								 * user's discovered credential */
	const char *key_values[ROLLOUT_NKEYS];	/* what key columns show */
	bool		cursor_only;	/* no offset pages: other scans run beside */
	bool		defer_not_ready;	/* a 409 postpones the step (retry_at) */
	TimestampTz retry_at;		/* ... not before then */
	TimestampTz not_ready_until;	/* ... and not after then: the error */
	int			not_ready_tries;
	int			step;			/* the kind of request prepared */
	bool		out_of_time;	/* a wait refused by statement_timeout */
} RolloutScan;

/* Several scans of one table, one per (user, credential) (fanout.c). */
typedef struct RolloutFanout
{
	RolloutOptions *opts;
	UserMapping *um;
	int64		row_limit;		/* rows the query needs, 0: all */
	MemoryContext parent;
	MemoryContext step_cxt;		/* reset per step: the answers' bodies */
	MemoryContext start_cxt;	/* reset per start: the targets' ids */

	RolloutScan **scans;		/* one per target of the latest start; the
								 * others are made like the first */
	int			nscans;
	int			nscans_made;	/* scans made, reused by later starts */
	int			scans_cap;
	bool	   *skipped;		/* on_user_error 'skip': left out */
	int			cur;			/* the scan whose rows are returned */
	int			next_start;		/* round robin of the steps */
	RolloutStats stats;			/* requests of no scan (credentials) */
} RolloutFanout;

/* One (user, credential) to read: the credential may be NULL (discover). */
typedef struct RolloutTarget
{
	const char *user_id;
	const char *credential_id;
} RolloutTarget;

/* The state of a foreign INSERT, UPDATE or DELETE (modify.c, body.c). */
typedef struct RolloutModifyState
{
	Relation	rel;
	CmdType		operation;
	RolloutOptions *opts;
	RolloutConn *conn;
	const char *resource;
	List	   *target_attrs;
	bool		retrieve;		/* fill the row from the API's answer */
	int			ncolumns;
	RolloutColumn *columns;		/* every live column, for bodies and RETURNING */
	AttrNumber	id_attno;		/* the table's id column, or 0 */
	AttrNumber	junk_attno;		/* rollout_id in the subplan's output */
	AttrNumber	row_attno;		/* rollout_row (the row the scan read), or 0 */
	MemoryContext temp_cxt;		/* reset per row or batch */

	/* rows this statement acted on, for the error of a later failure */
	int64		acted;
	int			in_flight;		/* POSTs sent and not yet answered */
	StringInfoData acted_ids;
	int			ids_listed;

	RolloutColumn *cur_column;	/* error context while building a body */

	/* INSERT ... ON CONFLICT DO NOTHING (conflict.c) */
	bool		skip_existing;	/* skip rows whose e-mail a person holds */
	UserMapping *um;
	const char *credential;		/* the current row's credential, or NULL:
								 * its user's own */
	AttrNumber	key_attno[ROLLOUT_NKEYS];	/* the key columns, or 0 */
	AttrNumber	key_junk[ROLLOUT_NKEYS];	/* ... their old values */
	HTAB	   *created_emails; /* the e-mails of rows created (64-bit hashes) */

	RolloutStats stats;			/* requests sent, for EXPLAIN ANALYZE */
} RolloutModifyState;

/* A row's e-mails and the CRM person found holding one (conflict.c). */
typedef struct RolloutEmailLookup
{
	List	   *emails;			/* the row's e-mails, UTF-8 */
	char	   *found_id;		/* a person holding one, safe for a message */
	char	   *found_email;	/* ... that e-mail, in the database encoding */
	bool		failed;			/* not found, but a lookup failed */
} RolloutEmailLookup;

/*
 * The routes of a collection (endpoint.c): what the API answers, per
 * Rollout's OpenAPI snapshot.
 */
#define ROLLOUT_ROUTE_LIST			0x01	/* GET /{resource} */
#define ROLLOUT_ROUTE_GET			0x02	/* GET /{resource}/{id} */
#define ROLLOUT_ROUTE_CREATE		0x04	/* POST /{resource} */
#define ROLLOUT_ROUTE_UPDATE		0x08	/* PUT /{resource}/{id} */
#define ROLLOUT_ROUTE_DELETE		0x10	/* DELETE /{resource}/{id} */
#define ROLLOUT_ROUTE_MERGE_TAGS	0x20	/* PUT ...?mergeTags=true */
#define ROLLOUT_ROUTE_TAGS			0x40	/* POST /{resource}/{id}/tags/apply|delete */
#define ROLLOUT_ROUTE_MEMBERS		0x80	/* POST|DELETE /{resource}/{id}/people */

typedef struct RolloutEndpoint
{
	const char *resource;		/* the collection path, NULL: not in the
								 * snapshot */
	int			routes;			/* ROLLOUT_ROUTE_* */
	const char *required_param; /* the list's required query parameter */
	bool		list_is_array;	/* the list answers a bare array, unpaged */
	bool		create_is_array;	/* POST answers [record] */
} RolloutEndpoint;

/* in option.c */
extern RolloutOptions *rollout_get_options(Oid serverid, Oid userid,
										   Oid relid);
extern char *rollout_column_field(Oid relid, AttrNumber attnum);
extern RolloutKey rollout_key_of_field(const char *field);
extern char *rollout_mapping_user_id(Oid serverid, Oid userid);
extern char *rollout_setting_user_id;
extern char *rollout_setting_credential_id;
extern bool rollout_is_id_column(Oid relid, AttrNumber attnum);
extern void rollout_curl_init(void);

/* in endpoint.c */
extern const RolloutEndpoint *rollout_endpoint(const char *resource);
extern bool rollout_endpoint_has(const char *resource, int routes);
extern const RolloutEndpoint *rollout_table_endpoint(Oid relid);
extern int	rollout_endpoint_updatable(const RolloutEndpoint *endpoint);
extern void rollout_check_modify_route(Relation rel, const char *resource,
									   CmdType operation);
extern void rollout_check_required_filter(Oid relid, const char *resource,
										  List *filter_names);

/* in ratelimit.c */
extern void rollout_limiter_init(void);
extern long rollout_limiter_take(RolloutOptions *opts, bool *paused);
extern void rollout_limiter_pause(RolloutOptions *opts, long ms);
extern void rollout_limiter_vouch(RolloutOptions *opts);

/* in stats.c */
extern void rollout_stats_init(void);
extern void rollout_stats_add(RolloutOptions *opts, const RolloutStats *delta);
extern void rollout_stats_error(RolloutOptions *opts, const char *method,
								const char *path, long status);
extern void rollout_stats_sum(RolloutStats *to, const RolloutStats *delta);

/* in progress.c */
extern void rollout_progress_init(void);
extern void rollout_progress_report(RolloutScan *s, bool requesting);
extern void rollout_progress_end(RolloutScan *s);
extern void rollout_explain_counters(const RolloutStats *stats, int64 pages,
									 ExplainState *es);

/* in body.c */
extern char *rollout_build_body(RolloutModifyState *st, TupleTableSlot *slot,
								const char *row_id);
extern char *rollout_api_text(const char *text);
extern void rollout_id_cannot_change(Relation rel);

/* in conflict.c */
extern bool rollout_conflict_supported(const char *resource);
extern bool rollout_create_unsure(RolloutApiJob *job);
extern List *rollout_row_emails(const char *body);
extern void rollout_find_by_email(RolloutModifyState *st,
								  RolloutEmailLookup *rows, int nrows,
								  bool strict);
extern void rollout_skip_existing(RolloutModifyState *st, char **bodies,
								  int n, bool *skip);
extern void rollout_raise_insert_failure(RolloutModifyState *st,
										 RolloutApiJob *jobs, int njobs,
										 int failed);

/* in auth.c */
extern char *rollout_mint_jwt(const char *client_id, const char *secret,
							  const char *subject, int64 issued_at,
							  int ttl_s);

/* in connection.c */
extern RolloutConn *rollout_get_conn(UserMapping *user, const char *user_id);
extern CURL *rollout_conn_handle(int i);
extern void rollout_conn_set_token(RolloutConn *conn, const char *token,
								   int64 expires);
extern void rollout_conn_set_credential(RolloutConn *conn, const char *id);

/* in api.c */
extern void rollout_api_run(RolloutConn *conn, RolloutOptions *opts,
							RolloutApiJob *jobs, int njobs,
							bool need_credential);
extern void rollout_api_run_jobs(RolloutOptions *opts, RolloutApiJob *jobs,
								 int njobs);
extern void rollout_api_run_as(RolloutConn *conn, const char *credential,
							   RolloutOptions *opts, RolloutApiJob *jobs,
							   int njobs);
extern void rollout_api_request_as(RolloutConn *conn, const char *credential,
								   RolloutOptions *opts, const char *method,
								   const char *path, const char *body,
								   RolloutResponse *resp);
extern bool rollout_fits_statement(TimestampTz now, int64 delay_ms);
extern void rollout_credentials_job(RolloutConn *conn, RolloutOptions *opts,
									RolloutApiJob *job);
extern void rollout_take_credentials(RolloutConn *conn, RolloutOptions *opts,
									 RolloutApiJob *job);
extern void rollout_resolve_credential(RolloutConn *conn,
									   RolloutOptions *opts);
extern char *rollout_escape(const char *value);
extern bool rollout_uses_fdw(ForeignServer *server);
extern void rollout_check_server(ForeignServer *server, Oid userid);

/* in errors.c */
extern void rollout_api_raise_failure(RolloutOptions *opts,
									  RolloutApiJob *job);
extern void rollout_check_status(const char *method, const char *path,
								 RolloutResponse *resp);
extern void rollout_raise_unsure_create(RolloutApiJob *job, const char *detail,
										const char *hint);
extern char *rollout_redact(const char *text);

/* in http.c */
extern CURL *rollout_http_new_handle(void);
extern void rollout_http_run(RolloutOptions *opts, RolloutHttpTransfer *xfers,
							 int n, const RolloutHttpHooks *hooks);
extern uint32 rollout_wait_response(void);
extern uint32 rollout_wait_backoff(void);

/* in decode.c */
extern RolloutPage *rollout_decode_page(const char *body, size_t len,
										const char *label,
										const char *resource,
										RolloutColumn *columns,
										int ncolumns);
extern RolloutPage *rollout_decode_record(const char *body, size_t len,
										  const char *label,
										  RolloutColumn *columns,
										  int ncolumns);
extern RolloutPage *rollout_decode_array(const char *body, size_t len,
										 const char *label,
										 RolloutColumn *columns,
										 int ncolumns);

/* in jsonvalue.c */
extern char *rollout_json_unescape(const char *raw, int len,
								   const char **problem);
extern RolloutValue *rollout_decode_elements(const char *body,
											 RolloutValue *array,
											 int *nelems);
extern bool rollout_decode_path(const char *body, RolloutValue *container,
								RolloutFieldPath *path, RolloutValue *found);

/* in convert.c */
extern void rollout_column_init(RolloutColumn *col, Relation rel,
								AttrNumber attnum);
extern void rollout_store_record(struct TupleTableSlot *slot,
								 RolloutPage *page, int recno, Relation rel,
								 RolloutColumn *columns, int ncolumns,
								 MemoryContext cxt);
extern char *rollout_record_id(RolloutPage *page, int recno);
extern char *rollout_safe_text(const char *s, int len, int maxbytes);

/* in json.c */
extern void rollout_json_append(StringInfo buf, json_t *value);
extern char *rollout_json_scalar_text(json_t *value);
extern void rollout_datum_to_json(StringInfo buf, Datum value, Oid typid);
extern json_t *rollout_json_load(MemoryContext owner, const char *body,
								 size_t len, json_error_t *error);
extern json_t *rollout_json_parse(MemoryContext owner, const char *body,
								  size_t len, const char *method,
								  const char *path);

/* in scan.c */
extern RolloutScan *rollout_scan_create(Relation rel, RolloutOptions *opts,
										RolloutConn *conn,
										RolloutColumn *columns, int ncolumns,
										const char *resource, int page_size,
										int concurrency, MemoryContext parent);
extern void rollout_scan_list(RolloutScan *s, const char *filter_query,
							  const char *asked_value);
extern void rollout_scan_window(RolloutScan *s, int64 offset, int64 count);
extern void rollout_scan_lists(RolloutScan *s, List *filter_queries,
							   List *asked_values);
extern void rollout_scan_ids(RolloutScan *s, List *ids);
extern RolloutScan *rollout_scan_like(RolloutScan *model,
									  MemoryContext parent);
extern bool rollout_scan_next(RolloutScan *s, struct TupleTableSlot *slot,
							  MemoryContext row_cxt);
extern bool rollout_scan_emit(RolloutScan *s, struct TupleTableSlot *slot,
							  MemoryContext row_cxt);
extern bool rollout_scan_finished(RolloutScan *s);
extern int	rollout_scan_prepare(RolloutScan *s, RolloutApiJob **jobs);
extern void rollout_scan_take(RolloutScan *s, RolloutApiJob *jobs, int n);

/* in pushdown.c */
extern void rollout_classify_clauses(PlannerInfo *root, RelOptInfo *baserel,
									 Oid relid, List *clauses,
									 RolloutPushdown *pd);
extern List *rollout_join_clauses(PlannerInfo *root, RelOptInfo *baserel,
								  Oid relid);
extern bool rollout_lacks_required(RolloutPushdown *pd, Oid relid);
extern double rollout_id_count(Expr *array);
extern double rollout_target_count(RolloutPushdown *pd);
extern double rollout_request_count(RolloutPushdown *pd, double list_rows,
									int page_size);
extern int64 rollout_limit_rows(PlannerInfo *root, RelOptInfo *baserel,
								bool all_pushed);
extern List *rollout_array_texts(Datum array);
extern List *rollout_scanned_side_first(PlannerInfo *root, List *clauses,
										Relids scanned);
extern bool rollout_match_key(PlannerInfo *root, RelOptInfo *baserel,
							  Expr *clause, RolloutKey *key, Expr **value);
extern bool rollout_offset_pushable(PlannerInfo *root, RelOptInfo *baserel,
									const RolloutPushdown *pd);
extern char *rollout_describe_request(RolloutPushdown *pd,
									  const char *resource, int page_size,
									  bool parameterized, bool window,
									  Node *count, Node *offset);
extern char *rollout_describe_pushed(PlannerInfo *root, RelOptInfo *baserel,
									 Oid relid, RolloutPushdown *pd);

/* in fanout.c */
extern bool rollout_any_user(RolloutOptions *opts);
extern void rollout_check_user(RolloutOptions *opts, const char *user_id,
							   const char *source);
extern void rollout_default_target(RolloutOptions *opts, RolloutTarget *t);
extern void rollout_refuse_no_user(const char *servername) pg_attribute_noreturn();
extern bool rollout_needs_user_key(Oid serverid, Oid userid);
extern List *rollout_targets(RolloutOptions *opts, UserMapping *um,
							 List *users, bool users_given,
							 List *credentials, bool credentials_given);
extern List *rollout_check_targets(RolloutOptions *opts, UserMapping *um,
								   List *targets);
extern void rollout_check_id(const char *id, RolloutKey key);
extern void rollout_pair_key(RolloutPairKey *k, const char *user_id,
							 const char *credential_id);
extern RolloutFanout *rollout_fanout_create(RolloutScan *first,
											UserMapping *um, int64 row_limit,
											MemoryContext parent);
extern void rollout_fanout_start(RolloutFanout *f, List *targets);
extern bool rollout_fanout_next(RolloutFanout *f, TupleTableSlot *slot,
								MemoryContext row_cxt);
extern void rollout_fanout_counters(RolloutFanout *f, RolloutStats *stats,
									int64 *pages, int64 *repairs,
									int64 *duplicates);
extern void rollout_fanout_end(RolloutFanout *f);

/* in keyjoin.c */
extern void rollout_keyjoin_init(void);

/* in rollout_fdw.c (the key join's inner side) */
extern bool rollout_key_joinable(PlannerInfo *root, RelOptInfo *rel);
extern Path *rollout_key_join_inner_path(PlannerInfo *root, RelOptInfo *rel,
										 double targets);
extern void rollout_scan_join_targets(ForeignScanState *node, List *targets);

/* in modify.c */
extern void rollout_remember_id(RolloutModifyState *st, const char *id);
extern void rolloutAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
										   RangeTblEntry *target_rte,
										   Relation target_relation);
extern List *rolloutPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
									  Index resultRelation,
									  int subplan_index);
extern void rolloutBeginForeignModify(ModifyTableState *mtstate,
									  ResultRelInfo *rinfo, List *fdw_private,
									  int subplan_index, int eflags);
extern TupleTableSlot *rolloutExecForeignInsert(EState *estate,
												ResultRelInfo *rinfo,
												TupleTableSlot *slot,
												TupleTableSlot *planSlot);
extern TupleTableSlot **rolloutExecForeignBatchInsert(EState *estate,
													  ResultRelInfo *rinfo,
													  TupleTableSlot **slots,
													  TupleTableSlot **planSlots,
													  int *numSlots);
extern int	rolloutGetForeignModifyBatchSize(ResultRelInfo *rinfo);
extern TupleTableSlot *rolloutExecForeignUpdate(EState *estate,
												ResultRelInfo *rinfo,
												TupleTableSlot *slot,
												TupleTableSlot *planSlot);
extern TupleTableSlot *rolloutExecForeignDelete(EState *estate,
												ResultRelInfo *rinfo,
												TupleTableSlot *slot,
												TupleTableSlot *planSlot);
extern void rolloutBeginForeignInsert(ModifyTableState *mtstate,
									  ResultRelInfo *rinfo);
extern int	rolloutIsForeignRelUpdatable(Relation rel);
extern void rolloutExplainForeignModify(ModifyTableState *mtstate,
										ResultRelInfo *rinfo,
										List *fdw_private, int subplan_index,
										ExplainState *es);

/* in tags.c */
extern const char *rollout_update_query(RolloutOptions *opts);

/* in import.c */
extern List *rollout_import_schema(ImportForeignSchemaStmt *stmt,
								   Oid serverOid);

#endif							/* ROLLOUT_FDW_H */
