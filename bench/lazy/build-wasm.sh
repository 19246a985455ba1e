#!/bin/sh
# Builds bench/web/dist/lazy.wasm: the lazy-loading baseline for the browser benchmark
# (bench/lazy/lazy.c + wasm.c over the index kernel's graph and distance code), with the
# flags of web/build-wasm.sh. Separate from the product's web/dist/quantann.wasm.
set -eu
cd "$(dirname "$0")/../.."
CC=${CC:-clang}
mkdir -p bench/web/dist
$CC --target=wasm32-wasi -O3 -msimd128 -ffp-contract=off -std=gnu11 \
    -Wall -Wno-unused-function -fno-strict-aliasing \
    -Ikernel -Ibench/lazy -nostartfiles \
    -Wl,--no-entry -Wl,--gc-sections -Wl,--strip-all \
    -Wl,--max-memory=4294967296 -Wl,-z,stack-size=1048576 \
    -o bench/web/dist/lazy.wasm \
    kernel/distance.c kernel/codec/*.c kernel/hnsw.c kernel/rerank.c \
    kernel/gguf/gguf.c kernel/gguf/crc32.c kernel/index/qann.c kernel/index/index.c \
    bench/lazy/lazy.c bench/lazy/wasm.c
ls -l bench/web/dist/lazy.wasm | awk '{print "bench/web/dist/lazy.wasm: " $5 " bytes"}'
