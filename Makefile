# Yigongti — the commands a developer and CI use. `make up` runs the platform, `make test` tests it.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test unit lint typecheck check infra-up infra-down bench bench-booking bench-gateway bench-billing bench-floor clean fuzz faults

# The venv installs exactly the locked versions (requirements-dev.lock, hashes checked), then the project
# itself without dependencies. `make lock` after changing a dependency in pyproject.toml.
$(STAMP): pyproject.toml requirements-dev.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# The lock files, made by uv from pyproject.toml for CPython 3.11 on Linux: requirements-dev.lock (the
# dependencies and the dev extra: make up, make test) and requirements.lock (the dependencies alone, at the
# same versions: the image). Versions already locked are kept unless pyproject.toml needs others;
# `make lock UPGRADE=1` moves everything to the newest versions pyproject.toml allows.
UV_VERSION := 0.13.9
LOCK_FLAGS = --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
  --custom-compile-command 'make lock' --quiet
.PHONY: lock
lock:
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q 'uv==$(UV_VERSION)'
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --no-emit-package yigongti $(LOCK_FLAGS) \
	  $(if $(UPGRADE),--upgrade) -o requirements-dev.lock
	$(VENV)/bin/uv pip compile pyproject.toml --constraint requirements-dev.lock $(LOCK_FLAGS) \
	  -o requirements.lock

venv: $(STAMP)

up: $(STAMP)
	scripts/up.sh

test: $(STAMP)
	scripts/test.sh

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy shared services tests

check: lint typecheck test

infra-up:
	scripts/pg.sh start
	scripts/kafka.sh start
	scripts/redis.sh start

infra-down:
	scripts/redis.sh stop
	scripts/kafka.sh stop
	scripts/pg.sh stop

clean: infra-down
	rm -rf .local

bench-booking: $(STAMP) infra-up
	$(PY) bench/booking_rush.py

bench-gateway: $(STAMP) infra-up
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "installing nginx (Debian package) for the baseline"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
	$(PY) bench/gateway_hop.py

bench-billing: $(STAMP) infra-up
	$(PY) bench/billing_settlement.py

bench-floor: $(STAMP) infra-up
	$(PY) bench/request_floor.py

bench: bench-booking bench-gateway bench-billing bench-floor

# The long OpenAPI fuzz (tests/fuzz): every operation through the gateway, FUZZ_EXAMPLES per operation and
# caller, a fresh seed each run (printed, so `make fuzz FUZZ_SEED=...` repeats it); prints the figures.
FUZZ_EXAMPLES ?= 200
FUZZ_SEED ?= $(shell date +%s)
FUZZ_SECONDS ?= 1800
fuzz: $(STAMP) infra-up
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/fuzz

# The fault-injection suite (tests/faults): the platform on its own PostgreSQL, Kafka and Redis under a load
# of referral chains while PostgreSQL, the broker and Redis are each stopped FAULT_OUTAGE seconds and the
# referral service is SIGKILLed; prints sent/acknowledged/lost/duplicated/recovery per fault. A shorter run
# is part of `make test`.
FAULT_OUTAGE ?= 10
faults: $(STAMP)
	$(PY) -m tests.faults.suite --outage $(FAULT_OUTAGE) --lead 10 --tail 20 --workers 4
