# ddb-audit: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# The real, sanitized CloudTrail records that `make test-real` checks.
DDB_AUDIT_FIXTURES ?= ../shared/fixtures

.PHONY: demo test test-real lint fmt events build-cli clean

## demo: run the pipeline on the sample events and print who calls which table
demo: build-cli
	@echo "==> ddb-audit analyze: the sample CloudTrail file (plain and gzip) and the same records as a CloudWatch Logs batch"
	@echo "    (each eventID counts once, so the two deliveries are not double counted)"
	./target/debug/ddb-audit analyze events/cloudtrail events/logs-ingest
	@echo
	@echo "==> the same rows as JSON Lines, for scripts (first two rows)"
	./target/debug/ddb-audit analyze --format json events/cloudtrail 2>/dev/null | head -n 2

## test: every test (unit and integration)
test:
	$(CARGO) test --workspace

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
