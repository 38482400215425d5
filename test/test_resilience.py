"""Resilience: one rate limit for the whole cluster, waits that always
cancel, faults that never corrupt a result.

Needs rollout_fdw in shared_preload_libraries (the test command sets it);
the no-preload NOTICE is checked in a second, throwaway cluster."""

import os
import shutil
import subprocess
import tempfile
import threading
import time

from lib import (Checker, admin, fault, log, make_db, measured_query, psql, psql_script,
                 reset, start_waiting_session)

DB = "rollout_resilience"
c = Checker()
reset()
make_db(DB, "retry_base_ms '10', retry_max_ms '40', max_retries '3'")


def run_parallel(n, sql, db=DB):
    """Run sql in n sessions at once; returns [(rc, out, err, secs)]."""
    results = [None] * n

    def one(i):
        results[i] = psql(sql, db, timeout=300)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# === the limiter is shared: rollout_fdw_stats says so
rc, out, err, _ = psql("SELECT DISTINCT shared FROM rollout_fdw_stats()", DB)
psql("SELECT count(*) FROM people", DB)
rc, out, err, _ = psql("SELECT bool_and(shared) FROM rollout_fdw_stats()", DB)
c.check("preloaded: the limiter and counters are shared", rc == 0 and out == "t", out + err)

# === a 429's Retry-After pauses every backend of the tenant
reset()
fault(path="^/api/people$", status=429, times=1, headers={"Retry-After": "2"})
t0 = time.time()
first = {}
threading.Thread(target=lambda: first.update(r=psql("SELECT count(*) FROM people", DB))).start()
time.sleep(0.5)
rc, out, err, _ = psql("SELECT count(*) FROM people WHERE id = '12'", DB)
time.sleep(0.1)
while "r" not in first:
    time.sleep(0.05)
reqs = log()
t429 = [r["t"] for r in reqs if r["status"] == 429]
others = [r["t"] for r in reqs if r["status"] == 200]
c.check("both sessions succeed", rc == 0 and first["r"][0] == 0, err + first["r"][2])
c.check("no request of any backend before the Retry-After ends",
        t429 and others and min(others) >= t429[0] + 1.9,
        f"429 at {t429}, next at {min(others) - t429[0] if others and t429 else None:.2f}s")

# === 4-8 concurrent scans under the tenant's 50 req/s: under 2% answered 429
reset(people=600)
admin("POST", "rate_limit", {"rps": 50, "burst": 50, "retry_after": 1})
psql("ALTER SERVER rollout OPTIONS (ADD rate_limit '50'); "
     "ALTER FOREIGN TABLE people OPTIONS (ADD page_size '10')", DB)
start = time.monotonic()
results = run_parallel(6, "SELECT count(*) FROM people")
secs = time.monotonic() - start
reqs = log()
share = sum(1 for r in reqs if r["status"] == 429) / max(1, len(reqs))
c.check("6 concurrent scans all return every row",
        all(r[0] == 0 and r[1] == "600" for r in results), str([r[1] or r[2] for r in results]))
c.check("fewer than 2% of requests answered 429", share < 0.02,
        f"{share:.1%} of {len(reqs)}")
print(f"       6 scans x 60 pages at 50 req/s: {secs:.1f} s, {len(reqs)} requests, "
      f"{share:.2%} answered 429")
psql("ALTER SERVER rollout OPTIONS (DROP rate_limit); "
     "ALTER FOREIGN TABLE people OPTIONS (DROP page_size)", DB)

# === counters: requests, classes, 429s, last error; readable read-only
reset()
fault(path="^/api/people$", status=503, times=1)
psql("SELECT count(*) FROM people", DB)
fault(path="^/api/people/", status=403)
psql("SELECT count(*) FROM people WHERE id = '12'", DB)
rc, out, err, _ = psql_script("""BEGIN READ ONLY;
SELECT responses_5xx >= 1, retries >= 1, last_error_status, last_error_request
FROM rollout_fdw_stats() WHERE database = current_database() AND server = 'rollout';
COMMIT;""", DB)
c.check("rollout_fdw_stats() in a read-only transaction, last error recorded",
        rc == 0 and "t|t|403|GET /people/{id}" in out, out + err)

# === a persistent 500 with default retry options ends within seconds
reset()
psql("ALTER SERVER rollout OPTIONS (DROP retry_base_ms, DROP retry_max_ms, SET max_retries '5')", DB)
fault(path="^/api/people$", status=500)
rc, out, err, secs = psql("SELECT count(*) FROM people", DB)
c.check("persistent 500: classified error (58000) within 20 s",
        rc != 0 and "HTTP 500" in err and "after 5 retries" in err and secs < 20,
        f"{err} {secs:.1f}s")
print(f"       persistent 500 with default backoff: error after {secs:.1f} s")
psql("ALTER SERVER rollout OPTIONS (ADD retry_base_ms '10', ADD retry_max_ms '40', "
     "SET max_retries '3')", DB)

# === a failed REFRESH MATERIALIZED VIEW keeps the old rows
reset()
rc, out, err, _ = psql_script("""
CREATE MATERIALIZED VIEW crm_snapshot AS SELECT id, first_name FROM people;
CREATE UNIQUE INDEX ON crm_snapshot (id);
ALTER FOREIGN TABLE people OPTIONS (ADD page_size '10');
""", DB)
reset(people=40)
fault(path="^/api/people$", query="offset=|next=", status=500)
for concurrently in ("", "CONCURRENTLY "):
    rc, out, err, _ = psql(f"REFRESH MATERIALIZED VIEW {concurrently}crm_snapshot", DB)
    _, n, _, _ = psql("SELECT count(*) FROM crm_snapshot", DB)
    c.check(f"failed REFRESH {concurrently}keeps the old 25 rows",
            rc != 0 and n == "25", f"{n} {err}")
admin("DELETE", "faults")
rc, out, err, _ = psql("REFRESH MATERIALIZED VIEW CONCURRENTLY crm_snapshot", DB)
_, n, _, _ = psql("SELECT count(*) FROM crm_snapshot", DB)
c.check("a later REFRESH CONCURRENTLY brings the 40 new rows", rc == 0 and n == "40", n + err)
psql("ALTER FOREIGN TABLE people OPTIONS (DROP page_size)", DB)

# === faults that break the contract: classified error, zero rows
reset()
for name, rule, state in [
    ("far more pages than total", {"bad_total": 3}, "08P01"),
    ("a list that is not an array", {"status": 200, "body":
        '{"_metadata": {"collection": "people", "next": null}, "people": {}}'}, "08P01"),
    ("HTML instead of JSON", {"html": True}, "08P01"),
    ("a body cut short", {"truncate": True}, "08P01"),
    ("a body over max_response_bytes", {"huge_body_bytes": 2000000}, "08P01"),
]:
    reset()
    psql("ALTER FOREIGN TABLE people OPTIONS (ADD page_size '5'); "
         "ALTER SERVER rollout OPTIONS (ADD max_response_bytes '1000000')", DB)
    fault(path="^/api/people$", **rule)
    rc, out, err, _ = psql("SELECT sqlstate_of('SELECT id FROM people')", DB)
    rc2, out2, err2, _ = psql("SELECT id FROM people", DB)
    c.check(f"{name}: {state} and no row", out == state and rc2 != 0 and out2 == "",
            f"{out} {out2[:40]} {err2}")
    psql("ALTER FOREIGN TABLE people OPTIONS (DROP page_size); "
         "ALTER SERVER rollout OPTIONS (DROP max_response_bytes)", DB)

# === pg_terminate_backend during a stall ends the backend at once
reset()
fault(path="^/api/people$", stall_s=20)
proc, pid = start_waiting_session("SELECT count(*) FROM people", DB, "rollout_terminate_me",
                                  lambda: log())
start = time.monotonic()
psql(f"SELECT pg_terminate_backend({pid})")
proc.communicate(timeout=30)
took = time.monotonic() - start
c.check("pg_terminate_backend during a stall acts within 0.5 s",
        proc.returncode != 0 and took < 0.5, f"{took:.3f}s")

# === without preloading: a per-backend limiter, and one NOTICE per backend
reset()
script = """
CREATE EXTENSION rollout_fdw;
CREATE SERVER r FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url '{api}', auth_url '{api}', client_id 'test-client');
CREATE USER MAPPING FOR CURRENT_USER SERVER r
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE p (id text) SERVER r OPTIONS (resource 'people');
SELECT count(*) FROM p;
SELECT count(*) FROM p;
SELECT bool_or(shared) FROM rollout_fdw_stats();
""".format(api=os.environ["ROLLOUT_EMU_BASE"] + "/api")
env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
    f.write(script)
os.chmod(f.name, 0o644)
p = subprocess.run(["pg_virtualenv", "-t", "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1",
                    "-f", f.name], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                   env=env, timeout=180)
os.unlink(f.name)
notices = p.stderr.count("is not in shared_preload_libraries")
c.check("not preloaded: works, says so once per backend, counters not shared",
        p.returncode == 0 and notices == 1 and "f" in p.stdout.splitlines(),
        f"rc {p.returncode} notices {notices} {p.stdout[-80:]} {p.stderr[:600]}")

# === postmaster death ends a backend's wait (a cluster of its own, killed)
def postmaster_death_exit_seconds():
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                            text=True).stdout.strip()
    work = tempfile.mkdtemp()
    os.chmod(work, 0o777)
    port = str(20000 + os.getpid() % 10000)
    as_pg = lambda cmd: subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", cmd],
                                       capture_output=True, text=True, timeout=120)
    as_pg(f"{bindir}/initdb -D {work}/data -A trust -U postgres")
    as_pg(f"{bindir}/pg_ctl -D {work}/data -w -l {work}/log -o "
          f"\"-p {port} -k {work} -c listen_addresses=''\" start")
    conn = ["psql", "-X", "-At", "-h", work, "-p", port, "-U", "postgres", "-d", "postgres"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    api = os.environ["ROLLOUT_EMU_BASE"] + "/api"
    subprocess.run(conn, input=f"""CREATE EXTENSION rollout_fdw;
CREATE SERVER r FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url '{api}', auth_url '{api}', client_id 'test-client');
CREATE USER MAPPING FOR CURRENT_USER SERVER r
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE p (id text) SERVER r OPTIONS (resource 'people');""",
                   capture_output=True, text=True, env=env, timeout=60)
    waiting = subprocess.Popen(conn + ["-c", "SELECT count(*) FROM p"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    pid = None
    for _ in range(100):
        out = subprocess.run(conn + ["-c", "SELECT pid FROM pg_stat_activity "
                                     "WHERE query = 'SELECT count(*) FROM p'"],
                             capture_output=True, text=True, env=env).stdout.strip()
        if out and log():
            pid = int(out.splitlines()[0])
            break
        time.sleep(0.05)
    time.sleep(0.3)
    postmaster = int(open(f"{work}/data/postmaster.pid").readline())
    os.kill(postmaster, 9)
    start = time.monotonic()
    gone = None
    while time.monotonic() - start < 5:
        try:
            with open(f"/proc/{pid}/stat") as f:
                exited = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (FileNotFoundError, TypeError):
            exited = True
        if exited:            # a zombie has exited; its reaper is the init process
            gone = time.monotonic() - start
            break
        time.sleep(0.01)
    waiting.kill()
    subprocess.run(["pkill", "-9", "-f", f"{work}/data"], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    return pid, gone


reset()
fault(path="^/api/people$", stall_s=20)
pid, gone = postmaster_death_exit_seconds()
c.check("postmaster death ends a backend waiting on a stalled request within 1 s",
        pid is not None and gone is not None and gone < 1.0, f"pid {pid} gone after {gone}")
if gone is not None:
    print(f"       backend exited {gone * 1000:.0f} ms after the postmaster was killed")
reset()

# === memory stays flat over a 200,000-row scan
reset(people=200000)
psql("ALTER SERVER rollout OPTIONS (ADD rate_limit '0')", DB)
secs, line, grew = measured_query("SELECT count(*), sum(length(p::text)) > 0 FROM people p", DB,
                                  warmup="SELECT count(*) FROM people WHERE id = '12'")
c.check("200,000-row scan returns every row", line == "200000|t", line)
c.check("backend memory grows less than 16 MB over 200,000 rows", grew < 16384, f"{grew} kB")
print(f"       200,000 rows in {secs:.1f} s, backend anonymous RSS grew {grew} kB at peak")
reset()

psql(f"DROP DATABASE {DB}")
c.finish()
