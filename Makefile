# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: install demo test test-unit lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv sync --frozen --compile-bytecode
	@touch $@

demo: install
	SKIP_COMPOSE=1 ./scripts/services.sh
	$(PY) -m demo

test: install
	./scripts/services.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

test-unit: install
	$(VENV)/bin/pytest -m "not integration and not scheduler"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	@command -v wrk >/dev/null 2>&1 || (apt-get install -y -qq wrk >/dev/null 2>&1) || echo "bench: no wrk; bench/serving.py falls back to its Python load generator"
	$(PY) bench/parse.py
	$(PY) bench/promotion.py
	$(PY) bench/serving.py
	$(PY) bench/drift.py
	$(PY) bench/closed_loop.py

clean:
	rm -rf .demo .pytest_cache .mypy_cache .ruff_cache
