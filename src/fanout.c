/*-------------------------------------------------------------------------
 *
 * fanout.c
 *		  Whose records a scan reads, and reading many users' at once: the
 *		  (Rollout user, credential) targets of a query (its conditions on
 *		  the key columns, else the settings rollout_fdw.user_id and
 *		  rollout_fdw.credential_id, else the user mapping's own), who may
 *		  read them (user_id '*'), and one scan per target run together.
 *
 * Rules kept here:
 *	- a user mapping acts for its own user_id only; one with user_id '*'
 *	  acts for any user a query or a setting names, and never for "all
 *	  users": with no user named anywhere the query is refused;
 *	- a key condition naming another user than a mapping's own is an error
 *	  naming the option user_id, before anything is sent;
 *	- the targets' steps go together: each step sends the next requests of
 *	  many targets (ROLLOUT_MAX_INFLIGHT at most), all under the one
 *	  tenant rate limiter, so the statement costs the rate limit's time,
 *	  not the sum of every user's latency;
 *	- a target whose data is not synced yet (409) is asked again later,
 *	  within not_ready_timeout_s, while the others' steps go on;
 *	- one target's failure fails the statement, unless on_user_error is
 *	  'skip': then a target that returned no row yet is left out with a
 *	  WARNING naming the user and the error, and counted (users_skipped).
 *	  Only the API's classified errors are skipped; a cancel, a timeout
 *	  (or a wait refused because it would outlast statement_timeout) or an
 *	  internal error still ends the statement.  A target that already
 *	  returned rows fails the statement: a user is left out whole or not
 *	  at all.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "rollout_fdw.h"

/* ------------------------------------------------------------------
 * Whose records: the targets
 * ------------------------------------------------------------------ */

/* Does the mapping act for any user (user_id '*')? */
bool
rollout_any_user(RolloutOptions *opts)
{
	return strcmp(opts->user_id, ROLLOUT_ANY_USER) == 0;
}

static bool
setting_set(const char *value)
{
	return value != NULL && value[0] != '\0';
}

/*
 * A user the mapping may act for: its own, or any with user_id '*'.
 * source says where the user came from, for the message.
 */
void
rollout_check_user(RolloutOptions *opts, const char *user_id,
				   const char *source)
{
	if (rollout_any_user(opts) || strcmp(user_id, opts->user_id) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the user mapping for server \"%s\" acts only for its option user_id, not for the Rollout user %s",
					opts->servername, source),
			 errdetail("Its user_id is \"%s\"; nothing was sent.", opts->user_id),
			 errhint("A user mapping with OPTIONS (user_id '*') may act for any user of the client: see README \"Many users\".")));
}

/*
 * The target of a query that names no user: the settings, else the
 * mapping's own user.  A mapping with user_id '*' and no setting has
 * none: the query is refused.
 */
void
rollout_default_target(RolloutOptions *opts, RolloutTarget *t)
{
	if (setting_set(rollout_setting_user_id))
	{
		rollout_check_user(opts, rollout_setting_user_id,
						   psprintf("\"%s\" of rollout_fdw.user_id",
									rollout_setting_user_id));
		t->user_id = pstrdup(rollout_setting_user_id);
		t->credential_id = setting_set(rollout_setting_credential_id) ?
			pstrdup(rollout_setting_credential_id) : NULL;
	}
	else if (!rollout_any_user(opts))
	{
		t->user_id = opts->user_id;
		t->credential_id = NULL;	/* the mapping's, or discovered */
	}
	else
		rollout_refuse_no_user(opts->servername);
}

/* A mapping with user_id '*', and no user named: the refusal. */
void
rollout_refuse_no_user(const char *servername)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
			 errmsg("the user mapping for server \"%s\" acts for any Rollout user, and this query names none",
					servername),
			 errdetail("A mapping with user_id '*' never reads every user's CRM at once; nothing was sent."),
			 errhint("Add a condition on the column of field '@user_id' (= a user, = ANY (users), or a join), or set rollout_fdw.user_id.")));
}

/*
 * Whether a query with no condition on the user key column has no user to
 * read (planning: then it is refused, as rollout_default_target would).
 */
bool
rollout_needs_user_key(Oid serverid, Oid userid)
{
	char	   *user_id = rollout_mapping_user_id(serverid, userid);

	return user_id != NULL && strcmp(user_id, ROLLOUT_ANY_USER) == 0 &&
		!setting_set(rollout_setting_user_id);
}

/*
 * The targets of a scan: the users (NIL and !users_given: the default),
 * each with every credential given, or with its own.
 */
List *
rollout_targets(RolloutOptions *opts, UserMapping *um, List *users,
				bool users_given, List *credentials, bool credentials_given)
{
	List	   *targets = NIL;
	RolloutTarget def = {0};
	ListCell   *u;
	ListCell   *c;

	if (!users_given)
	{
		rollout_default_target(opts, &def);
		users = list_make1((char *) def.user_id);
		if (!credentials_given && def.credential_id != NULL)
		{
			credentials = list_make1((char *) def.credential_id);
			credentials_given = true;
		}
	}
	foreach(u, users)
	{
		List	   *creds = credentials_given ? credentials : list_make1(NULL);

		foreach(c, creds)
		{
			RolloutTarget *t = palloc(sizeof(RolloutTarget));

			t->user_id = lfirst(u);
			t->credential_id = lfirst(c);
			targets = lappend(targets, t);
		}
	}
	return rollout_check_targets(opts, um, targets);
}

/*
 * An id a query, a row or a setting names: a Rollout user (not "*") or a
 * credential, not empty, without control characters (a user id is a JWT
 * claim, a credential id a header), at most ROLLOUT_MAX_ID_LEN bytes.
 */
void
rollout_check_id(const char *id, RolloutKey key)
{
	const char *what = key == ROLLOUT_KEY_USER ? "user" : "credential";
	const char *problem = NULL;

	if (id[0] == '\0')
		problem = "it is empty";
	else if (key == ROLLOUT_KEY_USER && strcmp(id, ROLLOUT_ANY_USER) == 0)
		problem = "\"*\" means any user only in a user mapping's user_id";
	else if (strlen(id) > ROLLOUT_MAX_ID_LEN)
		problem = psprintf("it is longer than %d bytes", ROLLOUT_MAX_ID_LEN);
	else
		for (const unsigned char *p = (const unsigned char *) id; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				problem = "it holds a control character";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Rollout %s id: %s", what, problem),
				 errdetail("Nothing was sent.")));
}

/* The hash key of a (user, credential): both ids, checked, byte for byte. */
void
rollout_pair_key(RolloutPairKey *k, const char *user_id,
				 const char *credential_id)
{
	size_t		ulen = strlen(user_id);

	memset(k, 0, sizeof(RolloutPairKey));
	Assert(ulen <= ROLLOUT_MAX_ID_LEN);
	memcpy(k->ids, user_id, ulen);
	if (credential_id != NULL)
	{
		Assert(strlen(credential_id) <= ROLLOUT_MAX_ID_LEN);
		memcpy(k->ids + ulen + 1, credential_id, strlen(credential_id));
	}
}

/*
 * Targets the mapping may read, each once: every user its own (any with
 * user_id '*'), and a mapping for one user only its own credential.
 */
List *
rollout_check_targets(RolloutOptions *opts, UserMapping *um, List *targets)
{
	List	   *result = NIL;
	HTAB	   *seen;
	HASHCTL		ctl;
	RolloutConn *own = NULL;
	ListCell   *lc;

	ctl.keysize = sizeof(RolloutPairKey);
	ctl.entrysize = sizeof(RolloutPairKey);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("rollout_fdw targets", Max(list_length(targets), 8),
					   &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	foreach(lc, targets)
	{
		RolloutTarget *t = lfirst(lc);
		RolloutPairKey key;
		bool		found;

		rollout_check_id(t->user_id, ROLLOUT_KEY_USER);
		if (t->credential_id != NULL)
			rollout_check_id(t->credential_id, ROLLOUT_KEY_CREDENTIAL);
		rollout_check_user(opts, t->user_id,
						   psprintf("\"%s\" named by a key column", t->user_id));

		/* a mapping for one user reads only its own credential */
		if (t->credential_id != NULL && !rollout_any_user(opts))
		{
			if (own == NULL)
				own = rollout_get_conn(um, opts->user_id);
			if (own->credential_id == NULL)
				rollout_resolve_credential(own, opts);
			if (strcmp(t->credential_id, own->credential_id) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("the user mapping for server \"%s\" acts only for its own credential, not for \"%s\"",
								opts->servername, t->credential_id),
						 errdetail("Its user_id is \"%s\" and its credential \"%s\"; nothing was sent.",
								   opts->user_id, own->credential_id),
						 errhint("A user mapping with OPTIONS (user_id '*') may act for any user of the client: see README \"Many users\".")));
		}

		/* each (user, credential) once */
		rollout_pair_key(&key, t->user_id, t->credential_id);
		hash_search(seen, &key, HASH_ENTER, &found);
		if (!found)
			result = lappend(result, t);
	}
	hash_destroy(seen);
	return result;
}

/* ------------------------------------------------------------------
 * Many targets' scans, run together
 * ------------------------------------------------------------------ */

/* What one target sends in a step. */
typedef struct StepPart
{
	int			scan;			/* which scan */
	bool		credentials;	/* GET /credentials, not the scan's step */
	RolloutApiJob *jobs;
	int			njobs;
} StepPart;

/*
 * A fan-out whose scans are made like first (rollout_scan_create, its
 * user not set yet), in parent.
 */
RolloutFanout *
rollout_fanout_create(RolloutScan *first, UserMapping *um, int64 row_limit,
					  MemoryContext parent)
{
	RolloutFanout *f = MemoryContextAllocZero(parent, sizeof(RolloutFanout));

	f->opts = first->opts;
	f->um = um;
	f->row_limit = row_limit;
	f->parent = parent;
	f->step_cxt = AllocSetContextCreate(parent, "rollout_fdw fan-out step",
										ALLOCSET_DEFAULT_SIZES);
	f->start_cxt = AllocSetContextCreate(parent, "rollout_fdw fan-out targets",
										 ALLOCSET_SMALL_SIZES);
	f->scans = MemoryContextAllocZero(parent, sizeof(RolloutScan *));
	f->skipped = MemoryContextAllocZero(parent, sizeof(bool));
	f->scans[0] = first;
	f->scans_cap = 1;
	f->nscans_made = 1;
	return f;
}

/*
 * (Re)start with one scan per target, the caller then setting each scan's
 * request (rollout_scan_lists, _ids, _window).  Scans of an earlier start
 * are reused: a nested loop restarts once per outer row.
 */
void
rollout_fanout_start(RolloutFanout *f, List *targets)
{
	int			n = list_length(targets);
	ListCell   *lc;

	MemoryContextReset(f->start_cxt);
	if (n > f->scans_cap)
	{
		int			cap = Max(n, f->scans_cap * 2);
		RolloutScan **scans = MemoryContextAllocZero(f->parent,
													 sizeof(RolloutScan *) * cap);
		bool	   *skipped = MemoryContextAllocZero(f->parent,
													 sizeof(bool) * cap);

		if (f->nscans_made > 0)
			memcpy(scans, f->scans, sizeof(RolloutScan *) * f->nscans_made);
		f->scans = scans;
		f->skipped = skipped;
		f->scans_cap = cap;
	}
	foreach(lc, targets)
	{
		RolloutTarget *t = lfirst(lc);
		int			i = foreach_current_index(lc);
		RolloutScan *s;

		if (i >= f->nscans_made)
		{
			f->scans[i] = rollout_scan_like(f->scans[0], f->parent);
			f->nscans_made = i + 1;
		}
		s = f->scans[i];
		s->conn = rollout_get_conn(f->um, t->user_id);
		s->row_limit = f->row_limit;
		s->key_values[ROLLOUT_KEY_USER] =
			MemoryContextStrdup(f->start_cxt, t->user_id);
		s->credential = t->credential_id == NULL ? NULL :
			MemoryContextStrdup(f->start_cxt, t->credential_id);
		if (s->credential == NULL && !rollout_any_user(f->opts) &&
			strcmp(t->user_id, f->opts->user_id) == 0)
			s->credential = f->opts->credential_id;	/* the mapping's, or NULL */
		s->key_values[ROLLOUT_KEY_CREDENTIAL] = s->credential;
		s->cursor_only = n > 1;
		s->defer_not_ready = n > 1;
		s->retry_at = 0;
		s->not_ready_until = 0;
		s->not_ready_tries = 0;
		s->out_of_time = false;
		f->skipped[i] = false;
	}
	f->nscans = n;
	f->cur = 0;
	f->next_start = 0;
}

/* Wait until wake, interruptibly. */
static void
wait_until(TimestampTz wake)
{
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		ms;

		CHECK_FOR_INTERRUPTS();
		if (now >= wake)
			return;
		ms = TimestampDifferenceMilliseconds(now, wake);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(Min(ms, 1000), 1), rollout_wait_backoff());
		ResetLatch(MyLatch);
	}
}

/* Errors a target may be left out for: the API's, classified. */
static bool
skippable(int sqlerrcode)
{
	static const int codes[] = {
		ROLLOUT_ERRCODE_AUTH, ROLLOUT_ERRCODE_FORBIDDEN,
		ROLLOUT_ERRCODE_NOT_FOUND, ROLLOUT_ERRCODE_BAD_REQUEST,
		ROLLOUT_ERRCODE_NOT_READY, ROLLOUT_ERRCODE_RATE_LIMITED,
		ROLLOUT_ERRCODE_SERVER, ROLLOUT_ERRCODE_NETWORK,
		ROLLOUT_ERRCODE_BAD_RESPONSE, ROLLOUT_ERRCODE_CREDENTIAL,
		ERRCODE_FDW_INVALID_STRING_FORMAT
	};

	for (int i = 0; i < lengthof(codes); i++)
		if (codes[i] == sqlerrcode)
			return true;
	return false;
}

/* Take one target's answers of a step. */
static void
take_part(RolloutFanout *f, StepPart *part)
{
	RolloutScan *s = f->scans[part->scan];

	if (part->credentials)
	{
		rollout_stats_sum(&f->stats, &part->jobs[0].resp.stats);
		rollout_take_credentials(s->conn, f->opts, &part->jobs[0]);
	}
	else
		rollout_scan_take(s, part->jobs, part->njobs);
}

/*
 * Take a target's answers; with on_user_error 'skip', in a subtransaction
 * (as PL/pgSQL's EXCEPTION blocks), so that a classified error of a target
 * that returned no row yet leaves it out with a WARNING.
 */
static void
take_part_guarded(RolloutFanout *f, StepPart *part)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	RolloutScan *s = f->scans[part->scan];

	if (!f->opts->skip_user_errors)
	{
		take_part(f, part);
		return;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		take_part(f, part);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		RolloutStats skipped = {0};

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (!skippable(edata->sqlerrcode) || s->rows_returned > 0 ||
			s->out_of_time ||
			(part->credentials && part->jobs[0].out_of_time))
			ReThrowError(edata);
		f->skipped[part->scan] = true;
		skipped.users_skipped = 1;
		rollout_stats_sum(&f->stats, &skipped);
		rollout_stats_add(f->opts, &skipped);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("rollout_fdw: Rollout user \"%s\"%s%s%s left out of the result: %s",
						s->conn->user_id,
						s->credential ? " (credential \"" : "",
						s->credential ? s->credential : "",
						s->credential ? "\")" : "",
						edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("The server or table option on_user_error is 'skip'; with 'fail' this error fails the statement.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * One step: the next requests of every target that has any, starting
 * after the last one served, up to ROLLOUT_MAX_INFLIGHT, sent together;
 * a target whose user's credential is not known yet asks for it first.
 * Waits when every target left is waiting out a 409.  False when every
 * target is done.
 */
static bool
fanout_step(RolloutFanout *f)
{
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz wake = 0;
		StepPart   *parts;
		int			nparts = 0;
		int			njobs = 0;
		int			last = -1;
		RolloutApiJob *all;
		MemoryContext old;

		MemoryContextReset(f->step_cxt);
		old = MemoryContextSwitchTo(f->step_cxt);
		parts = palloc0(sizeof(StepPart) * f->nscans);
		for (int i = 0; i < f->nscans && njobs < ROLLOUT_MAX_INFLIGHT; i++)
		{
			int			k = (f->next_start + i) % f->nscans;
			RolloutScan *s = f->scans[k];
			StepPart   *part = &parts[nparts];

			if (f->skipped[k] || rollout_scan_finished(s))
				continue;
			if (s->retry_at > now)
			{
				wake = wake == 0 ? s->retry_at : Min(wake, s->retry_at);
				continue;
			}
			part->scan = k;
			if (s->credential == NULL && s->conn->credential_id == NULL)
			{
				part->credentials = true;
				part->jobs = palloc0(sizeof(RolloutApiJob));
				part->njobs = 1;
				rollout_credentials_job(s->conn, f->opts, part->jobs);
			}
			else
				part->njobs = rollout_scan_prepare(s, &part->jobs);
			njobs += part->njobs;
			nparts++;
			last = k;
		}
		if (nparts == 0)
		{
			MemoryContextSwitchTo(old);
			if (wake == 0)
				return false;
			wait_until(wake);
			continue;
		}
		f->next_start = (last + 1) % f->nscans;

		/* every part's requests in one run, then each part's answers */
		all = palloc0(sizeof(RolloutApiJob) * Max(njobs, 1));
		for (int p = 0, j = 0; p < nparts; p++)
			for (int k = 0; k < parts[p].njobs; k++)
				all[j++] = parts[p].jobs[k];
		if (njobs > 0)
			rollout_api_run_jobs(f->opts, all, njobs);
		for (int p = 0, j = 0; p < nparts; p++)
			for (int k = 0; k < parts[p].njobs; k++)
				parts[p].jobs[k] = all[j++];
		MemoryContextSwitchTo(old);
		for (int p = 0; p < nparts; p++)
			take_part_guarded(f, &parts[p]);
		return true;
	}
}

/*
 * Store the next record of any target in slot (values in row_cxt); false
 * at the end.  One target, unless on_user_error is 'skip': its scan
 * alone, as a single scan runs.
 */
bool
rollout_fanout_next(RolloutFanout *f, TupleTableSlot *slot,
					MemoryContext row_cxt)
{
	/* one target, no error to skip: the scan alone */
	if (f->nscans == 1 && !f->opts->skip_user_errors)
		return rollout_scan_next(f->scans[0], slot, row_cxt);
	for (;;)
	{
		for (; f->cur < f->nscans; f->cur++)
			if (!f->skipped[f->cur] &&
				rollout_scan_emit(f->scans[f->cur], slot, row_cxt))
				return true;
		if (f->nscans > 0)
			rollout_progress_report(f->scans[0], true);
		if (f->nscans == 0 || !fanout_step(f))
		{
			ExecClearTuple(slot);
			return false;
		}
		rollout_progress_report(f->scans[0], false);
		f->cur = 0;
	}
}

/* What the fan-out's requests cost, for EXPLAIN ANALYZE. */
void
rollout_fanout_counters(RolloutFanout *f, RolloutStats *stats, int64 *pages,
						int64 *repairs, int64 *duplicates)
{
	*stats = f->stats;
	*pages = 0;
	*repairs = 0;
	*duplicates = 0;
	for (int i = 0; i < f->nscans_made; i++)
	{
		rollout_stats_sum(stats, &f->scans[i]->stats);
		*pages += f->scans[i]->pages;
		*repairs += f->scans[i]->repairs;
		*duplicates += f->scans[i]->duplicates;
	}
}

/* The scans' progress slots are given back. */
void
rollout_fanout_end(RolloutFanout *f)
{
	for (int i = 0; i < f->nscans_made; i++)
		rollout_progress_end(f->scans[i]);
}
