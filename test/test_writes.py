"""Write behaviour that needs faults and timing: which failures a POST is
retried on (only those where the API cannot have acted), PUT and DELETE
retried like reads, a DELETE whose retry finds the record gone, and batches
of INSERTs under a rate limit creating every row exactly once; tags
applied by two sessions at once both kept (where SET tags = tags || ...
loses one)."""

import subprocess

from lib import Checker, admin, fault, log, make_db, psql, reset

DB = "rollout_writes"
c = Checker()
reset()
make_db(DB, "retry_base_ms '10', retry_max_ms '40', max_retries '3'")


def posts():
    return [r for r in log() if r["method"] == "POST" and r["path"] == "/api/people"]


def people_named(first):
    _, out, _, _ = psql(f"SELECT count(*) FROM people WHERE first_name = '{first}'", DB)
    return int(out or -1)


def insert(first, extra=""):
    return psql(f"INSERT INTO people (first_name, last_name) VALUES ('{first}', 'W') {extra}", DB)


# === a POST answered 500 is not retried, and the error says it may exist
reset()
fault(method="POST", path="^/api/people$", status=500, times=1)
rc, out, err, _ = insert("Five")
c.check("POST after 500 fails", rc != 0 and "HTTP 500" in err, err)
c.check("the error says the record may have been created",
        "may have been created" in err, err)
c.check("POST after 500 sent exactly once", len(posts()) == 1, str(len(posts())))

# === a POST answered 502 / 504 likewise
for status in (502, 504):
    reset()
    fault(method="POST", path="^/api/people$", status=status, times=1)
    rc, out, err, _ = insert(f"S{status}")
    c.check(f"POST after {status} sent exactly once", rc != 0 and len(posts()) == 1, err)

# === 429 and 409: the API did nothing, so the POST is retried, created once
reset()
fault(method="POST", path="^/api/people$", status=429, times=2, headers={"Retry-After": "0"})
rc, out, err, _ = insert("RateLimited", "RETURNING id")
c.check("POST after 429 retried and succeeds", rc == 0 and out != "", err)
c.check("three POSTs, one person", len(posts()) == 3 and people_named("RateLimited") == 1,
        f"{len(posts())} posts")

reset()
psql("ALTER SERVER rollout OPTIONS (ADD not_ready_timeout_s '20')", DB)
admin("POST", "not_ready", {"seconds": 1})
rc, out, err, _ = insert("NotReady")
c.check("POST during a 409 warm-up waits and creates once",
        rc == 0 and people_named("NotReady") == 1, err)
psql("ALTER SERVER rollout OPTIONS (DROP not_ready_timeout_s)", DB)

# === sent, then the answer broke: ambiguous, not retried
reset()
fault(method="POST", path="^/api/people$", truncate=True, times=1)
rc, out, err, _ = insert("Truncated")
c.check("POST whose answer was cut fails", rc != 0 and "may have been created" in err, err)
c.check("... sent once, and it was created once",
        len(posts()) == 1 and people_named("Truncated") == 1, str(len(posts())))

reset()
psql("ALTER SERVER rollout OPTIONS (ADD timeout_ms '500')", DB)
fault(method="POST", path="^/api/people$", stall_s=3, times=1)
rc, out, err, _ = insert("Stalled")
c.check("POST timing out after it was sent fails without retry",
        rc != 0 and "may have been created" in err and len(posts()) == 1, err)
psql("ALTER SERVER rollout OPTIONS (DROP timeout_ms)", DB)

# === a connection that never opened: retried, and the error says so
psql("""CREATE SERVER down FOREIGN DATA WRAPPER rollout_fdw OPTIONS (
          api_url 'http://127.0.0.1:1/api', auth_url 'http://127.0.0.1:1/api',
          client_id 'test-client', max_retries '2', retry_base_ms '1', retry_max_ms '2');
        CREATE USER MAPPING FOR CURRENT_USER SERVER down OPTIONS (
          client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
        CREATE FOREIGN TABLE down_people (id text, first_name text, last_name text)
          SERVER down OPTIONS (resource 'people');""", DB)
rc, out, err, _ = psql("INSERT INTO down_people (first_name, last_name) VALUES ('a', 'b')", DB)
c.check("POST on a refused connection is retried",
        rc != 0 and "Gave up after 2 retries" in err, err)

# === PUT and DELETE are retried like reads
reset()
fault(method="PUT", path="^/api/people/", status=503, times=2)
rc, out, err, _ = psql("UPDATE people SET last_name = 'Retried' WHERE id = '12'", DB)
puts = [r for r in log() if r["method"] == "PUT"]
c.check("PUT after two 503s succeeds", rc == 0 and out == "UPDATE 1" and len(puts) == 3,
        f"{out} {err} {len(puts)}")

reset()
fault(method="DELETE", path="^/api/people/", truncate=True, times=1)
rc, out, err, _ = psql("DELETE FROM people WHERE id = '13'", DB)
dels = [r for r in log() if r["method"] == "DELETE"]
c.check("DELETE retried after an ambiguous failure; its 404 counts as done",
        rc == 0 and out == "DELETE 1" and [d["status"] for d in dels] == [200, 404],
        f"{out} {err} {[d['status'] for d in dels]}")

# === a batch under the tenant's rate limit: every row created exactly once
reset()
admin("POST", "rate_limit", {"rps": 50, "burst": 10, "retry_after": 1})
admin("POST", "latency", {"ms": 20})
rc, out, err, secs = psql("""INSERT INTO people (first_name, last_name)
                             SELECT 'Batch', 'Row ' || g FROM generate_series(1, 200) g""", DB)
created = [r for r in posts() if r["status"] == 201]
refused = [r for r in posts() if r["status"] == 429]
_, distinct, _, _ = psql("SELECT count(DISTINCT last_name) FROM people WHERE first_name = 'Batch'", DB)
c.check("200-row batch succeeds", rc == 0 and out == "INSERT 0 200", err)
c.check("every row created exactly once", len(created) == 200 and distinct == "200",
        f"{len(created)} created, {distinct} distinct")
print(f"       batch of 200: {secs:.2f} s, {len(refused)} POSTs answered 429 and retried")

# === two sessions tagging one person at once.  Read-then-rewrite loses a
# === tag: both read the old tags before either writes (what makes this
# === test able to fail); rollout_fdw_apply_tags keeps both
def together(sqls):
    """Run each statement in its own session, all at once; their (rc, err)."""
    procs = [subprocess.Popen(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", DB,
                               "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for sql in sqls]
    return [(p.wait(), p.communicate()[1]) for p in procs]


def tags_of(person):
    _, out, _, _ = psql(f"SELECT tags FROM people WHERE id = '{person}'", DB)
    return out


reset()
admin("POST", "latency", {"ms": 1000})
results = together([f"UPDATE people SET tags = tags || '{{{tag}}}' WHERE id = '16'"
                    for tag in ("rewrite_a", "rewrite_b")])
rewritten = tags_of("16")
c.check("read-then-rewrite: the two sessions overlap and one tag is lost",
        all(rc == 0 for rc, _ in results) and
        ("rewrite_a" in rewritten) != ("rewrite_b" in rewritten), f"{results} {rewritten}")
results = together([f"SELECT rollout_fdw_apply_tags('people', '17', '{{{tag}}}')"
                    for tag in ("apply_a", "apply_b")])
applied = tags_of("17")
applies = [r for r in log() if r["method"] == "POST" and r["path"].endswith("/tags/apply")]
c.check("rollout_fdw_apply_tags from two sessions at once: both tags kept",
        all(rc == 0 for rc, _ in results) and "apply_a" in applied and "apply_b" in applied
        and len(applies) == 2, f"{results} {applied}")
results = together([f"SELECT rollout_fdw_remove_tags('people', '17', '{{{tag}}}')"
                    for tag in ("apply_a", "apply_b")])
c.check("... and removing them at once removes both",
        all(rc == 0 for rc, _ in results) and "apply_" not in tags_of("17"), tags_of("17"))

psql(f"DROP DATABASE {DB}")
c.finish()
