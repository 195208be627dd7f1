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
# The Lambda tooling, from PyPI into the same .venv.
CARGO_LAMBDA_VERSION := 1.9.2
# cfn-lint comes with moto; pinned here for `make lint-template`.
CFN_LINT_VERSION := 1.58.0
# The SAM CLI pins its own boto3, so it lives in a virtualenv of its own.
SAM_VENV := .venv-sam
SAM_VERSION := 1.170.0
SAM := SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CURDIR)/$(SAM_VENV)/bin/sam
# The functions' target: Graviton (arm64), as template.yaml says.
LAMBDA_TARGET := aarch64-unknown-linux-gnu
FUNCTIONS := logs-ingest s3-ingest notifier

.PHONY: demo demo-stop help test moto lambda-tools sam-tools lint-template build deploy test-real lint fmt events build-cli clean
# KEEP=1: `make demo KEEP=1` leaves moto running afterwards, for the query examples.
KEEP ?=

## demo: the whole pipeline on a local AWS emulator: the three functions through the
##       Lambda runtime interface, an S3 file and a CloudWatch Logs batch in,
##       rollups and notices out (demo/demo.py says each step as it goes).
##       KEEP=1 leaves moto running with the demo's data and prints the `export` lines
##       to query it (`ddb-audit callers`, ...); `make demo-stop` stops it
demo: moto lambda-tools
	@echo "==> building the CLI and the three functions (the first build takes a few minutes)"
	$(CARGO) build -p ddb-audit-cli
	@# One build per function, as `cargo lambda watch` runs each (`cargo run --bin`),
	@# so the watch finds them built.
	$(CARGO) build --bin s3-ingest
	$(CARGO) build --bin logs-ingest
	$(CARGO) build --bin notifier
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python demo/demo.py $(if $(KEEP),--keep)

## demo-stop: stop the moto server a `make demo KEEP=1` left running
demo-stop:
	@if [ -s target/demo/moto.pid ]; then \
	  pid=$$(cat target/demo/moto.pid); \
	  if kill -- -$$pid 2>/dev/null; then echo "stopped moto (process group $$pid)"; \
	  else echo "moto (process group $$pid) was not running"; fi; \
	  rm -f target/demo/moto.pid; \
	else echo "no moto left running by make demo KEEP=1 (target/demo/moto.pid is absent)"; fi

## help: this list
help:
	@MOTO_VERSION='$(MOTO_VERSION)' CARGO_LAMBDA_VERSION='$(CARGO_LAMBDA_VERSION)' \
	  SAM_VERSION='$(SAM_VERSION)' SAM_VENV='$(SAM_VENV)' DDB_AUDIT_FIXTURES='$(DDB_AUDIT_FIXTURES)' \
	  awk '!/^##/ { described = 0; next } \
	       { text = substr($$0, 3); sub(/^ +/, "", text) } \
	       /^## [a-z][a-z-]*:/ { name = text; sub(/:.*/, "", name); sub(/^[^:]*: */, "", text); described = 1 } \
	       !/^## [a-z][a-z-]*:/ { if (!described) next; name = "" } \
	       { while (match(text, /[$$][(][A-Z_]+[)]/)) { v = substr(text, RSTART + 2, RLENGTH - 3); \
	           text = substr(text, 1, RSTART - 1) ENVIRON[v] substr(text, RSTART + RLENGTH) } \
	         printf "  %-14s %s\n", name, text }' \
	  $(firstword $(MAKEFILE_LIST))

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

## lambda-tools: install cargo-lambda==$(CARGO_LAMBDA_VERSION) (it brings zig, for arm64 builds) into .venv
lambda-tools: moto
	@$(VENV)/bin/cargo-lambda lambda --version 2>/dev/null | grep -q '^cargo-lambda $(CARGO_LAMBDA_VERSION) ' || { \
	  echo "==> installing cargo-lambda==$(CARGO_LAMBDA_VERSION) into $(VENV)"; \
	  $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'cargo-lambda==$(CARGO_LAMBDA_VERSION)'; }

## sam-tools: install the SAM CLI ($(SAM_VERSION)) into $(SAM_VENV)
sam-tools:
	@$(SAM_VENV)/bin/sam --version 2>/dev/null | grep -q 'version $(SAM_VERSION)$$' || { \
	  echo "==> installing aws-sam-cli==$(SAM_VERSION) into $(SAM_VENV)"; \
	  { $(SAM_VENV)/bin/python -c 'import sys' 2>/dev/null || $(PYTHON) -m venv --clear $(SAM_VENV); } && \
	  $(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'aws-sam-cli==$(SAM_VERSION)'; }

## lint-template: cfn-lint, our own least-privilege and encryption rules, and sam validate --lint
lint-template: moto sam-tools
	@$(VENV)/bin/cfn-lint --version | grep -q ' $(CFN_LINT_VERSION)$$' || \
	  $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'cfn-lint==$(CFN_LINT_VERSION)'
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/python tests/template/check_template.py template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint --template-file template.yaml

## build: the three functions for Lambda (arm64, release), zipped: target/lambda/<function>/bootstrap.zip
build: lambda-tools
	@rustup target list --installed | grep -qx '$(LAMBDA_TARGET)' || rustup target add $(LAMBDA_TARGET)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 --output-format zip $(addprefix --bin ,$(FUNCTIONS))
	@ls -l $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip)

## deploy: sam build && sam deploy --guided (asks for the stack's parameters; see README "Deploying")
deploy: lambda-tools sam-tools
	@rustup target list --installed | grep -qx '$(LAMBDA_TARGET)' || rustup target add $(LAMBDA_TARGET)
	$(SAM) build
	$(SAM) deploy --guided

## test-real: analyze the real records in $(DDB_AUDIT_FIXTURES) and check every row
test-real: build-cli
	@test -d "$(DDB_AUDIT_FIXTURES)" || { echo "no fixtures folder at $(DDB_AUDIT_FIXTURES) (set DDB_AUDIT_FIXTURES)"; exit 1; }
	./target/debug/ddb-audit analyze --format json "$(DDB_AUDIT_FIXTURES)" > target/real-rows.jsonl
	python3 tests/real/check_rows.py tests/real/expected-rows.jsonl target/real-rows.jsonl

## lint: what CI checks besides the tests
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fmt: format the code (cargo fmt --all)
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

## build-cli: the ddb-audit command, built to target/debug/ddb-audit
build-cli:
	$(CARGO) build -p ddb-audit-cli

## clean: cargo clean
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
