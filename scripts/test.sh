#!/usr/bin/env bash
# `make test`: lint, type-check and run the whole suite against a real PostgreSQL and a real Kafka
# broker. Starts them (and stops them afterwards) unless TEST_PG_URL / KAFKA_BOOTSTRAP_SERVERS point
# at running ones.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
py=.venv/bin/python
started=()
faults=""
cleanup() {
  # an interrupted run: the background fault suite unwinds on SIGTERM (tests/faults/conftest.py) and stops
  # its own servers
  if [ -n "$faults" ] && kill -0 "$faults" 2>/dev/null; then kill -TERM "$faults"; wait "$faults" || true; fi
  for svc in "${started[@]}"; do scripts/"$svc".sh stop || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${TEST_PG_URL:-}" ]; then
  scripts/pg.sh start
  started+=(pg)
  export TEST_PG_URL="postgresql+asyncpg://postgres@127.0.0.1:${PGPORT:-25432}"
fi
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  scripts/kafka.sh start
  started+=(kafka)
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:${KAFKA_PORT:-29092}"
fi

if [ -z "${REDIS_URL:-}" ]; then
  scripts/redis.sh start
  started+=(redis)
  export REDIS_URL="redis://127.0.0.1:${REDIS_PORT:-26379}/0"
fi

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy shared services tests
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"
if [ $# -gt 0 ]; then $py -m pytest "$@"; exit; fi
# The whole suite. The bounded fault-injection run (tests/faults) brings its own PostgreSQL, Kafka and Redis
# and mostly waits (outages, recovery), so it runs beside the rest instead of after it.
mkdir -p .local
$py -m pytest -q -p no:cacheprovider tests/faults >.local/faults-test.log 2>&1 &
faults=$!
code=0
$py -m pytest --ignore=tests/faults || code=$?
fcode=0
wait "$faults" || fcode=$?
echo "== pytest tests/faults (ran alongside)"; cat .local/faults-test.log
faults=""
if [ "$code" -ne 0 ]; then exit "$code"; fi
exit "$fcode"
