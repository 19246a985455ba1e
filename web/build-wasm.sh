#!/bin/sh
# Builds web/dist/quantann.wasm (the index kernel) and web/dist/quantann-model.wasm (the
# model kernel: encoder, decoder, tokenizers; a second module so that the index one stays
# small) from the kernel's C sources (the same files as the native
# extension) with Debian's clang for wasm32-wasi, SIMD128 and no FMA contraction (so
# float results match the native build bit for bit).
#   apt-get install clang lld wasi-libc libclang-rt-dev-wasm32
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
mkdir -p web/dist
wasm() { # output, sources...
out=$1
shift
$CC --target=wasm32-wasi -O3 -msimd128 -ffp-contract=off -std=gnu11 \
    -Wall -Wno-unused-function -fno-strict-aliasing \
    -Ikernel -nostartfiles \
    -Wl,--no-entry -Wl,--gc-sections -Wl,--strip-all \
    -Wl,--max-memory=4294967296 -Wl,-z,stack-size=1048576 \
    -o "$out" "$@"
ls -l "$out" | awk '{print $9 ": " $5 " bytes"}'
}
wasm web/dist/quantann.wasm \
    kernel/distance.c kernel/codec/*.c kernel/hnsw.c kernel/rerank.c kernel/index/index.c \
    kernel/gguf/gguf.c kernel/gguf/crc32.c kernel/index/qann.c kernel/wasm/exports.c \
    kernel/text/lexical.c kernel/text/fuse.c
[ "${QUANTANN_WASM:-}" = index ] && exit 0
wasm web/dist/quantann-model.wasm \
    kernel/model/*.c kernel/model/arch/*.c kernel/model/tokenizer/*.c kernel/model/types/*.c \
    kernel/gguf/gguf.c kernel/gguf/crc32.c kernel/simd.c kernel/wasm/model_exports.c
