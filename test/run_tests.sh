#!/usr/bin/env bash
# The test command.  On a fresh Debian 12 machine, as root:
#   bash test/run_tests.sh
# Installs what is missing, builds with -Wall -Wextra -Werror, installs the
# extension, then in a throwaway cluster (pg_virtualenv) with the emulator
# running: the pg_regress suites and the integration scripts of test/.
# Then the pg_regress suites on PostgreSQL 16, 17 and 18 (test/pg_versions.sh;
# ROLLOUT_SKIP_VERSIONS=1 skips them), and once more on 15 with every backend
# under valgrind (test/valgrind.sh; ROLLOUT_SKIP_VALGRIND=1 skips it).  With
# arguments (integration scripts to run), neither.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

fail_early() {
  echo "$1"
  echo "0 passed, 1 failed"
  exit 1
}

bash scripts/setup.sh || fail_early "setup failed"
make -s clean >/dev/null 2>&1
make -s PG_CFLAGS="-Wall -Wextra -Werror" >/dev/null || fail_early "build failed (warnings are errors)"
make -s install >/dev/null || fail_early "make install failed"

out=$(mktemp)
pg_virtualenv -t \
  -o "shared_preload_libraries=pg_cron,rollout_fdw" \
  -o "cron.database_name=postgres" \
  -o "cron.use_background_workers=on" \
  -o "max_worker_processes=16" \
  -o "log_min_messages=warning" \
  bash test/in_cluster.sh "$@" 2>&1 | tee "$out"
main_rc=${PIPESTATUS[0]}
totals=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$out" | tail -1)
passed=${totals%% passed*}
failed=$(echo "$totals" | sed -E 's/.* ([0-9]+) failed/\1/')
[ -n "$totals" ] || { passed=0; failed=1; }
[ "$main_rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1

# the pg_regress suites on PostgreSQL 16, 17 and 18 (test/pg_versions.sh)
if [ $# -eq 0 ] && [ "${ROLLOUT_SKIP_VERSIONS:-}" = "" ]; then
  echo "== the pg_regress suites on PostgreSQL 16, 17 and 18 (test/pg_versions.sh)"
  bash test/pg_versions.sh 2>&1 | tee "$out"
  pv_rc=${PIPESTATUS[0]}
  pv_totals=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$out" | tail -1)
  if [ -n "$pv_totals" ]; then
    passed=$((passed + ${pv_totals%% passed*}))
    failed=$((failed + $(echo "$pv_totals" | sed -E 's/.* ([0-9]+) failed/\1/')))
  fi
  if [ -z "$pv_totals" ] || { [ "$pv_rc" -ne 0 ] && [ "$(echo "$pv_totals" | sed -E 's/.* ([0-9]+) failed/\1/')" -eq 0 ]; }; then
    failed=$((failed + 1))
  fi
fi

# the pg_regress suites again, every backend under valgrind
if [ $# -eq 0 ] && [ "${ROLLOUT_SKIP_VALGRIND:-}" = "" ]; then
  echo "== valgrind: the pg_regress suites under memcheck"
  bash test/valgrind.sh >"$out" 2>&1
  vg_rc=$?
  grep -E "^valgrind:|^fuzz subset|^== |^[0-9]+ passed" "$out" | tail -5
  [ "$vg_rc" -eq 0 ] || { cat "$out" | tail -100; }
  if [ "$vg_rc" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi
rm -f "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
