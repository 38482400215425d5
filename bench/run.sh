#!/usr/bin/env bash
# Run one benchmark script in a throwaway cluster with the emulator:
#   bash bench/run.sh bench/scan.py [args...]
# Builds and installs the extension first.  Figures are ratios against a
# baseline measured in the same run (the machine is shared and noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
make -s >/dev/null && make -s install >/dev/null
script="$1"; shift
exec pg_virtualenv -t -o shared_preload_libraries=rollout_fdw bash -c '
  source test/emulator_env.sh || exit 1
  PYTHONPATH=test python3 "$@"
' bench "$script" "$@"
