# Two entry points (see README.md):
#   make train  - the main job: REMUL on the simulated charged N-body task
#   make test   - the test suite, with torch-scatter/torch-cluster built so
#                 that both accelerated and native code paths are tested
#
# Both create or reuse a virtual environment in $(VENV). The CPU build of
# torch is pinned to the release this machine ships; override it with e.g.
#   make test TORCH_SPEC="torch==2.5.1 --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_SPEC ?= torch==$(TORCH_VERSION)
PYTEST_ARGS ?=
# The linter of `make lint` and .ci/run (configured in ruff.toml), pinned so
# that a new release's rules do not fail CI unannounced.
RUFF_SPEC ?= ruff==0.17.6

PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: train demo test test-native lint venv accel bench results docs \
	check-dist clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e ".[test,plot]"
	touch $@

# torch-scatter / torch-cluster ship as sources only: they compile against
# the installed torch, hence --no-build-isolation (pip caches the built
# wheels, so a second set-up on the same machine takes seconds). Their
# setup.py builds without ninja, so MAX_JOBS alone does not parallelise
# them: each C++ extension (one per op) is a separate setuptools extension,
# and build_ext's `parallel` option, passed through a config file that
# setuptools reads from DIST_EXTRA_CONFIG, builds MAX_JOBS of them at once.
MAX_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
$(VENV)/.accel: $(VENV)/.installed
	printf '[build_ext]\nparallel = %s\n' $(MAX_JOBS) > $(VENV)/build_ext.cfg
	MAX_JOBS=$(MAX_JOBS) DIST_EXTRA_CONFIG=$(abspath $(VENV))/build_ext.cfg \
		$(PIP) install --no-build-isolation torch-scatter torch-cluster
	touch $@

$(VENV)/.ruff: $(VENV)/bin/python
	$(PIP) install --quiet "$(RUFF_SPEC)"
	touch $@

venv: $(VENV)/.installed

accel: $(VENV)/.accel

train: $(VENV)/.installed
	$(PY) -m torch_geometric_remul train $(TRAIN_ARGS)

demo: $(VENV)/.installed
	$(PY) examples/rigid_transforms_vs_pyg.py

test: $(VENV)/.accel $(VENV)/.ruff
	$(PY) -m pytest $(PYTEST_ARGS)

# pycodestyle, pyflakes and import order (ruff.toml); .ci/run runs it after
# the tests.
lint: $(VENV)/.ruff
	$(VENV)/bin/ruff check .

# The whole suite with the accelerators disabled.
test-native: $(VENV)/.installed
	REMUL_FORCE_NATIVE=1 $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.accel
	$(PY) benchmarks/transforms.py
	$(PY) benchmarks/loss.py
	$(PY) benchmarks/models.py

# The paper-table reproduction (docs/results.md): every accuracy benchmark
# and the speed comparison, written to benchmarks/results/. Finished runs
# under runs/bench-*/ are reused, so an interrupted `make results` continues
# where it stopped (runs are reused only when the package code is the same).
# Every accuracy benchmark uses 5 seeds (0-4); JOBS sets how many runs the
# benchmarks train at once (one per core).
JOBS ?= 2
results: $(VENV)/.accel
	$(PY) benchmarks/headline.py --jobs $(JOBS)
	$(PY) benchmarks/data_efficiency.py --jobs $(JOBS)
	$(PY) benchmarks/gravity.py --jobs $(JOBS)
	$(PY) benchmarks/nbody.py --jobs $(JOBS)
	$(PY) benchmarks/beta_sweep.py --jobs $(JOBS)
	$(PY) benchmarks/md17.py --jobs $(JOBS)
	$(PY) benchmarks/mocap.py --jobs $(JOBS)
	$(PY) benchmarks/paired.py
	$(PY) benchmarks/speed.py

# The documentation site (docs/): Sphinx + myst-parser + furo from the `docs`
# extra, built offline with warnings as errors (nitpicky: every reference to
# this package must resolve). -E re-reads every page, so that a warning is
# never hidden by a cached build. Output: docs/_build/html/index.html.
# Docstring examples run as doctests in `make test`, not here.
$(VENV)/.docs: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.docs
	$(PY) -m sphinx -E -W --keep-going -b html docs docs/_build/html

# Builds the sdist and wheel, checks them (twine check, the suite collected
# from the sdist) and runs the README and a 1-epoch `remul train` with the
# wheel installed in a fresh virtual environment (.ci/check_dist.sh; about
# 2 minutes once pip's cache holds torch).
check-dist: $(VENV)/.installed
	TORCH_SPEC="$(TORCH_SPEC)" .ci/check_dist.sh $(PY)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache build dist
