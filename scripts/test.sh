#!/usr/bin/env bash
# `make test`: lint, type-check and run the whole suite against a real PostgreSQL and a real Kafka
# broker. Starts them (and stops them afterwards) unless TEST_PG_URL / KAFKA_BOOTSTRAP_SERVERS point
# at running ones.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
py=.venv/bin/python
started=()
faults="" fuzz=""
cleanup() {
  # an interrupted run: the background runs unwind on SIGTERM (tests/conftest.py) and stop
  # what they started
  for job in $faults $fuzz; do
    if kill -0 "$job" 2>/dev/null; then kill -TERM "$job"; wait "$job" || true; fi
  done
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
# The whole suite in three processes on this 2-core machine, since much of it waits (on outages, Kafka,
# timeouts):
# - tests/faults brings its own PostgreSQL, Kafka and Redis;
# - tests/fuzz runs the platform's web processes on databases, ports and a Redis db of its own, and
#   publishes nothing to Kafka;
# - the main run takes the rest.
mkdir -p .local
$py -m pytest -q -p no:cacheprovider tests/faults >.local/faults-test.log 2>&1 &
faults=$!
TEST_DB_SUFFIX="${TEST_DB_SUFFIX:-}_fz" TEST_PORT_OFFSET=$(( ${TEST_PORT_OFFSET:-0} + 500 )) \
  REDIS_URL="${REDIS_URL%/*}/1" $py -m pytest -q -p no:cacheprovider tests/fuzz >.local/fuzz-test.log 2>&1 &
fuzz=$!
code=0
$py -m pytest --ignore=tests/faults --ignore=tests/fuzz || code=$?
fzcode=0
wait "$fuzz" || fzcode=$?
echo "== pytest tests/fuzz (ran alongside)"; cat .local/fuzz-test.log
fcode=0
wait "$faults" || fcode=$?
echo "== pytest tests/faults (ran alongside)"; cat .local/faults-test.log
faults="" fuzz=""
if [ "$code" -ne 0 ]; then exit "$code"; fi
if [ "$fzcode" -ne 0 ]; then exit "$fzcode"; fi
exit "$fcode"
