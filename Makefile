# make demo : build and search an index of real passages (installs what is missing)
# make test : the whole test suite: Python, Node and headless Chromium
PY ?= python3

.PHONY: demo test setup setup-full kernel loadtest

demo: setup
	$(PY) -m quantann demo

test: setup-full
	$(PY) -m pytest -q
	@if [ -f web/package.json ]; then cd web && node --test; fi

setup:
	scripts/setup.sh

setup-full:
	scripts/setup.sh --full

kernel:
	$(PY) setup.py build_ext --inplace

loadtest:
	$(PY) scripts/loadtest.py
