# Thin wrappers over what .ci/run does, one target per step, so a contributor runs the same
# commands CI runs. `make help` lists them. Each runs from a virtual environment in .venv
# (`make install` makes it); extra pytest arguments go in ARGS: make test ARGS="-x tests/test_views.py".

VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
# test-postgres: what .ci/run uses; another Redis database keeps two checkouts apart (REDIS_DB=10).
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_DB ?= 1
CACHE_URL ?= redis://127.0.0.1:6379/$(REDIS_DB)
# bench: one script of benchmarks/ (BENCH=polls), or all of them.
BENCH ?= polls logins cleanup attack_cost
# mypy and django-admin load tests.settings and the example site, as tox's lint env does.
DEV_PATH := PYTHONPATH=$(CURDIR):$(CURDIR)/example_project

.DEFAULT_GOAL := help
.PHONY: help install test test-postgres browser lint types docs messages wheel bench ci inventories

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## .venv with every extra: tests, example site (gunicorn), lint, docs
	python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,example,lint,docs]'

test: ## the README's test command: the suite on SQLite (browser tests skip without chromium)
	$(BIN)/pytest $(ARGS)

test-postgres: ## the suite on PostgreSQL and Redis, with the race and stack tests, as CI runs it
	CALLAUTH_TEST_DATABASE_URL=$(DATABASE_URL) CALLAUTH_REQUIRE_POSTGRES=1 \
	    CALLAUTH_TEST_CACHE_URL=$(CACHE_URL) CALLAUTH_REQUIRE_REDIS=1 CALLAUTH_REQUIRE_STACK=1 \
	    $(BIN)/pytest -m "not browser" $(ARGS)

browser: ## the browser tests alone, in Debian's chromium (fail, not skip, without it)
	CALLAUTH_REQUIRE_BROWSER=1 $(BIN)/pytest -m browser $(ARGS)

lint: ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: ## mypy strict with django-stubs
	$(DEV_PATH) $(BIN)/mypy

docs: ## the Sphinx site, warnings as errors, into docs/_build/html
	$(BIN)/sphinx-build -W -q -b html docs docs/_build/html

messages: ## regenerate and compile the Russian catalog (then translate the new entries)
	cd django_callauth && DJANGO_SETTINGS_MODULE=tests.settings $(DEV_PATH) \
	    $(abspath $(BIN))/django-admin makemessages -l ru --no-obsolete
	cd django_callauth && DJANGO_SETTINGS_MODULE=tests.settings $(DEV_PATH) \
	    $(abspath $(BIN))/django-admin compilemessages

wheel: ## build the sdist and wheel, twine check, run the example site on the wheel alone
	PYTHON=python3 bash .ci/wheel-test

bench: ## the benchmarks (PostgreSQL, Redis and wrk; BENCH=polls for one)
	@for script in $(BENCH); do echo "== benchmarks/$$script.py"; $(BIN)/python benchmarks/$$script.py || exit 1; done

ci: ## all of CI: .ci/run (installs into .venv, needs root for apt and every Python of the matrix)
	bash .ci/run

inventories: ## refresh docs/_inventories/ from docs.python.org and docs.djangoproject.com (online)
	curl -fsSL -o docs/_inventories/python.inv https://docs.python.org/3/objects.inv
	curl -fsSL -o docs/_inventories/django.inv https://docs.djangoproject.com/en/5.2/_objects/
