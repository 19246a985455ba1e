# make demo : build and search an index of real passages (installs what is missing)
# make test : the whole test suite: Python, Node and headless Chromium (installs what is missing)
# Both install into the project's virtualenv, .venv (scripts/setup.sh), and run from it.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test setup setup-full kernel loadtest fuzz

demo: setup
	$(PY) -m quantann demo

test: setup-full
	$(PY) -m pytest -q
	cd web && PYTHON="$(abspath $(PY))" node --test

setup:
	VENV="$(VENV)" scripts/setup.sh

setup-full:
	VENV="$(VENV)" scripts/setup.sh --full

# make fuzz : libFuzzer targets (ASan + UBSan) for FUZZ_SECONDS each (default 20): docs/FUZZING.md
fuzz: setup
	PYTHON="$(abspath $(PY))" fuzz/run.sh

# rebuild the native kernel after a C change (setup has made .venv)
kernel:
	$(PY) setup.py build_ext --inplace

loadtest:
	$(PY) scripts/loadtest.py
