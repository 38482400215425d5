#!/usr/bin/env bash
# Runs its arguments (make installcheck's pg_regress) with the in-tree
# emulator started for them (test/emulator_env.sh), so that "make
# installcheck" alone, as packagers run it against a running server, needs
# nothing else.  The Makefile uses it only when ROLLOUT_TEST_URL is not set.
set -u
echo "installcheck: ROLLOUT_TEST_URL is not set: starting the in-tree emulator (test/emulator.py)"
source "$(dirname "${BASH_SOURCE[0]}")/emulator_env.sh" || exit 1
"$@"
