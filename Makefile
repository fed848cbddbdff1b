# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    build .venv if needed, start the embedded PostgreSQL (unless
#               DATABASE_URL is set), apply migrations, serve on 127.0.0.1:8080
#   make test   build .venv if needed and run the tests on a real PostgreSQL
#   make bench  load-test the service next to a minimal reference server with
#               wrk (apt-get install wrk) on a throw-away database; extra
#               options in BENCH_ARGS, e.g. BENCH_ARGS="--students 1000000"

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run test migrate rollback lint format fuzz bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m service dev

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

migrate: $(STAMP)
	$(PY) -m service migrate --embedded

rollback: $(STAMP)
	$(PY) -m service rollback --embedded

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
