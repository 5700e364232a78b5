# Two commands matter (see README): `make bench` and `make test`. Everything else helps.
# Each target sets up its own virtualenv in .venv (gitignored) from python3 alone.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# How many of the newest commits of main `make bench` covers (commits already benchmarked
# on this machine are skipped). `make bench COMMITS=all` covers the whole history.
COMMITS ?= 5
BASE    ?= main
HEAD    ?= HEAD
FACTOR  ?= 1.2
# asv machine name of the results (default: $ASV_MACHINE, else the host name); PUSH=1 also
# pushes the benchmark-results and gh-pages branches to origin (docs/performance.md).
MACHINE ?=
PUSH    ?=
PORT    ?= 8080
BENCH_ARGS := $(if $(MACHINE),--machine $(MACHINE)) $(if $(filter-out 0,$(PUSH)),--push)

.PHONY: bench publish test lint typecheck unit benchcheck compare preview clean help unasync \
	bench-setup sysdeps-bench sysdeps-test

help:
	@echo "make bench    benchmark the newest $(COMMITS) commits of main with asv, publish html/"
	@echo "make test     the whole test suite (ruff, mypy --strict, pytest incl. load tests)"
	@echo "make compare  BASE=main HEAD=HEAD: benchmark two revisions, print a review report"
	@echo "              (CI: .venv/bin/python tools/asv_compare.py, whose exit 0/1/2 make cannot pass on)"
	@echo "make publish  publish the stored results (html/ and the gh-pages branch), run nothing"
	@echo "make preview  serve html/ on http://127.0.0.1:$(PORT) (this machine only)"
	@echo "make unasync  regenerate the sync client from the async one (after editing it)"
	@echo "make bench-setup  the virtualenv and Debian packages of make bench, nothing run (CI)"

# Debian packages first (python3-venv where ensurepip is missing, valgrind, chromium, ...),
# installed when missing, or one line saying how: benchtools/sysdeps.py.
$(STAMP): pyproject.toml
	@$(PYTHON) -m benchtools sysdeps venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench,load]'
	touch $(STAMP)

sysdeps-bench:
	@$(PYTHON) -m benchtools sysdeps bench

sysdeps-test:
	@$(PYTHON) -m benchtools sysdeps test

bench-setup: sysdeps-bench $(STAMP)

bench: sysdeps-bench $(STAMP)
	$(PY) -m benchtools bench --commits $(COMMITS) $(BENCH_ARGS)

publish: $(STAMP)
	$(PY) -m benchtools publish $(BENCH_ARGS)

test: sysdeps-test lint typecheck unit benchcheck

# actionlint (pinned in pyproject.toml) checks the workflows, their run: blocks with
# shellcheck.
lint: sysdeps-test $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/actionlint

typecheck: $(STAMP)
	$(PY) -m mypy

# The whole suite; it also measures the tools' line coverage (benchtools/, in process;
# pyproject.toml's [tool.coverage]) and fails below 85 %.
unit: sysdeps-test $(STAMP)
	$(PY) -m pytest --cov --cov-report=term

# pganalytics_core/_sync_client.py is generated from _async_client.py (a test checks it).
unasync: $(STAMP)
	$(PY) -m benchtools unasync

# A convenience: make exits 2 whenever a command fails, so "1, a regression" cannot get
# through make. CI runs the command itself (README "Reviewing a pull request").
compare: $(STAMP)
	@$(PY) tools/asv_compare.py --base $(BASE) --head $(HEAD) --factor $(FACTOR) $(COMPARE_ARGS) \
	  || { code=$$?; echo "make compare: asv_compare.py exited $$code (1: a regression, 2: a" \
	  "benchmark failed); make reports any failure as 2: for the exit code itself run" \
	  "$(PY) tools/asv_compare.py --base $(BASE) --head $(HEAD)" >&2; exit $$code; }

# A broken benchmark must not land: asv check, then every benchmark once on this checkout.
benchcheck: sysdeps-test $(STAMP)
	$(VENV)/bin/asv machine --yes > /dev/null
	$(VENV)/bin/asv check --python=same
	$(PY) -m benchtools dry-run

# asv preview would listen on every interface; this serves html/ on 127.0.0.1 only.
preview: $(STAMP)
	$(PY) -m benchtools preview --port $(PORT)

clean:
	rm -rf $(VENV) .asv html
