#!/bin/sh
# Builds web/dist/quantann.wasm (the index kernel) and the model kernel (encoder, decoder,
# tokenizers; a second module so that the index one stays small) from the kernel's C
# sources (the same files as the native extension) for wasm32-wasi, SIMD128 and no FMA
# contraction (so float results match the native build bit for bit). The model kernel is
# built twice from the same C:
#   web/dist/quantann-model-relaxed.wasm  relaxed SIMD (clang 19): fused relaxed_madd where
#                                         the native x86 dots fuse;
#   web/dist/quantann-model.wasm          plain SIMD128 (clang 14 is enough): that fma
#                                         emulated exactly in f64x2, for engines without
#                                         relaxed SIMD or with an unfused relaxed_madd;
# the JS loader picks one per process (web/src/model.js).
#   apt-get install clang lld wasi-libc libclang-rt-dev-wasm32 clang-19 lld-19 libclang-rt-19-dev-wasm32
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
CC_RELAXED=${CC_RELAXED:-clang-19}
mkdir -p web/dist
wasm() { # compiler, flags, output, sources...
cc=$1 flags=$2 out=$3
shift 3
$cc --target=wasm32-wasi -O3 -msimd128 $flags -ffp-contract=off -std=gnu11 \
    -Wall -Wno-unused-function -fno-strict-aliasing \
    -Ikernel -nostartfiles \
    -Wl,--no-entry -Wl,--gc-sections -Wl,--strip-all \
    -Wl,--max-memory=4294967296 -Wl,-z,stack-size=1048576 \
    -o "$out" "$@"
ls -l "$out" | awk '{print $9 ": " $5 " bytes"}'
}
wasm "$CC" "" web/dist/quantann.wasm \
    kernel/distance.c kernel/codec/*.c kernel/hnsw.c kernel/rerank.c kernel/index/index.c \
    kernel/gguf/gguf.c kernel/gguf/crc32.c kernel/index/qann.c kernel/wasm/exports.c \
    kernel/text/lexical.c kernel/text/fuse.c
[ "${QUANTANN_WASM:-}" = index ] && exit 0
MODEL_SRC="kernel/model/*.c kernel/model/arch/*.c kernel/model/tokenizer/*.c kernel/model/types/*.c
    kernel/gguf/gguf.c kernel/gguf/crc32.c kernel/simd.c kernel/wasm/model_exports.c"
# shellcheck disable=SC2086 # the globs expand here
wasm "$CC" "" web/dist/quantann-model.wasm $MODEL_SRC
# shellcheck disable=SC2086
wasm "$CC_RELAXED" -mrelaxed-simd web/dist/quantann-model-relaxed.wasm $MODEL_SRC
