/*-------------------------------------------------------------------------
 *
 * http.c
 *		  libcurl only: one request with its retries, backoff and rate
 *		  limiting, and the classification of a failed response.
 *
 * Rules kept here:
 *	- every wait is interruptible: transfers run on the curl multi interface
 *	  and wait on the backend's latch and the transfer's sockets together
 *	  (WaitEventSet), backoff and throttling sleep on the latch; each wakeup
 *	  runs CHECK_FOR_INTERRUPTS, so cancel and statement_timeout act at once;
 *	- curl callbacks never palloc, ereport or check for interrupts: they
 *	  fill a malloc'd buffer and return an error code to stop a transfer;
 *	- the response body is capped by max_response_bytes while it downloads;
 *	- GET, PUT and DELETE are retried on 429, 5xx and network failures;
 *	  a POST only when the API cannot have acted (429, 409, a connection
 *	  that never opened); 409 "not ready" is retried until
 *	  not_ready_timeout_s, whatever the method;
 *	- no URL that reaches a message carries a secret: secrets travel only in
 *	  headers, and messages name the path, not the headers; upstream text
 *	  (error bodies, anything the API sends) is redacted of tokens before
 *	  it reaches a message (rollout_redact);
 *	- numbers from the API (Retry-After) saturate before arithmetic; a
 *	  Retry-After longer than the larger of retry_max_ms and a minute is
 *	  not waited out; a wait (backoff, a tenant's pause, the rate limiter)
 *	  longer than what statement_timeout leaves fails at once with the
 *	  classified error;
 *	- libcurl's threaded resolver runs name resolution in a thread of the
 *	  backend; its socket is watched with the others, and with
 *	  CURLOPT_QUICK_EXIT an interrupted transfer abandons the lookup instead
 *	  of joining it, so cancel and timeouts act during DNS too;
 *	- no proxy from the environment (https_proxy, ALL_PROXY) ever sees a
 *	  request: CURLOPT_PROXY is "";
 *	- response headers are capped (MAX_HEADER_BYTES): a larger header is a
 *	  broken response, not "out of memory".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <curl/curl.h>

#include "access/xact.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

#define MAX_WAIT_MS 1000		/* longest sleep between curl timer checks */
#define MAX_HEADER_BYTES (256 * 1024)	/* all response headers together */
#define MAX_RETRY_AFTER_MS (INT64CONST(1) << 40)	/* saturation point */

/*
 * What the callbacks of one transfer fill in (malloc'd memory only), and
 * where a job stands in the scheduler.
 */
struct RolloutTransfer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		limit;			/* max_response_bytes */
	bool		too_big;
	bool		out_of_memory;
	bool		header_too_big;
	size_t		header_bytes;
	bool		done;
	CURLcode	result;
	/* scheduling */
	bool		running;		/* added to the multi handle */
	bool		finished;		/* a final outcome is in the job */
	TimestampTz not_before;		/* a backoff: do not start before this */
	TimestampTz ready_since;	/* could start, but the limiter said wait */
	TimestampTz not_ready_until;	/* end of the 409 budget, once seen */
};

typedef struct RolloutTransfer Transfer;

/* Sockets libcurl asked us to watch, kept by the socket callback. */
typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} WatchedSocket;

static CURLM *multi = NULL;
static WatchedSocket *watched = NULL;	/* malloc'd, grown on demand */
static int	n_watched = 0;
static int	watched_cap = 0;
static long curl_timeout_ms = -1;


static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nmemb;

	if (t->len + n > t->limit)
	{
		t->too_big = true;
		return 0;
	}
	if (t->len + n + 1 > t->cap)
	{
		size_t		cap = Max(t->cap * 2, t->len + n + 1);
		char	   *grown;

		cap = Max(cap, 16384);
		grown = realloc(t->data, cap);
		if (grown == NULL)
		{
			t->out_of_memory = true;
			return 0;
		}
		t->data = grown;
		t->cap = cap;
	}
	memcpy(t->data + t->len, ptr, n);
	t->len += n;
	t->data[t->len] = '\0';
	return n;
}

/* Count the response's header bytes; stop the transfer past the cap. */
static size_t
header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nitems;

	t->header_bytes += n;
	if (t->header_bytes > MAX_HEADER_BYTES)
	{
		t->header_too_big = true;
		return 0;
	}
	return n;
}

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < n_watched; i++)
		if (watched[i].fd == fd)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < n_watched)
			watched[i] = watched[--n_watched];
		return 0;
	}
	if (i == n_watched)
	{
		if (n_watched == watched_cap)
		{
			int			cap = Max(16, watched_cap * 2);
			WatchedSocket *grown = realloc(watched, cap * sizeof(WatchedSocket));

			if (grown == NULL)
				return -1;
			watched = grown;
			watched_cap = cap;
		}
		n_watched++;
	}
	watched[i].fd = fd;
	watched[i].what = what;
	return 0;
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	curl_timeout_ms = timeout_ms;
	return 0;
}

static CURLM *
get_multi(void)
{
	if (multi == NULL)
	{
		rollout_curl_init();
		multi = curl_multi_init();
		if (multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
		if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
			curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK)
		{
			curl_multi_cleanup(multi);
			multi = NULL;
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("could not set up the libcurl multi handle")));
		}
	}
	return multi;
}

/* A new easy handle; the caller owns it for the life of the backend. */
CURL *
rollout_http_new_handle(void)
{
	CURL	   *easy;

	rollout_curl_init();
	easy = curl_easy_init();

	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	return easy;
}

/* Record the results of finished transfers in their Transfer. */
static void
collect_finished(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(get_multi(), &left)) != NULL)
	{
		Transfer   *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		if (t != NULL)
		{
			t->done = true;
			t->result = msg->data.result;
		}
	}
}

/* A failure of the multi handle itself: every transfer is lost. */
static void
check_multi(CURLMcode rc)
{
	if (rc != CURLM_OK)
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_NETWORK),
				 errmsg("libcurl failed: %s", curl_multi_strerror(rc))));
}

/*
 * Wait once (at most max_wait_ms) for the watched sockets, the latch or
 * curl's timer, and let curl act on what happened.  The WaitEventSet is freed before anything can
 * throw (PG 15 does not track it in a resource owner).
 */
static void
wait_and_act(long max_wait_ms)
{
	WaitEventSet *set;
	WaitEvent  *events = palloc(sizeof(WaitEvent) * (n_watched + 2));
	int			nevents_max = n_watched + 2;
	volatile int nevents = 0;
	long		timeout = curl_timeout_ms < 0 ? MAX_WAIT_MS :
		Min(curl_timeout_ms, MAX_WAIT_MS);
	int			running;

	timeout = Min(timeout, max_wait_ms);

	if (timeout > 0)
	{
		set = CreateWaitEventSet(CurrentMemoryContext, n_watched + 2);
		PG_TRY();
		{
			AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch,
							  NULL);
			AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET,
							  NULL, NULL);
			for (int i = 0; i < n_watched; i++)
			{
				uint32		ev = 0;

				if (watched[i].what & CURL_POLL_IN)
					ev |= WL_SOCKET_READABLE;
				if (watched[i].what & CURL_POLL_OUT)
					ev |= WL_SOCKET_WRITEABLE;
				AddWaitEventToSet(set, ev, watched[i].fd, NULL, NULL);
			}
			nevents = WaitEventSetWait(set, timeout, events, nevents_max,
									   PG_WAIT_EXTENSION);
		}
		PG_FINALLY();
		{
			FreeWaitEventSet(set);
		}
		PG_END_TRY();
	}

	for (int i = 0; i < nevents; i++)
	{
		int			flags = 0;

		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			continue;
		}
		if (events[i].events & WL_SOCKET_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events[i].events & WL_SOCKET_WRITEABLE)
			flags |= CURL_CSELECT_OUT;
		if (flags != 0)
			check_multi(curl_multi_socket_action(get_multi(), events[i].fd,
												 flags, &running));
	}
	pfree(events);
	check_multi(curl_multi_socket_action(get_multi(), CURL_SOCKET_TIMEOUT, 0,
										 &running));
	collect_finished();
}

/* Set up a job's easy handle and hand it to the multi handle. */
static void
start_transfer(RolloutOptions *opts, RolloutHttpJob *job)
{
	CURL	   *easy = job->easy;
	Transfer   *t = job->transfer;

	free(t->data);
	t->data = NULL;
	t->len = t->cap = 0;
	t->too_big = t->out_of_memory = t->done = t->header_too_big = false;
	t->header_bytes = 0;
	t->result = CURLE_OK;
	t->limit = (size_t) opts->max_response_bytes;

	curl_easy_reset(easy);
	/* a failed setopt here is a bad URL or out of memory: the transfer fails */
	curl_easy_setopt(easy, CURLOPT_URL, job->url);
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
#if LIBCURL_VERSION_NUM >= 0x075700
	curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, job->headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) opts->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
					 (long) opts->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
					 (curl_off_t) opts->max_response_bytes);
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "rollout_fdw/1.0");
	if (opts->ca_file != NULL)
		curl_easy_setopt(easy, CURLOPT_CAINFO, opts->ca_file);
	if (strcmp(job->method, "GET") != 0)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, job->method);
	if (job->body != NULL)
	{
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, job->body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) strlen(job->body));
	}

	if (curl_multi_add_handle(get_multi(), easy) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start a libcurl transfer")));
	t->running = true;
}

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

static bool
never_sent(CURL *easy, CURLcode code)
{
	long		sent = 0;

	if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT ||
		code == CURLE_COULDNT_RESOLVE_PROXY)
		return true;
	curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent);
	return sent == 0;
}

/*
 * Whether a retry after delay_ms may be scheduled: never past what
 * statement_timeout leaves, never for a Retry-After longer than both
 * retry_max_ms and a minute.  A refused retry ends the job with what it
 * has.
 */
/*
 * Whether a wait of delay_ms fits in what statement_timeout leaves of the
 * statement (always, without statement_timeout).
 */
static bool
fits_statement(TimestampTz now, int64 delay_ms)
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

static bool
schedule_retry(RolloutOptions *opts, RolloutHttpJob *job, int64 delay_ms,
			   bool from_retry_after)
{
	TimestampTz now = GetCurrentTimestamp();

	delay_ms = Max(delay_ms, 0);
	if (from_retry_after && delay_ms > Max(opts->retry_max_ms, 60000))
		return false;
	if (delay_ms >= INT_MAX || !fits_statement(now, delay_ms))
		return false;
	job->transfer->not_before = TimestampTzPlusMilliseconds(now, delay_ms);
	job->resp.stats.backoff_us += delay_ms * 1000;
	return true;
}

static void
count_response(RolloutHttpJob *job, long status, size_t bytes)
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
finish_job(RolloutOptions *opts, RolloutHttpJob *job)
{
	job->transfer->finished = true;
	job->resp.stats.retries = job->resp.retries;
	rollout_stats_add(opts, &job->resp.stats);
	if (job->failure != ROLLOUT_FAIL_NONE ||
		(job->resp.status >= 400 && job->resp.status != 404))
		rollout_stats_error(opts, job->method, job->label, job->resp.status);
}

/*
 * A transfer of the job is over: keep its response, or decide on a retry
 * by the rules of the file banner.  Sets transfer->finished when the job
 * has its final outcome (a response, or a transport failure in
 * job->failure).
 */
static void
transfer_done(RolloutOptions *opts, RolloutHttpJob *job)
{
	Transfer   *t = job->transfer;
	bool		is_post = strcmp(job->method, "POST") == 0;
	long		status = 0;
	curl_off_t	retry_after = 0;
	int64		after_ms;
	int64		delay;

	curl_multi_remove_handle(get_multi(), job->easy);
	t->running = false;
	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(job->easy, CURLINFO_RETRY_AFTER, &retry_after);
	if (t->result != CURLE_OK)
		status = 0;
	count_response(job, status, t->len);
	if (status != 0 && status != 401)
		rollout_limiter_vouch(opts);
	after_ms = retry_after_ms(retry_after);
	delay = after_ms > 0 ? after_ms : backoff_ms(opts, job->resp.retries);
	/* the shared pause is capped by the limiter, whatever the options */
	if (status == 429 && after_ms > 0)
		rollout_limiter_pause(opts, (long) Min(after_ms, INT_MAX));

	if (t->too_big || t->result == CURLE_FILESIZE_EXCEEDED)
		job->failure = ROLLOUT_FAIL_TOO_BIG;
	else if (t->header_too_big || (t->result == CURLE_OUT_OF_MEMORY &&
								   !t->out_of_memory)
#if LIBCURL_VERSION_NUM >= 0x080600
			 || t->result == CURLE_TOO_LARGE
#endif
		)
	{
		/* libcurl refuses a header line over 100 kB as "out of memory" */
		job->failure = ROLLOUT_FAIL_BAD_HEADER;
	}
	else if (t->out_of_memory)
		job->failure = ROLLOUT_FAIL_OUT_OF_MEMORY;
	else if (t->result != CURLE_OK)
	{
		job->curl_error = t->result;
		if (is_post && !never_sent(job->easy, t->result))
			job->failure = ROLLOUT_FAIL_AMBIGUOUS;
		else if (job->resp.retries < opts->max_retries &&
				 schedule_retry(opts, job, delay, retry_after > 0))
		{
			job->resp.retries++;
			return;
		}
		else
			job->failure = ROLLOUT_FAIL_NETWORK;
	}
	if (job->failure != ROLLOUT_FAIL_NONE)
	{
		finish_job(opts, job);
		return;
	}

	if (status == 409)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (t->not_ready_until == 0)
			t->not_ready_until = TimestampTzPlusMilliseconds(now,
															 opts->not_ready_timeout_s * 1000L);
		if (now < t->not_ready_until &&
			schedule_retry(opts, job,
						   Min(delay, TimestampDifferenceMilliseconds(now, t->not_ready_until) + 1),
						   false))
			return;
	}
	else if ((status == 429 || (status >= 500 && !is_post)) &&
			 job->resp.retries < opts->max_retries &&
			 schedule_retry(opts, job, delay, after_ms > 0))
	{
		job->resp.retries++;
		return;
	}

	job->resp.status = status;
	job->resp.body_len = t->len;
	job->resp.body = palloc(t->len + 1);
	if (t->len > 0)
		memcpy(job->resp.body, t->data, t->len);
	job->resp.body[t->len] = '\0';
	finish_job(opts, job);
}

/*
 * Run the jobs to their final outcome, as many in flight at once as there
 * are jobs, each started when the rate limiter allows and its backoff is
 * over.  A job's transport failure is recorded in it, not raised, so that
 * the others finish (a batch of POSTs must know what it created); only an
 * interrupt or an internal failure raises, and then every transfer still
 * in flight is detached.
 */
void
rollout_http_run(RolloutOptions *opts, RolloutHttpJob *jobs, int njobs)
{
	Transfer   *transfers = palloc0(sizeof(Transfer) * njobs);

	for (int i = 0; i < njobs; i++)
	{
		jobs[i].transfer = &transfers[i];
		jobs[i].failure = ROLLOUT_FAIL_NONE;
		jobs[i].wait_ms = 0;
		jobs[i].wait_paused = false;
		jobs[i].resp.retries = 0;
		jobs[i].resp.status = 0;
		jobs[i].resp.body = NULL;
		jobs[i].resp.body_len = 0;
		memset(&jobs[i].resp.stats, 0, sizeof(RolloutStats));
	}

	PG_TRY();
	{
		for (;;)
		{
			TimestampTz now = GetCurrentTimestamp();
			long		wait_ms = MAX_WAIT_MS;
			bool		pending = false;

			for (int i = 0; i < njobs; i++)
			{
				Transfer   *t = &transfers[i];

				if (t->finished || t->running)
				{
					pending |= !t->finished;
					continue;
				}
				pending = true;
				if (t->not_before > now)
				{
					wait_ms = Min(wait_ms,
								  TimestampDifferenceMilliseconds(now, t->not_before) + 1);
					continue;
				}
				{
					bool		paused;
					long		throttle = rollout_limiter_take(opts, &paused);

					if (throttle > 0 && !fits_statement(now, throttle))
					{
						/* never sent: fail at once, as a 429 would */
						jobs[i].failure = ROLLOUT_FAIL_RATE_LIMITED;
						jobs[i].wait_ms = throttle;
						jobs[i].wait_paused = paused;
						finish_job(opts, &jobs[i]);
						continue;
					}
					if (throttle > 0)
					{
						if (t->ready_since == 0)
							t->ready_since = now;
						wait_ms = Min(wait_ms, throttle);
						continue;
					}
				}
				if (t->ready_since != 0)
					jobs[i].resp.stats.throttled_us += Max(now - t->ready_since, 0);
				t->ready_since = 0;
				start_transfer(opts, &jobs[i]);
				wait_ms = 0;
			}
			if (!pending)
				break;

			wait_and_act(wait_ms);
			for (int i = 0; i < njobs; i++)
				if (transfers[i].running && transfers[i].done)
					transfer_done(opts, &jobs[i]);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		for (int i = 0; i < njobs; i++)
		{
			if (transfers[i].running)
				curl_multi_remove_handle(get_multi(), jobs[i].easy);
			free(transfers[i].data);
			transfers[i].data = NULL;
		}
	}
	PG_END_TRY();
	for (int i = 0; i < njobs; i++)
		jobs[i].transfer = NULL;
	pfree(transfers);
}

/* Raise the error of a job that ended without a response. */
void
rollout_http_raise_failure(RolloutOptions *opts, RolloutHttpJob *job)
{
	const char *method = job->method;
	const char *path = job->label;
	int			sqlstate;

	switch (job->failure)
	{
		case ROLLOUT_FAIL_NONE:
			return;
		case ROLLOUT_FAIL_TOO_BIG:
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout response to %s %s is larger than max_response_bytes (%lld)",
							method, path, (long long) opts->max_response_bytes),
					 errhint("Lower page_size or raise the server's max_response_bytes.")));
			break;
		case ROLLOUT_FAIL_BAD_HEADER:
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout response to %s %s has headers that are too large",
							method, path),
					 errdetail("A response header line is limited to 100 kB and all headers together to %d kB.",
							   MAX_HEADER_BYTES / 1024)));
			break;
		case ROLLOUT_FAIL_RATE_LIMITED:
			if (job->wait_paused)
				ereport(ERROR,
						(errcode(ROLLOUT_ERRCODE_RATE_LIMITED),
						 errmsg("Rollout request %s %s not sent: client id \"%s\" is paused for %ld s more",
								method, path, opts->client_id,
								(job->wait_ms + 999) / 1000),
						 errdetail("A 429 answer with Retry-After paused every server of this client id, longer than statement_timeout leaves."),
						 errhint("Try again later, or raise statement_timeout.")));
			else
				ereport(ERROR,
						(errcode(ROLLOUT_ERRCODE_RATE_LIMITED),
						 errmsg("Rollout request %s %s not sent: the rate limit of client id \"%s\" makes it wait %ld ms",
								method, path, opts->client_id, job->wait_ms),
						 errdetail("That is longer than statement_timeout leaves."),
						 errhint("Raise rate_limit (the lowest of the servers sharing this client id applies), or raise statement_timeout.")));
			break;
		case ROLLOUT_FAIL_OUT_OF_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory reading the response to %s %s",
							method, path)));
			break;
		case ROLLOUT_FAIL_AMBIGUOUS:
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_NETWORK),
					 errmsg("Rollout request %s %s failed: %s",
							method, path, curl_easy_strerror(job->curl_error)),
					 errdetail("The request was sent before the failure, so the record may have been created; it was not retried."),
					 errhint("Check whether the record exists before trying again.")));
			break;
		case ROLLOUT_FAIL_NETWORK:
			/* a body cut short is a broken response more than a broken network */
			sqlstate = job->curl_error == CURLE_PARTIAL_FILE ?
				ROLLOUT_ERRCODE_BAD_RESPONSE : ROLLOUT_ERRCODE_NETWORK;
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("Rollout request %s %s failed: %s",
							method, path, curl_easy_strerror(job->curl_error)),
					 errdetail_plural("Gave up after %d retry.",
									  "Gave up after %d retries.",
									  job->resp.retries, job->resp.retries),
					 errhint("Check the server's api_url and the network, or raise timeout_ms.")));
			break;
	}
}

static bool
is_base64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Characters of an RFC 6750 bearer token (b64token). */
static bool
is_b64token(char c)
{
	return is_base64url(c) || c == '.' || c == '~' || c == '+' || c == '/' ||
		c == '=';
}

/*
 * The length of a JWT-shaped run at p (three base64url segments separated
 * by dots, the first starting "eyJ"), else 0.
 */
static size_t
jwt_length(const char *start, const char *p)
{
	const char *q = p;
	int			dots = 0;

	if (strncmp(p, "eyJ", 3) != 0 || (p > start && is_base64url(p[-1])))
		return 0;
	for (;;)
	{
		while (is_base64url(*q))
			q++;
		if (*q != '.' || dots == 2)
			break;
		dots++;
		q++;
	}
	return dots == 2 ? (size_t) (q - p) : 0;
}

/*
 * Upstream text with every token redacted, in palloc'd memory: anything
 * JWT-shaped, and "Bearer <token>" (any case), become "[redacted]".
 * Applied to all text from the API before it reaches a message.  NULL in,
 * NULL out.
 */
char *
rollout_redact(const char *text)
{
	StringInfoData buf;
	const char *p = text;

	if (text == NULL)
		return NULL;
	initStringInfo(&buf);
	while (*p)
	{
		size_t		n = jwt_length(text, p);

		if (n == 0 && pg_strncasecmp(p, "bearer", 6) == 0 &&
			(p == text || !is_base64url(p[-1])) &&
			(p[6] == ' ' || p[6] == '\t' || p[6] == '+'))
		{
			const char *q = p + 6;

			while (*q == ' ' || *q == '\t' || *q == '+')
				q++;
			if (is_b64token(*q))
			{
				while (is_b64token(*q))
					q++;
				n = q - p;
			}
		}
		if (n > 0)
		{
			appendStringInfoString(&buf, "[redacted]");
			p += n;
		}
		else
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * Raise the error for a non-2xx response: one class and SQLSTATE per kind
 * of failure, the API's message in DETAIL, what to do in HINT.
 */
void
rollout_http_report_error(const char *method, const char *path,
						  RolloutResponse *resp)
{
	long		status = resp->status;
	char	   *api_msg = rollout_redact(rollout_api_message(resp->body,
															 resp->body_len));
	int			code;
	const char *what;
	const char *hint = NULL;

	switch (status)
	{
		case 401:
			code = ROLLOUT_ERRCODE_AUTH;
			what = "authentication failed";
			hint = "Check client_id, client_secret and user_id of the user mapping.";
			break;
		case 403:
			code = ROLLOUT_ERRCODE_FORBIDDEN;
			what = "access forbidden";
			hint = "Check that credential_id belongs to user_id; rollout_fdw_credentials() lists the credentials visible to the mapping.";
			break;
		case 404:
			code = ROLLOUT_ERRCODE_NOT_FOUND;
			what = "not found";
			hint = "Check the table's resource option and the server's api_url.";
			break;
		case 400:
		case 422:
			code = ROLLOUT_ERRCODE_BAD_REQUEST;
			what = "request rejected";
			break;
		case 409:
			code = ROLLOUT_ERRCODE_NOT_READY;
			what = "data not ready";
			hint = "Rollout is still syncing this credential's data: try again in a minute, or raise not_ready_timeout_s.";
			break;
		case 429:
			code = ROLLOUT_ERRCODE_RATE_LIMITED;
			what = "rate limited";
			hint = "Lower the server's rate_limit, or try again later.";
			break;
		default:
			if (status >= 500)
			{
				code = ROLLOUT_ERRCODE_SERVER;
				what = "server error";
				hint = strcmp(method, "POST") == 0
					? "A POST is not retried after a server error: the record may have been created. Check before trying again."
					: "The API kept failing; try again later.";
			}
			else
			{
				code = ERRCODE_FDW_ERROR;
				what = "unexpected response";
			}
			break;
	}

	ereport(ERROR,
			(errcode(code),
			 errmsg("Rollout request %s %s failed: HTTP %ld (%s)%s",
					method, path, status, what,
					resp->retries == 0 ? "" :
					resp->retries == 1 ? " after 1 retry" :
					psprintf(" after %d retries", resp->retries)),
			 api_msg ? errdetail_internal("%s", api_msg) : 0,
			 hint ? errhint("%s", hint) : 0));
}
