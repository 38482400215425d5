"""INSERT ... SELECT throughput under the tenant's rate limit.

  bash bench/run.sh bench/insert.py [--rows 200] [--latency-ms 100] [--rps 50]

The emulator answers every request after --latency-ms and limits the tenant
to --rps requests/s (429 + Retry-After beyond it); the server's rate_limit
is --rps too.  It times INSERT ... SELECT of --rows people with the default
batch_size (10: POSTs sent concurrently) and with batch_size 1 (one POST
after the other), and reports each wall time as a ratio to the rate-limit
bound, rows / rps seconds.  Goal: <= 1.5 at the default batch size."""

import argparse

from lib import admin, log, make_db, psql, reset

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=200)
ap.add_argument("--latency-ms", type=int, default=100)
ap.add_argument("--rps", type=float, default=50)
args = ap.parse_args()

DB = "rollout_bench_insert"
bound = args.rows / args.rps


def run(batch_size):
    reset()
    admin("POST", "latency", {"ms": args.latency_ms})
    admin("POST", "rate_limit", {"rps": args.rps, "burst": args.rps, "retry_after": 1})
    make_db(DB, f"rate_limit '{args.rps}', batch_size '{batch_size}'")
    rc, out, err, secs = psql(f"""INSERT INTO people (first_name, last_name)
                                  SELECT 'Bench', 'Row ' || g
                                  FROM generate_series(1, {args.rows}) g""", DB, timeout=600)
    assert rc == 0, err
    posts = [r for r in log() if r["method"] == "POST"]
    created = sum(1 for r in posts if r["status"] == 201)
    refused = sum(1 for r in posts if r["status"] == 429)
    assert created == args.rows, created
    psql(f"DROP DATABASE {DB}")
    return secs, refused


print(f"{args.rows} rows, {args.latency_ms} ms latency, {args.rps:g} req/s: "
      f"rate-limit bound {bound:.1f} s")
for batch_size in (10, 1):
    secs, refused = run(batch_size)
    print(f"batch_size {batch_size:>2}: {secs:6.2f} s  = {secs / bound:.2f} x bound  "
          f"({refused} answered 429)")
