#!/usr/bin/env bash
# Restore one service's database from a backup written by scripts/backup.sh, into an EMPTY database.
# README: "Backup and restore".
#
#   scripts/restore.sh billing .local/backups/20350101T020000Z            # the service's usual database
#   BILLING_DATABASE_URL=postgresql://postgres@127.0.0.1:25432/billing_drill \
#     scripts/restore.sh billing .local/backups/20350101T020000Z/billing.dump
#   scripts/restore.sh --to postgresql://…/billing_drill billing <backup>  # the same, as an option
#   scripts/restore.sh --force billing <backup>   # over a database that is not empty (see below)
#
# The target database is found like scripts/backup.sh finds it (<SERVICE>_DATABASE_URL, DATABASE_URL's
# server, or the local cluster) unless --to names it; it is created if missing. The dump's checksum
# is verified against SHA256SUMS first. `pg_restore --single-transaction --exit-on-error`: the restore
# is all or nothing. `--no-owner`: the objects belong to the role that restores, so run it as the
# service's own role. A database that holds any object is refused (exit 3), unless --force, which
# drops and recreates the objects of the dump in the same single transaction (objects the dump does
# not have stay; for a clean slate drop and create the database instead). Stop the service first.
set -euo pipefail
# shellcheck source=scripts/backup.sh
. "$(dirname "${BASH_SOURCE[0]}")/backup.sh"

usage() {
  echo "usage: $0 [--force] [--to DATABASE_URL] SERVICE BACKUP_DIR|DUMP_FILE" >&2
  exit 2
}

force=0
to=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --to)
      [ $# -ge 2 ] || usage
      to="$2"
      shift
      ;;
    --to=*) to="${1#--to=}" ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2 && usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ ${#args[@]} -eq 2 ] || usage
svc="${args[0]}"
src="${args[1]}"
case " ${SERVICES[*]} " in *" $svc "*) ;; *) die "unknown service '$svc' (one of: ${SERVICES[*]})" ;; esac

if [ -d "$src" ]; then
  dump="$src/$svc.dump"
else
  dump="$src"
fi
[ -f "$dump" ] || die "no dump at $dump"
dir="$(cd "$(dirname "$dump")" && pwd)"
name="$(basename "$dump")"

# the archive is what the backup wrote
if [ -f "$dir/SHA256SUMS" ]; then
  line="$(awk -v f="$name" '$2 == f' "$dir/SHA256SUMS")"
  [ -n "$line" ] || die "$name is not listed in $dir/SHA256SUMS"
  (cd "$dir" && sha256sum --check --quiet <<<"$line") || die "$dump does not match its checksum"
  echo "== checksum of $name verified" >&2
else
  echo "warning: no SHA256SUMS beside $dump; its integrity is not verified" >&2
fi

if [ -n "$to" ]; then
  url="$(libpq_url "$to")"
else
  url="$(service_url "$svc")"
fi
db="$(database_of "$url")"
# the database, or the server's maintenance database to create it from
if ! bin="$(pg_bin "$url" 2>/dev/null)"; then
  admin="$(with_database "$url" postgres)"
  bin="$(pg_bin "$admin")"
  exists=$(pg_query "$bin" "$admin" -v db="$db" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db';")
  [ "$exists" = 0 ] || die "cannot connect to $(redact "$url")"
  echo "== creating database $db" >&2
  pg_query "$bin" "$admin" -v db="$db" <<<'CREATE DATABASE :"db";'
fi
"$bin/pg_restore" --list "$dump" >/dev/null || die "$dump is not a readable pg_dump archive"

# anything a service's migrations make: relations, functions, types, schemas, extensions
objects=$(pg_query "$bin" "$url" <<'SQL'
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_')
     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_')
     + (SELECT count(*) FROM pg_namespace
         WHERE nspname NOT IN ('public', 'information_schema') AND nspname !~ '^pg_')
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql');
SQL
)
options=(--exit-on-error --single-transaction --no-owner --no-password)
if [ "$objects" != 0 ]; then
  if [ "$force" = 0 ]; then
    echo "error: database $db is not empty ($objects objects); refusing to restore over it." >&2
    echo "       Restore into an empty database, or pass --force to replace the dump's objects." >&2
    exit 3
  fi
  echo "warning: --force: replacing the objects of the dump in non-empty database $db" >&2
  options+=(--clean --if-exists)
fi

echo "== $svc: pg_restore $name into $(redact "$url")" >&2
# custom format: schema, then the data (COPY), then indexes, constraints and triggers. The billing
# ledger's append-only triggers and its deferred balance check are created after its rows are in,
# so they neither refuse nor re-check the restore; the balance is checked below instead.
"$bin/pg_restore" "${options[@]}" --dbname="$url" "$dump"
# pg_restore copies no planner statistics
pg_query "$bin" "$url" -c "ANALYZE"

# what the ledger's triggers guarantee for new rows, re-checked for the restored ones
if [ "$svc" = billing ]; then
  unbalanced=$(pg_query "$bin" "$url" -c \
    "SELECT count(*) FROM (SELECT journal_id FROM ledger_lines GROUP BY 1 HAVING sum(amount) <> 0) x")
  [ "$unbalanced" = 0 ] || die "$unbalanced restored journals do not balance"
  triggers=$(pg_query "$bin" "$url" -c "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname IN
    ('ledger_journal_balanced', 'journals_append_only', 'ledger_lines_append_only')")
  [ "$triggers" = 3 ] || die "the ledger's triggers are missing after the restore ($triggers of 3)"
  echo "   ledger: every journal balances; append-only and balance triggers in place" >&2
fi
revision=$(pg_query "$bin" "$url" -c \
  "SELECT coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), 'none')" 2>/dev/null ||
  echo none)
echo "restored $svc into $db (alembic $revision). Next: \`python -m services.$svc migrate\` if the code is" >&2
echo "newer, then start the service." >&2
if pending=$(pg_query "$bin" "$url" -c "SELECT count(*) FROM outbox WHERE published_at IS NULL" 2>/dev/null); then
  echo "Its relay publishes the $pending outbox rows unpublished at backup time (published ones stay so)." >&2
fi
snapshot=""
[ -f "$dir/MANIFEST" ] && snapshot="$(awk -v s="$svc" '$1 == s {print $6}' "$dir/MANIFEST")"
if [ "$svc" = billing ] || [ "$svc" = referral ]; then
  echo "Its consumer group's offsets are in Kafka, past this backup: stop the service and reset them to" >&2
  echo "well before ${snapshot:-the backup time} (more than the consumer lag then; kafka-consumer-groups.sh" >&2
  echo "--reset-offsets --to-datetime, or --to-earliest); the inbox skips what it had already applied." >&2
fi
