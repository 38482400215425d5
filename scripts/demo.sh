#!/usr/bin/env bash
# The demo.  On a fresh Debian 12 machine, as root:
#   bash scripts/demo.sh
# Installs what is missing, builds and installs rollout_fdw, starts a
# throwaway PostgreSQL cluster and the Rollout API emulator, then imports the
# CRM's people, joins them with a local table, schedules a pg_cron refresh of a
# materialized view of them, and creates (then deletes) a person.
#
# Against Rollout itself, set these first (the emulator is then not started):
#   ROLLOUT_CLIENT_ID  ROLLOUT_CLIENT_SECRET  ROLLOUT_USER_ID
#   [ROLLOUT_CREDENTIAL_ID]  [ROLLOUT_API_URL]  [ROLLOUT_AUTH_URL]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
make -s >/dev/null
make -s install >/dev/null

if [ -n "${ROLLOUT_CLIENT_ID:-}" ]; then
  : "${ROLLOUT_CLIENT_SECRET:?set ROLLOUT_CLIENT_SECRET too}"
  : "${ROLLOUT_USER_ID:?set ROLLOUT_USER_ID too}"
  export DEMO_API_URL="${ROLLOUT_API_URL:-https://crm.universal.rollout.com/api}"
  export DEMO_AUTH_URL="${ROLLOUT_AUTH_URL:-https://universal.rollout.com/api}"
  export DEMO_CLIENT_ID="$ROLLOUT_CLIENT_ID" DEMO_SECRET="$ROLLOUT_CLIENT_SECRET"
  export DEMO_USER_ID="$ROLLOUT_USER_ID" DEMO_CREDENTIAL_ID="${ROLLOUT_CREDENTIAL_ID:-}"
  echo "demo: against Rollout at $DEMO_API_URL"
else
  source test/emulator_env.sh
  export DEMO_API_URL="$ROLLOUT_TEST_URL"
  export DEMO_AUTH_URL="$DEMO_API_URL"
  export DEMO_CLIENT_ID=test-client DEMO_SECRET=test-secret DEMO_USER_ID=user-1
  export DEMO_CREDENTIAL_ID=""
  echo "demo: against the embedded Rollout emulator at $DEMO_API_URL"
fi

pg_virtualenv -t -o shared_preload_libraries=pg_cron,rollout_fdw \
  -o cron.database_name=postgres -o cron.use_background_workers=on \
  -o max_worker_processes=16 psql -X -q -v ON_ERROR_STOP=1 -f scripts/demo.sql
