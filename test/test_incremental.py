"""The README's "Incremental refresh" recipe, run as written: webhook events
(signed, checked by rollout_fdw_verify_webhook) name the people that
changed; a pg_cron job applies them to a local table with one MERGE that
reads those ids by GET /people/{id} (404: gone), then deletes the events,
in one transaction.  Over 2,000 people: the local table equals a full read
of crm.people after a run, 50 changed ids cost at most 55 requests (and no
list request), and a run that meets an API error (a 500, a dropped
connection) on one id leaves the table and the events as they were, the
next run applying them.  Then the per-user variant over the emulator's
tenant users (key columns, a mapping with user_id '*'): each changed id read
as the user whose event named it, an id two users' CRMs both hold kept apart,
one user's 500 failing the whole run."""

import hashlib
import hmac
import json
import time

from lib import (Checker, admin, fault, log, make_db, psql, psql_script, readme_block,
                 reset)

DB = "crm_app"          # the database the README's cron.schedule_in_database names
SECTION = "### Incremental refresh"
SECRET = b"test-secret"  # the client_secret of make_db's user mapping
PEOPLE = 2000
COLUMNS = "id, first_name, last_name, stage, tags, updated"
c = Checker()


def q(sql, db=DB):
    rc, out, err, _ = psql(sql, db)
    if rc != 0:
        raise RuntimeError(f"{sql}: {err}")
    return out


def ids_of(out):
    return [line for line in out.splitlines() if line]


def create(rows):
    """POST /people for each of rows (first_name, last_name); their new ids."""
    return ids_of(q(f"WITH n AS (INSERT INTO crm.people (first_name, last_name) {rows} "
                    f"RETURNING id) SELECT id FROM n"))


def sql_text(s):
    return "'" + s.replace("'", "''") + "'"


def receive(event_id, event, ids, secret=SECRET):
    """Deliver one webhook as the app's endpoint would: the raw body and its
    X-Rollout-Signature (hex HMAC-SHA256 of the body) to crm_receive_webhook."""
    body = json.dumps({"eventId": event_id, "eventCreated": "2026-12-04T12:00:00Z",
                       "event": event, "resourceIds": ids,
                       "uri": "https://crm.universal.rollout.com/people?ids=" + ",".join(ids)})
    signature = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    return q(f"SELECT crm_receive_webhook(convert_to({sql_text(body)}, 'UTF8'), "
             f"'{signature}')")


def run_job(block, name, timeout=150):
    """Schedule the README's block in pg_cron's database; wait for the job's
    first run to end; unschedule it.  Returns (status, return_message)."""
    psql(f"SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = '{name}'")
    rc, jobid, err, _ = psql_script(block, "postgres")
    if rc != 0 or not jobid.isdigit():
        return None, err
    deadline = time.time() + timeout
    row = ""
    while time.time() < deadline:
        _, row, _, _ = psql(f"SELECT status || '|' || coalesce(return_message, '') "
                            f"FROM cron.job_run_details WHERE jobid = {jobid} "
                            f"AND status IN ('succeeded', 'failed') ORDER BY runid LIMIT 1")
        if row:
            break
        time.sleep(1)
    psql(f"SELECT cron.unschedule({jobid})")
    return tuple(row.split("|", 1)) if row else (None, "no run within the timeout")


def local_equals_crm():
    """(equal, detail): people_local holds exactly the rows of a full read."""
    out = q(f"""
        WITH crm AS (SELECT {COLUMNS} FROM crm.people)
        SELECT (SELECT count(*) FROM people_local), (SELECT count(*) FROM crm),
               (SELECT count(*) FROM (SELECT * FROM people_local EXCEPT SELECT * FROM crm) a),
               (SELECT count(*) FROM (SELECT * FROM crm EXCEPT SELECT * FROM people_local) b)""")
    local, crm, extra, missing = out.split("|")
    return local == crm and extra == "0" and missing == "0", out


def state():
    """A fingerprint of the local table and the pending events."""
    return q(f"SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM people_local t), "
             f"(SELECT string_agg(event_id || ':' || array_to_string(resource_ids, ' '), ',' "
             f"ORDER BY event_id) FROM crm_events)")


def requests():
    """(GETs by id, list requests, all requests) in the emulator's log."""
    entries = log()
    by_id = [r for r in entries if r["method"] == "GET"
             and r["path"].startswith("/api/people/")]
    lists = [r for r in entries if r["path"] == "/api/people"]
    return by_id, lists, entries


# === setup: 2,000 people, crm.people imported, the README's tables and the initial copy
reset(people=PEOPLE)
make_db(DB, "retry_base_ms '10', retry_max_ms '40', max_retries '1'")
psql("CREATE EXTENSION IF NOT EXISTS pg_cron")
rc, _, err, _ = psql_script("CREATE SCHEMA crm;\n"
                            "IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout "
                            "INTO crm;\n", DB)
c.check("crm.people imported", rc == 0, err)
for marker in ("CREATE TABLE crm_events", "CREATE FUNCTION crm_receive_webhook",
               "CREATE PROCEDURE crm_apply_events"):
    rc, _, err, _ = psql_script(readme_block(SECTION, marker), DB)
    c.check(f"README block {marker!r} runs", rc == 0, err)
SCHEDULE = readme_block(SECTION, "cron.schedule_in_database('crm-apply-events'")
c.check("the initial copy holds the CRM's 2,000 people",
        q("SELECT count(*) FROM people_local") == str(PEOPLE))
ok, detail = local_equals_crm()
c.check("the initial copy equals a full read", ok, detail)

# === changes in the CRM through the API (POST, PUT, DELETE), then their webhooks
existing = ids_of(q("SELECT id FROM people_local ORDER BY id::bigint"))
updated = existing[100:125]
deleted = existing[500:510]
created = create("SELECT 'New', 'Person ' || g FROM generate_series(1, 10) g")
transient = create("SELECT 'Brief', 'Person ' || g FROM generate_series(1, 5) g")
q(f"UPDATE crm.people SET first_name = 'Changed', stage = 'Hot', tags = '{{incremental}}' "
  f"WHERE id = ANY ('{{{','.join(updated)}}}')")
q(f"DELETE FROM crm.people WHERE id = ANY ('{{{','.join(deleted + transient)}}}')")
c.check("10 + 5 created, 25 updated, 15 deleted in the CRM",
        len(created) == 10 and len(transient) == 5 and
        q(f"SELECT count(*) FROM crm.people WHERE id = ANY ('{{{','.join(updated)}}}') "
          f"AND first_name = 'Changed'") == "25")

answers = [
    receive("ev-1", "peopleCreated", created[:6]),
    receive("ev-2", "peopleCreated", created[6:] + transient),
    receive("ev-3", "peopleUpdated", updated[:15]),
    receive("ev-4", "peopleUpdated", updated[10:]),          # 5 ids named twice
    receive("ev-5", "peopleDeleted", deleted + transient),   # transient: created, then deleted
    receive("ev-3", "peopleUpdated", updated[:15]),          # a repeated delivery
    receive("ev-6", "usersUpdated", ["1"]),                  # not about people
]
forged = receive("ev-forged", "peopleDeleted", existing[:3], secret=b"not-the-secret")
changed = set(created + transient + updated + deleted)
c.check("signed deliveries accepted", answers == ["t"] * 7, answers)
c.check("a forged signature is refused and stores nothing", forged == "f", forged)
named = len(created) + len(transient) + 15 + 15 + len(deleted) + len(transient)
pending = q("SELECT string_agg(event_id, ',' ORDER BY event_id) FROM crm_events")
c.check("five events pending (not the repeat, the users event, the forgery), 50 ids",
        pending == "ev-1,ev-2,ev-3,ev-4,ev-5" and len(changed) == 50 and
        q("SELECT count(*), count(DISTINCT id) FROM crm_events, unnest(resource_ids) id")
        == f"{named}|50", pending)

# === the job, through pg_cron: one GET per changed id, nothing else
admin("DELETE", "log")
status, message = run_job(SCHEDULE, "crm-apply-events")
by_id, lists, entries = requests()
c.check("pg_cron ran the job and recorded it as succeeded", status == "succeeded",
        f"{status} {message}")
c.check("50 changed ids: one GET /people/{id} each, no list request, <= 55 requests",
        sorted(r["path"].rsplit("/", 1)[1] for r in by_id) == sorted(changed)
        and not lists and len(entries) <= 55,
        f"{len(by_id)} by id, {len(lists)} lists, {len(entries)} in all")
print(f"figure: 50 changed ids of {PEOPLE} people: {len(entries)} requests "
      f"(a full read: {PEOPLE // 100 + 1})")
ok, detail = local_equals_crm()
c.check("the local table equals a full read of crm.people", ok, detail)
c.check("created people inserted, deleted ones gone, the created-then-deleted never there",
        q(f"SELECT count(*) FROM people_local WHERE id = ANY ('{{{','.join(created)}}}')")
        == "10" and
        q(f"SELECT count(*) FROM people_local "
          f"WHERE id = ANY ('{{{','.join(deleted + transient)}}}')") == "0" and
        q(f"SELECT count(*) FROM people_local WHERE id = ANY ('{{{','.join(updated)}}}') "
          f"AND first_name = 'Changed' AND tags = '{{incremental}}'") == "25")
c.check("the applied events are deleted", q("SELECT count(*) FROM crm_events") == "0")

# === an API error on one id fails the run: nothing applied, the events kept
more_updated = existing[1000:1005]
more_deleted = existing[1500:1502]
q(f"UPDATE crm.people SET last_name = 'Again' "
  f"WHERE id = ANY ('{{{','.join(more_updated)}}}')")
q(f"DELETE FROM crm.people WHERE id = ANY ('{{{','.join(more_deleted)}}}')")
more_created = create("VALUES ('Late', 'Comer')")
receive("ev-7", "peopleUpdated", more_updated)
receive("ev-8", "peopleDeleted", more_deleted)
receive("ev-9", "peopleCreated", more_created)
before = state()
# the id asked last (ids are asked in text order): the others are asked before it fails
last = max(more_updated + more_deleted + more_created)

admin("DELETE", "log")
fault(method="GET", path=f"^/api/people/{last}$", status=500)
status, message = run_job(SCHEDULE, "crm-apply-events")
by_id, _, _ = requests()
c.check("a 500 on one of 8 ids: pg_cron recorded the run as failed, with the API error",
        status == "failed" and "HTTP 500" in message, f"{status} {message}")
c.check("other ids were read (200 or 404) before the run failed",
        any(r["status"] in (200, 404) for r in by_id),
        [(r["path"], r["status"]) for r in by_id])
c.check("after the failed run the local table and the events are unchanged",
        state() == before)

admin("DELETE", "faults")
fault(method="GET", path=f"^/api/people/{more_updated[0]}$", after_serving="drop")
rc, _, err, _ = psql("CALL crm_apply_events()", DB)
c.check("a connection dropped on one id fails the job", rc != 0 and "GET /people/" in err,
        err)
c.check("after the dropped connection the local table and the events are unchanged",
        state() == before)

admin("DELETE", "faults")
status, message = run_job(SCHEDULE, "crm-apply-events")
c.check("the next run succeeds", status == "succeeded", f"{status} {message}")
ok, detail = local_equals_crm()
c.check("it applied the kept events: the local table equals a full read", ok, detail)
c.check("and deleted them", q("SELECT count(*) FROM crm_events") == "0")


# === per user and credential (README "Per user and credential"): key columns,
# a mapping with user_id '*', the emulator's tenant users
USERS = 3
TENANT = 1000000  # tenant i's people are TENANT * i + 1, + 2, ...


def tenant(i):
    return f"tenant-user-{i}", f"tenant-cred-{i}"


def tenant_people(i):
    return admin("GET", f"people?cred=tenant-cred-{i}")["people"]


def set_tenant_people(i, people):
    admin("POST", "people", {"cred": f"tenant-cred-{i}", "people": people})


def receive_user(event_id, user, event, ids):
    body = json.dumps({"eventId": event_id, "eventCreated": "2026-12-04T12:00:00Z",
                       "event": event, "resourceIds": ids})
    signature = hmac.new(SECRET, body.encode(), hashlib.sha256).hexdigest()
    return q(f"SELECT crm_receive_user_webhook('{user[0]}', '{user[1]}', "
             f"convert_to({sql_text(body)}, 'UTF8'), '{signature}')")


def user_local_equals_crm():
    out = q(f"""
        WITH crm AS (SELECT p.rollout_user_id, p.rollout_credential_id, {COLUMNS}
                     FROM customers c JOIN crm.people p
                       ON p.rollout_user_id = c.rollout_user
                      AND p.rollout_credential_id = c.credential)
        SELECT (SELECT count(*) FROM user_people_local), (SELECT count(*) FROM crm),
               (SELECT count(*) FROM (SELECT * FROM user_people_local EXCEPT
                                      SELECT * FROM crm) a),
               (SELECT count(*) FROM (SELECT * FROM crm EXCEPT
                                      SELECT * FROM user_people_local) b)""")
    local, crm, extra, missing = out.split("|")
    return local == crm and extra == "0" and missing == "0" and local != "0", out


reset(tenants={"users": USERS, "people": 100})
q("DROP SCHEMA crm CASCADE")
rc, _, err, _ = psql_script("CREATE SCHEMA crm;\n"
                            "IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout "
                            "INTO crm OPTIONS (key_columns 'true');\n", DB)
keyed = rc == 0 and q("SELECT count(*) FROM information_schema.columns WHERE "
                      "table_schema = 'crm' AND column_name IN "
                      "('rollout_user_id', 'rollout_credential_id')") == "2"
c.check("crm.people imported with the key columns", keyed, err)
if keyed:
    q("ALTER USER MAPPING FOR CURRENT_USER SERVER rollout "
      "OPTIONS (SET user_id '*', DROP credential_id)")
    q("CREATE TABLE customers (rollout_user text, credential text); "
      "INSERT INTO customers VALUES " +
      ", ".join(f"('{u}', '{cr}')" for u, cr in map(tenant, range(1, USERS + 1))))
    for marker in ("CREATE TABLE crm_user_events", "CREATE FUNCTION crm_receive_user_webhook",
                   "CREATE PROCEDURE crm_apply_user_events"):
        rc, _, err, _ = psql_script(readme_block(SECTION, marker), DB)
        c.check(f"README block {marker!r} runs", rc == 0, err)
    USER_SCHEDULE = readme_block(SECTION, "cron.schedule_in_database('crm-apply-user-events'")
    ok, detail = user_local_equals_crm()
    c.check("per user: the initial copy holds every customer's people", ok, detail)

    # tenant 1: 3 updated; tenant 2: 2 deleted, and a person created with an id that
    # tenant 1 holds too; tenant 3: one created, one created then deleted
    one, two, three = tenant_people(1), tenant_people(2), tenant_people(3)
    upd = [str(p["id"]) for p in one[:3]]
    for p in one[:3]:
        p["firstName"] = "Changed"
    set_tenant_people(1, one)
    gone = [str(p["id"]) for p in two[10:12]]
    shared = str(one[50]["id"])                  # an id tenant 1 holds, created in tenant 2
    set_tenant_people(2, two[:10] + two[12:] +
                      [dict(two[0], id=int(shared), firstName="Twin", lastName="OfTenant1")])
    new3 = str(TENANT * 3 + 500)
    set_tenant_people(3, three + [dict(three[0], id=int(new3), firstName="New")])
    brief3 = str(TENANT * 3 + 501)               # created then deleted before the job
    answers = [
        receive_user("u-1", tenant(1), "peopleUpdated", upd),
        receive_user("u-2", tenant(2), "peopleDeleted", gone),
        receive_user("u-3", tenant(2), "peopleCreated", [shared]),
        receive_user("u-4", tenant(3), "peopleCreated", [new3, brief3]),
        receive_user("u-5", tenant(3), "peopleDeleted", [brief3]),
        receive_user("u-6", tenant(3), "peopleUpdated", [upd[0]]),  # tenant 1's id: 404 here
    ]
    c.check("per user: signed deliveries accepted", answers == ["t"] * 6, answers)
    triples = {(tenant(1), i) for i in upd} | {(tenant(2), i) for i in gone + [shared]} | \
        {(tenant(3), i) for i in (new3, brief3, upd[0])}
    before = q("SELECT md5(string_agg(t::text, ',' ORDER BY user_id, id)) "
               "FROM user_people_local t")

    admin("DELETE", "log")
    fault(method="GET", path="^/api/people/", sub="tenant-user-2", status=500)
    rc, _, err, _ = psql("CALL crm_apply_user_events()", DB)
    c.check("per user: a 500 on one user's GET fails the job", rc != 0 and "HTTP 500" in err,
            err)
    c.check("per user: after it the local table and the events are unchanged",
            q("SELECT md5(string_agg(t::text, ',' ORDER BY user_id, id)) "
              "FROM user_people_local t") == before and
            q("SELECT count(*) FROM crm_user_events") == "6")

    admin("DELETE", "faults")
    admin("DELETE", "log")
    status, message = run_job(USER_SCHEDULE, "crm-apply-user-events")
    by_id, lists, entries = requests()
    c.check("per user: pg_cron ran the job and recorded it as succeeded",
            status == "succeeded", f"{status} {message}")
    asked = sorted(((r["sub"], r["cred"]), r["path"].rsplit("/", 1)[1]) for r in by_id)
    c.check("per user: one GET /people/{id} per changed (user, credential, id), as that "
            "user, no list request",
            asked == sorted(triples) and not lists and len(entries) == len(triples),
            f"{asked} {len(lists)} lists, {len(entries)} in all")
    ok, detail = user_local_equals_crm()
    c.check("per user: the local table equals a full read of every customer's people",
            ok, detail)
    c.check("per user: the shared id holds each user's own person",
            q(f"SELECT string_agg(user_id || ':' || first_name, ',' ORDER BY user_id) "
              f"FROM user_people_local WHERE id = '{shared}'")
            == f"tenant-user-1:{one[50]['firstName']},tenant-user-2:Twin")
    c.check("per user: the applied events are deleted",
            q("SELECT count(*) FROM crm_user_events") == "0")

reset()
psql(f"DROP DATABASE {DB}")
c.finish()
