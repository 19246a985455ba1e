#!/bin/sh
# The relaxed-SIMD model build against native (issue 11: greedy tokens equal native's default
# kernel, decode >= 0.5x native and >= 1.5x wllama, a short-query embedding <= 2x native), the
# quiet re-run of BENCHMARKS.md's "Token parity at speed" section. About 4 minutes; JSON files in
# bench/results/ (SUFFIX=... names them, default relaxed).
#   PYTHON=/work/venv/bin/python sh bench/web/relaxed_parity.sh
# 1. CPU time, Node (the bench re-runs itself with --experimental-wasm-relaxed-simd): the
#    relaxed build and native, round by round on one core;
# 2. each browser: tokens_match (native default), decode vs native and wllama, embed_ms.
set -eu
cd "$(dirname "$0")/../../web"
s=${SUFFIX:-relaxed}
export PYTHON=${PYTHON:-python3} PYTHONPATH=${PYTHONPATH:-$(cd .. && pwd)}
taskset -c 1 node tools/model-cpu-bench.js --rounds 3 > ../bench/results/model-cpu-bench-$s.json
for b in chromium firefox; do
  node tools/model-bench.js --tokens 16 --browser-name $b > ../bench/results/model-bench-$b-$s.json
done
node -e '
const r = (f) => JSON.parse(require("fs").readFileSync(`../bench/results/${f}`, "utf8"));
const c = r(process.argv[1]);
console.log(`node cpu (${c.wasm_build}): decode ${c.decode_vs_native.toFixed(2)}x native, embed ${c.embed_vs_native.toFixed(2)}x native`);
for (const b of ["chromium", "firefox"]) { const m = r(`model-bench-${b}-${process.argv[2]}.json`);
  console.log(`${b} (${m.wasm_build}): tokens_match ${m.tokens_match}, decode ${m.decode_vs_native.toFixed(2)}x native, ${(m.decode_vs_wllama ?? NaN).toFixed(2)}x wllama, embed ${(m.embed_ms / m.native_embed_ms).toFixed(2)}x native`); }
' "model-cpu-bench-$s.json" "$s"
