/*-------------------------------------------------------------------------
 *
 * conflict.c
 *		  Creates that can be run again: INSERT ... ON CONFLICT DO NOTHING on
 *		  people looks each row's e-mails up (GET /people?email=) and skips
 *		  the rows a CRM person already holds; after a POST whose outcome is
 *		  unknown the same lookup tells whether the CRM created the record.
 *
 * Rules kept here:
 *	- the e-mails of a row are those of the body it sends (emails[].value),
 *	  whichever column writes them;
 *	- a conflict is decided here, on the records the API answers: their
 *	  e-mails compared case-insensitively (lower() of the database's
 *	  default collation; ASCII letters only in a database that is not
 *	  UTF-8), so the answer is right whether the API's filter matches
 *	  exactly, case-insensitively or more loosely;
 *	- an e-mail is looked up as written and, when that differs, in lower
 *	  case: an API that matches exactly still finds a person whose e-mail
 *	  it holds in lower case;
 *	- a row created earlier in the statement conflicts like a CRM person
 *	  (Rollout's lists may not show it yet);
 *	- all the lookups of a batch are in flight together;
 *	- a lookup made after a failed POST never raises: it can only add to
 *	  the error of that POST.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "utils/formatting.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "rollout_fdw.h"

/* Records one lookup asks for; a person with more is not decided. */
#define LOOKUP_LIMIT 100

/* One lookup request: a value of the email filter, and what it found. */
typedef struct Probe
{
	char	   *value;			/* UTF-8, as sent */
	List	   *ids;			/* the ids of the records answered (char *) */
	List	   *folds;			/* ... and each one's folded e-mails (List *) */
	bool		more;			/* the answer has a next page */
	bool		failed;			/* no usable answer (tolerant lookups) */
} Probe;

/* Only people have e-mails to look a record up by. */
bool
rollout_conflict_supported(const char *resource)
{
	return strcmp(resource, "people") == 0;
}

/* A POST that was sent and then failed, or was answered 5xx: did it act? */
bool
rollout_create_unsure(RolloutApiJob *job)
{
	return job->failure == ROLLOUT_FAIL_AMBIGUOUS ||
		(job->failure == ROLLOUT_FAIL_NONE && job->resp.status >= 500);
}

/* An e-mail (UTF-8) as compared: lower-cased. */
static char *
fold_email(const char *email)
{
	char	   *folded;

	if (GetDatabaseEncoding() == PG_UTF8)
		return str_tolower(email, strlen(email), DEFAULT_COLLATION_OID);
	folded = pstrdup(email);
	for (char *p = folded; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return folded;
}

/* The values of an "emails" array of a JSON object: List of UTF-8 strings. */
static List *
emails_of(json_t *object)
{
	json_t	   *emails = json_object_get(object, "emails");
	json_t	   *item;
	size_t		i;
	List	   *result = NIL;

	if (!json_is_array(emails))
		return NIL;
	json_array_foreach(emails, i, item)
	{
		json_t	   *value = json_is_object(item) ?
			json_object_get(item, "value") : NULL;

		if (json_is_string(value) && json_string_length(value) > 0)
			result = lappend(result, pstrdup(json_string_value(value)));
	}
	return result;
}

/* The e-mails a row's body (JSON text, UTF-8) sends: List of strings. */
List *
rollout_row_emails(const char *body)
{
	json_t	   *root = rollout_json_load(CurrentMemoryContext, body,
										 strlen(body), NULL);

	return json_is_object(root) ? emails_of(root) : NIL;
}

/* A row's e-mail (UTF-8) for a message, in the database encoding. */
static char *
email_text(const char *email)
{
	return pg_any_to_server(email, strlen(email), PG_UTF8);
}

static int
compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The probe of a value, in the sorted array. */
static Probe *
probe_of(Probe *probes, int nprobes, const char *value)
{
	int			lo = 0,
				hi = nprobes - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(value, probes[mid].value);

		if (c == 0)
			return &probes[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	elog(ERROR, "rollout_fdw: no lookup for an e-mail");
	return NULL;
}

/*
 * Read a lookup's answer into its probe; NULL, or what is wrong with it.
 * The list is the one _metadata.collection names, as a scan reads it.
 */
static const char *
read_probe(Probe *probe, RolloutApiJob *job, const char *resource)
{
	json_t	   *root;
	json_t	   *meta;
	json_t	   *key;
	json_t	   *list;
	json_t	   *next;
	json_t	   *record;
	size_t		i;

	root = rollout_json_load(CurrentMemoryContext, job->resp.body,
							 job->resp.body_len, NULL);
	if (!json_is_object(root))
		return "The answer is not a JSON object.";
	meta = json_object_get(root, "_metadata");
	if (!json_is_object(meta))
		return "The answer has no \"_metadata\" object.";
	key = json_object_get(meta, "collection");
	list = json_object_get(root, json_is_string(key) ?
						   json_string_value(key) : resource);
	if (!json_is_array(list))
		return "The answer holds no list of records.";
	next = json_object_get(meta, "next");
	probe->more = next != NULL && !json_is_null(next);
	json_array_foreach(list, i, record)
	{
		json_t	   *id = json_is_object(record) ?
			json_object_get(record, "id") : NULL;
		List	   *folds = NIL;
		ListCell   *lc;
		char	   *text;

		if (id == NULL || json_is_null(id))
			return "A record of the answer has no id.";
		foreach(lc, emails_of(record))
			folds = lappend(folds, fold_email(lfirst(lc)));
		text = rollout_json_scalar_text(id);
		probe->ids = lappend(probe->ids,
							 rollout_safe_text(text, (int) strlen(text), 100));
		probe->folds = lappend(probe->folds, folds);
	}
	return NULL;
}

/*
 * Look the rows' e-mails up, every lookup in flight at once, and set each
 * row's found_id (and found_email) to a CRM person holding one of its
 * e-mails.  Rows without e-mails are left alone.  strict: a failed lookup
 * raises; otherwise it marks the rows it concerns as failed.
 */
void
rollout_find_by_email(RolloutModifyState *st, RolloutEmailLookup *rows,
					  int nrows, bool strict)
{
	char	  **values;
	int			nvalues = 0;
	int			cap = 8;
	Probe	   *probes;
	int			nprobes = 0;
	RolloutApiJob *jobs;

	/* every e-mail as written and folded, each value asked once */
	values = palloc(sizeof(char *) * cap);
	for (int r = 0; r < nrows; r++)
	{
		ListCell   *lc;

		rows[r].found_id = NULL;
		rows[r].found_email = NULL;
		rows[r].failed = false;
		foreach(lc, rows[r].emails)
		{
			if (nvalues + 2 > cap)
			{
				cap *= 2;
				values = repalloc(values, sizeof(char *) * cap);
			}
			values[nvalues++] = lfirst(lc);
			values[nvalues++] = fold_email(lfirst(lc));
		}
	}
	if (nvalues == 0)
		return;
	qsort(values, nvalues, sizeof(char *), compare_strings);
	probes = palloc0(sizeof(Probe) * nvalues);
	for (int i = 0; i < nvalues; i++)
		if (nprobes == 0 || strcmp(values[i], probes[nprobes - 1].value) != 0)
			probes[nprobes++].value = values[i];

	jobs = palloc0(sizeof(RolloutApiJob) * nprobes);
	for (int i = 0; i < nprobes; i++)
	{
		char	   *query = psprintf("?limit=%d&email=%s", LOOKUP_LIMIT,
									 rollout_escape(probes[i].value));

		jobs[i].method = "GET";
		jobs[i].url = psprintf("%s/%s%s", st->opts->api_url, st->resource,
							   query);
		jobs[i].label = psprintf("/%s%s", st->resource, query);
	}
	rollout_api_run_as(st->conn, st->credential, st->opts, jobs, nprobes);
	for (int i = 0; i < nprobes; i++)
		rollout_stats_sum(&st->stats, &jobs[i].resp.stats);

	for (int i = 0; i < nprobes; i++)
	{
		const char *problem = NULL;

		if (jobs[i].failure == ROLLOUT_FAIL_NONE &&
			jobs[i].resp.status >= 200 && jobs[i].resp.status <= 299)
			problem = read_probe(&probes[i], &jobs[i], st->resource);
		if (!strict)
		{
			probes[i].failed = problem != NULL ||
				jobs[i].failure != ROLLOUT_FAIL_NONE ||
				jobs[i].resp.status < 200 || jobs[i].resp.status > 299;
			continue;
		}
		rollout_api_raise_failure(st->opts, &jobs[i]);
		rollout_check_status(jobs[i].method, jobs[i].label, &jobs[i].resp);
		if (problem != NULL)
			ereport(ERROR,
					(errcode(ROLLOUT_ERRCODE_BAD_RESPONSE),
					 errmsg("Rollout's answer to GET %s cannot be read", jobs[i].label),
					 errdetail("%s", problem),
					 errhint("Nothing was created for this batch of rows.")));
	}

	/* a row conflicts when a record answered holds one of its e-mails */
	for (int r = 0; r < nrows; r++)
	{
		ListCell   *lc;
		bool		undecided = false;

		foreach(lc, rows[r].emails)
		{
			char	   *email = lfirst(lc);
			char	   *fold = fold_email(email);
			Probe	   *asked[2];

			asked[0] = probe_of(probes, nprobes, email);
			asked[1] = probe_of(probes, nprobes, fold);
			for (int a = 0; a < 2 && rows[r].found_id == NULL; a++)
			{
				ListCell   *id;
				ListCell   *folds;

				rows[r].failed |= asked[a]->failed;
				forboth(id, asked[a]->ids, folds, asked[a]->folds)
				{
					ListCell   *f;

					foreach(f, (List *) lfirst(folds))
						if (strcmp(lfirst(f), fold) == 0)
							rows[r].found_id = lfirst(id);
					if (rows[r].found_id != NULL)
						break;
				}
				undecided |= asked[a]->more;
			}
			if (rows[r].found_id != NULL)
			{
				rows[r].found_email = email_text(email);
				break;
			}
		}
		if (rows[r].found_id == NULL && undecided && strict)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("cannot decide whether a person holds an e-mail of a row inserted into foreign table \"%s\"",
							RelationGetRelationName(st->rel)),
					 errdetail("GET /%s?email=... answered more than %d records, none with the row's e-mail.",
							   st->resource, LOOKUP_LIMIT),
					 errhint("Nothing was created for this batch of rows.")));
		rows[r].failed &= rows[r].found_id == NULL;
	}
}

/* The hash of the statement's created e-mails: a folded e-mail's key. */
static uint64
email_key(const char *email)
{
	char	   *fold = fold_email(email);

	return hash_bytes_extended((const unsigned char *) fold,
							   (int) strlen(fold), 0);
}

/*
 * ON CONFLICT DO NOTHING: mark in skip[] the rows (bodies, UTF-8 JSON) a
 * CRM person holds an e-mail of, or a row created earlier in this
 * statement.  Every row needs an e-mail; a row without one is an error
 * before anything is sent.
 */
void
rollout_skip_existing(RolloutModifyState *st, char **bodies, int n,
					  bool *skip)
{
	RolloutEmailLookup *rows = palloc0(sizeof(RolloutEmailLookup) * n);

	for (int i = 0; i < n; i++)
	{
		rows[i].emails = rollout_row_emails(bodies[i]);
		if (rows[i].emails == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a row inserted into foreign table \"%s\" with ON CONFLICT DO NOTHING has no e-mail",
							RelationGetRelationName(st->rel)),
					 errdetail("ON CONFLICT DO NOTHING needs an e-mail (emails[].value) to detect the conflict: it looks the person up with GET /%s?email=. Nothing was sent for this batch of rows.",
							   st->resource),
					 errhint("Give every row an e-mail, or insert the rows without one in a statement without ON CONFLICT.")));
	}
	if (st->created_emails == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = MemoryContextGetParent(st->temp_cxt);
		st->created_emails = hash_create("rollout_fdw created e-mails", 64,
										 &ctl,
										 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	rollout_find_by_email(st, rows, n, true);
	for (int i = 0; i < n; i++)
	{
		ListCell   *lc;

		skip[i] = rows[i].found_id != NULL;
		foreach(lc, rows[i].emails)
		{
			uint64		key = email_key(lfirst(lc));

			if (!skip[i])
				skip[i] = hash_search(st->created_emails, &key, HASH_FIND,
									  NULL) != NULL;
		}
		if (skip[i])
			continue;
		foreach(lc, rows[i].emails)
		{
			uint64		key = email_key(lfirst(lc));

			(void) hash_search(st->created_emails, &key, HASH_ENTER, NULL);
		}
	}
}

/*
 * The error of an INSERT batch (modify.c) whose job "failed" did not
 * succeed.  A POST that
 * may have acted (sent, then a transport failure or a 5xx) of a row with
 * an e-mail is looked up first, with every other such POST of the batch
 * (conflict.c): with ON CONFLICT DO NOTHING, the lookup before the POST
 * found nobody, so a person holding the e-mail now was created by it and
 * counts as created; without it, the person found may be an earlier one.
 * Nothing is sent again: Rollout's lists may lag behind a create, so a
 * lookup that finds nobody proves nothing.
 */
void
rollout_raise_insert_failure(RolloutModifyState *st, RolloutApiJob *jobs, int njobs,
					 int failed)
{
	RolloutEmailLookup *rows = palloc0(sizeof(RolloutEmailLookup) * njobs);
	RolloutEmailLookup *row = &rows[failed];
	RolloutApiJob *job = &jobs[failed];
	int			unsure = 0;
	char	   *detail;
	char	   *hint;

	if (rollout_conflict_supported(st->resource))
	{
		for (int j = 0; j < njobs; j++)
			if (rollout_create_unsure(&jobs[j]))
				rows[j].emails = rollout_row_emails(jobs[j].body);
		rollout_find_by_email(st, rows, njobs, false);
	}
	for (int j = 0; j < njobs; j++)
	{
		if (!rollout_create_unsure(&jobs[j]))
			continue;
		if (rows[j].found_id != NULL && st->skip_existing)
		{
			st->acted++;
			rollout_remember_id(st, rows[j].found_id);
		}
		else if (j != failed)
			unsure++;
	}
	/* the error context counts the other POSTs that may have created */
	st->in_flight += unsure;

	if (!rollout_create_unsure(job) || row->emails == NIL)
	{
		rollout_api_raise_failure(st->opts, job);
		rollout_check_status(job->method, job->label, &job->resp);
	}
	if (row->found_id != NULL && st->skip_existing)
	{
		detail = psprintf("The CRM created person %s for this row: GET /%s?email=%s found it after the failure.",
						  row->found_id, st->resource, row->found_email);
		hint = "The person exists: running the statement again with ON CONFLICT DO NOTHING skips this row.";
	}
	else if (row->found_id != NULL)
	{
		detail = psprintf("The request was sent before the failure; person %s holds this row's e-mail %s now. Without ON CONFLICT DO NOTHING nothing was looked up before the POST, so it may be an earlier person.",
						  row->found_id, row->found_email);
		hint = psprintf("Check person %s before running the statement again; with ON CONFLICT DO NOTHING, rows whose e-mail a person holds are skipped.",
						row->found_id);
	}
	else if (row->failed)
	{
		detail = "The request was sent before the failure, so the record may have been created; looking its e-mail up afterwards failed too.";
		hint = "Check whether the record exists before trying again.";
	}
	else
	{
		detail = psprintf("The request was sent before the failure, so the record may have been created; GET /%s?email=... found no person with this row's e-mail afterwards, but Rollout's lists can lag behind a create, so it was not sent again.",
						  st->resource);
		hint = "In a moment, run the statement again with ON CONFLICT DO NOTHING: the rows whose person exists by then are skipped.";
	}
	rollout_raise_unsure_create(job, detail, hint);
}
