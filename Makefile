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

## bench: the performance figures of README "Performance" (BENCH_STAGES=1 adds the per-stage criterion bench,
## BENCH_BIG=1 the peak memory on one 1 GiB file)
BENCH_CORPUS := target/bench-corpus
BENCH_BIG_CORPUS := target/bench-big
BENCH_STAGES ?=
BENCH_BIG ?=
.PHONY: bench
bench:
	@test -n "$$(ls $(BENCH_CORPUS)/*.json.gz 2>/dev/null)" || { \
	  echo "==> generating the benchmark corpus in $(BENCH_CORPUS)"; \
	  $(PYTHON) benches/gen_corpus.py $(BENCH_CORPUS) --records 100000 --files 4; }
	@if [ -n "$(BENCH_BIG)" ] && [ -z "$$(ls $(BENCH_BIG_CORPUS)/*.json.gz 2>/dev/null)" ]; then \
	  echo "==> generating one 1 GiB CloudTrail file in $(BENCH_BIG_CORPUS) (a few minutes)"; \
	  $(PYTHON) benches/gen_corpus.py $(BENCH_BIG_CORPUS) --records 730000 --files 1 --step 0.1; fi
	$(CARGO) build --profile bench -p ddb-audit-cli
	$(CARGO) build --profile bench -p ddb-audit-core --example decode_only
	$(PYTHON) benches/measure.py $(BENCH_CORPUS) target/release $(if $(BENCH_BIG),--big $(BENCH_BIG_CORPUS))
	@if [ -n "$(BENCH_STAGES)" ]; then $(CARGO) bench -p ddb-audit-core; \
	 else echo "(per-stage figures: make bench BENCH_STAGES=1, or cargo bench -p ddb-audit-core)"; fi

build-cli:
	$(CARGO) build -p ddb-audit-cli

clean:
	$(CARGO) clean

# Fuzzing: cargo-fuzz (libFuzzer). The fuzz crate (fuzz/) is outside the
# workspace; RUSTC_BOOTSTRAP lets the stable toolchain take the coverage flags
# cargo-fuzz passes. New corpus entries go to $(FUZZ_WORK), never into the
# committed seeds; the real fixtures are added as seeds at run time only.
FUZZ_SECONDS ?= 60
FUZZ_SANITIZER ?= none
# Longer inputs (the 72 KB sample file) slow libFuzzer down more than they help.
FUZZ_MAX_LEN ?= 4096
FUZZ_TARGETS := input_reader s3_notification partiql record
FUZZ_WORK := fuzz/target/corpus

.PHONY: fuzz
## fuzz: run each cargo-fuzz target for FUZZ_SECONDS (default 60) seconds; needs `cargo install cargo-fuzz`
fuzz:
	@command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz"; exit 1; }
	@rm -rf $(FUZZ_WORK)/fixtures && mkdir -p $(addprefix $(FUZZ_WORK)/fixtures/,$(FUZZ_TARGETS))
	@if [ -d "$(DDB_AUDIT_FIXTURES)" ]; then \
	  cp "$(DDB_AUDIT_FIXTURES)"/*.json $(FUZZ_WORK)/fixtures/input_reader/ && \
	  python3 fuzz/seed.py $(FUZZ_WORK)/fixtures "$(DDB_AUDIT_FIXTURES)"; \
	else echo "no fixtures folder at $(DDB_AUDIT_FIXTURES): fuzzing from the committed seeds only"; fi
	@failed=; for target in $(FUZZ_TARGETS); do \
	  echo "==> fuzzing $$target for $(FUZZ_SECONDS)s"; \
	  mkdir -p $(FUZZ_WORK)/$$target; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir fuzz --sanitizer $(FUZZ_SANITIZER) $$target \
	    $(FUZZ_WORK)/$$target fuzz/corpus/$$target $(FUZZ_WORK)/fixtures/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
	    || failed="$$failed $$target"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzzing found crashes in:$$failed (inputs in fuzz/artifacts/)"; exit 1; fi
