# Source this to start the Rollout emulator on a free port for the current
# shell: it exports ROLLOUT_EMU_BASE (http://127.0.0.1:PORT) and
# ROLLOUT_TEST_URL ($ROLLOUT_EMU_BASE/api), and stops the emulator when the
# shell exits.  Its output goes to $ROLLOUT_EMU_LOG (default /dev/null).
# (A sourced file sees the caller's arguments, so none are passed on.)
# shellcheck shell=bash
rollout_emu_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rollout_emu_port_file=$(mktemp)
python3 "$rollout_emu_dir/emulator.py" --port 0 --port-file "$rollout_emu_port_file" \
  --client slow-client:test-secret \
  --quiet >"${ROLLOUT_EMU_LOG:-/dev/null}" 2>&1 &
rollout_emu_pid=$!
trap 'kill $rollout_emu_pid 2>/dev/null; wait $rollout_emu_pid 2>/dev/null; rm -f "$rollout_emu_port_file"' EXIT
for _ in $(seq 100); do [ -s "$rollout_emu_port_file" ] && break; sleep 0.1; done
if [ ! -s "$rollout_emu_port_file" ]; then
  echo "the emulator did not start" >&2
  return 1 2>/dev/null || exit 1
fi
export ROLLOUT_EMU_BASE="http://127.0.0.1:$(cat "$rollout_emu_port_file")"
export ROLLOUT_TEST_URL="$ROLLOUT_EMU_BASE/api"
