#!/usr/bin/env bash
# Installs what rollout_fdw needs to build, test and run its demo on Debian 12,
# skipping what is already there.  Run as root.
set -euo pipefail

packages=(
  postgresql-15 postgresql-server-dev-15 postgresql-15-cron
  libcurl4-openssl-dev libjansson-dev libjwt-dev
  build-essential pkg-config curl python3 openssl valgrind
  debhelper
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian package starts a cluster of its own; tests and demo use
# throwaway clusters (pg_virtualenv), so it is not needed.
echo "setup: dependencies present"
