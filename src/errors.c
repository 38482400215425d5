/*-------------------------------------------------------------------------
 *
 * errors.c
 *		  The error a failed Rollout API request raises: its class and
 *		  SQLSTATE (README "Errors"), its message, the API's own explanation
 *		  from the error body, and the redaction of upstream text.
 *
 * Rules kept here:
 *	- each kind of failure has one class and SQLSTATE; the API's message
 *	  goes in DETAIL through errdetail_internal, what to do in HINT;
 *	- upstream text (error bodies, anything the API sends) is redacted of
 *	  tokens before it reaches a message (rollout_redact);
 *	- a message names the request by its method and path (or label), never
 *	  a header: secrets travel only in headers;
 *	- an error body that is not JSON is quoted only when it is valid text
 *	  in the database encoding, and at most its first 200 bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "rollout_fdw.h"

/*
 * What went wrong with a transfer.  A POST's body cannot be rewound (see
 * http.c): libcurl fails with "rewinding" when its kept-alive connection
 * died after the POST went out, and wanted to send it again.
 */
static const char *
transfer_error(RolloutApiJob *job)
{
	if (job->curl_error == CURLE_SEND_FAIL_REWIND)
		return "the connection closed after the request was sent";
	return curl_easy_strerror(job->curl_error);
}

/* Raise the error of a job that ended without a response. */
void
rollout_api_raise_failure(RolloutOptions *opts, RolloutApiJob *job)
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
							   ROLLOUT_HTTP_MAX_HEADER_BYTES / 1024)));
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
							method, path, transfer_error(job)),
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

static void
append_errors(StringInfo buf, json_t *errors)
{
	size_t		i;
	json_t	   *e;

	json_array_foreach(errors, i, e)
	{
		json_t	   *msg = json_object_get(e, "message");
		json_t	   *path = json_object_get(e, "path");

		if (buf->len > 0)
			appendStringInfoString(buf, "; ");
		if (json_is_string(path))
			appendStringInfo(buf, "%s: ", json_string_value(path));
		if (json_is_string(msg))
			appendStringInfoString(buf, json_string_value(msg));
		else
			rollout_json_append(buf, e);
	}
}

/*
 * The API's own explanation of an error response: errorMessage (or
 * message, error, errors[]) of a JSON body, else the start of the body.
 * NULL when the body is empty.
 */
static char *
api_message(const char *body, size_t len)
{
	static const char *const keys[] = {"errorMessage", "message", "error"};
	MemoryContext cxt;
	MemoryContext old;
	json_t	   *root;
	StringInfoData buf;
	char	   *result;

	if (body == NULL || len == 0)
		return NULL;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "rollout error body",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	initStringInfo(&buf);
	root = rollout_json_load(cxt, body, len, NULL);
	if (root != NULL)
	{
		for (int i = 0; i < lengthof(keys) && buf.len == 0; i++)
		{
			json_t	   *v = json_object_get(root, keys[i]);

			if (json_is_string(v))
				appendStringInfoString(&buf, json_string_value(v));
		}
		if (buf.len == 0 && json_is_array(json_object_get(root, "errors")))
			append_errors(&buf, json_object_get(root, "errors"));
		if (buf.len == 0)
			rollout_json_append(&buf, root);
	}
	else if (pg_verifymbstr(body, (int) Min(len, INT_MAX), true))
	{
		int			clip = pg_mbcliplen(body, (int) Min(len, INT_MAX), 200);

		appendStringInfo(&buf, "Response body (not JSON): %.*s%s",
						 clip, body, (size_t) clip < len ? "..." : "");
	}
	else
		appendStringInfoString(&buf, "Response body is neither JSON nor text.");
	MemoryContextSwitchTo(old);
	result = pstrdup(buf.data);
	MemoryContextDelete(cxt);
	return result;
}
/*
 * Raise the error for a non-2xx response: one class and SQLSTATE per kind
 * of failure, the API's message in DETAIL, what to do in HINT.
 */
static void
report_error(const char *method, const char *path, RolloutResponse *resp)
{
	long		status = resp->status;
	char	   *api_msg = rollout_redact(api_message(resp->body,
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
/*
 * Raise the error of a POST whose outcome is unknown (sent, then a
 * transport failure, or answered 5xx) with what was found out afterwards
 * in DETAIL and HINT; a 5xx's own message follows the finding.
 */
void
rollout_raise_unsure_create(RolloutApiJob *job, const char *detail,
							const char *hint)
{
	char	   *api_msg;

	if (job->failure == ROLLOUT_FAIL_AMBIGUOUS)
		ereport(ERROR,
				(errcode(ROLLOUT_ERRCODE_NETWORK),
				 errmsg("Rollout request %s %s failed: %s",
						job->method, job->label, transfer_error(job)),
				 errdetail_internal("%s", detail),
				 errhint("%s", hint)));
	api_msg = rollout_redact(api_message(job->resp.body, job->resp.body_len));
	ereport(ERROR,
			(errcode(ROLLOUT_ERRCODE_SERVER),
			 errmsg("Rollout request %s %s failed: HTTP %ld (server error)",
					job->method, job->label, job->resp.status),
			 api_msg ? errdetail_internal("%s The API said: %s", detail, api_msg)
			 : errdetail_internal("%s", detail),
			 errhint("%s", hint)));
}

/* Raise the classified error unless the response is a success. */
void
rollout_check_status(const char *method, const char *path,
					 RolloutResponse *resp)
{
	if (resp->status < 200 || resp->status > 299)
		report_error(method, path, resp);
}
