"""Limits that protect the whole tenant and the cluster from one server's
options or one hostile answer: a rate_limit that is not a number, the rule
for servers sharing a client id with different rate_limit values, a
Retry-After pause capped for the others and refused at once when it outlasts
statement_timeout, Retry-After arithmetic that saturates, a 2 MB response
header, and the shared counter slots recycled past 128 servers."""

import os
import subprocess
import tempfile
import time

from lib import API, Checker, fault, make_db, psql, psql_script, reset, server_log_text

DB = "rollout_limits"
c = Checker()
reset()
make_db(DB, "retry_base_ms '10', retry_max_ms '40', max_retries '1'")
TAG = str(os.getpid())

# A second emulator of our own: tenants (client ids) no other test uses, so
# that the pauses and rates set here slow nobody else.
work = tempfile.mkdtemp()
port_file = os.path.join(work, "port")
emu = subprocess.Popen(["python3", os.path.join(os.path.dirname(__file__), "emulator.py"),
                        "--port", "0", "--port-file", port_file, "--quiet",
                        "--client", f"pause-{TAG}:pause-secret",
                        "--client", f"rule-{TAG}:rule-secret",
                        "--client", f"rule2-{TAG}:rule-secret",
                        "--client", f"huge0-{TAG}:huge-secret",
                        "--client", f"huge1-{TAG}:huge-secret"])
for _ in range(100):
    if os.path.exists(port_file) and open(port_file).read().strip():
        break
    time.sleep(0.1)
EMU2 = f"http://127.0.0.1:{open(port_file).read().strip()}"
API2 = EMU2 + "/api"


def fault2(**rule):
    import json
    import urllib.request
    req = urllib.request.Request(EMU2 + "/_admin/faults/add", data=json.dumps(rule).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()


def add_server(name, client, secret, options="", api=API2):
    opts = f"api_url '{api}', auth_url '{api}', client_id '{client}'"
    if options:
        opts += ", " + options
    rc, out, err, _ = psql_script(f"""
CREATE SERVER {name} FOREIGN DATA WRAPPER rollout_fdw OPTIONS ({opts});
CREATE USER MAPPING FOR CURRENT_USER SERVER {name}
  OPTIONS (client_secret '{secret}', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE {name}_people (id text) SERVER {name} OPTIONS (resource 'people');
""", DB)
    if rc != 0:
        raise RuntimeError(err)



# === item 3: a rate_limit that is not a number never poisons the tenant
# (the validator may refuse it; if it does, the tenant is safe too)
add_server("nan", f"nan-{TAG}", "wrong-secret")
add_server("sane", f"nan-{TAG}", "wrong-secret", "rate_limit '50'")
accepted = {}
for value in ("NaN", "inf", "1e-300", "-1"):
    rc, _, _, _ = psql(f"ALTER SERVER nan OPTIONS (ADD rate_limit '{value}')", DB)
    accepted[value] = rc == 0
    if rc == 0:
        psql("SET statement_timeout = '2s'; SELECT count(*) FROM nan_people", DB)
        rc2, out, err, secs = psql("SET statement_timeout = '5s'; "
                                   "SELECT count(*) FROM sane_people", DB)
        c.check(f"after a server with rate_limit '{value}', another server of the tenant "
                f"gets its answer at once", "HTTP 401" in err and secs < 2,
                f"{err} {secs:.2f}s")
        psql("ALTER SERVER nan OPTIONS (DROP rate_limit)", DB)
print(f"       accepted by the validator: {accepted}")

# === item 3: servers of one client id with different rate_limit values:
# the bucket refills at the lowest rate among the servers that were answered
# in the last 60 s
add_server("slow", f"rule-{TAG}", "rule-secret", "rate_limit '2'")
add_server("fast", f"rule-{TAG}", "rule-secret", "rate_limit '50'")
psql("SELECT count(*) FROM slow_people WHERE id = '11'", DB)
rc, out, err, secs = psql("SELECT count(*) FROM fast_people WHERE id IN "
                          "('11','12','13','14','15','16','17','18')", DB)
c.check("a server with rate_limit 50 obeys the tenant's lowest rate (2/s) "
        "while a server that uses it is active", rc == 0 and out == "8" and secs >= 2.0,
        f"{out} {err} {secs:.2f}s")
add_server("intruder", f"rule2-{TAG}", "wrong-secret", "rate_limit '0.1'")
add_server("owner", f"rule2-{TAG}", "rule-secret", "rate_limit '50'")
psql("SELECT count(*) FROM intruder_people", DB)
rc, out, err, secs = psql("SELECT count(*) FROM owner_people WHERE id IN "
                          "('11','12','13','14','15','16','17','18')", DB)
c.check("a server the API refuses (401) does not set the tenant's rate",
        rc == 0 and out == "8" and secs < 1.5, f"{out} {err} {secs:.2f}s")

# === item 4: Retry-After 3000 s on one server: the others of the tenant are
# paused at most 60 s, and a pause past statement_timeout fails at once
add_server("p1", f"pause-{TAG}", "pause-secret", "retry_max_ms '3600000', max_retries '0'")
add_server("p2", f"pause-{TAG}", "pause-secret")
fault2(path="^/api/people$", status=429, times=1, headers={"Retry-After": "3000"})
rc, out, err, secs = psql("SELECT count(*) FROM p1_people", DB)
c.check("the 429 itself is reported", rc != 0 and "HTTP 429" in err, err)
rc, out, err, secs = psql("SET statement_timeout = '5s'; SELECT sqlstate_of("
                          "'SELECT count(*) FROM p2_people')", DB)
rc2, out2, err2, secs2 = psql("SET statement_timeout = '5s'; SELECT count(*) FROM p2_people",
                              DB)
c.check("another server of the tenant, paused past its statement_timeout, fails at once "
        "with 53400", out.endswith("53400") and secs < 1.5, f"{out} {err} {secs:.2f}s")
import re
m = re.search(r"(\d+) s", err2)
c.check("the shared pause is at most 60 s", m is not None and int(m.group(1)) <= 60, err2)

# === Retry-After arithmetic saturates (item 1's audit) and never shows a
# negative backoff (item 20); on a tenant of its own (a 429 pauses it 60 s)
for i, value in enumerate(("9223372036854775807", "4611686018427387")):
    add_server(f"huge{i}", f"huge{i}-{TAG}", "huge-secret", "max_retries '1'")
    fault2(path="^/api/people$", status=429, times=1, headers={"Retry-After": value})
    rc, out, err, secs = psql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                              f"SELECT count(*) FROM huge{i}_people", DB)
    c.check(f"Retry-After {value}: no negative backoff, the 429 at once",
            "Backoff: -" not in out and secs < 3 and
            (rc != 0 and "HTTP 429" in err), f"{out[-200:]} {err} {secs:.2f}s")
for value, lo, hi in (("-1", 0, 1.5), ("Wed, 21 Oct 2015 07:28:00 GMT", 0, 1.5)):
    reset()
    fault(path="^/api/people$", status=429, times=1, headers={"Retry-After": value})
    rc, out, err, secs = psql("SELECT count(*) FROM people", DB)
    c.check(f"Retry-After {value!r}: retried, rows", rc == 0 and out == "25" and
            lo <= secs < hi, f"{out} {err} {secs:.2f}s")
reset()
future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3))
fault(path="^/api/people$", status=429, times=1, headers={"Retry-After": future})
rc, out, err, secs = psql("SELECT count(*) FROM people", DB)
c.check("Retry-After as an HTTP-date 3 s ahead: waited, rows",
        rc == 0 and out == "25" and 1.0 <= secs < 6, f"{out} {err} {secs:.2f}s")

# === item 20: a 2 MB response header is a broken response, not "out of memory"
reset()
fault(path="^/api/people$", status=200, body="{}", headers={"X-Huge": "a" * 2000000})
rc, out, err, _ = psql("SELECT sqlstate_of('SELECT count(*) FROM people')", DB)
rc2, out2, err2, _ = psql("SELECT count(*) FROM people", DB)
c.check("a 2 MB header: 08P01, says the header is too large",
        out == "08P01" and "header" in err2.lower() and "memory" not in err2.lower(),
        f"{out} {err2}")
reset()

# === item 19: more servers than counter slots: recycled, counted, logged once
log_before = len(server_log_text())
N = 140
script = "".join(f"""
CREATE SERVER many{i} FOREIGN DATA WRAPPER rollout_fdw OPTIONS (api_url '{API}',
  auth_url '{API}', client_id 'test-client', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER many{i}
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE many{i}_people (id text) SERVER many{i} OPTIONS (resource 'people');
""" for i in range(N))
rc, out, err, _ = psql_script(script, DB)
rc, out, err, _ = psql_script("".join(f"SELECT count(*) FROM many{i}_people WHERE id = '11';\n"
                                      for i in range(N)), DB, timeout=300)
c.check(f"{N} servers answered", rc == 0 and out.count("1") >= N, err)
_, out, err, _ = psql(f"SELECT requests FROM rollout_fdw_stats() WHERE "
                      f"database = current_database() AND server = 'many{N - 1}'", DB)
c.check("the 140th server has its counters", out == "1", out + err)
_, out, err, _ = psql("SELECT coalesce(sum(requests), 0) FROM rollout_fdw_stats() WHERE "
                      "(database = current_database() AND server LIKE 'many%') "
                      "OR server = '(other)'", DB)
c.check("no request lost: the recycled servers' counts are in the (other) row",
        out.isdigit() and int(out) >= N, out + err)
time.sleep(0.5)
logged = server_log_text()[log_before:].count("counter slots")
c.check("LOG once when slots are recycled", logged == 1, str(logged))

emu.terminate()
emu.wait()
psql(f"DROP DATABASE {DB}")
c.finish()
