# One command per developer task; CI (.ci/run) calls the same ones.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# the dashboard's front-end libraries, installed from npm (package-lock.json) into the package
ASSETS := src/agentos/dashboard/static/vendor/.installed
# byte-compile what the processes import (quick when nothing changed; a file that does
# not compile stops the target, named): where PYTHONDONTWRITEBYTECODE is set, as on CI
# machines, Python writes no .pyc itself, so every process started (a server, a worker,
# an agent, each CLI call; the tests' helpers, such as their handlers and fake servers,
# run in such processes too) would compile each module it imports again: ~0.3 s a
# server's start, ~0.05 s a CLI call
COMPILE := $(BIN)/python -m compileall -q src examples
# the tests run in this many pytest-xdist processes: a test spends much of its time
# waiting on the servers, workers and CLI calls it starts, so two of them share the 2
# cores (the whole run: ~19 minutes, against ~38 in one process); TEST_WORKERS=0 runs
# them in pytest's own process
TEST_WORKERS ?= 2

.PHONY: help run test lint bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: $(VENV)/.installed $(ASSETS) ## set up and run the demo (server + starter agents on SQLite)
	$(COMPILE)
	$(BIN)/agentos demo

test: $(VENV)/.installed-dev $(ASSETS) ## set up and run every test, on SQLite and PostgreSQL
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-redis.sh
	bash scripts/ensure-promtool.sh
	$(COMPILE) tests
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

lint: $(VENV)/.installed-dev ## ruff and mypy --strict
	$(BIN)/ruff check src tests examples $(wildcard bench)
	$(BIN)/mypy

# the peers' packages (Celery, redis-py, pgqueuer, Procrastinate) for bench_tasks.py: in
# their own venv, at the versions the peers measured; not project dependencies
# (bench_locks.py's Redis peer runs in the project's venv: redis-py is a dependency)
PEERS_REQUIREMENTS := ../shared/peers/requirements.txt
PEERS_VENV := bench/.peers-venv

# DBOS Transact and Prefect 3 for bench_workflows.py, in a venv of their own
WORKFLOW_PEERS_VENV := bench/.workflow-peers-venv

bench: $(VENV)/.installed-dev $(if $(wildcard $(PEERS_REQUIREMENTS)),$(PEERS_VENV)/.installed) $(WORKFLOW_PEERS_VENV)/.installed ## the benchmark suite (see bench/README.md)
	bash scripts/ensure-postgres.sh
	$(COMPILE) bench
	$(BIN)/python bench/bench_registry.py
	$(BIN)/python bench/bench_knowledge.py
	$(BIN)/python bench/bench_projections.py
	$(BIN)/python bench/bench_events.py
	$(BIN)/python bench/bench_tasks.py
	$(BIN)/python bench/bench_locks.py
	$(BIN)/python bench/bench_workflows.py

$(WORKFLOW_PEERS_VENV)/.installed: bench/workflow-peers.txt
	bash scripts/ensure-venv.sh $(PYTHON)
	$(PYTHON) -m venv $(WORKFLOW_PEERS_VENV)
	$(WORKFLOW_PEERS_VENV)/bin/pip install --quiet -r bench/workflow-peers.txt
	touch $@

$(ASSETS): package.json package-lock.json scripts/dashboard-assets.sh
	bash scripts/dashboard-assets.sh

$(PEERS_VENV)/.installed: $(PEERS_REQUIREMENTS)
	bash scripts/ensure-venv.sh $(PYTHON)
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet -r $(PEERS_REQUIREMENTS)
	touch $@

$(VENV)/.installed: pyproject.toml
	bash scripts/ensure-venv.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	bash scripts/ensure-venv.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules $(dir $(ASSETS))
