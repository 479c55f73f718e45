# runql developer commands. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist workers of `make test` (tests/scheduling.py); 0 runs the suite in one process.
# More than the cores: the suite waits on processes, sockets and databases much of its time
# (on 2 cores, 4 workers beat 2 and 6).
TEST_WORKERS ?= 4

.PHONY: install run test lint format schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'  # Python 3.11's own pip installs editable projects
	touch $(STAMP)

install: $(STAMP) ## also GraphiQL's assets from npm (pinned, verified); no-op when present or no npm
	$(BIN)/python scripts/fetch_graphiql_assets.py

run: install ## migrate ./runql.db, load demo data if empty, serve http://127.0.0.1:8000/ui and /graphql
	$(BIN)/runql migrate
	$(BIN)/runql demo --if-empty
	$(BIN)/runql serve

test: install ## the whole suite, on SQLite and PostgreSQL
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check runql tests bench
	$(BIN)/ruff format --check runql tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix runql tests bench
	$(BIN)/ruff format runql tests bench

schema: install ## regenerate schema.graphql after an API change
	$(BIN)/runql export-schema > schema.graphql

bench: install ## seed at scale, print figures, write bench/RESULTS.md (BENCH_QUICK=1: < 2 min)
	$(BIN)/pip install -q -e '.[dev,fast]'  # measure what production runs: uvloop, httptools
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
