"""Many users in one statement: a join of the customers' table with the key columns.

  bash bench/run.sh bench/multiuser.py [--users 100] [--people 200] [--latency-ms 100]
                                       [--rps 50] [--no-baseline]

The emulator serves --users tenant users (tenant-user-<i>, each with one
credential tenant-cred-<i> holding --people people), answers every request
after --latency-ms and limits the tenant to --rps requests/s (429 +
Retry-After beyond); the server's rate_limit is --rps too.  A local table
customers(rollout_user, credential) holds the (user, credential) pairs; the
user mapping opts in to every user (user_id '*'); crm.people is imported
with key_columns 'true'.  It times

  SELECT count(*) FROM customers c JOIN crm.people p
    ON p.rollout_user_id = c.rollout_user AND p.rollout_credential_id = c.credential

and reports the wall time, the requests the emulator received (and the most
it served at once), the rate-limit bound (requests / rps), the ratio
time / bound (goal <= 1.5) and the distinct tokens the emulator saw (goal:
one per user).  For comparison, the same rows by
  WHERE rollout_user_id = ANY (ARRAY(SELECT rollout_user FROM customers))
(each user's credential discovered: GET /credentials too).  The baseline,
in the same run: the same data read user by user, one statement per
(user, credential) in one session.  A preflight first checks the plumbing
that needs no key columns: a mapping to tenant-user-1 alone reads its
--people people."""

import argparse

from lib import API, admin, log, psql, psql_script, reset

ap = argparse.ArgumentParser()
ap.add_argument("--users", type=int, default=100)
ap.add_argument("--people", type=int, default=200)
ap.add_argument("--latency-ms", type=int, default=100)
ap.add_argument("--rps", type=float, default=50)
ap.add_argument("--no-baseline", action="store_true")
args = ap.parse_args()

DB = "rollout_bench_multiuser"
CUSTOMERS = [(f"tenant-user-{i}", f"tenant-cred-{i}") for i in range(1, args.users + 1)]
JOIN = ("SELECT count(*) FROM customers c JOIN crm.people p "
        "ON p.rollout_user_id = c.rollout_user AND p.rollout_credential_id = c.credential")

ANY_USERS = ("SELECT count(*) FROM crm.people "
             "WHERE rollout_user_id = ANY (ARRAY(SELECT rollout_user FROM customers))")


def run_sql(script):
    rc, out, err, secs = psql_script(script, DB, timeout=1800)
    if rc != 0:
        raise SystemExit(f"failed: {err}")
    return out, secs


def setup():
    reset(tenants={"users": args.users, "people": args.people})
    admin("POST", "latency", {"ms": args.latency_ms})
    admin("POST", "rate_limit", {"rps": args.rps, "burst": args.rps, "retry_after": 1})
    psql(f"DROP DATABASE IF EXISTS {DB}")
    rc, _, err, _ = psql(f"CREATE DATABASE {DB}")
    assert rc == 0, err
    server = f"api_url '{API}', auth_url '{API}', client_id 'test-client', " \
             f"rate_limit '{args.rps:g}'"
    values = ", ".join(f"('{user}', '{cred}')" for user, cred in CUSTOMERS)
    run_sql(f"""
CREATE EXTENSION rollout_fdw;
CREATE SERVER one_user FOREIGN DATA WRAPPER rollout_fdw OPTIONS ({server});
CREATE USER MAPPING FOR CURRENT_USER SERVER one_user
  OPTIONS (client_secret 'test-secret', user_id 'tenant-user-1', credential_id 'tenant-cred-1');
CREATE SCHEMA one;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER one_user INTO one;
CREATE TABLE customers (rollout_user text, credential text);
INSERT INTO customers VALUES {values};
ANALYZE customers;
""")


def preflight():
    """Without key columns: one mapped user reads its own people, and they are its own."""
    out, _ = run_sql("SELECT count(*), count(*) FILTER (WHERE email_addresses[1] LIKE "
                     "'%@tenant1.example.com') FROM one.people")
    assert out == f"{args.people}|{args.people}", out
    print(f"preflight: a mapping to tenant-user-1 reads its {args.people} people")


def keyed_schema():
    run_sql(f"""
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw OPTIONS (api_url '{API}',
  auth_url '{API}', client_id 'test-client', rate_limit '{args.rps:g}');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id '*');
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO crm
  OPTIONS (key_columns 'true');
""")


def measured(script, expected):
    """Run script in one session after a log-clear; (seconds, requests, 429s, tokens)."""
    admin("DELETE", "log")
    out, secs = run_sql(script)
    total = sum(int(line) for line in out.splitlines() if line)
    assert total == expected, (total, expected)
    entries = log()
    refused = sum(1 for r in entries if r["status"] == 429)
    return secs, len(entries), refused, admin("GET", "tokens"), in_flight(entries)


def in_flight(entries):
    """The most requests the emulator was serving at once (its latency included)."""
    events = sorted([(r["t"], 1) for r in entries if r.get("t_done")]
                    + [(r["t_done"], -1) for r in entries if r.get("t_done")])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def report(name, secs, requests, refused, tokens, peak):
    bound = requests / args.rps if args.rps > 0 else 0
    print(f"{name}: {secs:.2f} s, {requests} requests ({refused} answered 429, "
          f"at most {peak} in flight), "
          f"bound {bound:.2f} s, ratio {secs / bound if bound else float('nan'):.2f}, "
          f"tokens {tokens['distinct_tokens']} (most for one user: "
          f"{max(tokens['by_sub'].values(), default=0)})")
    return secs


setup()
print(f"{args.users} users x {args.people} people, {args.latency_ms} ms latency, "
      f"{args.rps:g} req/s (emulator and rate_limit)")
preflight()
keyed_schema()
rows = args.users * args.people
join = report("one statement (join)", *measured(JOIN, rows))
report("one statement (= ANY of the users, credentials discovered)",
       *measured(ANY_USERS, rows))
if not args.no_baseline:
    per_user = "\n".join(f"SELECT count(*) FROM crm.people WHERE rollout_user_id = '{user}' "
                         f"AND rollout_credential_id = '{cred}';" for user, cred in CUSTOMERS)
    base = report("baseline (one statement per user)", *measured(per_user, rows))
    print(f"join / baseline time: {join / base:.2f}")
admin("POST", "latency", {"ms": 0})
admin("POST", "rate_limit", {"rps": 0})
psql(f"DROP DATABASE {DB}")
