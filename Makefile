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

export PYTHONDONTWRITEBYTECODE := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help venv demo test lint unit lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

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

demo: $(STAMP)  ## run the whole pipeline on real data (DATA=path/to/ai4i2020.csv)
	@test -f "$(DATA)" || { echo "error: no dataset at '$(DATA)'; pass DATA=path or run: $(BIN)/mlkit fetch-data"; exit 1; }
	$(BIN)/mlkit run --data "$(DATA)" --workdir "$(WORKDIR)"

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)  ## the fast tests only
	$(BIN)/pytest -m "unit" $(PYTEST_ARGS)

test: lint  ## every check: lint, unit, integration and end-to-end tests
	$(BIN)/pytest $(PYTEST_ARGS)

lock: $(VENV)  ## recompile requirements.lock from pyproject.toml
	$(BIN)/uv pip compile --python $(BIN)/python --universal --python-version 3.11 pyproject.toml --extra dev -o requirements.lock --quiet

clean:  ## remove build outputs and the demo's work directory (keeps the virtualenv)
	rm -rf work cdk.out .pytest_cache .ruff_cache .mypy_cache
