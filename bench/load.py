"""Load: 8 sessions of mixed reads and inserts against the emulator.

  bash bench/run.sh bench/load.py [--sessions 8] [--seconds 60] [--rps 50]

The emulator limits the tenant to --rps requests/s (429 + Retry-After
beyond); the server's rate_limit is the same, shared by every backend
(rollout_fdw is preloaded by bench/run.sh).  Each session runs, as fast as
it can, a mix: 40% full scans of people, 30% lookups by id, 10% joins with
a local table, 20% INSERTs.  Reports statements run, errors, 429s that
reached SQL (goal 0), the share of requests the API answered 429, and each
backend's anonymous RSS at start and end."""

import argparse
import random
import subprocess
import threading
import time

from lib import admin, log, make_db, psql, psql_script, reset, rss_anon_kb

ap = argparse.ArgumentParser()
ap.add_argument("--sessions", type=int, default=8)
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--rps", type=float, default=50)
args = ap.parse_args()

DB = "rollout_load"
reset(people=150)
make_db(DB, f"rate_limit '{args.rps}', max_retries '8'")
psql_script("""CREATE TABLE deals (person_id text, amount numeric);
INSERT INTO deals SELECT (11 + g)::text, g FROM generate_series(0, 20) g;""", DB)
admin("POST", "rate_limit", {"rps": args.rps, "burst": args.rps, "retry_after": 1})

STATEMENTS = [
    (40, lambda r: "SELECT count(*) FROM people"),
    (30, lambda r: f"SELECT first_name FROM people WHERE id = '{r.randint(11, 160)}'"),
    (10, lambda r: "SELECT count(*) FROM deals d JOIN people p ON p.id = d.person_id"),
    (20, lambda r: f"INSERT INTO people (first_name, last_name) VALUES ('Load', 'S{r.random()}')"),
]


def pick(r):
    x = r.uniform(0, 100)
    for weight, make in STATEMENTS:
        if x < weight:
            return make(r)
        x -= weight
    return STATEMENTS[0][1](r)


class Session(threading.Thread):
    def __init__(self, n):
        super().__init__()
        self.rand = random.Random(n)
        self.statements = 0
        self.errors = []
        self.proc = subprocess.Popen(["psql", "-X", "-At", "-d", DB],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.proc.stdin.write("SELECT pg_backend_pid();\n")
        self.pid = int(self.proc.stdout.readline())
        self.rss_start = None
        self.rss_end = None
        threading.Thread(target=self.read_errors, daemon=True).start()

    def read_errors(self):
        for line in self.proc.stderr:
            if "ERROR:" in line:
                self.errors.append(line.strip())

    def run(self):
        deadline = time.monotonic() + args.seconds
        first = True
        while time.monotonic() < deadline:
            self.proc.stdin.write(pick(self.rand) + ";\n\\echo __done__\n")
            while self.proc.stdout.readline().strip() != "__done__":
                pass
            self.statements += 1
            if first:
                self.rss_start = rss_anon_kb(self.pid)
                first = False
        self.rss_end = rss_anon_kb(self.pid)
        self.proc.stdin.close()
        self.proc.wait()


sessions = [Session(i) for i in range(args.sessions)]
start = time.monotonic()
for s in sessions:
    s.start()
for s in sessions:
    s.join()
secs = time.monotonic() - start

errors = [e for s in sessions for e in s.errors]
surfaced_429 = sum(1 for e in errors if "HTTP 429" in e)
requests = log()
refused = sum(1 for r in requests if r["status"] == 429)
statements = sum(s.statements for s in sessions)
print(f"{args.sessions} sessions, {secs:.0f} s, tenant limit {args.rps:g} req/s")
print(f"statements run:        {statements} ({statements / secs:.1f}/s)")
print(f"errors:                {len(errors)}")
print(f"429s surfaced to SQL:  {surfaced_429}")
print(f"API requests:          {len(requests)} ({len(requests) / secs:.1f}/s), "
      f"{refused} answered 429 ({refused / max(1, len(requests)):.2%}), retried")
for s in sessions:
    print(f"  backend {s.pid}: {s.statements} statements, anonymous RSS "
          f"{s.rss_start} kB at start, {s.rss_end} kB at end")
for e in errors[:5]:
    print("  error:", e)
psql(f"DROP DATABASE {DB}")
