#!/usr/bin/env node
// wasm (this Node process, the same module and JS as the page's Worker) against native
// quantann (python -m bench.web.model_cpu_native), interleaved round by round, each side timed by
// its own process's CPU time: SmolLM2-135M Q4_1 greedy decode (ms per token) and one short
// MiniLM Q8_0 query embedding (ms), single thread. Prints one JSON object with per-round
// figures, medians and the wasm/native ratios. About 2-4 minutes on a quiet machine.
//   PYTHON=/work/venv/bin/python node [--experimental-wasm-relaxed-simd] tools/model-cpu-bench.js
//       [--rounds 3] [--tokens 16] [--wasm relaxed,simd128,FILE...]
// --wasm: the model builds to time (src/model.js: 'relaxed', 'simd128', or a .wasm file), each
// round running every one of them then native; default relaxed,simd128 (Node 20 runs relaxed
// SIMD only with --experimental-wasm-relaxed-simd: the bench re-runs itself with it). The
// top-level wasm_* figures are the first build's (the one browsers pick); `builds` has each one's.
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Embedder } from '../src/embedder.js';
import { Generator } from '../src/generator.js';
import { relaxedMaddFused } from '../src/model.js';
import { minilm, smollm2 } from '../testlib/models.js';
import { ROOT } from '../testlib/vectors.js';

const argv = process.argv.slice(2);
const FLAG = '--experimental-wasm-relaxed-simd';
if (!relaxedMaddFused() && !process.execArgv.includes(FLAG)) {
  const r = spawnSync(process.execPath, [FLAG, ...process.execArgv, fileURLToPath(import.meta.url), ...argv], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const arg = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const rounds = Number(arg('--rounds', 3)), tokens = Number(arg('--tokens', 16));
const wasms = (arg('--wasm') || (relaxedMaddFused() ? 'relaxed,simd128' : 'simd128')).split(',').map((w) => (w === 'relaxed' || w === 'simd128' ? w : new URL(w, `file://${process.cwd()}/`)));
const PROMPT = 'Once upon a time, in a small village,', TEXT = 'How do I install a Debian package from a local .deb file?';
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

const emb = minilm(), gen = smollm2();
if (emb.skip || gen.skip) throw new Error(emb.skip || gen.skip);
const contenders = [];
for (const wasm of wasms) {
  const g = await Generator.open(gen.path, { wasm }), e = await Embedder.open(emb.path, { wasm });
  contenders.push({ name: wasm instanceof URL ? wasm.pathname : wasm, g, e, build: g.info().wasmBuild });
}

function wasmRound({ g, e }) {
  const perToken = [];
  return (async () => {
    for (let i = 0; i < 3; i++) { // decode = (prefill + n steps) - (prefill + 1 step)
      const c0 = cpu();
      await g.generate(PROMPT, { maxTokens: 1, temperature: 0 });
      const c1 = cpu();
      await g.generate(PROMPT, { maxTokens: tokens + 1, temperature: 0 });
      perToken.push(((cpu() - c1) - (c1 - c0)) / tokens);
    }
    for (let i = 0; i < 3; i++) e.embedSync([TEXT]);
    const ms = [];
    for (let i = 0; i < 20; i++) { const c0 = cpu(); e.embedSync([TEXT]); ms.push(cpu() - c0); }
    return { decode_cpu_ms: med(perToken), embed_cpu_ms: med(ms) };
  })();
}

const nativeRound = () => JSON.parse(execFileSync(process.env.PYTHON || 'python3', ['-m', 'bench.web.model_cpu_native'], {
  cwd: ROOT, input: JSON.stringify({ generator: gen.path, embedder: emb.path, prompt: PROMPT, text: TEXT, tokens, repeat: 3 }),
  stdio: ['pipe', 'pipe', 'inherit'] }));

const runs = [], byBuild = contenders.map(() => []);
for (let r = 0; r < rounds; r++) {
  const ws = [];
  for (const c of contenders) ws.push(await wasmRound(c));
  const n = nativeRound();
  ws.forEach((w, i) => byBuild[i].push({ wasm: w, native: n, decode_ratio: n.decode_cpu_ms / w.decode_cpu_ms, embed_ratio: w.embed_cpu_ms / n.embed_cpu_ms }));
  runs.push(byBuild[0].at(-1));
  process.stderr.write(`round ${r + 1}: ${JSON.stringify(byBuild.map((b) => b.at(-1)))}\n`);
}
contenders.forEach((c) => { c.g.close(); c.e.close(); });
const builds = Object.fromEntries(contenders.map((c, i) => [c.name, {
  build: c.build, wasm_decode_tok_s: 1000 / med(byBuild[i].map((x) => x.wasm.decode_cpu_ms)),
  decode_vs_native: med(byBuild[i].map((x) => x.decode_ratio)), embed_ms: med(byBuild[i].map((x) => x.wasm.embed_cpu_ms)),
  embed_vs_native: med(byBuild[i].map((x) => x.embed_ratio)),
  ratio_spread: { decode: [Math.min(...byBuild[i].map((x) => x.decode_ratio)), Math.max(...byBuild[i].map((x) => x.decode_ratio))],
    embed: [Math.min(...byBuild[i].map((x) => x.embed_ratio)), Math.max(...byBuild[i].map((x) => x.embed_ratio))] } }]));
const out = {
  wasm_build: contenders[0].build, builds,
  wasm_decode_tok_s: 1000 / med(runs.map((x) => x.wasm.decode_cpu_ms)),
  native_decode_tok_s: 1000 / med(runs.map((x) => x.native.decode_cpu_ms)),
  decode_vs_native: med(runs.map((x) => x.decode_ratio)), // wasm tok/s over native tok/s (target >= 0.5)
  embed_ms: med(runs.map((x) => x.wasm.embed_cpu_ms)),
  native_embed_ms: med(runs.map((x) => x.native.embed_cpu_ms)),
  embed_vs_native: med(runs.map((x) => x.embed_ratio)), // wasm ms over native ms (target <= 2)
  ratio_spread: { decode: [Math.min(...runs.map((x) => x.decode_ratio)), Math.max(...runs.map((x) => x.decode_ratio))],
    embed: [Math.min(...runs.map((x) => x.embed_ratio)), Math.max(...runs.map((x) => x.embed_ratio))] },
  timing: 'CPU time of each process (user + system), medians over rounds', rounds, tokens, runs,
};
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
