# Two commands do everything on a fresh machine:
#   make run    set up (once) and run the main job on the embedded default (ThO2 + CRG)
#   make test   set up (once) and run the test suite (what .ci/run calls)
# Setup re-runs only when setup.cfg, pyproject.toml or the plugin sources change.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.anharmbench-installed
PYTEST_ARGS ?= -m "not slow"

.PHONY: setup run test test-all lint bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

run: setup
	$(VENV)/bin/anharmbench run

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -m ""

lint: setup
	$(VENV)/bin/ruff check anharmbench tests benchmarks analysis

bench: setup
	$(PY) benchmarks/bench_batch.py

clean:
	rm -rf $(VENV) build *.egg-info
