"""Progress of running scans: rollout_fdw_progress (rollout_fdw_scans())
watched from a second session while slow scans run; who sees what; a slot
given back however the scan ends (done, cancelled, failed, in a
subtransaction, backend terminated); two scans in one query; and the
request counters of EXPLAIN ANALYZE on INSERT, UPDATE and DELETE."""

import json
import os
import subprocess
import time

from lib import Checker, admin, fault, make_db, psql, reset

DB = "rollout_progress"
PEOPLE = 3000
c = Checker()
T0 = time.monotonic()


def mark(what):
    print(f"# {what}: {time.monotonic() - T0:.1f} s")

POLL = """
SELECT a.query, coalesce((SELECT json_agg(json_build_object(
    'state', p.state, 'server', p.server, 'resource', p.resource,
    'foreign_table', p.foreign_table, 'datname', p.datname,
    'usename', p.usename, 'pages_done', p.pages_done,
    'pages_expected', p.pages_expected, 'rows', p.rows,
    'requests', p.requests, 'retries', p.retries,
    'throttled', extract(epoch FROM p.throttled),
    'elapsed', extract(epoch FROM p.elapsed),
    'remaining', extract(epoch FROM p.remaining)))
  FROM rollout_fdw_progress p WHERE p.pid = a.pid), '[]')
FROM pg_stat_activity a WHERE a.application_name = '{app}'
"""


def run(script, app, db=DB):
    """Run a psql script in a session of its own (errors do not stop it)."""
    proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-d", db],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PGAPPNAME=app))
    proc.stdin.write(script)
    proc.stdin.close()
    proc.stdin = None
    return proc


def poll(app):
    """(query, [scan rows]) of the session named app, or None when gone."""
    _, out, _, _ = psql(POLL.format(app=app), DB)
    if not out:
        return None
    query, _, rows = out.partition("|")
    return query, json.loads(rows)


def watch(proc, app, interval=0.15, timeout=120):
    """Poll while the session runs; its samples and its output."""
    samples = []
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        s = poll(app)
        if s is not None:
            samples.append(s)
        time.sleep(interval)
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    return samples, out, err


def wait_for_scan(app, min_pages=1, timeout=30):
    """The pid of app's backend once a scan of it has done min_pages."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, out, _, _ = psql(
            f"SELECT p.pid FROM rollout_fdw_scans() p JOIN pg_stat_activity a "
            f"USING (pid) WHERE a.application_name = '{app}' "
            f"AND p.pages_done >= {min_pages} LIMIT 1", DB)
        if out:
            return out
        time.sleep(0.05)
    return None


def slots_of(pid):
    _, out, _, _ = psql(f"SELECT count(*) FROM rollout_fdw_scans() WHERE pid = {pid}", DB)
    return out


def slow(ms):
    admin("DELETE", "faults")
    fault(path="^/api/people$", latency_ms=ms)


reset(people=PEOPLE)
make_db(DB, "retry_base_ms '10', retry_max_ms '40', max_retries '1'",
        "page_size '100', scan_concurrency '1'")

# === a slow scan watched from a second session
mark("a slow scan watched from a second session")
slow(200)
proc = run("SELECT count(*) FROM people;\nSELECT pg_sleep(2);\n", "prog_watch")
samples, out, err = watch(proc, "prog_watch")
scans = [rows[0] for q, rows in samples if "people" in q and len(rows) == 1]
c.check("the scan returned every row", out.splitlines()[:1] == [str(PEOPLE)], out + err)
c.check("the scan was seen while it ran (>= 10 samples)", len(scans) >= 10, len(scans))
first = scans[0] if scans else {}
c.check("server, resource, table, database and role are shown",
        first.get("server") == "rollout" and first.get("resource") == "people"
        and first.get("foreign_table") == "public.people"
        and first.get("datname") == DB and first.get("usename"), first)
done = [s["pages_done"] for s in scans]
c.check("pages_done never goes back and gets near the end",
        done == sorted(done) and max(done or [0]) >= 25, done)
c.check("pages_done moved while it was watched", len(set(done)) >= 5, done)
expected = {s["pages_expected"] for s in scans if s["pages_done"] >= 1}
# 3000 people: the first page, then pages 95 apart (each repeats 5 records
# of the one before) up to the first short one: 2 + (3000 - 100) // 95 = 32
c.check("pages_expected is 32 (the first page, then offsets 95 apart) from the first page on",
        expected == {32}, expected)
c.check("rows are the records returned (100, then 95 new a page)",
        all(s["rows"] == 100 + 95 * (s["pages_done"] - 1) for s in scans if s["pages_done"] >= 1),
        [(s["pages_done"], s["rows"]) for s in scans][:5])
c.check("requests count every page", all(s["requests"] >= s["pages_done"] for s in scans))
c.check("elapsed grows", scans and scans[-1]["elapsed"] > scans[0]["elapsed"])
rem = [s["remaining"] for s in scans if s["pages_done"] >= 1 and s["state"] != "finished"]
c.check("remaining is estimated once a page is done", rem and all(r is not None for r in rem), rem)
c.check("remaining shrinks (first estimate > 2 s, last < 1.5 s)",
        len(rem) >= 2 and rem[0] > 2 and rem[-1] < 1.5 and rem[-1] < rem[0], rem)
est = [s["elapsed"] + s["remaining"] for s in scans
       if s["pages_done"] >= 1 and s["remaining"] is not None and s["state"] != "finished"]
c.check("the first estimate of the whole is about right (32 pages x 0.2 s)",
        est and 3 < est[0] < 12, est[:3])
states = {s["state"] for s in scans}
c.check("a scan waiting for its pages shows as requesting", "requesting" in states, states)
after = [rows for q, rows in samples if "pg_sleep" in q]
c.check("the slot is gone once the scan ended (same session still open)",
        after and all(rows == [] for rows in after), after[:3])

# === pages_expected from the API's limit, offset pages in flight
mark("pages_expected from the API's limit, offset pages in flight")
psql("ALTER FOREIGN TABLE people OPTIONS (SET page_size '500', SET scan_concurrency '4')", DB)
slow(300)
proc = run("SELECT count(*) FROM people;\n", "prog_offset")
samples, out, err = watch(proc, "prog_offset", interval=0.1)
scans = [rows[0] for q, rows in samples if len(rows) == 1]
expected = {s["pages_expected"] for s in scans if s["pages_done"] >= 1}
c.check("offset paging: every row", out.strip() == str(PEOPLE), out + err)
c.check("pages_expected counts the pages of the limit the API answered (100, not 500)",
        expected == {32}, expected)
c.check("offset paging: pages_done moves in waves up to 32",
        len({s["pages_done"] for s in scans}) >= 3, [s["pages_done"] for s in scans])
psql("ALTER FOREIGN TABLE people OPTIONS (SET page_size '100', SET scan_concurrency '1')", DB)

# === who sees what: the scan's role, pg_read_all_stats; others only pid/role
mark("who sees what: the scan's role, pg_read_all_stats; others only pid/role")
psql("""DO $$ BEGIN
  CREATE ROLE rollout_pa; CREATE ROLE rollout_pb; CREATE ROLE rollout_pmon;
EXCEPTION WHEN duplicate_object THEN NULL; END $$""")
psql("GRANT pg_read_all_stats TO rollout_pmon")
rc, _, err, _ = psql("""
CREATE USER MAPPING FOR rollout_pa SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
GRANT SELECT ON people TO rollout_pa;
""", DB)
c.check("a second role can scan", rc == 0, err)
slow(200)
proc = run("SET ROLE rollout_pa;\nSELECT count(*) FROM people;\n", "prog_roles")
pid = wait_for_scan("prog_roles", 2)
views = {}
for role in ("rollout_pa", "rollout_pb", "rollout_pmon"):
    _, views[role], _, _ = psql(
        f"SET ROLE {role}; SELECT usename, server IS NOT NULL, pages_done IS NOT NULL, "
        f"remaining IS NOT NULL FROM rollout_fdw_progress WHERE pid = {pid}", DB)
    views[role] = views[role].splitlines()[-1:]
out = proc.communicate()[0]
c.check("the scan ran as rollout_pa", out.strip() == str(PEOPLE), out)
c.check("its own role sees every detail", views["rollout_pa"] == ["rollout_pa|t|t|t"], views)
c.check("another role sees the row, its pid and role, and no details",
        views["rollout_pb"] == ["rollout_pa|f|f|f"], views)
c.check("a pg_read_all_stats member sees every detail",
        views["rollout_pmon"] == ["rollout_pa|t|t|t"], views)

# === the slot is given back however the scan ends
mark("the slot is given back however the scan ends")
CHECK = "SELECT 'slots', count(*) FROM rollout_fdw_scans() WHERE pid = pg_backend_pid();\n"

slow(200)
proc = run("SELECT count(*) FROM people;\n" + CHECK, "prog_cancel")
pid = wait_for_scan("prog_cancel", 2)
psql(f"SELECT pg_cancel_backend({pid})")
out, err = proc.communicate(timeout=60)
c.check("cancelled scan: canceled", "canceling statement" in err, err)
c.check("cancelled scan: its slot is gone, same session", "slots|0" in out, out + err)

admin("DELETE", "faults")
fault(path="^/api/people$", query="offset=|next=", after=3, status=500)
proc = run("SELECT count(*) FROM people;\n" + CHECK, "prog_error")
out, err = proc.communicate(timeout=60)
c.check("failed scan: the API's error", "HTTP 500" in err, err)
c.check("failed scan: its slot is gone, same session", "slots|0" in out, out + err)

proc = run("BEGIN;\nSELECT sqlstate_of('SELECT count(*) FROM people');\n" + CHECK
           + "COMMIT;\n", "prog_subxact")
out, err = proc.communicate(timeout=60)
c.check("failed scan in a subtransaction: caught",
        out.splitlines()[:1] != [] and out.splitlines()[0] not in ("ok", ""), out + err)
c.check("failed scan in a subtransaction: slot gone, transaction still open",
        "slots|0" in out, out + err)

slow(200)
proc = run("SELECT count(*) FROM people;\n", "prog_term")
pid = wait_for_scan("prog_term", 2)
psql(f"SELECT pg_terminate_backend({pid})")
proc.communicate(timeout=60)
gone = None
for _ in range(50):
    _, alive, _, _ = psql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")
    if alive == "0":
        gone = slots_of(pid)
        break
    time.sleep(0.1)
c.check("terminated backend: its slot is gone", gone == "0", gone)

# a cursor keeps its scan (and slot) until it is closed
admin("DELETE", "faults")
proc = run("BEGIN;\nDECLARE c CURSOR FOR SELECT id FROM people;\nFETCH 5 FROM c;\n"
           + CHECK + "CLOSE c;\n" + CHECK + "COMMIT;\n", "prog_cursor")
out, err = proc.communicate(timeout=60)
c.check("an open cursor's scan is listed, gone once closed",
        "slots|1" in out and out.rstrip().endswith("slots|0"), out + err)

# === two scans in one query: two rows
mark("two scans in one query: two rows")
slow(100)
proc = run("SET enable_nestloop = off;\n"
           "SELECT count(*) FROM people a JOIN people b ON a.id = b.id;\n", "prog_join")
samples, out, err = watch(proc, "prog_join")
most = max((len(rows) for _, rows in samples), default=0)
c.check("the join returned every row", out.strip().splitlines()[-1:] == [str(PEOPLE)], out + err)
c.check("a join of two foreign scans shows two rows", most == 2, most)
both = [rows for _, rows in samples if len(rows) == 2]
c.check("the hash join's inner scan shows finished while the outer one requests",
        any({r["state"] for r in rows} == {"finished", "requesting"} for rows in both),
        [[r["state"] for r in rows] for rows in both][:5])

# === by ids and ANALYZE show too
mark("by ids and ANALYZE show too")
admin("DELETE", "faults")
fault(path="^/api/people/", latency_ms=1500)
proc = run("SELECT count(*) FROM people WHERE id IN ('11', '12', '13', '14', '15');\n",
           "prog_ids")
samples, out, err = watch(proc, "prog_ids")
seen = {(r["state"], r["pages_done"], r["pages_expected"]) for _, rows in samples for r in rows}
c.check("by ids: every row", out.strip() == "5", out + err)
c.check("by ids: one page expected per id while the GETs are in flight",
        ("requesting", 0, 5) in seen, seen)
slow(300)
proc = run("ANALYZE people;\n", "prog_analyze")
samples, out, err = watch(proc, "prog_analyze")
expected = {r["pages_expected"] for _, rows in samples for r in rows if r["pages_done"] >= 1}
c.check("ANALYZE: listed, 10 pages expected (its sample's bound)", expected == {10},
        (expected, err))

_, n, _, _ = psql("SELECT count(*) FROM rollout_fdw_scans()", DB)
c.check("no slot left behind by any of the above", n == "0", n)

# === EXPLAIN ANALYZE of writes shows their requests
mark("EXPLAIN ANALYZE of writes shows their requests")
admin("DELETE", "faults")


def explain_json(sql):
    rc, out, err, _ = psql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", DB)
    if rc != 0:
        return {"error": err}
    return json.loads(out)[0]["Plan"]


rc, text, err, _ = psql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                        "INSERT INTO people (first_name, last_name) VALUES ('Ex', 'Plain')", DB)
head = text.split("->")[0]
c.check("EXPLAIN ANALYZE INSERT: Rollout Requests: 1 on the Insert node",
        rc == 0 and "Insert on people" in head and "Rollout Requests: 1" in head
        and "Rollout Retries: 0" in head and "Rollout Rate Limited: 0" in head, text + err)
c.check("... no times with TIMING OFF", "Throttled" not in text and "Backoff" not in text, text)
rc, text, err, _ = psql("EXPLAIN (COSTS OFF) INSERT INTO people (first_name) VALUES ('x')", DB)
c.check("plain EXPLAIN INSERT: no counters, nothing sent",
        rc == 0 and "Rollout Requests" not in text, text + err)

psql("ALTER FOREIGN TABLE people OPTIONS (ADD batch_size '10')", DB)
plan = explain_json("INSERT INTO people (first_name, last_name) "
                    "SELECT 'Ex', 'Batch ' || g FROM generate_series(1, 25) g")
c.check("batched INSERT of 25: 25 requests",
        plan.get("Rollout Requests") == 25 and plan.get("Rollout Retries") == 0, plan)

fault(method="POST", path="^/api/people$", times=1, status=429, headers={"Retry-After": "0"})
plan = explain_json("INSERT INTO people (first_name, last_name) VALUES ('Ex', 'Retried')")
c.check("INSERT answered 429 once: 2 requests, 1 retry, 1 rate limited",
        plan.get("Rollout Requests") == 2 and plan.get("Rollout Retries") == 1
        and plan.get("Rollout Rate Limited") == 1, plan)

plan = explain_json("UPDATE people SET last_name = 'Explained' WHERE id = '11'")
sub = (plan.get("Plans") or [{}])[0]
c.check("UPDATE: 1 request (PUT) on the Update node, the scan's own below",
        plan.get("Node Type") == "ModifyTable" and plan.get("Rollout Requests") == 1
        and sub.get("Rollout Requests") == 1, plan)

plan = explain_json("DELETE FROM people WHERE id = '12' RETURNING id")
c.check("DELETE ... RETURNING: 2 requests (GET, then DELETE) on the Delete node",
        plan.get("Rollout Requests") == 2, plan)

mark("end")
reset()
psql(f"DROP DATABASE {DB}")
psql("DROP ROLE IF EXISTS rollout_pa")
psql("DROP ROLE IF EXISTS rollout_pb")
psql("DROP ROLE IF EXISTS rollout_pmon")
c.finish()
