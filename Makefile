# The two commands: `make run` (local stack) and `make test` (lint, types, all tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MONGO_STAMP := .local/mongo-lib/.fetched

RUN_ENV := .local/run.env
CLIENT_DIR := clients/typescript
CLIENT_STAMP := $(CLIENT_DIR)/node_modules/.installed-stamp

.PHONY: install system-deps client-deps run token test lint typecheck unit bench bench-dashboard clean

install: $(STAMP) $(MONGO_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@echo "install: creating the virtual environment $(VENV)/"
	@$(PYTHON) -m venv $(VENV)
	@echo "install: upgrading pip"
	@$(BIN)/pip install --quiet --upgrade pip
	@echo "install: installing cronjobs and its Python dependencies into $(VENV)/" \
		"(pyproject.toml; 15-60 s with a warm pip cache, a few minutes on a cold one)"
	@$(BIN)/pip install --quiet --progress-bar off -e '.[dev]'
	@touch $@
	@echo "install: Python environment ready"

$(MONGO_STAMP): tools/local-mongo/pom.xml tools/local-mongo/LocalMongo.java $(STAMP)
	@echo "install: fetching mongo-java-server (the local MongoDB stand-in) with Maven into .local/"
	@$(BIN)/python -c 'from tools.local_mongo import ensure_installed; ensure_installed()'
	@echo "install: local MongoDB stand-in ready"

run: install
	$(BIN)/python -m tools.run_local

# A test token signed with the running `make run` stack's secret: make token SUB=alice [ROLES=admin]
token:
	@test -n "$(SUB)" || { echo "make token: say whose token, e.g. make token SUB=alice" >&2; exit 2; }
	@test -f $(RUN_ENV) || { echo "make token: $(RUN_ENV) not found; start the stack with make run" >&2; exit 1; }
	@set -a; . ./$(RUN_ENV); set +a; \
		$(BIN)/cronjobs token create --sub '$(SUB)' --roles '$(ROLES)' --ttl 86400

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy api worker shared tools tests

# Debian packages that tests drive for real (chromium, chromium-driver, prometheus); apt-get as root.
system-deps:
	@bash tools/system_deps.sh

# The TypeScript client check's npm packages (pinned in $(CLIENT_DIR)/package-lock.json) into
# the git-ignored $(CLIENT_DIR)/node_modules/; needs node and npm.
client-deps: $(CLIENT_STAMP)

$(CLIENT_STAMP): $(CLIENT_DIR)/package.json $(CLIENT_DIR)/package-lock.json
	@echo "client-deps: npm ci in $(CLIENT_DIR)/ (openapi-typescript, typescript; a few seconds)"
	@cd $(CLIENT_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: system-deps client-deps lint typecheck
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
