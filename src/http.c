/*-------------------------------------------------------------------------
 *
 * http.c
 *		  libcurl transport: the multi handle, the sockets and the latch wait
 *		  that run a set of transfers to the end.  Whether a transfer is sent
 *		  now, later or again is the caller's to decide (RolloutHttpHooks).
 *
 * Rules kept here:
 *	- every wait is interruptible: transfers run on the curl multi interface
 *	  and wait on the backend's latch and the transfers' sockets together
 *	  (WaitEventSet); a transfer told to wait (a backoff, the rate limiter)
 *	  sleeps in the same wait; each wakeup runs CHECK_FOR_INTERRUPTS, so
 *	  cancel and statement_timeout act at once;
 *	- curl callbacks never palloc, ereport or check for interrupts: they
 *	  fill a malloc'd buffer and return an error code to stop a transfer;
 *	- the response body is capped by max_response_bytes while it downloads,
 *	  the response headers by ROLLOUT_HTTP_MAX_HEADER_BYTES: a larger header
 *	  is a broken response, not "out of memory";
 *	- a failed transfer is reported to the caller's hook, never raised, so
 *	  that the other transfers of the run finish; only an interrupt or a
 *	  failure of libcurl itself raises, and then every transfer still in
 *	  flight is detached and every buffer freed;
 *	- libcurl's threaded resolver runs name resolution in a thread of the
 *	  backend; its socket is watched with the others, and with
 *	  CURLOPT_QUICK_EXIT an interrupted transfer abandons the lookup instead
 *	  of joining it, so cancel and timeouts act during DNS too;
 *	- no proxy from the environment (https_proxy, ALL_PROXY) ever sees a
 *	  request: CURLOPT_PROXY is ""; redirects are not followed;
 *	- libcurl never sends a POST again by itself: its body is read through
 *	  a callback that cannot rewind, so a kept-alive connection that dies
 *	  after the POST went out (libcurl would resend it on a fresh one)
 *	  fails the attempt instead, and the caller decides.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "rollout_fdw.h"

#define MAX_WAIT_MS 1000		/* longest sleep between curl timer checks */

/*
 * What the callbacks of one transfer fill in (malloc'd memory only), and
 * where the transfer stands in the run.
 */
struct RolloutTransferState
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
	/* a POST's body, read by read_body_cb */
	const char *body;
	size_t		body_len;
	size_t		body_pos;
	/* scheduling */
	bool		running;		/* added to the multi handle */
	bool		finished;		/* the hooks said it is over */
	TimestampTz not_before;		/* a retry: do not start before this */
};

typedef struct RolloutTransferState Transfer;

/*
 * What pg_stat_activity's wait_event says while the backend waits (from
 * PostgreSQL 17; "Extension" before): for the API's answers, or before
 * sending (the rate limit, a retry's backoff, a user's data still
 * syncing).
 */
static uint32 wait_response_id;
static uint32 wait_backoff_id;

uint32
rollout_wait_response(void)
{
	return rollout_wait_event(&wait_response_id, "RolloutFdwResponse");
}

uint32
rollout_wait_backoff(void)
{
	return rollout_wait_event(&wait_backoff_id, "RolloutFdwBackoff");
}

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

/*
 * Hand libcurl the next bytes of a POST's body.  There is no seek
 * callback: libcurl cannot rewind the body to send it again.
 */
static size_t
read_body_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = Min(size * nitems, t->body_len - t->body_pos);

	memcpy(buffer, t->body + t->body_pos, n);
	t->body_pos += n;
	return n;
}

/* Count the response's header bytes; stop the transfer past the cap. */
static size_t
header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nitems;

	t->header_bytes += n;
	if (t->header_bytes > ROLLOUT_HTTP_MAX_HEADER_BYTES)
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
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("libcurl failed: %s", curl_multi_strerror(rc))));
}

/*
 * Wait once (at most max_wait_ms) for the watched sockets, the latch or
 * curl's timer, and let curl act on what happened; wait_event is what
 * pg_stat_activity shows meanwhile.  The WaitEventSet is
 * freed in PG_FINALLY: PG 15 does not track it in a resource owner.
 */
static void
wait_and_act(long max_wait_ms, uint32 wait_event)
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
		set = rollout_wait_event_set(n_watched + 2);
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
									   wait_event);
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

/* Set up a transfer's easy handle and hand it to the multi handle. */
static void
start_transfer(RolloutOptions *opts, RolloutHttpTransfer *x)
{
	CURL	   *easy = x->easy;
	Transfer   *t = x->state;

	free(t->data);
	t->data = NULL;
	t->len = t->cap = 0;
	t->too_big = t->out_of_memory = t->done = t->header_too_big = false;
	t->header_bytes = 0;
	t->result = CURLE_OK;
	t->limit = (size_t) opts->max_response_bytes;

	curl_easy_reset(easy);
	/* a failed setopt here is a bad URL or out of memory: the transfer fails */
	curl_easy_setopt(easy, CURLOPT_URL, x->url);
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
#if LIBCURL_VERSION_NUM >= 0x075700
	curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
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
	if (strcmp(x->method, "GET") != 0)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, x->method);
	if (x->body != NULL && strcmp(x->method, "POST") == 0)
	{
		t->body = x->body;
		t->body_len = strlen(x->body);
		t->body_pos = 0;
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_body_cb);
		curl_easy_setopt(easy, CURLOPT_READDATA, t);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) t->body_len);
	}
	else if (x->body != NULL)
	{
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) strlen(x->body));
	}

	if (curl_multi_add_handle(get_multi(), easy) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start a libcurl transfer")));
	t->running = true;
}

/* Whether a failed transfer cannot have reached the server. */
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

/* How a finished attempt ended, as the transport sees it. */
static RolloutHttpError
attempt_error(Transfer *t)
{
	if (t->too_big || t->result == CURLE_FILESIZE_EXCEEDED)
		return ROLLOUT_HTTP_TOO_BIG;
	if (t->header_too_big || (t->result == CURLE_OUT_OF_MEMORY &&
							  !t->out_of_memory)
#if LIBCURL_VERSION_NUM >= 0x080600
		|| t->result == CURLE_TOO_LARGE
#endif
		)
	{
		/* libcurl refuses a header line over 100 kB as "out of memory" */
		return ROLLOUT_HTTP_BAD_HEADER;
	}
	if (t->out_of_memory)
		return ROLLOUT_HTTP_OUT_OF_MEMORY;
	if (t->result != CURLE_OK)
		return ROLLOUT_HTTP_FAILED;
	return ROLLOUT_HTTP_OK;
}

/*
 * An attempt of transfer i is over: detach it, tell the caller's hook what
 * came back, and keep the hook's answer (over, or again at retry_at).
 */
static void
attempt_done(RolloutHttpTransfer *x, int i, const RolloutHttpHooks *hooks)
{
	Transfer   *t = x->state;
	long		status = 0;
	curl_off_t	retry_after = 0;
	TimestampTz retry_at = 0;

	curl_multi_remove_handle(get_multi(), x->easy);
	t->running = false;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_after);
	if (t->result != CURLE_OK)
		status = 0;
	x->status = status;
	x->retry_after_s = retry_after;
	x->error = attempt_error(t);
	x->curl_error = t->result;
	x->sent = x->error != ROLLOUT_HTTP_FAILED || !never_sent(x->easy, t->result);
	x->data = t->data;
	x->len = t->len;
	if (hooks->attempt_over(hooks->arg, i, x, &retry_at))
		t->finished = true;
	else
		t->not_before = retry_at;
	x->data = NULL;
}

/*
 * Run the transfers until the hooks call each one over, as many in flight
 * at once as there are transfers.  A transfer starts when its retry time
 * has come and hooks->may_start says so; after each attempt
 * hooks->attempt_over says whether it is over.  A failed transfer is the
 * hook's to record, so that the others finish (a batch of POSTs must know
 * what it created); only an interrupt or a failure of libcurl itself
 * raises, and then every transfer still in flight is detached.
 */
void
rollout_http_run(RolloutOptions *opts, RolloutHttpTransfer *xfers, int n,
				 const RolloutHttpHooks *hooks)
{
	Transfer   *transfers = palloc0(sizeof(Transfer) * n);

	for (int i = 0; i < n; i++)
		xfers[i].state = &transfers[i];

	PG_TRY();
	{
		for (;;)
		{
			TimestampTz now = GetCurrentTimestamp();
			long		wait_ms = MAX_WAIT_MS;
			bool		pending = false;
			bool		in_flight = false;

			for (int i = 0; i < n; i++)
			{
				Transfer   *t = &transfers[i];
				long		wait;

				if (t->finished || t->running)
				{
					pending |= !t->finished;
					in_flight |= t->running;
					continue;
				}
				pending = true;
				if (t->not_before > now)
				{
					wait_ms = Min(wait_ms,
								  TimestampDifferenceMilliseconds(now, t->not_before) + 1);
					continue;
				}
				wait = hooks->may_start(hooks->arg, i, now);
				if (wait < 0)
				{
					t->finished = true;
					continue;
				}
				if (wait > 0)
				{
					wait_ms = Min(wait_ms, wait);
					continue;
				}
				start_transfer(opts, &xfers[i]);
				in_flight = true;
				wait_ms = 0;
			}
			if (!pending)
				break;

			wait_and_act(wait_ms, in_flight ? rollout_wait_response() :
						 rollout_wait_backoff());
			for (int i = 0; i < n; i++)
				if (transfers[i].running && transfers[i].done)
					attempt_done(&xfers[i], i, hooks);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		for (int i = 0; i < n; i++)
		{
			if (transfers[i].running)
				curl_multi_remove_handle(get_multi(), xfers[i].easy);
			free(transfers[i].data);
			transfers[i].data = NULL;
		}
	}
	PG_END_TRY();
	for (int i = 0; i < n; i++)
	{
		xfers[i].state = NULL;
		xfers[i].data = NULL;
	}
	pfree(transfers);
}
