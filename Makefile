# The two commands: `make run` (local stack) and `make test` (lint, types, all tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MONGO_STAMP := .local/mongo-lib/.fetched

.PHONY: install system-deps run test lint typecheck unit bench bench-dashboard clean

install: $(STAMP) $(MONGO_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(MONGO_STAMP): tools/local-mongo/pom.xml tools/local-mongo/LocalMongo.java $(STAMP)
	$(BIN)/python -c 'from tools.local_mongo import ensure_installed; ensure_installed()'

run: install
	$(BIN)/python -m tools.run_local

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy api worker shared tools tests

# Debian packages that tests drive for real (chromium, chromium-driver, prometheus); apt-get as root.
system-deps:
	@bash tools/system_deps.sh

test: system-deps lint typecheck
	$(BIN)/python -m pytest

# Benchmarks vs Agenda 6 (about 20 minutes; not part of `make test`): docs/benchmarks.md.
bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

# Dashboard page latency with 10,000 jobs and 200,000 runs (a few minutes): bench/dashboard.py.
bench-dashboard: install
	$(BIN)/python -m bench.dashboard

clean:
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache
