#!/usr/bin/env bash
# The test command.  On a fresh Debian 12 machine, as root:
#   bash test/run_tests.sh
# Installs what is missing, builds with -Wall -Wextra -Werror, installs the
# extension, then in a throwaway cluster (pg_virtualenv) with the emulator
# running: the pg_regress suites and the integration scripts of test/.
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

exec pg_virtualenv -t \
  -o "shared_preload_libraries=pg_cron,rollout_fdw" \
  -o "cron.database_name=postgres" \
  -o "log_min_messages=warning" \
  bash test/in_cluster.sh "$@"
