#!/usr/bin/env bash
# Runs inside pg_virtualenv (PGHOST, PGPORT, PGUSER set): starts the emulator,
# runs the pg_regress suites, then each test/test_*.py; prints the totals.
# Arguments, if any, name the integration scripts to run (default: all).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test/out

export ROLLOUT_EMU_LOG=test/out/emulator.log
source test/emulator_env.sh || { cat test/out/emulator.log; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

echo "== pg_regress"
make -s installcheck >test/out/regress.log 2>&1
regress_rc=$?
grep -E "^test .*\.\.\." test/out/regress.log || true
ok=$(grep -cE "\.\.\. ok|^ok " test/out/regress.log)
bad=$(grep -cE "\.\.\. FAILED|^not ok |\.\.\. failed" test/out/regress.log)
if [ "$regress_rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; cat test/out/regress.log; fi
passed=$((passed + ok)); failed=$((failed + bad))
if [ -f regression.diffs ] && [ "$bad" -gt 0 ]; then
  echo "== regression.diffs"
  cat regression.diffs
fi

scripts=("$@")
[ ${#scripts[@]} -eq 0 ] && scripts=(test/emulator_selftest.py test/test_*.py)
for t in "${scripts[@]}"; do
  [ -f "$t" ] || continue
  echo "== $t"
  out=$(python3 "$t" 2>&1)
  rc=$?
  echo "$out"
  last=$(echo "$out" | grep -E "^[0-9]+ passed, [0-9]+ failed" | tail -1)
  if [ -n "$last" ]; then
    passed=$((passed + $(echo "$last" | cut -d' ' -f1)))
    failed=$((failed + $(echo "$last" | cut -d' ' -f3)))
  fi
  if [ "$rc" -ne 0 ] && { [ -z "$last" ] || [ "$(echo "$last" | cut -d' ' -f3)" -eq 0 ]; }; then
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
