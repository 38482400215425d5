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
 *	  headers, and messages name the path, not the headers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <curl/curl.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

#define MAX_SOCKETS 32
#define MAX_WAIT_MS 1000		/* longest sleep between curl timer checks */
#define MAX_BUCKETS 16

/* What the callbacks of one transfer fill in; malloc'd memory only. */
typedef struct Transfer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		limit;			/* max_response_bytes */
	bool		too_big;
	bool		out_of_memory;
	bool		done;
	CURLcode	result;
} Transfer;

/* Sockets libcurl asked us to watch, kept by the socket callback. */
typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} WatchedSocket;

static CURLM *multi = NULL;
static WatchedSocket watched[MAX_SOCKETS];
static int	n_watched = 0;
static long curl_timeout_ms = -1;

/* Per-backend token buckets, one per tenant (client id). */
typedef struct TokenBucket
{
	char		client_id[128];
	double		tokens;
	TimestampTz refilled;
} TokenBucket;

static TokenBucket buckets[MAX_BUCKETS];
static int	n_buckets = 0;

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
		if (n_watched == MAX_SOCKETS)
			return -1;
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
		multi = curl_multi_init();
		if (multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
		curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
		curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	}
	return multi;
}

/* A new easy handle; the caller owns it for the life of the backend. */
CURL *
rollout_http_new_handle(void)
{
	CURL	   *easy = curl_easy_init();

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

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
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

/*
 * Wait once for the watched sockets, the latch or curl's timer, and let
 * curl act on what happened.  The WaitEventSet is freed before anything can
 * throw (PG 15 does not track it in a resource owner).
 */
static void
wait_and_act(void)
{
	WaitEventSet *set;
	WaitEvent	events[MAX_SOCKETS + 2];
	volatile int nevents = 0;
	long		timeout = curl_timeout_ms < 0 ? MAX_WAIT_MS :
		Min(curl_timeout_ms, MAX_WAIT_MS);
	int			running;

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
			nevents = WaitEventSetWait(set, timeout, events, lengthof(events),
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
			curl_multi_socket_action(multi, events[i].fd, flags, &running);
	}
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect_finished();
}

/* Sleep on the latch, waking for interrupts and postmaster death. */
static void
interruptible_sleep(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		if (left <= 0)
			break;
		if (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					  left, PG_WAIT_EXTENSION) & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}

/*
 * Take one token from the tenant's bucket, sleeping until one is there.
 * Per backend; burst equals one second of requests.
 */
static void
rate_limit_wait(RolloutOptions *opts)
{
	TokenBucket *b = NULL;

	if (opts->rate_limit <= 0)
		return;
	for (int i = 0; i < n_buckets; i++)
		if (strcmp(buckets[i].client_id, opts->client_id) == 0)
			b = &buckets[i];
	if (b == NULL)
	{
		b = &buckets[n_buckets < MAX_BUCKETS ? n_buckets++ : MAX_BUCKETS - 1];
		strlcpy(b->client_id, opts->client_id, sizeof(b->client_id));
		b->tokens = Max(1.0, opts->rate_limit);
		b->refilled = GetCurrentTimestamp();
	}

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		double		burst = Max(1.0, opts->rate_limit);

		b->tokens = Min(burst, b->tokens +
						(now - b->refilled) / 1e6 * opts->rate_limit);
		b->refilled = now;
		if (b->tokens >= 1.0)
		{
			b->tokens -= 1.0;
			return;
		}
		interruptible_sleep((long) ceil((1.0 - b->tokens) * 1000.0 /
										opts->rate_limit));
	}
}

static void
set_method(CURL *easy, const char *method, const char *body)
{
	if (strcmp(method, "GET") != 0)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
	{
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) strlen(body));
	}
}

/*
 * One transfer, start to end.  On return *t holds the curl result and the
 * body; the easy handle is detached from the multi handle on every path,
 * which closes a connection left mid-transfer by a cancel.
 */
static void
transfer_once(CURL *easy, RolloutOptions *opts, const char *method,
			  const char *url, struct curl_slist *headers, const char *body,
			  Transfer *t)
{
	CURLM	   *m = get_multi();
	int			running;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
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
	set_method(easy, method, body);

	t->limit = (size_t) opts->max_response_bytes;
	if (curl_multi_add_handle(m, easy) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start a libcurl transfer")));
	PG_TRY();
	{
		curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
		collect_finished();
		while (!t->done)
		{
			wait_and_act();
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		curl_multi_remove_handle(m, easy);
	}
	PG_END_TRY();
}

/*
 * One transfer whose body ends up in resp (palloc'd); the malloc'd buffer
 * is freed on every path.
 */
static void
transfer_to_response(CURL *easy, RolloutOptions *opts, const char *method,
					 const char *url, struct curl_slist *headers,
					 const char *body, Transfer *t, RolloutResponse *resp,
					 curl_off_t *retry_after)
{
	PG_TRY();
	{
		transfer_once(easy, opts, method, url, headers, body, t);
		resp->status = 0;
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
		curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, retry_after);
		resp->body_len = t->len;
		resp->body = palloc(t->len + 1);
		if (t->len > 0)
			memcpy(resp->body, t->data, t->len);
		resp->body[t->len] = '\0';
	}
	PG_FINALLY();
	{
		free(t->data);
		t->data = NULL;
	}
	PG_END_TRY();
}

/* Full-jitter exponential backoff for the n-th retry (n from 0). */
static long
backoff_ms(RolloutOptions *opts, int n)
{
	double		cap = opts->retry_base_ms * pow(2.0, Min(n + 1, 30));

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

static void
report_network_error(const char *method, const char *path, CURLcode code,
					 int retries, bool ambiguous_post)
{
	/* a body cut short is a broken response more than a broken network */
	int			sqlstate = code == CURLE_PARTIAL_FILE ?
		ROLLOUT_ERRCODE_BAD_RESPONSE : ROLLOUT_ERRCODE_NETWORK;

	if (ambiguous_post)
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("Rollout request %s %s failed: %s",
						method, path, curl_easy_strerror(code)),
				 errdetail("The request was sent before the failure, so the record may have been created; it was not retried."),
				 errhint("Check whether the record exists before trying again.")));
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("Rollout request %s %s failed: %s",
					method, path, curl_easy_strerror(code)),
			 errdetail_plural("Gave up after %d retry.",
							  "Gave up after %d retries.", retries, retries),
			 errhint("Check the server's api_url and the network, or raise timeout_ms.")));
}

/*
 * Perform a request with the retry rules of the file banner.  Returns the
 * final response, whatever its status; network failures and oversized
 * bodies raise an error here.
 */
void
rollout_http_perform(CURL *easy, RolloutOptions *opts, const char *method,
					 const char *url, const char *path,
					 struct curl_slist *headers, const char *body,
					 RolloutResponse *resp)
{
	bool		is_post = strcmp(method, "POST") == 0;
	TimestampTz not_ready_until = 0;
	int			retries = 0;

	for (;;)
	{
		Transfer	t = {0};
		long		status;
		curl_off_t	retry_after = 0;
		bool		retry = false;

		rate_limit_wait(opts);
		transfer_to_response(easy, opts, method, url, headers, body, &t,
							 resp, &retry_after);
		resp->retries = retries;

		if (t.too_big || t.result == CURLE_FILESIZE_EXCEEDED)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout response to %s %s is larger than max_response_bytes (%lld)",
							method, path, (long long) opts->max_response_bytes),
					 errhint("Lower page_size or raise the server's max_response_bytes.")));
		if (t.out_of_memory)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory reading the response to %s %s",
							method, path)));

		status = resp->status;
		if (t.result != CURLE_OK)
		{
			bool		unsent = never_sent(easy, t.result);

			if (is_post && !unsent)
				report_network_error(method, path, t.result, retries, true);
			if (retries >= opts->max_retries)
				report_network_error(method, path, t.result, retries, false);
			retry = true;
		}
		else if (status == 409)
		{
			TimestampTz now = GetCurrentTimestamp();
			long		delay;

			if (not_ready_until == 0)
				not_ready_until = TimestampTzPlusMilliseconds(now,
															  opts->not_ready_timeout_s * 1000L);
			if (now >= not_ready_until)
				return;
			delay = retry_after > 0 ? (long) retry_after * 1000L :
				backoff_ms(opts, retries);
			delay = Min(delay,
						TimestampDifferenceMilliseconds(now, not_ready_until) + 1);
			pfree(resp->body);
			interruptible_sleep(delay);
			continue;
		}
		else if (status == 429 || (status >= 500 && !is_post))
			retry = retries < opts->max_retries;

		if (!retry)
			return;
		pfree(resp->body);
		interruptible_sleep(retry_after > 0 ? (long) retry_after * 1000L :
							backoff_ms(opts, retries));
		retries++;
	}
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
	char	   *api_msg = rollout_api_message(resp->body, resp->body_len);
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
