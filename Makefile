# ddb-audit: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# The real, sanitized CloudTrail records that `make test-real` checks.
DDB_AUDIT_FIXTURES ?= ../shared/fixtures
# The local AWS the integration tests start: moto's server mode, pinned, in a
# project-local virtualenv.
PYTHON ?= python3
VENV := .venv
MOTO_VERSION := 5.2.5

.PHONY: demo test moto test-real lint fmt events build-cli clean

## demo: run the pipeline on the sample events and print who calls which table
demo: build-cli
	@echo "==> ddb-audit analyze: the sample CloudTrail file (plain and gzip) and the same records as a CloudWatch Logs batch"
	@echo "    (each eventID counts once, so the two deliveries are not double counted)"
	./target/debug/ddb-audit analyze events/cloudtrail events/logs-ingest
	@echo
	@echo "==> the same rows as JSON Lines, for scripts (first two rows)"
	./target/debug/ddb-audit analyze --format json events/cloudtrail 2>/dev/null | head -n 2

## test: every test (unit and integration; the integration tests start moto from .venv)
test: moto
	MOTO_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) test --workspace

## moto: install moto[server]==$(MOTO_VERSION) into .venv, unless it is there already
moto:
	@$(VENV)/bin/python -c 'import moto.server, importlib.metadata as m; assert m.version("moto") == "$(MOTO_VERSION)"' 2>/dev/null || { \
	  echo "==> installing moto[server]==$(MOTO_VERSION) into $(VENV)"; \
	  { $(VENV)/bin/python -c 'import sys' 2>/dev/null || $(PYTHON) -m venv --clear $(VENV); } && \
	  $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)' && \
	  $(VENV)/bin/python -c 'import moto.server'; }

## test-real: analyze the real records in $(DDB_AUDIT_FIXTURES) and check every row
test-real: build-cli
	@test -d "$(DDB_AUDIT_FIXTURES)" || { echo "no fixtures folder at $(DDB_AUDIT_FIXTURES) (set DDB_AUDIT_FIXTURES)"; exit 1; }
	./target/debug/ddb-audit analyze --format json "$(DDB_AUDIT_FIXTURES)" > target/real-rows.jsonl
	python3 tests/real/check_rows.py tests/real/expected-rows.jsonl target/real-rows.jsonl

## lint: what CI checks besides the tests
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## events: regenerate the gzip and CloudWatch Logs sample events from events/cloudtrail/records.json
events:
	python3 events/generate.py

build-cli:
	$(CARGO) build -p ddb-audit-cli

clean:
	$(CARGO) clean
