# The two commands of the README:
#   make plan   set up (virtualenv + pinned deps) and print the offline plan of the topology
#   make test   set up (with test deps) and run lint (ruff, import contracts) + the whole test suite
#
# Debian's python3 on purpose: PostgreSQL runs archive/restore hooks as the `postgres`
# user, which cannot execute a Python that lives in root's home (pyenv).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: plan test setup setup-dev lint drill bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt lambdas/requirements.txt policy/requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

plan: setup
	$(BIN)/python -m infra.plan

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# Two workers, one test file each at a time: the data-plane files wait on PostgreSQL, moto and
# Azurite subprocesses, the mock-runtime files on the CPU; session fixtures are per worker.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Both stores: S3 (moto) and Azure Blob Storage (Azurite; installed by .ci/run, AZURITE_BLOB).
drill: setup-dev
	$(BIN)/python -m drill
	$(BIN)/python -m drill --store azure

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
