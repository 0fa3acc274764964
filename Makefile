# mlops-kit: `make demo` runs the pipeline, `make test` runs every check. Both set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The demo's input. `mlkit fetch-data` downloads it to data/ when ../shared is absent.
DATA   ?= $(firstword $(wildcard ../shared/data/ai4i2020.csv) data/ai4i2020.csv)
WORKDIR ?= work/demo
PYTEST_ARGS ?=
# The pinned CDK CLI (package.json); `npm ci` reruns only when the pins change.
NODE_STAMP := node_modules/.installed
STAGE ?= dev

export PYTHONDONTWRITEBYTECODE := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help venv demo run test lint unit lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

venv: $(STAMP)  ## create or refresh the virtualenv (uv when available, pip otherwise)

# Rebuilt whenever the pins change. uv is ~4x faster than pip here; --compile-bytecode matters because
# PYTHONDONTWRITEBYTECODE=1 would otherwise make every `import tensorflow` recompile (~13 s instead of ~5 s).
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; mlops-kit needs Python 3.11 (the Glue 5.0 runtime)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null; then UV=uv; \
	 elif $(BIN)/pip install --quiet 'uv==0.13.8'; then UV=$(BIN)/uv; else UV=; fi; \
	 if [ -n "$$UV" ]; then \
	   echo "installing dependencies with uv into $(VENV)"; \
	   $$UV pip install --python $(BIN)/python --compile-bytecode --quiet -r requirements.lock && \
	   $$UV pip install --python $(BIN)/python --compile-bytecode --quiet --no-deps -e .; \
	 else \
	   echo "uv unavailable; installing dependencies with pip into $(VENV) (slower)"; \
	   $(BIN)/pip install --quiet -r requirements.lock && $(BIN)/pip install --quiet --no-deps -e .; \
	 fi
	@touch $@

demo: $(STAMP) $(NODE_STAMP)  ## the production flow on LocalStack: deploy, pipeline, endpoint, alarms (DATA=...)
	@test -f "$(DATA)" || { echo "error: no dataset at '$(DATA)'; pass DATA=path or run: $(BIN)/mlkit fetch-data"; exit 1; }
	$(BIN)/mlkit local demo --data "$(DATA)" --workdir "$(WORKDIR)"

run: $(STAMP)  ## the pipeline in one process tree, no LocalStack: mlkit run (DATA=...)
	@test -f "$(DATA)" || { echo "error: no dataset at '$(DATA)'; pass DATA=path or run: $(BIN)/mlkit fetch-data"; exit 1; }
	$(BIN)/mlkit run --data "$(DATA)" --workdir work/run

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)  ## the fast tests only
	$(BIN)/pytest -m "unit" $(PYTEST_ARGS)

test: lint $(NODE_STAMP)  ## every check: lint, unit, integration and end-to-end tests
	$(BIN)/pytest $(PYTEST_ARGS)

lock: $(VENV)  ## recompile requirements.lock from pyproject.toml
	$(BIN)/uv pip compile --python $(BIN)/python --universal --python-version 3.11 pyproject.toml --extra dev -o requirements.lock --quiet

clean:  ## remove build outputs and the demo's work directory (keeps the virtualenv)
	rm -rf work cdk.out .pytest_cache .ruff_cache .mypy_cache

# ---- local mode (LocalStack community on this machine; see mlkit/local) -------------------------
.PHONY: local-up local-down local-status local-deploy integration

local-up: $(STAMP)  ## install (first use) and start LocalStack with the kit's plugin
	$(BIN)/mlkit local up

local-down: $(STAMP)  ## stop LocalStack
	$(BIN)/mlkit local down

local-status: $(STAMP)  ## is LocalStack running, with the kit's services
	$(BIN)/mlkit local status

local-deploy: local-up  ## deploy the CDK app (stage local) into LocalStack and check every resource
	$(BIN)/mlkit local deploy

integration: $(STAMP)  ## the LocalStack integration tests only (they start and stop LocalStack)
	$(BIN)/pytest -m "integration" $(PYTEST_ARGS)

# ---- AWS CDK app (infra/) -------------------------------------------------------------------------
.PHONY: cdk-cli synth

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found; the CDK CLI needs Node.js 20 or later"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

cdk-cli: $(NODE_STAMP)  ## install the pinned CDK CLI (npx cdk, npx cdklocal)

synth: $(STAMP) $(NODE_STAMP)  ## synthesise the CDK app for STAGE=local|dev|prod into cdk.out (offline)
	npx cdk synth -c stage=$(STAGE) --quiet
