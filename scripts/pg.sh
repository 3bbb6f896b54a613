#!/usr/bin/env bash
# A throwaway PostgreSQL cluster under .local/pg, run as the `postgres` system user
# (initdb refuses root). Usage: scripts/pg.sh start|stop|status
# STATE_DIR (default .local) holds its data: the fault-injection suite runs a second cluster beside it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
PGPORT="${PGPORT:-25432}"
state="${STATE_DIR:-$root/.local}"
dir="$state/pg"
data="$dir/data"

find_bin() {
  local b
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$b" ] || [ ! -x "$b/initdb" ]; then
    echo "PostgreSQL server binaries not found; installing the Debian package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
    b=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$b"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    bin=$(find_bin)
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    mkdir -p "$dir/run"
    [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
    chmod 755 "$state" "$dir"
    if [ ! -s "$data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$dir/run'
max_connections = 300
shared_buffers = 256MB
fsync = on
timezone = 'UTC'
CONF
    fi
    # a cluster left running on another port (an older checkout used 55432, inside the ephemeral range)
    if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 \
        && [ "$(sed -n 4p "$data/postmaster.pid" 2>/dev/null)" != "$PGPORT" ]; then
      echo "postgresql is running on another port; restarting it on $PGPORT"
      as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      echo "postgresql already running on 127.0.0.1:$PGPORT"
    else
      as_pg "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -o "-p $PGPORT" -w -t 60 start >/dev/null
      echo "postgresql started on 127.0.0.1:$PGPORT"
    fi
    ;;
  stop)
    bin=$(find_bin)
    [ -s "$data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  status)
    bin=$(find_bin)
    as_pg "$bin/pg_ctl" -D "$data" status
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
