/*-------------------------------------------------------------------------
 *
 * api.c
 *		  One Rollout API request, decided from start to end: its URL and
 *		  headers, the token and the credential id it carries, when it is
 *		  sent (the rate limiter) and sent again (the retry policy), what it
 *		  costs (the counters); credential discovery and
 *		  rollout_fdw_credentials().  http.c moves the bytes; errors.c
 *		  turns a failed outcome into its error.
 *
 * Rules kept here:
 *	- a token is minted once per backend and user mapping and reused until
 *	  shortly before it expires; a 401 forces one fresh token and one retry
 *	  (a 401 means the API did nothing, so this is safe for a POST too);
 *	- the credential id comes from the mapping's credential_id, else from
 *	  GET {auth_url}/credentials when exactly one credential is visible;
 *	- every value placed in a URL is percent-encoded (rollout_escape); no
 *	  header value carries a control character (CR/LF would inject
 *	  headers): a credential id is checked when it is taken from the
 *	  mapping or from GET /credentials, and every value again when headers
 *	  are built; a bad one is an error and nothing is sent;
 *	- the Authorization header lives in a curl_slist owned by
 *	  PG_TRY/PG_FINALLY and is never put in a message; no URL that reaches
 *	  a message carries a secret: secrets travel only in headers, and
 *	  messages name the path, not the headers;
 *	- GET, PUT and DELETE are retried on 429, 5xx and network failures;
 *	  a POST only when the API cannot have acted (429, 409, a connection
 *	  that never opened); 409 "not ready" is retried until
 *	  not_ready_timeout_s, whatever the method; backoff is exponential with
 *	  full jitter;
 *	- numbers from the API (Retry-After) saturate before arithmetic; a
 *	  Retry-After longer than the larger of retry_max_ms and a minute is
 *	  not waited out; a wait (backoff, a tenant's pause, the rate limiter)
 *	  longer than what statement_timeout leaves fails at once with the
 *	  classified error;
 *	- every request is counted in the server's counters and the caller's,
 *	  retries and waits included;
 *	- rollout_fdw_credentials() needs USAGE on the server, and a server of
 *	  this wrapper, recognised by its handler function, not by name; it
 *	  never reads a credential's data.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include "access/xact.h"
#include "common/pg_prng.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

#define MAX_RETRY_AFTER_MS (INT64CONST(1) << 40)	/* saturation point */

/* A credential as GET {auth_url}/credentials lists it (never its data). */
typedef struct RolloutCredential
{
	char	   *id;
	char	   *label;
	char	   *app_key;
	char	   *created_at;
} RolloutCredential;

/* What a run of jobs keeps beside them while http.c runs their transfers. */
typedef struct JobClock
{
	TimestampTz ready_since;	/* could start, but the limiter said wait */
	TimestampTz not_ready_until;	/* end of the 409 budget, once seen */
} JobClock;

typedef struct ApiRun
{
	RolloutOptions *opts;
	RolloutApiJob *jobs;
	JobClock   *clocks;
} ApiRun;

/* rollout_fdw_handler is defined in rollout_fdw.c */
extern PGDLLEXPORT Datum rollout_fdw_handler(PG_FUNCTION_ARGS);


/* ------------------------------------------------------------------
 * The request: URL, token, headers
 * ------------------------------------------------------------------ */

/*
 * Percent-encode a value for a URL path segment or query (RFC 3986: all but
 * the unreserved characters), in palloc'd memory.
 */
char *
rollout_escape(const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	StringInfoData buf;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
			*p == '_' || *p == '~')
			appendStringInfoChar(&buf, (char) *p);
		else
		{
			appendStringInfoChar(&buf, '%');
			appendStringInfoChar(&buf, hex[*p >> 4]);
			appendStringInfoChar(&buf, hex[*p & 15]);
		}
	}
	return buf.data;
}

/* Mint a token for the mapping unless the cached one is still good. */
static void
ensure_token(RolloutConn *conn, RolloutOptions *opts, bool force)
{
	int64		now = (int64) time(NULL);
	int			margin = Min(60, opts->token_ttl_s / 10);
	char	   *token;

	if (conn->token != NULL && !force && now < conn->token_expires - margin)
		return;
	rollout_conn_set_token(conn, NULL, 0);
	token = rollout_mint_jwt(opts->client_id, opts->client_secret,
							 conn->user_id, now, opts->token_ttl_s);
	rollout_conn_set_token(conn, token, now + opts->token_ttl_s);
	explicit_bzero(token, strlen(token));
	pfree(token);
	{
		RolloutStats minted = {0};

		minted.tokens_minted = 1;
		rollout_stats_add(opts, &minted);
	}
}

/* Whether a header value is free of control characters (CR, LF, NUL...). */
static bool
header_value_ok(const char *value)
{
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/*
 * Refuse a credential id that cannot go in a header; source says where it
 * came from ("option \"credential_id\" of the user mapping", "GET
 * .../credentials").
 */
static void
check_credential_id(const char *id, const char *source, int sqlstate)
{
	if (!header_value_ok(id))
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("the credential id from %s contains a control character",
						source),
				 errdetail("A header value cannot hold CR, LF or other control characters; nothing was sent.")));
}

static struct curl_slist *
add_header(struct curl_slist *list, const char *header)
{
	struct curl_slist *grown = curl_slist_append(list, header);

	if (grown == NULL)
	{
		curl_slist_free_all(list);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	return grown;
}

/*
 * Headers of a request: its user's token, its credential if any.  The
 * caller frees them with curl_slist_free_all.  Content-Type goes on every
 * request, bodies or not, as Rollout's own clients send it.
 */
static struct curl_slist *
build_headers(RolloutApiJob *job)
{
	struct curl_slist *list = NULL;
	char	   *auth;

	/* checked again here, whatever set them */
	if (!header_value_ok(job->conn->token))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("the token cannot be sent in a header")));
	if (job->credential != NULL)
		check_credential_id(job->credential,
							"the user mapping, a key column or GET /credentials",
							ERRCODE_FDW_INVALID_STRING_FORMAT);
	auth = psprintf("Authorization: Bearer %s", job->conn->token);
	list = add_header(list, auth);
	explicit_bzero(auth, strlen(auth));
	pfree(auth);
	list = add_header(list, "Accept: application/json");
	list = add_header(list, "Content-Type: application/json");
	if (job->credential != NULL)
	{
		char	   *cred = psprintf("X-Rollout-Credential-Id: %s",
									job->credential);

		list = add_header(list, cred);
		pfree(cred);
	}
	return list;
}

/* ------------------------------------------------------------------
 * When a request is sent, and sent again
 * ------------------------------------------------------------------ */

/*
 * Exponential backoff with full jitter for the n-th retry (n from 0): a
 * random wait between retry_base_ms and min(retry_max_ms,
 * retry_base_ms * 2^n).  With the defaults, five retries wait 15.5 s at most.
 */
static long
backoff_ms(RolloutOptions *opts, int n)
{
	double		cap = opts->retry_base_ms * pow(2.0, Min(n, 30));

	cap = Min(cap, (double) opts->retry_max_ms);
	cap = Max(cap, (double) opts->retry_base_ms);
	return (long) pg_prng_uint64_range(&pg_global_prng_state,
									   (uint64) opts->retry_base_ms,
									   (uint64) cap);
}

/*
 * Whether a wait of delay_ms fits in what statement_timeout leaves of the
 * statement (always, without statement_timeout).
 */
bool
rollout_fits_statement(TimestampTz now, int64 delay_ms)
{
	TimestampTz end;

	if (StatementTimeout <= 0)
		return true;
	end = TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(),
									  StatementTimeout);
	return delay_ms < INT_MAX &&
		TimestampTzPlusMilliseconds(now, delay_ms) < end;
}

/*
 * Retry-After (whole seconds; libcurl turns an HTTP-date into seconds from
 * now) in milliseconds, saturated: 0 when absent, zero or negative.
 */
static int64
retry_after_ms(curl_off_t seconds)
{
	if (seconds <= 0)
		return 0;
	if (seconds >= MAX_RETRY_AFTER_MS / 1000)
		return MAX_RETRY_AFTER_MS;
	return (int64) seconds * 1000;
}

/*
 * Whether a retry after delay_ms may be scheduled (then *retry_at is when):
 * never past what statement_timeout leaves, never for a Retry-After longer
 * than both retry_max_ms and a minute.  A refused retry ends the job with
 * what it has.
 */
static bool
schedule_retry(RolloutOptions *opts, RolloutApiJob *job, int64 delay_ms,
			   bool from_retry_after, TimestampTz *retry_at)
{
	TimestampTz now = GetCurrentTimestamp();

	delay_ms = Max(delay_ms, 0);
	if (from_retry_after && delay_ms > Max(opts->retry_max_ms, 60000))
		return false;
	if (delay_ms >= INT_MAX || !rollout_fits_statement(now, delay_ms))
	{
		job->out_of_time = true;
		return false;
	}
	*retry_at = TimestampTzPlusMilliseconds(now, delay_ms);
	job->resp.stats.backoff_us += delay_ms * 1000;
	return true;
}

static void
count_response(RolloutApiJob *job, long status, size_t bytes)
{
	RolloutStats *st = &job->resp.stats;

	st->requests++;
	st->bytes += bytes;
	if (status == 0)
		st->network_errors++;
	else if (status < 300)
		st->status_2xx++;
	else if (status < 400)
		st->status_3xx++;
	else if (status < 500)
		st->status_4xx++;
	else
		st->status_5xx++;
	if (status == 429)
		st->rate_limited++;
}

/* The job is over: its counts go to the server's. */
static void
finish_job(RolloutOptions *opts, RolloutApiJob *job)
{
	job->resp.stats.retries = job->resp.retries;
	rollout_stats_add(opts, &job->resp.stats);
	if (job->failure != ROLLOUT_FAIL_NONE ||
		(job->resp.status >= 400 && job->resp.status != 404))
		rollout_stats_error(opts, job->method, job->label, job->resp.status);
}

/*
 * http.c asks whether job i may start: the rate limiter's answer, or the
 * job fails at once when the wait would outlast statement_timeout (never
 * sent, as a 429 would).  The time spent waiting is counted.
 */
static long
may_start(void *arg, int i, TimestampTz now)
{
	ApiRun	   *run = (ApiRun *) arg;
	RolloutApiJob *job = &run->jobs[i];
	JobClock   *clock = &run->clocks[i];
	bool		paused;
	long		throttle = rollout_limiter_take(run->opts, &paused);

	if (throttle > 0 && !rollout_fits_statement(now, throttle))
	{
		job->failure = ROLLOUT_FAIL_RATE_LIMITED;
		job->wait_ms = throttle;
		job->wait_paused = paused;
		job->out_of_time = true;
		finish_job(run->opts, job);
		return -1;
	}
	if (throttle > 0)
	{
		if (clock->ready_since == 0)
			clock->ready_since = now;
		return throttle;
	}
	if (clock->ready_since != 0)
		job->resp.stats.throttled_us += Max(now - clock->ready_since, 0);
	clock->ready_since = 0;
	return 0;
}

/*
 * An attempt of job i is over: keep its response, or decide on a retry by
 * the rules of the file banner.  True when the job has its final outcome
 * (a response, or a transport failure in job->failure).
 */
static bool
attempt_over(void *arg, int i, RolloutHttpTransfer *x, TimestampTz *retry_at)
{
	ApiRun	   *run = (ApiRun *) arg;
	RolloutOptions *opts = run->opts;
	RolloutApiJob *job = &run->jobs[i];
	JobClock   *clock = &run->clocks[i];
	bool		is_post = strcmp(job->method, "POST") == 0;
	long		status = x->status;
	int64		after_ms;
	int64		delay;

	count_response(job, status, x->len);
	if (status != 0 && status != 401)
		rollout_limiter_vouch(opts);
	after_ms = retry_after_ms(x->retry_after_s);
	delay = after_ms > 0 ? after_ms : backoff_ms(opts, job->resp.retries);
	/* the shared pause is capped by the limiter, whatever the options */
	if (status == 429 && after_ms > 0)
		rollout_limiter_pause(opts, (long) Min(after_ms, INT_MAX));

	switch (x->error)
	{
		case ROLLOUT_HTTP_OK:
			break;
		case ROLLOUT_HTTP_TOO_BIG:
			job->failure = ROLLOUT_FAIL_TOO_BIG;
			break;
		case ROLLOUT_HTTP_BAD_HEADER:
			job->failure = ROLLOUT_FAIL_BAD_HEADER;
			break;
		case ROLLOUT_HTTP_OUT_OF_MEMORY:
			job->failure = ROLLOUT_FAIL_OUT_OF_MEMORY;
			break;
		case ROLLOUT_HTTP_FAILED:
			job->curl_error = x->curl_error;
			if (is_post && x->sent)
				job->failure = ROLLOUT_FAIL_AMBIGUOUS;
			else if (job->resp.retries < opts->max_retries &&
					 schedule_retry(opts, job, delay, x->retry_after_s > 0,
									retry_at))
			{
				job->resp.retries++;
				return false;
			}
			else
				job->failure = ROLLOUT_FAIL_NETWORK;
			break;
	}
	if (job->failure != ROLLOUT_FAIL_NONE)
	{
		finish_job(opts, job);
		return true;
	}

	if (status == 409 && !job->defer_not_ready)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (clock->not_ready_until == 0)
			clock->not_ready_until = TimestampTzPlusMilliseconds(now,
																 opts->not_ready_timeout_s * 1000L);
		if (now < clock->not_ready_until &&
			schedule_retry(opts, job,
						   Min(delay, TimestampDifferenceMilliseconds(now, clock->not_ready_until) + 1),
						   false, retry_at))
			return false;
	}
	else if ((status == 429 || (status >= 500 && !is_post)) &&
			 job->resp.retries < opts->max_retries &&
			 schedule_retry(opts, job, delay, after_ms > 0, retry_at))
	{
		job->resp.retries++;
		return false;
	}

	job->resp.status = status;
	job->resp.body_len = x->len;
	job->resp.body = palloc(x->len + 1);
	if (x->len > 0)
		memcpy(job->resp.body, x->data, x->len);
	job->resp.body[x->len] = '\0';
	finish_job(opts, job);
	return true;
}

/*
 * Run the jobs, each with its user's headers on its own kept-alive handle,
 * to their final outcome.
 */
static void
run_with_headers(RolloutOptions *opts, RolloutApiJob *jobs, int njobs)
{
	RolloutHttpTransfer *xfers = palloc0(sizeof(RolloutHttpTransfer) * njobs);
	ApiRun		run;
	RolloutHttpHooks hooks;

	run.opts = opts;
	run.jobs = jobs;
	run.clocks = palloc0(sizeof(JobClock) * njobs);
	hooks.may_start = may_start;
	hooks.attempt_over = attempt_over;
	hooks.arg = &run;
	for (int i = 0; i < njobs; i++)
	{
		jobs[i].failure = ROLLOUT_FAIL_NONE;
		jobs[i].wait_ms = 0;
		jobs[i].wait_paused = false;
		jobs[i].out_of_time = false;
		memset(&jobs[i].resp, 0, sizeof(RolloutResponse));
		xfers[i].method = jobs[i].method;
		xfers[i].url = jobs[i].url;
		xfers[i].body = jobs[i].body;
	}

	PG_TRY();
	{
		for (int i = 0; i < njobs; i++)
		{
			xfers[i].headers = build_headers(&jobs[i]);
			xfers[i].easy = rollout_conn_handle(i);
		}
		rollout_http_run(opts, xfers, njobs, &hooks);
	}
	PG_FINALLY();
	{
		for (int i = 0; i < njobs; i++)
			curl_slist_free_all(xfers[i].headers);
	}
	PG_END_TRY();
	pfree(run.clocks);
	pfree(xfers);
}

/*
 * Run authenticated requests (method, url, label, body, conn and credential
 * of each job set by the caller), ROLLOUT_MAX_INFLIGHT at a time, whoever's
 * they are.  Each job ends with its final response or a recorded transport
 * failure (rollout_api_raise_failure).  Jobs answered 401 are sent once
 * more with a fresh token of their user: a 401 means the API did nothing,
 * so this is safe for a POST too.
 */
void
rollout_api_run_jobs(RolloutOptions *opts, RolloutApiJob *jobs, int njobs)
{
	for (int i = 0; i < njobs; i++)
		ensure_token(jobs[i].conn, opts, false);

	for (int start = 0; start < njobs; start += ROLLOUT_MAX_INFLIGHT)
	{
		int			n = Min(njobs - start, ROLLOUT_MAX_INFLIGHT);
		RolloutApiJob *window = jobs + start;
		List	   *refreshed = NIL;

		run_with_headers(opts, window, n);
		for (int i = 0; i < n; i++)
		{
			if (window[i].failure != ROLLOUT_FAIL_NONE ||
				window[i].resp.status != 401)
				continue;
			if (!list_member_ptr(refreshed, window[i].conn))
			{
				ensure_token(window[i].conn, opts, true);
				refreshed = lappend(refreshed, window[i].conn);
			}
			run_with_headers(opts, &window[i], 1);
		}
		list_free(refreshed);
	}
}

/*
 * Run requests of one user (rollout_api_run_jobs), with the credential its
 * mapping or GET /credentials gives when need_credential.
 */
void
rollout_api_run(RolloutConn *conn, RolloutOptions *opts,
				RolloutApiJob *jobs, int njobs, bool need_credential)
{
	if (need_credential)
		rollout_api_run_as(conn, NULL, opts, jobs, njobs);
	else
	{
		for (int i = 0; i < njobs; i++)
		{
			jobs[i].conn = conn;
			jobs[i].credential = NULL;
		}
		rollout_api_run_jobs(opts, jobs, njobs);
	}
}

/*
 * Run requests of one user with a credential: the one given, else the
 * user's own (the mapping's credential_id, or GET /credentials).
 */
void
rollout_api_run_as(RolloutConn *conn, const char *credential,
				   RolloutOptions *opts, RolloutApiJob *jobs, int njobs)
{
	if (credential == NULL && conn->credential_id == NULL)
		rollout_resolve_credential(conn, opts);
	for (int i = 0; i < njobs; i++)
	{
		jobs[i].conn = conn;
		jobs[i].credential = credential ? credential : conn->credential_id;
	}
	rollout_api_run_jobs(opts, jobs, njobs);
}

/*
 * Send one authenticated request to the API (path under api_url) as conn's
 * user with credential (NULL: the user's own), and return its final
 * response, whatever its status (see rollout_check_status); a transport
 * failure raises.
 */
void
rollout_api_request_as(RolloutConn *conn, const char *credential,
					   RolloutOptions *opts, const char *method,
					   const char *path, const char *body,
					   RolloutResponse *resp)
{
	RolloutApiJob job = {0};

	job.method = method;
	job.url = psprintf("%s%s", opts->api_url, path);
	job.label = path;
	job.body = body;
	rollout_api_run_as(conn, credential, opts, &job, 1);
	rollout_api_raise_failure(opts, &job);
	*resp = job.resp;
}

/* ------------------------------------------------------------------
 * Credential discovery, and rollout_fdw_credentials()
 * ------------------------------------------------------------------ */

static char *
json_string_or_null(json_t *obj, const char *key)
{
	json_t	   *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	return rollout_json_scalar_text(v);
}

/* The job of GET {auth_url}/credentials for conn's user. */
void
rollout_credentials_job(RolloutConn *conn, RolloutOptions *opts,
						RolloutApiJob *job)
{
	job->method = "GET";
	job->url = psprintf("%s/credentials", opts->auth_url);
	job->label = "/credentials";
	job->conn = conn;
	job->credential = NULL;
}

/*
 * The credentials GET {auth_url}/credentials answered, a bare JSON array.
 * Only id, label, appKey and createdAt are kept: the items' "data" holds
 * upstream secrets and is never read.
 */
static List *
parse_credentials(RolloutOptions *opts, RolloutApiJob *job)
{
	json_t	   *root;
	List	   *result = NIL;
	size_t		i;
	json_t	   *item;
	const char *path = job->label;

	rollout_api_raise_failure(opts, job);
	rollout_check_status("GET", path, &job->resp);
	root = rollout_json_parse(CurrentMemoryContext, job->resp.body,
							  job->resp.body_len, "GET", path);
	if (!json_is_array(root))
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
				 errmsg("Rollout response to GET %s is not a JSON array",
						path)));
	json_array_foreach(root, i, item)
	{
		RolloutCredential *cred = palloc0(sizeof(RolloutCredential));

		if (!json_is_object(item) || json_object_get(item, "id") == NULL)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout response to GET %s holds an item without an id",
							path)));
		cred->id = json_string_or_null(item, "id");
		cred->label = json_string_or_null(item, "label");
		cred->app_key = json_string_or_null(item, "appKey");
		cred->created_at = json_string_or_null(item, "createdAt");
		result = lappend(result, cred);
	}
	return result;
}

/* The credentials visible to conn's user. */
static List *
list_credentials(RolloutConn *conn, RolloutOptions *opts)
{
	RolloutApiJob job = {0};

	rollout_credentials_job(conn, opts, &job);
	rollout_api_run(conn, opts, &job, 1, false);
	return parse_credentials(opts, &job);
}

/* Is conn the user mapping's own user (not one a key column names)? */
static bool
is_mapping_user(RolloutConn *conn, RolloutOptions *opts)
{
	return strcmp(conn->user_id, opts->user_id) == 0;
}

/*
 * The answer of conn's GET /credentials (rollout_credentials_job), taken:
 * the one credential the user can see becomes conn's, else an error.
 */
void
rollout_take_credentials(RolloutConn *conn, RolloutOptions *opts,
						 RolloutApiJob *job)
{
	List	   *creds = parse_credentials(opts, job);
	StringInfoData found;
	ListCell   *lc;
	bool		own = is_mapping_user(conn, opts);

	if (list_length(creds) == 1)
	{
		RolloutCredential *cred = linitial(creds);

		check_credential_id(cred->id,
							psprintf("GET %s/credentials", opts->auth_url),
							ROLLOUT_ERRCODE_BAD_RESPONSE);
		rollout_conn_set_credential(conn, cred->id);
		return;
	}

	initStringInfo(&found);
	foreach(lc, creds)
	{
		RolloutCredential *cred = lfirst(lc);

		appendStringInfo(&found, "%s%s (%s)", found.len > 0 ? ", " : "",
						 cred->id, cred->label ? cred->label : "no label");
	}
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_CREDENTIAL),
			 list_length(creds) == 0
			 ? errmsg("Rollout user \"%s\" has no credential", conn->user_id)
			 : errmsg("Rollout user \"%s\" has %d credentials; rollout_fdw cannot choose one",
					  conn->user_id, list_length(creds)),
			 list_length(creds) == 0
			 ? errdetail("The credential list of the server's auth_url is empty.")
			 : errdetail_internal("Credentials found: %s.",
								  rollout_redact(found.data)),
			 list_length(creds) == 0
			 ? (own
				? errhint("Connect a CRM for this user in Rollout, or set credential_id on the user mapping.")
				: errhint("Connect a CRM for this user in Rollout."))
			 : (own
				? errhint("Set credential_id on the user mapping, e.g. ALTER USER MAPPING ... OPTIONS (ADD credential_id '%s').",
						  rollout_redact(((RolloutCredential *) linitial(creds))->id))
				: errhint("Name the credential with a condition on the column of field '@credential_id', or set rollout_fdw.credential_id."))));
}

/*
 * conn's credential: the mapping's credential_id for the mapping's own
 * user, else the one credential the user can see (GET /credentials).
 */
void
rollout_resolve_credential(RolloutConn *conn, RolloutOptions *opts)
{
	RolloutApiJob job = {0};

	if (opts->credential_id != NULL && is_mapping_user(conn, opts))
	{
		check_credential_id(opts->credential_id,
							"option \"credential_id\" of the user mapping",
							ERRCODE_FDW_INVALID_STRING_FORMAT);
		rollout_conn_set_credential(conn, opts->credential_id);
		return;
	}
	rollout_credentials_job(conn, opts, &job);
	rollout_api_run(conn, opts, &job, 1, false);
	rollout_take_credentials(conn, opts, &job);
}

/*
 * A server a function of this extension names: it must be one of ours, and
 * userid needs USAGE on it, as a scan of its tables does (dblink checks the
 * same before using a mapping).
 */
void
rollout_check_server(ForeignServer *server, Oid userid)
{
	AclResult	aclresult;

	aclresult = rollout_server_aclcheck(server->serverid, userid, ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	if (!rollout_uses_fdw(server))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" does not use rollout_fdw",
						server->servername)));
}

/* Whether a server belongs to a wrapper whose handler is this library's. */
bool
rollout_uses_fdw(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	FmgrInfo	handler;

	if (!OidIsValid(fdw->fdwhandler))
		return false;
	fmgr_info(fdw->fdwhandler, &handler);
	return handler.fn_addr == rollout_fdw_handler;
}

PG_FUNCTION_INFO_V1(rollout_fdw_credentials);

/*
 * rollout_fdw_credentials(server name, user_id text DEFAULT NULL): the
 * credentials a Rollout user can see (id, label, app key, creation time),
 * never their data.  The user: the one given (another than the mapping's
 * own needs user_id '*' on the mapping), else the settings' or the
 * mapping's.  Needs USAGE on the server, as a scan of its tables does
 * (dblink checks the same before using a mapping).
 */
Datum
rollout_fdw_credentials(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForeignServer *server;
	Oid			userid = GetUserId();
	RolloutOptions *opts;
	RolloutConn *conn;
	RolloutTarget target;
	List	   *creds;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)), false);
	rollout_check_server(server, userid);

	opts = rollout_get_options(server->serverid, userid, InvalidOid);
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
	{
		target.user_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
		rollout_check_id(target.user_id, ROLLOUT_KEY_USER);
		rollout_check_user(opts, target.user_id,
						   psprintf("\"%s\" given to rollout_fdw_credentials",
									target.user_id));
	}
	else
		rollout_default_target(opts, &target);
	conn = rollout_get_conn(GetUserMapping(userid, server->serverid),
							target.user_id);
	creds = list_credentials(conn, opts);

	foreach(lc, creds)
	{
		RolloutCredential *cred = lfirst(lc);
		Datum		values[4];
		bool		nulls[4];
		char	   *fields[4] = {cred->id, cred->label, cred->app_key,
		cred->created_at};

		for (int i = 0; i < 4; i++)
		{
			nulls[i] = fields[i] == NULL;
			values[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(fields[i]);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
