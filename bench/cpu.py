"""Backend CPU of a scan, as a ratio to PostgreSQL casting the same pages to jsonb.

  bash bench/run.sh bench/cpu.py [--people 20000] [--rounds 5] [--perf]

At zero latency with rate_limit '0', in one session (its backend's
utime+stime from /proc/PID/stat around each statement):
  - 7 columns: count() of id, first_name, last_name, emails, tags, created,
    average_price of the IMPORTed people table;
  - every column: count() of each of the imported table's columns;
  - the baseline: SELECT count(*) FROM pages WHERE body::jsonb IS NOT NULL,
    pages holding the identical bodies, fetched from the emulator in this
    run (limit=100, following _metadata.next) into a local table.
Rounds interleave the three; the ratios are medians of each round's ratio.
Goal (issue 10): 7 columns <= 0.35.  --perf then samples the backend
with perf during more 7-column scans and prints its top functions."""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import log, make_db, psql, psql_script, reset  # noqa: E402
from pagefetch import fetch_pages  # noqa: E402
from session import Session  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--people", type=int, default=20000)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--perf", action="store_true", help="profile the 7-column scan with perf")
ap.add_argument("--perf-scans", type=int, default=5)
args = ap.parse_args()

DB = "rollout_bench_cpu"
reset(people=args.people)
make_db(DB, "rate_limit '0'")
rc, out, err, _ = psql_script("""
DROP FOREIGN TABLE people;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO public;
CREATE TABLE pages (n int, body text);
ALTER TABLE pages ALTER body SET STORAGE EXTERNAL;
""", DB)
assert rc == 0, err

bodies = fetch_pages()
nbytes = sum(map(len, bodies))
with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
    for i, body in enumerate(bodies):
        f.write(f"{i},\"{body.decode().replace(chr(34), chr(34) * 2)}\"\n")
rc, _, err, _ = psql(f"\\copy pages FROM '{f.name}' CSV", DB)
os.unlink(f.name)
assert rc == 0, err
psql("VACUUM ANALYZE pages", DB)
print(f"{args.people} people: {len(bodies)} pages, {nbytes / 1e6:.1f} MB of JSON")

_, cols, _, _ = psql("SELECT string_agg(format('count(%I)', attname), ', ' ORDER BY attnum) "
                     "FROM pg_attribute WHERE attrelid = 'people'::regclass AND attnum > 0 "
                     "AND NOT attisdropped", DB)
ncols = cols.count("count(")
QUERIES = {
    "jsonb": "SELECT count(*) FROM pages WHERE body::jsonb IS NOT NULL",
    "7 columns": "SELECT count(id), count(first_name), count(last_name), count(emails), "
                 "count(tags), count(created), count(average_price) FROM people",
    f"all {ncols} columns": f"SELECT {cols} FROM people",
}

session = Session(DB)
session.query("SELECT count(*) FROM people WHERE id = '11'")   # token, library, caches
session.query(QUERIES["jsonb"])
before = len(log())
out = session.query(QUERIES["7 columns"])[0]
assert out.split("|")[0] == str(args.people), out
paths = [r["path"] for r in log()[before:]]
print(f"the scan's first requests: {paths[:2]} ... ({len(paths)} requests)")

cpu = {name: [] for name in QUERIES}
ratios = {name: [] for name in QUERIES if name != "jsonb"}
for r in range(args.rounds):
    names = list(QUERIES)
    names = names[r % 3:] + names[:r % 3]
    for name in names:
        secs, out = session.cpu(QUERIES[name])
        cpu[name].append(secs)
    for name in ratios:
        ratios[name].append(cpu[name][-1] / cpu["jsonb"][-1])

print(f"rounds: {args.rounds}, interleaved; backend CPU (utime+stime), medians")
base = statistics.median(cpu["jsonb"])
print(f"| statement | backend CPU | ratio to ::jsonb |")
print(f"|---|---|---|")
print(f"| baseline: {len(bodies)} bodies ::jsonb | {base:.3f} s | 1 |")
for name in ratios:
    print(f"| scan, {name} | {statistics.median(cpu[name]):.3f} s | "
          f"{statistics.median(ratios[name]):.2f} |")

secs, _ = session.cpu("SELECT sum(length(body)) FROM pages")
print(f"(of the baseline, reading the bodies alone: SELECT sum(length(body)) FROM pages: "
      f"{secs:.3f} s)")

if args.perf:
    data = os.path.join(tempfile.mkdtemp(), "perf.data")
    rec = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", data,
                            "-p", str(session.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time
    time.sleep(1)
    for _ in range(args.perf_scans):
        session.query(QUERIES["7 columns"])
    rec.send_signal(2)
    rec.wait()
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                             "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.4"],
                            capture_output=True, text=True).stdout
    print(f"\nperf, {args.perf_scans} scans of 7 columns: self time, top functions")
    print("\n".join(line.rstrip(" -") for line in report.splitlines()
                    if line.strip() and not line.startswith("#")))
    # inclusive time of the functions that say where the scan's CPU goes
    report = subprocess.run(["perf", "report", "-i", data, "--children", "--stdio",
                             "--sort", "symbol", "-g", "none", "--percent-limit", "0"],
                            capture_output=True, text=True).stdout
    incl = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith("%") and parts[2] in ("[.]", "[k]"):
            incl.setdefault(parts[3], (parts[0], parts[1]))
    print(f"\ninclusive (children) and self share of the backend's samples:")
    for name, what in [
            ("rolloutIterateForeignScan", "the scan"),
            ("rollout_decode_page", "decoding pages (src/decode.c)"),
            ("json_lex", "  PostgreSQL's JSON lexer"),
            ("select_pending.part.0", "  matching keys to columns"),
            ("decode", "  the token walk itself"),
            ("rollout_store_record", "building the row (convert.c)"),
            ("InputFunctionCall", "  type input functions"),
            ("jsonb_in", "    jsonb_in (emails: the slice parsed again)"),
            ("timestamptz_in", "    timestamptz_in (created)"),
            ("numeric_in", "    numeric_in"),
            ("pg_any_to_server", "  encoding conversion"),
            ("rollout_decode_elements", "  array elements (tags)"),
            ("rollout_api_run", "HTTP: request, libcurl, socket"),
            ("palloc", "palloc"),
            ("malloc", "malloc")]:
        if name in incl:
            print(f"    {incl[name][0]:>7} incl {incl[name][1]:>7} self  {name}: {what}")
    print(f"(perf data: {data})")

session.close()
psql(f"DROP DATABASE {DB}")
