#!/usr/bin/env bash
# Logical backup of each service's database: one `pg_dump --format=custom` archive per service in a
# dated directory, with a MANIFEST (server, pg_dump, Alembic revision, snapshot time) and SHA256SUMS.
# Restore one of them with scripts/restore.sh. README: "Backup and restore".
#
#   scripts/backup.sh                      # gateway, registry, referral, billing
#   scripts/backup.sh billing              # or only the ones named
#   BACKUP_DIR=/srv/backups scripts/backup.sh
#
# Where each database is (first match):  <SERVICE>_DATABASE_URL (e.g. BILLING_DATABASE_URL), the server
# of DATABASE_URL with the service's name as database (as scripts/up.sh does), or the local cluster of
# scripts/pg.sh: postgresql://postgres@127.0.0.1:$PGPORT/<service> (pg.sh's port by default). SQLAlchemy URLs
# (postgresql+asyncpg://…) are accepted; a password belongs in the URL or in ~/.pgpass, never prompted.
# Writes into $BACKUP_DIR/<UTC time>/ (default .local/backups); prints that directory last.
#
# This file is also sourced by scripts/restore.sh for the helpers above `main`.
set -euo pipefail

SERVICES=(gateway registry referral billing)

die() {
  echo "error: $*" >&2
  exit 1
}

# postgresql+asyncpg://… → postgresql://… (libpq knows no driver suffix)
libpq_url() {
  sed -E 's#^postgres(ql)?\+[A-Za-z0-9_]+://#postgresql://#' <<<"$1"
}

# the URL with its password hidden, for messages
redact() {
  sed -E 's#(://[^:/@]+):.*@#\1:***@#' <<<"$1"
}

# the same server, another database: with_database URL NAME
with_database() {
  local url="$1" base query
  base="${url%%\?*}"
  query="${url#"$base"}"
  echo "${base%/*}/$2$query"
}

# the database name of a URL
database_of() {
  local base="${1%%\?*}"
  echo "${base##*/}"
}

# the port scripts/pg.sh starts the local cluster on (its default, read from it: one place to change)
local_port() {
  local here port
  here="$(dirname "${BASH_SOURCE[0]}")"
  port=$(sed -n -E 's/^PGPORT="\$\{PGPORT:-([0-9]+)\}"$/\1/p' "$here/pg.sh" 2>/dev/null || true)
  echo "${port:-55432}"
}

# the libpq URL of a service's database
service_url() {
  local svc="$1" var url
  var="$(tr '[:lower:]' '[:upper:]' <<<"$svc")_DATABASE_URL"
  if [ -n "${!var:-}" ]; then
    url="${!var}"
  elif [ -n "${DATABASE_URL:-}" ]; then
    url="$(with_database "$DATABASE_URL" "$svc")"
  else
    url="postgresql://postgres@127.0.0.1:${PGPORT:-$(local_port)}/$svc"
  fi
  libpq_url "$url"
}

# client binaries of the server's major version, found like scripts/pg.sh finds the server's
# (/usr/lib/postgresql/<major>/bin); PG_BIN overrides. pg_dump refuses a newer server, and an archive
# written by a newer pg_dump may not load with an older pg_restore: same major on both ends.
pg_bin() {
  local url="$1" any major b
  if [ -n "${PG_BIN:-}" ]; then
    echo "$PG_BIN"
    return
  fi
  any=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$any" ] && [ -x "$any/psql" ] ||
    die "no PostgreSQL client binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql-client, or set PG_BIN)"
  major=$("$any/psql" -X -A -t -w -v ON_ERROR_STOP=1 --dbname="$url" \
    -c "SELECT current_setting('server_version_num')::int / 10000") ||
    die "cannot reach $(redact "$url")"
  b="/usr/lib/postgresql/$major/bin"
  if [ -x "$b/pg_dump" ] && [ -x "$b/pg_restore" ]; then
    echo "$b"
    return
  fi
  # another major: only a newer client can dump (and restore) an older server
  for b in $(ls -d /usr/lib/postgresql/*/bin | sort -V); do
    if [ "$(basename "$(dirname "$b")")" -ge "$major" ] 2>/dev/null && [ -x "$b/pg_dump" ]; then
      echo "warning: server is PostgreSQL $major, using the client tools in $b" >&2
      echo "$b"
      return
    fi
  done
  die "the server is PostgreSQL $major and no pg_dump >= $major is installed (apt-get install postgresql-client-$major, or set PG_BIN)"
}

# psql with no ~/.psqlrc, unaligned, tuples only, never prompting, stopping at the first error
pg_query() {
  local bin="$1" url="$2"
  shift 2
  "$bin/psql" -X -A -t -w -q -v ON_ERROR_STOP=1 --dbname="$url" "$@"
}

main() {
  local root out_root stamp dir partial svc url bin revision started
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local services=("$@")
  [ ${#services[@]} -gt 0 ] || services=("${SERVICES[@]}")
  for svc in "${services[@]}"; do
    case " ${SERVICES[*]} " in *" $svc "*) ;; *) die "unknown service '$svc' (one of: ${SERVICES[*]})" ;; esac
  done

  out_root="${BACKUP_DIR:-$root/.local/backups}"
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  dir="$out_root/$stamp"
  partial="$dir.partial"
  [ ! -e "$dir" ] || die "$dir already exists"
  mkdir -p "$out_root"
  # a backup is complete or absent: it is written beside, then renamed
  rm -rf "$partial"
  mkdir -m 700 "$partial"
  trap "rm -rf $(printf %q "$partial")" EXIT
  umask 077 # the dumps hold personal data (sealed, but still) and the gateway's sealed key store

  {
    echo "# yigongti backup $stamp, written by scripts/backup.sh"
    echo "# service  database  server_version  pg_dump  alembic_revision  snapshot_after_utc"
  } >"$partial/MANIFEST"
  for svc in "${services[@]}"; do
    url="$(service_url "$svc")"
    bin="$(pg_bin "$url")"
    revision=$(pg_query "$bin" "$url" -c \
      "SELECT coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), 'none')" 2>/dev/null ||
      echo none)
    # pg_dump's snapshot is taken after this instant (restore.sh: where to reset a consumer group to)
    started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "== $svc: pg_dump $(redact "$url")" >&2
    # one consistent snapshot (REPEATABLE READ) of this database while the service keeps running;
    # --lock-wait-timeout: give up rather than queue behind (and block) a migration's exclusive lock
    "$bin/pg_dump" --format=custom --no-password --lock-wait-timeout=60s \
      --file="$partial/$svc.dump" --dbname="$url"
    # the archive is readable and lists what it holds
    "$bin/pg_restore" --list "$partial/$svc.dump" >/dev/null
    printf '%s  %s  %s  %s  %s  %s\n' "$svc" "$(database_of "$url")" \
      "$(pg_query "$bin" "$url" -c 'SHOW server_version' | cut -d' ' -f1)" \
      "$("$bin/pg_dump" --version | awk '{print $3}')" "$revision" "$started" >>"$partial/MANIFEST"
    echo "   $svc.dump $(du -h "$partial/$svc.dump" | cut -f1), alembic $revision" >&2
  done
  (cd "$partial" && sha256sum MANIFEST *.dump >SHA256SUMS)
  mv "$partial" "$dir"
  trap - EXIT
  echo "backup complete (check with: cd '$dir' && sha256sum -c SHA256SUMS)" >&2
  echo "$dir"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
