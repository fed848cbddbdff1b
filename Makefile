# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    build .venv if needed (what serving needs only), start the
#               embedded PostgreSQL (unless DATABASE_URL is set), apply
#               migrations, serve on 127.0.0.1:8080
#   make test   build .venv if needed (serving, testing and linting tools) and
#               run the tests on a real PostgreSQL
#   make bench  load-test the service next to a minimal reference server with
#               wrk (apt-get install wrk) on a throw-away database; extra
#               options in BENCH_ARGS, e.g. BENCH_ARGS="--students 1000000"
#
# Everything is installed from the lock files in requirements/, every file
# checked against its hash: run.txt for make run, dev.txt for the rest,
# serve.txt for the Docker image. `make lock` refreshes all three from
# pyproject.toml; `make audit` checks them against published advisories.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALL := $(PY) -m pip install --quiet --require-hashes --no-deps
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# The OpenAPI linters, pinned; fetched by npx from the npm registry.
REDOCLY := @redocly/cli@2.77.0
SPECTRAL := @stoplight/spectral-cli@6.16.3
SPECTRAL_OWASP := @stoplight/spectral-owasp-ruleset@2.0.1

.PHONY: venv run test migrate rollback lint lint-openapi audit lock lock-oneroster-client format fuzz bench failover-drill clean wheel

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements/run.txt | $(PY)
	$(INSTALL) -r requirements/run.txt
	@touch $@

$(DEV_STAMP): requirements/dev.txt | $(PY)
	$(INSTALL) -r requirements/dev.txt
	@touch $@ $(RUN_STAMP)

venv: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(PY) -m service dev

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

migrate: $(RUN_STAMP)
	$(PY) -m service migrate --embedded

rollback: $(RUN_STAMP)
	$(PY) -m service rollback --embedded

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Redocly's recommended rules, then Spectral's OWASP API Security Top 10 rules
# (.spectral.yaml: errors fail, warnings are shown), on the document of an
# instance with tokens (the file) and of one without (what `make run` serves).
# The ruleset is a package beside spectral in npx's cache, where NODE_PATH
# lets .spectral.yaml's `extends` find it.
OPENAPI_DOCUMENTS := service/openapi.json .data/openapi/without-tokens.json
lint-openapi: $(RUN_STAMP)
	@mkdir -p .data/openapi
	$(PY) -m service openapi --without-tokens > .data/openapi/without-tokens.json
	npx --yes $(REDOCLY) lint $(OPENAPI_DOCUMENTS)
	npx --yes -p $(SPECTRAL) -p $(SPECTRAL_OWASP) -c \
		'NODE_PATH="$$(dirname "$$(command -v spectral)")/.." spectral lint -r .spectral.yaml $(OPENAPI_DOCUMENTS)'

# Known vulnerabilities in the locked versions, from PyPI's advisory data
# (needs it online; --strict fails when a package could not be checked).
audit: $(DEV_STAMP)
	$(VENV)/bin/pip-audit --strict --disable-pip --require-hashes -r requirements/dev.txt
	$(VENV)/bin/pip-audit --strict --disable-pip --require-hashes -r $(ONEROSTER_CLIENT_LOCK)

LOCK := $(VENV)/bin/uv pip compile pyproject.toml --quiet --upgrade --universal \
	--python-version 3.11 --generate-hashes
lock: $(DEV_STAMP)
	$(LOCK) --extra embedded --extra dev -o requirements/dev.txt
	$(LOCK) --extra embedded -c requirements/dev.txt -o requirements/run.txt
	$(LOCK) -c requirements/dev.txt -o requirements/serve.txt

# The OneRoster client tests/test_oneroster_clients.py reads the provider with
# (tests/oneroster/client-requirements.in), for Python 3.12, in a venv of its own
# (tests/oneroster/clients.py builds it under .data/oneroster-client/).
ONEROSTER_CLIENT_LOCK := tests/oneroster/client-requirements.txt
lock-oneroster-client: $(DEV_STAMP)
	cd tests/oneroster && ../../$(VENV)/bin/uv pip compile client-requirements.in --quiet \
		--upgrade --universal --python-version 3.12 --generate-hashes -o client-requirements.txt

# make fuzz   the schemathesis contract test (tests/test_contract.py) with many more
#             generated requests, against an instance with tokens and one without:
#             FUZZ_EXAMPLES fuzzed cases per operation (default 1000; `make test`
#             uses 25) on top of the coverage-phase cases; pass another FUZZ_SEED
#             to explore different inputs. The case count is printed at the end
#             and written to .data/contract-cases.json.
FUZZ_EXAMPLES ?= 1000
FUZZ_SEED ?= 20260131
fuzz: $(DEV_STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) $(PY) -m pytest tests/test_contract.py $(PYTEST_ARGS)

# make wheel  dist/enrollment_service-*.whl (the service, with its SQL and
#             migrations inside, and the enrollment-import command) and
#             dist/enrollment_import-*.whl (the importer alone); pip fetches
#             the build backend (setuptools) from its configured index.
wheel: | $(PY)
	rm -rf build enrollment_import/build
	$(PY) -m pip wheel --quiet --no-deps -w dist . ./enrollment_import
	rm -rf build enrollment_import/build *.egg-info enrollment_import/*.egg-info

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(DEV_STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# make failover-drill  start deploy/patroni/'s three-node cluster (Patroni,
#             etcd, HAProxy) on 127.0.0.1 from nothing, serve the API on it under
#             enroll, drop and waitlist load, break it (the leader's postmaster,
#             the leader's node, the synchronous standby, etcd) and check that
#             nothing acknowledged was lost (bench/failover.py, docs/reliability.md).
#             Needs Debian's patroni, etcd-server, haproxy and postgresql-15;
#             FAILOVER_ARGS="--scenarios leader --rounds 3" for fewer or more.
failover-drill: $(DEV_STAMP)
	$(PY) -m bench.failover $(FAILOVER_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info enrollment_import/build enrollment_import/*.egg-info
