# statemgr developer tasks. `make setup` once, then `make test`.
PY ?= .venv/bin/python
BUF ?= node_modules/.bin/buf
PROTOS := $(sort $(shell find proto -name "*.proto"))

.PHONY: setup gen check-gen lint buf-lint test unit integration serve migrate bench

setup:  ## create .venv with the package and its dev tools, and buf from npm
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	npm install --no-audit --no-fund --silent

gen:  ## regenerate the Python stubs from proto/
	rm -rf src/statemgr/v1
	$(PY) -m grpc_tools.protoc -I proto --python_out=src --pyi_out=src --grpc_python_out=src $(PROTOS)
	touch src/statemgr/v1/__init__.py

check-gen: gen  ## fail when the committed stubs differ from what proto/ generates
	git diff --exit-code -- src/statemgr/v1
	test -z "$$(git status --porcelain -- src/statemgr/v1)"

buf-lint:
	$(BUF) lint
	$(BUF) format --diff --exit-code || true

lint: buf-lint
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

test:  ## every test: unit and integration (needs PostgreSQL, Redis, RabbitMQ)
	$(PY) -m pytest

unit:
	$(PY) -m pytest tests/unit

serve:
	.venv/bin/statemgr migrate up
	.venv/bin/statemgr serve

bench:
	$(PY) -m bench
