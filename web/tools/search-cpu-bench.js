#!/usr/bin/env node
// The wasm graph search (this Node process, the same module and JS as the page's Worker)
// against native quantann (python -m bench.web.search_cpu_native), on the same minilm-100k
// sq8 index (rows in the cells order by default) and the same queries, interleaved round by
// round, each side timed by its own process's CPU time: the graph search alone (rerank 0:
// here the kernel's begin + finish per query with one copy of the query in, as native's one
// batch call does) and the whole query through Index.search (rerank from the vectors in
// memory: no store cost on either side, the JS host's own per-query cost included).
// Prints one JSON object: per-round figures, medians, the wasm/native ratios and their
// spread, and whether the ids equal native's. About 1-2 minutes on a quiet machine:
//   cd web && PYTHON=/work/venv/bin/python taskset -c 1 node tools/search-cpu-bench.js [--rounds 5]
//     [--passes 3] [--nq 1000] [--ef 64] [--rerank 4] [--row-order cells|none] [--wasm FILE]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { SEARCH_PARAMS, SEARCH_STATS } from '../src/kernel.js';
import { openIndex } from '../src/quantann.js';
import { ROOT } from '../testlib/vectors.js';

const argv = process.argv.slice(2);
const arg = (key, d) => (argv.includes(key) ? argv[argv.indexOf(key) + 1] : d);
const rounds = Number(arg('--rounds', 5)), passes = Number(arg('--passes', 3)), nq = Number(arg('--nq', 1000));
const k = 10, ef = Number(arg('--ef', 64)), rerank = Number(arg('--rerank', 4)), rowOrder = arg('--row-order', 'cells');
const wasm = arg('--wasm') ? new URL(arg('--wasm'), `file://${process.cwd()}/`) : undefined;
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const spread = (a) => [Math.min(...a), Math.max(...a)];
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

const native = (req) => JSON.parse(execFileSync(process.env.PYTHON || 'python3', ['-m', 'bench.web.search_cpu_native'], {
  cwd: ROOT, input: JSON.stringify(req), stdio: ['pipe', 'pipe', 'inherit'], maxBuffer: 1 << 28 }));

const tmp = mkdtempSync(join(tmpdir(), 'search-cpu-bench-'));
const qpath = join(tmp, 'queries.f32');
const prep = native({ prepare: true, quant: 'sq8', row_order: rowOrder, nq, queries_out: qpath });
const b = readFileSync(qpath);
const Q = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
process.on('exit', () => rmSync(tmp, { recursive: true })); // the native rounds read the queries file
const index = await openIndex(prep.index, { store: 'memory', wasm });

const sameIds = (ids, want) => { // fraction of queries whose k ids equal native's
  let same = 0;
  for (let i = 0; i < want.length; i++) same += want[i].every((v, j) => BigInt(v) === ids[i * k + j]);
  return same / want.length;
};

// The graph search alone: begin + finish (rerank 0) per query over the index's kernel and
// one searcher, the query copied in once (what Index.search does, without its JS bookkeeping).
function graphPass(rows) {
  const K = index.kernel, x = K.x, s = index._borrow(), d = prep.dim;
  const pp = K.alloc(Uint8Array, SEARCH_PARAMS.bytes + SEARCH_STATS.bytes), orp = K.alloc(Int32Array, k), odp = K.alloc(Float32Array, k);
  K.writeStruct(SEARCH_PARAMS, pp, { k, ef, rerank: 0, max_gap: 0 });
  const qp = x.qa_wasm_searcher_query(s), ms = [];
  for (let i = 0; i < prep.nq; i++) {
    K.view(Float32Array, qp, d).set(Q.subarray(i * d, (i + 1) * d));
    const t0 = performance.now();
    if (x.qa_wasm_search_begin(s, pp) < 0 || x.qa_wasm_search_finish(s, orp, odp, pp + SEARCH_PARAMS.bytes) < 0)
      throw new Error(K.string(x.qa_wasm_searcher_error(s)));
    ms.push(performance.now() - t0);
    if (rows) rows.set(K.view(Int32Array, orp, k), i * k);
  }
  for (const p of [pp, orp, odp]) K.free(p);
  index.idle.push(s);
  return ms;
}

async function wasmRound() {
  const out = {}, rows = new Int32Array(prep.nq * k);
  const timed = async (pass) => {
    const perQuery = [];
    for (let p = 0; p < passes; p++) {
      const c0 = cpu();
      await pass();
      perQuery.push((cpu() - c0) / prep.nq);
    }
    return med(perQuery);
  };
  graphPass(null); // warm-up
  let wall;
  out.graph_cpu_ms = await timed(() => { wall = graphPass(rows); });
  out.graph_ms = med(wall);
  out.graph_ids = BigUint64Array.from(rows, (r) => (index.ids ? index.ids[r] : BigInt(r)));
  await index.search(Q.subarray(0, 100 * prep.dim), { k, ef, rerank }); // warm-up
  let res;
  out.whole_cpu_ms = await timed(async () => { res = await index.search(Q, { k, ef, rerank }); });
  out.ids = res.ids;
  return out;
}

const runs = [];
let match;
for (let r = 0; r < rounds; r++) {
  const w = await wasmRound();
  const n = native({ index: prep.index, queries: qpath, nq: prep.nq, k, ef, rerank, passes });
  match ??= { graph_ids_match: sameIds(w.graph_ids, n.graph_ids), ids_match: sameIds(w.ids, n.ids) };
  for (const o of [w, n]) { delete o.graph_ids; delete o.ids; }
  runs.push({ wasm: w, native: n, graph_ratio: w.graph_cpu_ms / n.graph_cpu_ms, whole_ratio: w.whole_cpu_ms / n.whole_cpu_ms,
    load: loadavg()[0] });
  process.stderr.write(`round ${r + 1}: ${JSON.stringify(runs.at(-1))}\n`);
}
index.close();

const col = (f) => runs.map(f);
const out = {
  index: prep.index, queries: prep.nq, k, ef, rerank,
  wasm_graph_cpu_ms: med(col((x) => x.wasm.graph_cpu_ms)), native_graph_cpu_ms: med(col((x) => x.native.graph_cpu_ms)),
  graph_vs_native: med(col((x) => x.graph_ratio)), // wasm over native, CPU time (target <= 1.3)
  wasm_whole_cpu_ms: med(col((x) => x.wasm.whole_cpu_ms)), native_whole_cpu_ms: med(col((x) => x.native.whole_cpu_ms)),
  whole_vs_native: med(col((x) => x.whole_ratio)),
  ratio_spread: { graph: spread(col((x) => x.graph_ratio)), whole: spread(col((x) => x.whole_ratio)) },
  kernel_ms: med(col((x) => x.wasm.graph_ms)), native_graph_ms: med(col((x) => x.native.graph_ms)), // wall, per query: begin + finish / begin
  ...match, wasm_bytes: statSync(wasm ?? new URL('../dist/quantann.wasm', import.meta.url)).size,
  timing: 'CPU time of each process (user + system) per query, median of passes, then of rounds; kernel_ms: wall',
  rounds, passes, load: col((x) => x.load), runs,
};
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
