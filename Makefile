# statemgr developer tasks. On a fresh machine: `make serve` runs the service, `make test` runs every test.
PY := .venv/bin/python
BUF := node_modules/.bin/buf
PROTOS := $(sort $(shell find proto -name "*.proto"))
STAMP := .venv/.installed
NODE_STAMP := node_modules/.installed
export STATEMGR_ADMIN_KEY ?= dev-admin-key

.PHONY: setup gen check-gen buf-lint lint-py lint test unit serve migrate bench bench-cache-fresh bench-archive check-deploy

setup: $(STAMP) $(NODE_STAMP)  ## the virtualenv with the package and its dev tools; buf and the TypeScript client from npm

# Python only: `make serve` needs nothing else (no npm, and no PostgreSQL: see store/embedded.py).
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json clients/typescript/package.json
	npm install --no-audit --no-fund --silent
	touch $(NODE_STAMP)

gen: $(STAMP) $(NODE_STAMP)  ## regenerate the Python stubs and the TypeScript client from proto/
	rm -rf src/statemgr/v1
	$(PY) -m grpc_tools.protoc -I proto --python_out=src --pyi_out=src --grpc_python_out=src $(PROTOS)
	touch src/statemgr/v1/__init__.py
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(BUF) generate --template clients/typescript/buf.gen.yaml

check-gen: gen  ## fail when the committed stubs (Python or TypeScript) differ from what proto/ generates
	git diff --exit-code -- src/statemgr/v1 clients/typescript/src/gen
	test -z "$$(git status --porcelain -- src/statemgr/v1 clients/typescript/src/gen)"

buf-lint: $(NODE_STAMP)
	$(BUF) lint
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		$(BUF) breaking --against '.git#branch=main'; fi

lint-py: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

lint: buf-lint lint-py

# The deploy files, checked offline (override a path to check another file, as tests/integration/test_deploy_files.py
# does with broken copies). promtool comes from Debian's prometheus package (.ci/run installs it).
DOCKERFILE ?= deploy/Dockerfile
K8S ?= $(wildcard deploy/k8s/*.yaml)
COMPOSE ?= deploy/compose.yaml
RULES ?= deploy/monitoring/alerts.yaml
RULE_TESTS ?= deploy/monitoring/alerts.test.yaml
DASHBOARD ?= deploy/monitoring/grafana-dashboard.json
check-deploy: $(STAMP)  ## hadolint, Kubernetes and compose schemas, promtool on the alert rules, the dashboard's JSON
	.venv/bin/hadolint $(DOCKERFILE)
	.venv/bin/kubernetes-validate --strict --quiet $(K8S)
	.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec $(COMPOSE)
	promtool check rules $(RULES)
	cd $(dir $(RULE_TESTS)) && promtool test rules $(notdir $(RULE_TESTS))
	$(PY) -m json.tool $(DASHBOARD) >/dev/null

test: $(STAMP) $(NODE_STAMP)  ## every test, unit and integration (real PostgreSQL, Redis and RabbitMQ), and the TypeScript examples
	npm run --silent --workspace clients/typescript typecheck
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
