# statemgr developer tasks. On a fresh machine: `make serve` runs the service, `make test` runs every test.
PY := .venv/bin/python
BUF := node_modules/.bin/buf
PROTOS := $(sort $(shell find proto -name "*.proto"))
STAMP := .venv/.installed
export STATEMGR_ADMIN_KEY ?= dev-admin-key

.PHONY: setup gen check-gen buf-lint lint-py lint test unit serve migrate bench bench-cache-fresh bench-archive

setup: $(STAMP)  ## the virtualenv with the package and its dev tools, and buf from npm

$(STAMP): pyproject.toml package.json
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	npm install --no-audit --no-fund --silent
	touch $(STAMP)

gen: $(STAMP)  ## regenerate the Python stubs from proto/
	rm -rf src/statemgr/v1
	$(PY) -m grpc_tools.protoc -I proto --python_out=src --pyi_out=src --grpc_python_out=src $(PROTOS)
	touch src/statemgr/v1/__init__.py

check-gen: gen  ## fail when the committed stubs differ from what proto/ generates
	git diff --exit-code -- src/statemgr/v1
	test -z "$$(git status --porcelain -- src/statemgr/v1)"

buf-lint: $(STAMP)
	$(BUF) lint
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		$(BUF) breaking --against '.git#branch=main'; fi

lint-py: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

lint: buf-lint lint-py

test: $(STAMP)  ## every test, unit and integration (real PostgreSQL, Redis and RabbitMQ)
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit

migrate: $(STAMP)
	.venv/bin/statemgr migrate up

serve: migrate  ## migrate the database (created if missing), then serve on STATEMGR_LISTEN
	.venv/bin/statemgr serve

bench: $(STAMP)  ## statemgr (servers it starts itself) vs its targets and the floor of this machine; writes bench/RESULTS.md
	$(PY) -m bench

bench-cache-fresh: $(STAMP)  ## cached lookups with and without read-after-write across processes; writes bench/CACHE_FRESH.md
	$(PY) -m bench.cache_fresh

bench-archive: $(STAMP)  ## the retention job's archive throughput and the hot path's p95 while it runs (docs/retention.md)
	$(PY) -m bench.archive
