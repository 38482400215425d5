#!/usr/bin/env bash
# The pg_regress suites and a subset of the fuzz suite with every backend
# under valgrind (memcheck):
#   bash test/valgrind.sh
# Builds and installs the extension, starts a cluster of its own under
# valgrind and the emulator, runs `make installcheck` and 60 fuzz cases
# (hostile answers; their verdicts are the fuzz suite's business, timing
# under valgrind is not, nor the RSS bounds: valgrind's own memory counts in
# a backend's RSS), then reads the valgrind logs: any error whose
# stack passes through rollout_fdw or the libraries it drives (libcurl,
# jansson, libjwt) fails the run.  Slow (several minutes): the test command
# runs it last.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null || exit 1
make -s && make -s install >/dev/null || exit 1

bindir=$(pg_config --bindir)
work=$(mktemp -d /tmp/rollout_valgrind.XXXXXX)
chown postgres "$work"
port=$((20000 + RANDOM % 10000))
run_pg() { su postgres -s /bin/bash -c "$*"; }

run_pg "$bindir/initdb -D $work/data -A trust -U postgres >/dev/null"
cat >>"$work/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$work'
listen_addresses = ''
shared_preload_libraries = 'rollout_fdw'
max_connections = 10
CONF
run_pg "valgrind --quiet --trace-children=yes --error-limit=no \
  --suppressions=$PWD/test/valgrind.supp --num-callers=30 \
  --log-file=$work/vg.%p.log \
  $bindir/postgres -D $work/data >$work/server.log 2>&1 &"
for _ in $(seq 240); do
  run_pg "$bindir/pg_isready -h $work -p $port -q" && break
  sleep 1
done

cleanup() {
  run_pg "$bindir/pg_ctl -D $work/data -m fast -w -t 300 stop >/dev/null" 2>/dev/null
}
source test/emulator_env.sh || { cleanup; exit 1; }
trap 'cleanup; kill $rollout_emu_pid 2>/dev/null' EXIT
export PGHOST=$work PGPORT=$port PGUSER=postgres

make -s installcheck
regress=$?
ROLLOUT_FUZZ_UNDER_VALGRIND=1 ROLLOUT_FUZZ_CASES=60 timeout 900 python3 test/test_fuzz.py --seed 1 >"$work/fuzz.log" 2>&1
echo "fuzz subset under valgrind: $(grep -E '^[0-9]+ passed' "$work/fuzz.log" | tail -1)"
cleanup

# error reports that involve our code or the libraries it drives
bad=0
for log in "$work"/vg.*.log; do
  if grep -q "rollout_fdw\|libcurl\|libjansson\|libjwt" "$log" &&
     grep -qE "^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and destination)" "$log"; then
    echo "== $log"
    cat "$log"
    bad=$((bad + 1))
  fi
done
echo "valgrind: $(ls "$work"/vg.*.log | wc -l) processes checked, $bad with errors in rollout_fdw's code paths"
[ $regress -eq 0 ] || cat regression.diffs
echo "$(( regress == 0 && bad == 0 ? 1 : 0 )) passed, $(( regress != 0 || bad != 0 ? 1 : 0 )) failed"
[ $regress -eq 0 ] && [ $bad -eq 0 ]
