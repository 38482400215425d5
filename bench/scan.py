"""Full-scan throughput and backend memory.

  bash bench/run.sh bench/scan.py [--people 10000] [--runs 3]

Against the emulator at zero latency with the rate limiter off, it times
  (a) rollout_fdw: SELECT of every column of every person (IMPORTed table),
  (b) a baseline client written for this bench: Python standard library,
      the same requests (limit=100, following _metadata.next, one kept-alive
      connection, HS512 JWT) and the same JSON decoding, no SQL;
and reports rows/s of each and their ratio, median of --runs.  While (a)
runs, the backend's anonymous RSS is sampled every 20 ms from /proc: the
peak minus the value before the scan is the memory the scan used."""

import argparse
import http.client
import json
import statistics
import time
import urllib.parse

from lib import EMU, make_db, measured_query, psql, psql_script, reset
from pagefetch import jwt

ap = argparse.ArgumentParser()
ap.add_argument("--people", type=int, default=10000)
ap.add_argument("--runs", type=int, default=3)
args = ap.parse_args()

DB = "rollout_bench"
reset(people=args.people)
make_db(DB, "rate_limit '0'")
rc, out, err, _ = psql_script("""
DROP FOREIGN TABLE people;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO public;
""", DB)
assert rc == 0, err


def baseline_scan():
    """The same requests and JSON decoding as the FDW, in Python."""
    url = urllib.parse.urlparse(EMU)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"Authorization": "Bearer " + jwt(), "X-Rollout-Credential-Id": "cred-1",
               "Accept": "application/json"}
    rows, cursor = 0, None
    while True:
        path = "/api/people?limit=100" + (f"&next={urllib.parse.quote(cursor, safe='')}"
                                          if cursor else "")
        conn.request("GET", path, headers=headers)
        page = json.loads(conn.getresponse().read())
        for person in page["people"]:
            rows += 1
            for value in person.values():    # touch every field, as a row would
                str(value)
        cursor = page["_metadata"]["next"]
        if not cursor:
            return rows


SCAN = "SELECT count(*), sum(length(p::text)) > 0 FROM people p"


def fdw_scan():
    """One scan in a fresh session; returns (seconds, rows, rss growth KB)."""
    secs, line, grew = measured_query(SCAN, DB, warmup="SELECT count(*) FROM people WHERE id = '11'")
    return secs, int(line.split("|")[0]), grew


fdw_runs, base_runs, mem = [], [], []
for _ in range(args.runs):
    secs, rows, grew = fdw_scan()
    assert rows == args.people, rows
    fdw_runs.append(secs)
    mem.append(grew)
    start = time.monotonic()
    assert baseline_scan() == args.people
    base_runs.append(time.monotonic() - start)

fdw = statistics.median(fdw_runs)
base = statistics.median(base_runs)
print(f"people: {args.people}, runs: {args.runs} (medians)")
print(f"rollout_fdw scan:     {fdw:.3f} s  {args.people / fdw:,.0f} rows/s")
print(f"baseline Python scan: {base:.3f} s  {args.people / base:,.0f} rows/s")
print(f"ratio fdw/baseline rows/s: {base / fdw:.2f}")
print(f"backend peak anonymous RSS growth during the scan: {max(mem)} kB")
psql(f"DROP DATABASE {DB}")
