# Two commands do all set-up on a fresh machine: `make demo` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.DEFAULT_GOAL := help
.PHONY: help install demo up assess status down test test-unit lint format docs bench constraints clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(VENV)/.installed ## Install the project and its dev tools into .venv with uv

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv sync --frozen --compile-bytecode
	@touch $@

demo: install ## Run the Level 4 closed loop for real and print its timeline (embedded Postgres if none runs)
	$(PY) -m demo

up: install ## Leave Airflow (login), MLflow, the model server and the Evidently UI running on .demo; print URLs
	$(PY) -m demo.stack up $(STACK_ARGS)

assess: install ## The maturity scorecard of every pipeline, from the evidence of the stack `make up` runs
	$(PY) -m demo.stack assess $(STACK_ARGS)

status: install ## What `make up` runs, with its URLs and health (starts nothing)
	$(PY) -m demo.stack status $(STACK_ARGS)

down: ## Stop everything `make up` started
	@if [ -x $(PY) ]; then $(PY) -m demo.stack down $(STACK_ARGS); else echo "stack: nothing was running"; fi

constraints: ## Re-export deploy/constraints.txt from uv.lock (the Docker image installs under it)
	uv export --frozen --no-dev --extra all --no-hashes --no-emit-project --format requirements-txt \
		--output-file deploy/constraints.txt

test: install ## Start Postgres if needed; ruff, mypy, the strict docs build and the whole test suite
	./scripts/services.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(MAKE) --no-print-directory docs
	$(VENV)/bin/pytest

test-unit: install ## The fast tests: no services, no scheduler
	$(VENV)/bin/pytest -m "not integration and not scheduler"

lint: install ## ruff, ruff format --check and mypy strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## Format the code and apply ruff's safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: install ## Build docs/ into site/ with mkdocs --strict (a broken link fails)
	$(VENV)/bin/mkdocs build --strict

bench: install ## Run every benchmark (scripts/services.sh installs wrk when it can)
	WITH_WRK=1 SKIP_COMPOSE=1 ./scripts/services.sh
	$(PY) bench/parse.py --growth
	$(PY) bench/promotion.py
	$(PY) bench/serving.py
	$(PY) bench/drift.py
	$(PY) bench/batch.py
	$(PY) bench/closed_loop.py

clean: down ## Stop the stack; remove the demo's files, the docs site and tool caches
	rm -rf .demo site .pytest_cache .mypy_cache .ruff_cache
