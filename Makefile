# Yiqian 医签: the two front doors are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Build output lives outside the clone so CI and later runs can reuse it.
export CARGO_TARGET_DIR ?= /var/cache/yiqian/target
export YIQIAN_CACHE ?= /var/cache/yiqian
export COSIGN_TEST_PG ?= postgres://postgres@127.0.0.1:5432/postgres
export YIQIAN_PYTHON ?= $(YIQIAN_CACHE)/venv/bin/python
export CARGO_TERM_COLOR ?= never

NEXTEST := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo "nextest run" || echo "test")

.PHONY: help setup setup-test build h5 h5-lint app-ui app-ui-lint mobile run test fmt lint unit wasm bench bench-cosign clean-test-dbs

help:
	@echo "make run   - install what is missing, build, start cosign-server on http://127.0.0.1:8080"
	@echo "make test  - install what is missing, then fmt, clippy and every test (SQLite and PostgreSQL)"

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

build: setup h5
	cargo build --release -p cosign-server -p mobile-app

# The patient signing page (web-h5 → web-h5/dist, served at /h5/); fast when nothing changed.
h5:
	@scripts/build-h5.sh

# Clippy over web-h5's wasm-only UI code (host clippy does not compile it).
h5-lint:
	@scripts/build-h5.sh --lint

# The doctor / nurse app's UI (mobile-ui → mobile-app/ui/dist); the Tauri shell
# (mobile-app/src-tauri) embeds it at compile time, so it is built before any workspace build.
app-ui:
	@scripts/build-app.sh

# Clippy over mobile-ui's wasm-only screens.
app-ui-lint:
	@scripts/build-app.sh --lint

# The terminal demo page (/terminal/demo) is on for `make run` only; production config keeps it off.
run: build
	COSIGN_DEMO_TERMINAL=true $(CARGO_TARGET_DIR)/release/cosign-server serve

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

# Every test in the workspace. The log is kept so the summary can state which database
# backends were really exercised.
# Doc tests first, so the run closes on the main runner's summary and ours. The workspace run
# also builds the `liveness` binary (its own tests need it), which cosign-server's identity
# tests start as the real `liveness serve`.
unit:
	cargo test --workspace --doc
	@rm -f $(YIQIAN_CACHE)/liveness-ocr-report.txt
	@set -o pipefail; cargo $(NEXTEST) --workspace 2>&1 | tee $(YIQIAN_CACHE)/last-test.log
	@scripts/test-summary.sh $(YIQIAN_CACHE)/last-test.log

test: setup-test clean-test-dbs fmt app-ui lint wasm mobile h5-lint app-ui-lint h5 unit

# The crates the H5 page and the app embed must keep building for wasm32.
wasm:
	@scripts/wasm-check.sh

# The app's Rust side must compile for Android and iOS, and their projects agree with
# tauri.conf.json (identifier, version, deep-link scheme, camera).
mobile:
	@scripts/mobile-check.sh

# Drops databases left behind by an interrupted earlier run.
clean-test-dbs:
	@psql "$(COSIGN_TEST_PG)" -qAtc "SELECT datname FROM pg_database WHERE datname LIKE 'yiqian\_t\_%'" 2>/dev/null | \
	  while read -r db; do psql "$(COSIGN_TEST_PG)" -qc "DROP DATABASE IF EXISTS \"$$db\" WITH (FORCE)" >/dev/null; done; true

bench:
	cargo bench --workspace

# Co-signing service under load (a running release server, simulated phones and terminals;
# several minutes). Numbers and how to read them: docs/performance.md.
bench-cosign:
	scripts/bench-cosign.sh
