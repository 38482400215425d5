"""Planner and paging benchmarks.

  bash bench/run.sh bench/planner.py [--people 20000] [--latency-ms 100] [--rps 50]

(a) A full scan of --people people (page_size 100) with --latency-ms per
    request and a tenant limit of --rps requests/s (the emulator answers 429
    beyond it; the server's rate_limit is the same), with scan_concurrency 1
    with default options, with scan_concurrency 1, and with default options
    while the CRM creates and deletes people during the scan.  Each wall
    time is reported as a ratio to the rate-limit bound, pages / rps
    seconds (goal: <= 1.5 with default options), and the rows are checked:
    none missing of those that existed for the whole scan, none twice.
(c) Requests issued by typical statements, counted in the emulator's log:
    a lookup by id, a 20-row join with a local table, LIMIT 5, a tags
    filter."""

import argparse
import math

from lib import admin, log, make_db, psql, psql_script, reset

ap = argparse.ArgumentParser()
ap.add_argument("--people", type=int, default=20000)
ap.add_argument("--latency-ms", type=int, default=100)
ap.add_argument("--rps", type=float, default=50)
args = ap.parse_args()

DB = "rollout_bench_planner"
pages = math.ceil(args.people / 100)
bound = pages / args.rps

print(f"(a) full scan of {args.people} people: {pages} pages, {args.latency_ms} ms latency, "
      f"{args.rps:g} req/s: rate-limit bound {bound:.1f} s")


def ids_of(rows):
    return rows.split("\n") if rows else []


for label, options, churn in [
        ("default options", "", None),
        ("scan_concurrency 1", "scan_concurrency '1'", None),
        ("default options, CRM edited during the scan (every 5th page request: "
         "2 people created, 2 deleted)", "", {"every": 5, "create": 2, "delete": 2, "seed": 1})]:
    reset(people=args.people)
    admin("POST", "latency", {"ms": args.latency_ms})
    admin("POST", "rate_limit", {"rps": args.rps, "burst": args.rps, "retry_after": 1})
    make_db(DB, options)
    before = {str(p["id"]) for p in admin("GET", "people")["people"]}
    if churn:
        admin("POST", "paging", {"churn": churn})
    rc, out, err, secs = psql("SELECT id FROM people", DB, timeout=900)
    assert rc == 0, err
    got = ids_of(out)
    after = {str(p["id"]) for p in admin("GET", "people")["people"]}
    created = set(admin("GET", "paging")["churned"]["created"])
    throughout = before & after
    missing = len(throughout - set(got))
    twice = len(got) - len(set(got))
    invented = len(set(got) - before - created)
    refused = sum(1 for r in log() if r["status"] == 429)
    requests = sum(1 for r in log() if r["path"] == "/api/people")
    print(f"    {label}: {secs:6.2f} s = {secs / bound:.2f} x bound; {requests} requests, "
          f"{refused} answered 429; {len(got)} rows: {missing} missing, {twice} twice, "
          f"{invented} never existed")
    psql(f"DROP DATABASE {DB}")

print("(c) requests issued (25-person CRM, page_size 100)")
reset()
make_db(DB, "rate_limit '0'")
psql_script("""CREATE TABLE app_accounts (person_id text);
INSERT INTO app_accounts SELECT (10 + g)::text FROM generate_series(1, 20) g;
ANALYZE app_accounts;""", DB)
for name, sql in [
    ("lookup by id", "SELECT first_name FROM people WHERE id = '12'"),
    ("20-row join", "SELECT count(*) FROM app_accounts a JOIN people p ON p.id = a.person_id"),
    ("LIMIT 5", "SELECT id FROM people LIMIT 5"),
    ("tags filter", "SELECT count(*) FROM people WHERE 'buyer' = ANY (tags)"),
    ("full scan", "SELECT count(*) FROM people"),
]:
    admin("DELETE", "log")
    rc, out, err, _ = psql(sql, DB)
    assert rc == 0, err
    reqs = [r for r in log() if r["path"].startswith("/api/people")]
    shown = sorted({r["path"] + ("?" + r["query"] if r["query"] else "") for r in reqs})
    print(f"    {name:<13} {len(reqs):>3} requests  e.g. {shown[0]}")
psql(f"DROP DATABASE {DB}")
