"""Transport behaviour that needs faults and timing: retries and their
limits, Retry-After, 409 warm-up, the token on 401, request timeouts, and
cancel / statement_timeout landing promptly during a stall or a backoff."""

import time

from lib import (Checker, admin, fault, make_db, psql, psql_script, requests_to, reset,
                 start_waiting_session)

DB = "rollout_transport"
c = Checker()
reset()
make_db(DB, "retry_base_ms '10', retry_max_ms '40', max_retries '3'")

# === transient 500s are retried, each retry is a request
reset()
fault(path="^/api/people$", status=500, times=3)
rc, out, err, _ = psql("SELECT count(*) FROM people", DB)
c.check("3 x 500 absorbed by 3 retries", rc == 0 and out == "25", err)
c.check("4 requests for 3 failures", len(requests_to("^/api/people$")) == 4)

# === max_retries bounds the retries
reset()
fault(path="^/api/people$", status=502)
rc, out, err, _ = psql("SELECT count(*) FROM people", DB)
c.check("persistent 502 fails", rc != 0 and "HTTP 502" in err, err)
c.check("1 + max_retries requests", len(requests_to("^/api/people$")) == 4)

# === network failures (a stalled connection closed by the server) are retried
reset()
fault(path="^/api/people$", truncate=True, times=2)
rc, out, err, _ = psql("SELECT count(*) FROM people", DB)
c.check("2 truncated bodies absorbed", rc == 0 and out == "25", err)

# === Retry-After is honoured
reset()
fault(path="^/api/people$", status=429, times=1, headers={"Retry-After": "1"})
rc, out, err, secs = psql("SELECT count(*) FROM people", DB)
c.check("429 with Retry-After 1 then success", rc == 0 and out == "25", err)
c.check("waited for Retry-After (>= 0.9 s)", secs >= 0.9, f"{secs:.2f}s")
t = [r["t"] for r in requests_to("^/api/people$")]
c.check("retry sent about 1 s after the 429",
        len(t) == 2 and 0.9 <= t[1] - t[0] <= 2.5, str(t))

# === 409 "not ready" is retried until the data is ready
reset()
psql("ALTER SERVER rollout OPTIONS (ADD not_ready_timeout_s '20')", DB)
admin("POST", "not_ready", {"seconds": 2})
rc, out, err, secs = psql("SELECT count(*) FROM people", DB)
c.check("409 warm-up of 2 s waited out", rc == 0 and out == "25", err)
c.check("warm-up took about 2 s", 1.5 <= secs <= 8, f"{secs:.2f}s")
psql("ALTER SERVER rollout OPTIONS (DROP not_ready_timeout_s)", DB)

# === a 401 gets one fresh token and one retry
reset()
fault(path="^/api/people$", status=401, times=1)
rc, out, err, _ = psql("SELECT count(*) FROM people", DB)
c.check("one 401 then success", rc == 0 and out == "25", err)
c.check("exactly one retry after 401", len(requests_to("^/api/people$")) == 2)

# === the token is minted once per backend and reused
reset()
rc, out, err, _ = psql_script("SELECT count(*) FROM people;\n" * 3, DB)
iats = {r.get("token_iat") for r in requests_to("^/api/people$")}
c.check("three scans in one session share one token",
        rc == 0 and len(iats) == 1 and None not in iats, str(iats))
lifetimes = {r["token_exp"] - r["token_iat"] for r in requests_to("^/api/people$")}
c.check("exp = iat + token_ttl_s (900)", lifetimes == {900}, str(lifetimes))

# === timeout_ms ends a stalled request
reset()
psql("ALTER SERVER rollout OPTIONS (ADD timeout_ms '500', SET max_retries '0')", DB)
fault(path="^/api/people$", stall_s=10)
rc, out, err, secs = psql("SELECT count(*) FROM people", DB)
c.check("stalled request times out", rc != 0 and "Timeout" in err, err)
c.check("after about timeout_ms", secs < 3, f"{secs:.2f}s")
psql("ALTER SERVER rollout OPTIONS (DROP timeout_ms, SET max_retries '3')", DB)


def overshoot(sql, timeout_s):
    rc, out, err, secs = psql(f"SET statement_timeout = '{int(timeout_s * 1000)}ms'; {sql}", DB)
    return rc, err, secs - timeout_s


# === statement_timeout lands promptly: during a stall, a backoff, a 409 wait
reset()
fault(path="^/api/people$", stall_s=20)
rc, err, over = overshoot("SELECT count(*) FROM people", 1.0)
c.check("statement_timeout during a stall",
        rc != 0 and "statement timeout" in err and over < 0.5, f"{err} overshoot {over:.3f}s")
print(f"       overshoot during a stall: {over * 1000:.0f} ms")

# a backoff longer than what statement_timeout leaves is not waited out:
# the classified error comes at once
reset()
fault(path="^/api/people$", status=503, headers={"Retry-After": "30"})
rc, out, err, secs = psql("SET statement_timeout = '5s'; SELECT count(*) FROM people", DB)
c.check("a Retry-After past statement_timeout fails at once, classified",
        rc != 0 and "HTTP 503" in err and secs < 1.0, f"{err} {secs:.2f}s")

# the rate limiter's wait: 5 pages at 0.5 request/s
reset()
# (a client id of its own: the slowest rate of a client id holds for every
# server of that client id for 60 s, README "One rate limit")
psql("ALTER SERVER rollout OPTIONS (ADD rate_limit '0.5', SET client_id 'slow-client'); "
     "ALTER FOREIGN TABLE people OPTIONS (ADD page_size '5')", DB)
rc, err, over = overshoot("SELECT count(*) FROM people", 1.0)
c.check("statement_timeout during a rate-limiter wait",
        rc != 0 and "statement timeout" in err and over < 0.5, f"{err} overshoot {over:.3f}s")
psql("ALTER SERVER rollout OPTIONS (DROP rate_limit, SET client_id 'test-client'); "
     "ALTER FOREIGN TABLE people OPTIONS (DROP page_size)", DB)

reset()
admin("POST", "not_ready", {"seconds": 60})
rc, err, over = overshoot("SELECT count(*) FROM people", 1.0)
c.check("statement_timeout during a 409 wait: ends by it, or by the 409 error just before",
        rc != 0 and ("statement timeout" in err or "HTTP 409" in err) and -0.2 < over < 0.5,
        f"{err} overshoot {over:.3f}s")
admin("POST", "not_ready", {"seconds": 0})

def cancel_latency(sql, setup):
    """Start sql in a session, cancel it once it waits; seconds to end."""
    reset()
    setup()
    proc, pid = start_waiting_session(sql, DB, "rollout_cancel_me",
                                      lambda: requests_to("^/api/people$"))
    _, wait, _, _ = psql(f"SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity "
                         f"WHERE pid = {pid}")
    start = time.monotonic()
    psql(f"SELECT pg_cancel_backend({pid})")
    out, err = proc.communicate(timeout=30)
    return proc.returncode, err, time.monotonic() - start, wait


# === pg_cancel_backend during a stall and during a backoff
rc, err, took, wait = cancel_latency("SELECT count(*) FROM people",
                                     lambda: fault(path="^/api/people$", stall_s=20))
c.check("pg_cancel_backend ends a stalled request",
        rc != 0 and "canceling statement" in err and took < 0.5, f"{err} took {took:.3f}s")
c.check("the wait shows as an extension wait event", wait == "Extension/Extension", wait)
rc, err, took, wait = cancel_latency(
    "SELECT count(*) FROM people",
    lambda: fault(path="^/api/people$", status=503, headers={"Retry-After": "20"}))
c.check("pg_cancel_backend ends a backoff",
        rc != 0 and "canceling statement" in err and took < 0.5, f"{err} took {took:.3f}s")

# === after a cancelled request the same backend's next request works
reset()
fault(path="^/api/people$", stall_s=5, times=1)
rc, out, err, _ = psql_script("\\set ON_ERROR_STOP 0\n"
                              "SET statement_timeout = '500ms';\n"
                              "SELECT count(*) FROM people;\n"
                              "RESET statement_timeout;\n"
                              "SELECT count(*) FROM people;\n", DB)
c.check("same session works after a cancelled request",
        "statement timeout" in err and out.endswith("25"), out + err)

psql(f"DROP DATABASE {DB}")
c.finish()
