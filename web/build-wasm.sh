#!/bin/sh
# Builds web/dist/quantann.wasm from the kernel's C sources (the same files as the native
# extension) with Debian's clang for wasm32-wasi, SIMD128 and no FMA contraction (so
# float results match the native build bit for bit).
#   apt-get install clang lld wasi-libc libclang-rt-dev-wasm32
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
mkdir -p web/dist
$CC --target=wasm32-wasi -O3 -msimd128 -ffp-contract=off -std=gnu11 \
    -Wall -Wno-unused-function -fno-strict-aliasing \
    -Ikernel -nostartfiles \
    -Wl,--no-entry -Wl,--gc-sections -Wl,--strip-all \
    -Wl,--max-memory=4294967296 -Wl,-z,stack-size=1048576 \
    -o web/dist/quantann.wasm \
    kernel/distance.c kernel/codec/*.c kernel/hnsw.c kernel/rerank.c kernel/index/index.c \
    kernel/gguf/gguf.c kernel/gguf/crc32.c kernel/index/qann.c kernel/wasm/exports.c
ls -l web/dist/quantann.wasm | awk '{print "web/dist/quantann.wasm: " $5 " bytes"}'
