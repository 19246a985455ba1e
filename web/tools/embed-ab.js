#!/usr/bin/env node
// Two model wasm files (say main's and this tree's, the same build) in one Node process: one
// short MiniLM query embedded by each, interleaved round by round, each call timed by this
// process's CPU time. Prints one JSON object: each side's median ms and the ratio B / A
// (its median over rounds, range and bootstrap 95% interval). About a minute.
//   node --experimental-wasm-relaxed-simd tools/embed-ab.js A.wasm B.wasm [--rounds 10] [--calls 6] [--text "..."]
import { Embedder } from '../src/embedder.js';
import { minilm } from '../testlib/models.js';
import { EMBED_TEXT, embedInterleaved } from './embed-timing.js';

const argv = process.argv.slice(2);
const arg = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const files = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1].startsWith('--')));
if (files.length !== 2) { console.error('error: give two model wasm files (A, B)'); process.exit(1); }
const emb = minilm();
if (emb.skip) { console.error(`error: ${emb.skip}`); process.exit(1); }
const text = arg('--text', EMBED_TEXT);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const [a, b] = await Promise.all(files.map((f) => Embedder.open(emb.path, { wasm: new URL(f, `file://${process.cwd()}/`) })));
const calls = (e) => async (n) => Array.from({ length: n }, () => { const c0 = cpu(); e.embedSync([text]); return cpu() - c0; });
const same = a.embedSync([text])[0].every((x, i) => Object.is(x, b.embedSync([text])[0][i]));
const r = await embedInterleaved(calls(b), calls(a), { rounds: Number(arg('--rounds', 10)), calls: Number(arg('--calls', 6)), warmup: 30 });
console.log(JSON.stringify({
  a: files[0], b: files[1], builds: [a.info().wasmBuild, b.info().wasmBuild], text, equal_vectors: same,
  a_ms: r.native_embed_ms, b_ms: r.embed_ms, b_over_a: r.embed_vs_native, b_over_a_rounds: r.embed_ratio_rounds,
  timing: 'CPU time of this process per call; medians of every warm call',
}));
a.close();
b.close();
