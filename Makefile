# Two commands do everything on a fresh machine:
#   make run    set up (once) and run the main job on the embedded default (ThO2 + CRG)
#   make test   set up (once) and run the test suite (what .ci/run calls)
# The install re-runs only when setup.cfg (the metadata) or pyproject.toml (the build
# system) changes; the LAMMPS plugins are built into a per-user cache
# (~/.cache/anharmbench/plugins/<tag>) unless a build of the same sources and libraries is
# already there (anharmbench/plugins.py says why not at install time).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.anharmbench-installed
PYTEST_ARGS ?=
# one test process per core, each test file in one process (its module fixtures built once);
# tests/conftest.py gives each process one BLAS/OpenMP thread. PYTEST_PARALLEL= runs serially.
PYTEST_PARALLEL ?= -n auto --dist loadfile

.PHONY: setup plugins run test test-all lint bench clean

setup: $(STAMP) plugins

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e ".[dev,gap,nequip,bpnn,dask,universal]"
	@# pip byte-compiles one file at a time (~75 s of a ~115 s install here); compileall on
	@# every core does the same in ~35 s. Its errors are third-party files that are not
	@# Python 3 (templates), which pip skips too, hence '|| true'.
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null || true
	touch $@

# built here rather than on first use so that the first LAMMPS run is not a minute late
plugins: $(STAMP)
	$(VENV)/bin/anharmbench plugins ensure --jobs 2

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
	rm -rf $(VENV) build *.egg-info
