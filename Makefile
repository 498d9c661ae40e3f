# Switchboard's commands. Each bootstraps what it needs (a venv in .venv, the test services' npm
# packages in tests/node_modules, the web client's in web/node_modules) from the committed
# requirement and lock files, so a fresh clone needs only python3, node and npm.
#
#   make run        the app on http://127.0.0.1:7071 with the embedded defaults (PORT=, HOST=),
#                   and the reference web client on http://localhost:7071/ (built first when stale)
#   make test-fast  the inner loop: unit, route and SQLite contract tests (under a minute)
#   make check      every check: lint (with the layer contracts), types, every test, infra;
#                   each step runs, and a summary of all of them ends the output
#   make web        build the web client (web/ -> web/build/) when a source or the lockfile changed
#   make web-api    refresh the web client's typed API from the app's routes: the OpenAPI snapshot
#                   web/openapi.json and web/src/api/schema.d.ts (after adding or changing a route)
#   make bench      the benchmark; prints the figures docs/performance.md shows

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov

.PHONY: run check lint types test test-fast infra-check bench deps clean web web-types web-api browser

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "switchboard: installing the Python packages (requirements-dev.txt) into .venv;" \
		"the first time takes a minute or two"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The test services (the Cosmos-protocol server) are npm packages of the tests, not of the app.
tests/node_modules/.installed: tests/package.json tests/package-lock.json
	@echo "switchboard: installing the test services' npm packages into tests/node_modules"
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# The web client keeps its packages in web/node_modules (its own lockfile), apart from the
# test services' node_modules above.
web/node_modules/.installed: web/package.json web/package-lock.json
	@echo "switchboard: installing the web client's npm packages into web/node_modules" \
		"(first time: about a minute)"
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/build.mjs
web/build/.stamp: web/node_modules/.installed $(WEB_SOURCES)
	@echo "switchboard: building the web client into web/build"
	cd web && node build.mjs

web: web/build/.stamp

# The typed API client's source: the server's OpenAPI document (snapshot committed, compared
# with the server's by tests/functions/test_web_api_snapshot.py) and the types generated from it.
web-api: $(VENV)/.installed web/node_modules/.installed
	$(PY) -m switchboard.openapi web/openapi.json
	cd web && node_modules/.bin/openapi-typescript openapi.json --default-non-nullable false -o src/api/schema.d.ts

web-types: web/node_modules/.installed
	cd web && node_modules/.bin/tsc --noEmit -p .

# Headless Chromium for the browser tests, from Debian's packages (Playwright drives it; its own
# browser download cannot work offline). Skipped when /usr/bin/chromium is there.
# As root (CI) directly; otherwise through sudo when there is one.
SUDO := $(shell if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null; then echo sudo; fi)

browser:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

deps: $(VENV)/.installed tests/node_modules/.installed web/build/.stamp browser

# `make run PORT=7072` (or HOST=0.0.0.0) when 7071 is taken or another interface is wanted.
HOST ?= 127.0.0.1
PORT ?= 7071

run: $(VENV)/.installed web/build/.stamp
	$(PY) -m switchboard.devserver --host $(HOST) --port $(PORT)

# The layers (blueprints -> runtime -> services -> ports, adapters only through the runtime, ...)
# are import-linter contracts in pyproject.toml: a breach fails lint, naming the import chain.
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

types: $(VENV)/.installed web-types
	$(PY) -m mypy

test: deps
	$(PY) -m pytest

# No Node, no browser, no subprocess servers: what a change to a service or a route needs first.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit tests/functions tests/contract -m "not cosmos"

infra-check: $(CHECKOV_VENV)/.installed
	CKV_PARSE_ERROR_FAIL=true $(CHECKOV_VENV)/bin/checkov --config-file infra/.checkov.yaml

# Every step runs even when one fails, and the summary is the last thing printed (checkov's
# long report no longer buries the result); the exit status fails if any step did.
CHECK_STEPS := lint types test infra-check
check:
	@failed=""; summary=""; \
	for step in $(CHECK_STEPS); do \
		start=$$(date +%s); \
		if $(MAKE) --no-print-directory $$step; then result=ok; \
		else result=FAILED; failed="$$failed $$step"; fi; \
		summary="$$summary$$(printf '\n  %-12s %-7s %5ss' $$step $$result $$(( $$(date +%s) - start )))"; \
	done; \
	printf '\nmake check summary:%s\n' "$$summary"; \
	if [ -n "$$failed" ]; then echo "make check: FAILED:$$failed"; exit 1; fi; \
	echo "make check: every step passed"

bench: deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) tests/node_modules web/node_modules web/build .mypy_cache .ruff_cache .pytest_cache
