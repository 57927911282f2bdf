#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests and prints its URL (the only line on stdout).
# Idempotent: when it is already running, only the URL is printed. `start-test-postgres.sh stop` stops it.
# Settings: TEST_POSTGRES_PORT (default: a free port, chosen at start), TEST_POSTGRES_DIR (default
# .data/test-postgres, git-ignored). A running server is found by its data folder, so checkouts never share one.
# The server trusts every local connection and runs with fsync off: it is for tests only.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${TEST_POSTGRES_PORT:-}"
DATA_DIR="${TEST_POSTGRES_DIR:-$PWD/.data/test-postgres}"
ACTION="${1:-start}"
url() { echo "postgres://postgres@127.0.0.1:$1/postgres"; }

log() { echo "start-test-postgres: $*" >&2; }

find_bin_dir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

install_postgres() {
  log "installing PostgreSQL server binaries with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1; then
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
  fi
}

# Postgres refuses to run as root; as root, run its binaries as the `postgres` user.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Where the data goes when the postgres user cannot write the project folder (see below).
FALLBACK_DATA_DIR="${TMPDIR:-/tmp}/cronofy-downgrade-test-postgres-$(printf '%s' "$DATA_DIR" | sha1sum | cut -c1-12)"

BIN_DIR="$(find_bin_dir || true)"
if [ "$ACTION" = stop ]; then
  stopped=""
  for dir in "$DATA_DIR" "$FALLBACK_DATA_DIR"; do
    if [ -n "$BIN_DIR" ] && [ -f "$dir/PG_VERSION" ] && as_postgres "$BIN_DIR/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_postgres "$BIN_DIR/pg_ctl" -D "$dir" -m fast -w stop >&2
      stopped=1
    fi
  done
  [ -n "$stopped" ] || log "not running"
  exit 0
fi
[ "$ACTION" = start ] || { log "usage: $0 [start|stop]"; exit 2; }

if [ -z "$BIN_DIR" ]; then
  install_postgres
  BIN_DIR="$(find_bin_dir)" || { log "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin after installing"; exit 1; }
fi

if [ "$(id -u)" -eq 0 ]; then
  id -u postgres >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh postgres
  mkdir -p "$DATA_DIR"
  chown postgres: "$DATA_DIR"
  if ! runuser -u postgres -- test -w "$DATA_DIR"; then
    # The project may live where the postgres user cannot reach it (e.g. under /root).
    DATA_DIR="$FALLBACK_DATA_DIR"
    log "the postgres user cannot write the project folder; using $DATA_DIR"
    mkdir -p "$DATA_DIR"
    chown postgres: "$DATA_DIR"
  fi
else
  mkdir -p "$DATA_DIR"
fi
chmod 700 "$DATA_DIR"

if as_postgres "$BIN_DIR/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1; then
  RUNNING_PORT="$(sed -n 4p "$DATA_DIR/postmaster.pid")"
  if [ -n "$PORT" ] && [ "$RUNNING_PORT" != "$PORT" ]; then
    log "the server in $DATA_DIR already runs on port $RUNNING_PORT; stop it first or set TEST_POSTGRES_DIR"
    exit 1
  fi
  url "$RUNNING_PORT"
  exit 0
fi

if [ -z "$PORT" ]; then
  # Outside the kernel's range for outgoing connections, which another connection could take before PostgreSQL binds it.
  PORT="$(node harness/freePorts.mjs 1)"
fi

if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
  as_postgres "$BIN_DIR/initdb" -D "$DATA_DIR" -U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync >/dev/null
fi

if "$BIN_DIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
  log "another server already listens on 127.0.0.1:$PORT; set TEST_POSTGRES_PORT to a free port"
  exit 1
fi

# No Unix socket (its default directory may not exist here); durability is pointless for throwaway test data.
as_postgres "$BIN_DIR/pg_ctl" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { log "PostgreSQL did not start; see $DATA_DIR/server.log"; tail -n 20 "$DATA_DIR/server.log" >&2 || true; exit 1; }

url "$PORT"
