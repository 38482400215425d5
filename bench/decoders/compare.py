"""Decoder comparison: the same work on the same page bodies, per library.

  bash bench/run.sh bench/decoders/compare.py [--people 20000] [--rounds 5]

Fetches the emulator's list pages of --people people (100 a page, as a
scan reads them) into bench/decoders/pages/, builds bench/decoders (its
Makefile; installs libsimdjson-dev and libyajl-dev when missing), and
measures, interleaved over --rounds rounds:

  - each candidate decoder (./decoders CANDIDATE REPS DIR): CPU ns per page
    doing what the extension does for a 7-column scan of people;
  - the baseline: the backend CPU (utime+stime from /proc/PID/stat) that
    PostgreSQL spends on SELECT count(*) FROM pages WHERE body::jsonb IS
    NOT NULL, the same bodies in a local table (uncompressed storage).

Prints medians: ns per page, MB/s, and the ratio to the jsonb cast; the
decoders' checksums of the extracted values must all be equal."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lib import make_db, psql, psql_script, reset  # noqa: E402
from pagefetch import fetch_pages  # noqa: E402
from session import Session  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CANDIDATES = ["pglex", "pgparse", "yajl", "simdjson", "simdjson_avx2", "jansson"]
LABELS = {
    "pglex": "PostgreSQL json_lex, token loop (as src/decode.c)",
    "pgparse": "PostgreSQL pg_parse_json + semantic actions",
    "yajl": "yajl 2.1 streaming callbacks",
    "simdjson": "simdjson 3.0.1 on-demand, portable build",
    "simdjson_avx2": "simdjson 3.0.1 on-demand, -march=haswell",
    "jansson": "jansson json_loadb full tree (old decoder)",
}

ap = argparse.ArgumentParser()
ap.add_argument("--people", type=int, default=20000)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--seconds", type=float, default=0.6, help="CPU time per measurement")
args = ap.parse_args()


def ensure_libraries():
    if os.path.exists("/usr/include/simdjson.h") and os.path.exists("/usr/include/yajl/yajl_parse.h"):
        return
    if os.geteuid() != 0:
        sys.exit("install libsimdjson-dev and libyajl-dev (apt-get install -y ...) as root")
    subprocess.run(["apt-get", "install", "-y", "libsimdjson-dev", "libyajl-dev"], check=True,
                   stdout=subprocess.DEVNULL)


ensure_libraries()
subprocess.run(["make", "-s", "-C", HERE], check=True)

reset(people=args.people)
bodies = fetch_pages()
pages_dir = os.path.join(HERE, "pages")
shutil.rmtree(pages_dir, ignore_errors=True)
os.makedirs(pages_dir)
for i, body in enumerate(bodies):
    with open(os.path.join(pages_dir, f"page_{i:04d}.json"), "wb") as f:
        f.write(body)
nbytes = sum(map(len, bodies))
print(f"{len(bodies)} pages, {nbytes / 1e6:.1f} MB, {nbytes / len(bodies) / 1e3:.0f} kB a page")

DB = "rollout_bench_decoders"
make_db(DB)
rc, _, err, _ = psql_script("""
CREATE TABLE pages (n int, body text);
ALTER TABLE pages ALTER body SET STORAGE EXTERNAL;
""", DB)
assert rc == 0, err
with open(os.path.join(pages_dir, "all.csv"), "w") as f:
    for i, body in enumerate(bodies):
        f.write(f"{i},\"{body.decode().replace(chr(34), chr(34) * 2)}\"\n")
rc, _, err, _ = psql(f"\\copy pages FROM '{pages_dir}/all.csv' CSV", DB)
assert rc == 0, err
os.unlink(os.path.join(pages_dir, "all.csv"))
rc, out, err, _ = psql("SELECT count(*), sum(octet_length(body)) FROM pages", DB)
assert out == f"{len(bodies)}|{nbytes}", (out, err)
psql(f"VACUUM ANALYZE pages", DB)

session = Session(DB)
CAST = "SELECT count(*) FROM pages WHERE body::jsonb IS NOT NULL"
session.query(CAST)                     # warm: table in shared buffers


def run_decoder(cand, reps):
    out = subprocess.run([os.path.join(HERE, "decoders"), cand, str(reps), pages_dir],
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[4]), out[6], int(out[3])


def cast_ns_per_page(reps):
    cpu = 0.0
    for _ in range(reps):
        secs, out = session.cpu(CAST)
        assert out == str(len(bodies)), out
        cpu += secs
    return cpu * 1e9 / (reps * len(bodies))


# calibrate repetitions so each measurement takes about --seconds of CPU
reps = {}
for cand in CANDIDATES:
    ns, _, _ = run_decoder(cand, 1)
    reps[cand] = max(1, round(args.seconds * 1e9 / (ns * len(bodies))))
cast_reps = max(1, round(args.seconds * 1e9 / (cast_ns_per_page(1) * len(bodies))))

results = {c: [] for c in CANDIDATES + ["jsonb"]}
ratios = {c: [] for c in CANDIDATES}
sums = {}
for r in range(args.rounds):
    order = CANDIDATES[r % len(CANDIDATES):] + CANDIDATES[:r % len(CANDIDATES)]
    base = cast_ns_per_page(cast_reps)
    results["jsonb"].append(base)
    for cand in order:
        ns, checksum, records = run_decoder(cand, reps[cand])
        assert records == args.people, (cand, records)
        sums.setdefault(cand, checksum)
        results[cand].append(ns)
    base2 = cast_ns_per_page(cast_reps)
    results["jsonb"].append(base2)
    for cand in order:
        ratios[cand].append(results[cand][-1] / ((base + base2) / 2))

assert len(set(sums.values())) == 1, sums
print(f"checksum of the extracted values, equal for all: {next(iter(sums.values()))}")
print(f"rounds: {args.rounds}, interleaved; medians (CPU time)\n")
mb = nbytes / len(bodies) / 1e6
base = statistics.median(results["jsonb"])
print(f"| candidate | µs/page | MB/s | ratio to ::jsonb |")
print(f"|---|---|---|---|")
for cand in CANDIDATES:
    ns = statistics.median(results[cand])
    print(f"| {LABELS[cand]} | {ns / 1e3:,.0f} | {mb / (ns / 1e9):,.0f} | "
          f"{statistics.median(ratios[cand]):.3f} |")
print(f"| baseline: body::jsonb in the backend | {base / 1e3:,.0f} | {mb / (base / 1e9):,.0f} | 1 |")
session.close()
psql(f"DROP DATABASE {DB}")
