#!/usr/bin/env bash
# `make up`: start PostgreSQL and Kafka (unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS point at running
# ones), migrate every service, load the demo county, run every service. Ctrl-C stops what it started.
# Running it twice is safe: migrations and the demo loader only add what is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
mkdir -p .local/logs
infra=()
pids=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for svc in "${infra[@]}"; do scripts/"$svc".sh stop || true; done
  echo "stopped."
}
trap stop_all INT TERM EXIT
# start a data store; stop it on exit only if this script started it (leave one already running alone)
start_infra() {
  local out
  out="$(scripts/"$1".sh start)"; echo "$out"
  [[ "$out" == *"already running"* ]] || infra+=("$1")
}

if [ -z "${DATABASE_URL:-}" ]; then
  start_infra pg
  pg_base="postgresql+asyncpg://postgres@127.0.0.1:${PGPORT:-55432}"
else
  pg_base="${DATABASE_URL%/*}"
fi
if [ -z "${REDIS_URL:-}" ]; then
  start_infra redis
  export REDIS_URL="redis://127.0.0.1:${REDIS_PORT:-56379}/0"
fi
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  start_infra kafka
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:${KAFKA_PORT:-59092}"
fi

# Development token signing (the gateway issue replaces this): services trust .local/auth/jwks.json
"$py" -m shared.devtokens init .local/auth >/dev/null
export AUTH_JWKS_FILE="$root/.local/auth/jwks.json"
# ...and the gateway's keys, fetched from its JWKS endpoint (rotation included)
export AUTH_JWKS_URL="http://127.0.0.1:8000/.well-known/jwks.json"
ADMIN_PASSWORD="${ADMIN_PASSWORD:-yigongti-admin}"

# service name, port
services=("gateway 8000" "registry 8001" "referral 8002" "billing 8003")
for entry in "${services[@]}"; do
  read -r name port <<<"$entry"
  export DATABASE_URL="$pg_base/$name"
  echo "== $name: migrate"
  "$py" -m "services.$name" migrate
done

DATABASE_URL="$pg_base/gateway" "$py" -m services.gateway create-user --username admin \
  --password "$ADMIN_PASSWORD" --role commission_admin

start=$(date +%s%N)
DATABASE_URL="$pg_base/registry" "$py" -m services.registry load-demo
echo "   (demo load step took $(( ($(date +%s%N) - start) / 1000000 )) ms)"

for entry in "${services[@]}"; do
  read -r name port <<<"$entry"
  DATABASE_URL="$pg_base/$name" "$py" -m "services.$name" serve --host 127.0.0.1 --port "$port" \
    >".local/logs/$name.log" 2>&1 &
  pids+=($!)
done

for entry in "${services[@]}"; do
  read -r name port <<<"$entry"
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    echo "   $name ready: http://127.0.0.1:$port/docs   (logs: .local/logs/$name.log)"
  else
    echo "   $name did not become ready; see .local/logs/$name.log" >&2
  fi
done
cat <<MSG

Yigongti is up.
  Gateway        http://127.0.0.1:8000/docs   (one API for everything; log in: POST /oauth/token
                 grant_type=password username=admin password=$ADMIN_PASSWORD)
  Registry API   http://127.0.0.1:8001/docs
  Referral API   http://127.0.0.1:8002/docs   (Bearer token: python -m shared.devtokens mint .local/auth --role ...)
  Billing API    http://127.0.0.1:8003/docs   (insurance officer: --role insurance_officer; HIS: --role his_system)
  Tokens         TOKEN=\$(.venv/bin/python -m shared.devtokens mint .local/auth --role commission_admin)
  e.g.           curl -H "Authorization: Bearer \$TOKEN" 'http://127.0.0.1:8001/v1/coverage/counties/411081'
                 .venv/bin/python scripts/demo_referral.py   # a referral up and back home, end to end
                 .venv/bin/python scripts/demo_billing.py    # a quarter of the insurance year, via the gateway
  PostgreSQL     ${pg_base}
  Kafka          ${KAFKA_BOOTSTRAP_SERVERS}
Press Ctrl-C to stop everything this started.
MSG
wait
