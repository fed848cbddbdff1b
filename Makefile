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

# make fuzz   the schemathesis contract test (tests/test_contract.py) with many more
#             generated requests: FUZZ_EXAMPLES fuzzed cases per operation (default
#             1000; `make test` uses 25) on top of the coverage-phase cases; pass
#             another FUZZ_SEED to explore different inputs. The case count is
#             printed at the end and written to .data/contract-cases.json.
FUZZ_EXAMPLES ?= 1000
FUZZ_SEED ?= 20260131
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) $(PY) -m pytest tests/test_contract.py $(PYTEST_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
