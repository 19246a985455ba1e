#!/usr/bin/env node
// wasm (this Node process, the same module and JS as the page's Worker) against native
// quantann (python -m bench.web.model_cpu_native), interleaved round by round, each side timed by
// its own process's CPU time: SmolLM2-135M Q4_1 greedy decode (ms per token) and one short
// MiniLM Q8_0 query embedding (ms), single thread. Prints one JSON object with per-round
// figures, medians and the wasm/native ratios. About 2-4 minutes on a quiet machine.
//   PYTHON=/work/venv/bin/python node tools/model-cpu-bench.js [--rounds 3] [--tokens 16] [--wasm FILE]
import { execFileSync } from 'node:child_process';

import { Embedder } from '../src/embedder.js';
import { Generator } from '../src/generator.js';
import { relaxedMaddFused } from '../src/model.js';
import { minilm, smollm2 } from '../testlib/models.js';
import { ROOT } from '../testlib/vectors.js';

const argv = process.argv.slice(2);
// The model build the browsers pick (src/model.js): Node 20 runs relaxed SIMD only with
// --experimental-wasm-relaxed-simd, so the bench re-runs itself with it (--wasm FILE still
// picks a build: dist/quantann-model.wasm is the plain SIMD128 fallback).
if (!relaxedMaddFused() && !process.execArgv.includes('--experimental-wasm-relaxed-simd')) {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', ...process.execArgv, new URL(import.meta.url).pathname, ...argv], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const arg = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const rounds = Number(arg('--rounds', 3)), tokens = Number(arg('--tokens', 16));
const wasm = arg('--wasm') ? new URL(arg('--wasm'), `file://${process.cwd()}/`) : undefined;
const PROMPT = 'Once upon a time, in a small village,', TEXT = 'How do I install a Debian package from a local .deb file?';
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

const emb = minilm(), gen = smollm2();
if (emb.skip || gen.skip) throw new Error(emb.skip || gen.skip);
const g = await Generator.open(gen.path, { wasm }), e = await Embedder.open(emb.path, { wasm });

function wasmRound() {
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

const runs = [];
for (let r = 0; r < rounds; r++) {
  const w = await wasmRound(), n = nativeRound();
  runs.push({ wasm: w, native: n, decode_ratio: n.decode_cpu_ms / w.decode_cpu_ms, embed_ratio: w.embed_cpu_ms / n.embed_cpu_ms });
  process.stderr.write(`round ${r + 1}: ${JSON.stringify(runs.at(-1))}\n`);
}
g.close();
e.close();
const out = {
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
out.wasm_build = e.info().wasmBuild; // 'relaxed' or 'simd128'
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
