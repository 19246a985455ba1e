#!/usr/bin/env node
// wasm (this Node process, the same module and JS as the page's Worker) against native
// quantann (python -m bench.web.model_cpu_native), interleaved round by round, each side timed by
// its own process's CPU time: SmolLM2-135M Q4_1 greedy decode (ms per token), its cold prefill of
// a ~280-token prompt (tools/prefill-timing.js, tok/s) and one short MiniLM Q8_0 query
// embedding (ms), single thread. Prints one JSON object with per-round
// figures, medians and the wasm/native ratios. About 2-4 minutes on a quiet machine.
// The embedding: --embed-rounds x 2 warm calls on each side after a warm-up, alternating with
// one native process that keeps its embedder open (tools/embed-timing.js); --embed-only skips
// decoding (under a minute).
//   PYTHON=/work/venv/bin/python node tools/model-cpu-bench.js [--rounds 3] [--tokens 16] [--embed-rounds 30] [--embed-only] [--wasm FILE]
import { execFileSync } from 'node:child_process';

import { Embedder } from '../src/embedder.js';
import { Generator } from '../src/generator.js';
import { relaxedMaddFused } from '../src/model.js';
import { minilm, smollm2 } from '../testlib/models.js';
import { ROOT } from '../testlib/vectors.js';
import { EMBED_TEXT, embedInterleaved, nativeEmbedder } from './embed-timing.js';
import { PREFILL_PROMPT, prefillCpuMs } from './prefill-timing.js';
import { med } from './stats.js';

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
const rounds = argv.includes('--embed-only') ? 0 : Number(arg('--rounds', 3)), tokens = Number(arg('--tokens', 16));
const embedRounds = Number(arg('--embed-rounds', 30));
const wasm = arg('--wasm') ? new URL(arg('--wasm'), `file://${process.cwd()}/`) : undefined;
const PROMPT = 'Once upon a time, in a small village,';
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

const emb = minilm(), gen = rounds ? smollm2() : {};
if (emb.skip || gen.skip) throw new Error(emb.skip || gen.skip);
const g = rounds ? await Generator.open(gen.path, { wasm }) : null, e = await Embedder.open(emb.path, { wasm });

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
    const prefill = [await prefillCpuMs(g), await prefillCpuMs(g)];
    return { decode_cpu_ms: med(perToken), prefill_cpu_ms: Math.min(...prefill) };
  })();
}

const nativeRound = () => JSON.parse(execFileSync(process.env.PYTHON || 'python3', ['-m', 'bench.web.model_cpu_native'], {
  cwd: ROOT, input: JSON.stringify({ generator: gen.path, prompt: PROMPT, tokens, repeat: 3, prefill_prompt: PREFILL_PROMPT }),
  stdio: ['pipe', 'pipe', 'inherit'] }));

const runs = [], prefillTokens = g ? g.tokenize(PREFILL_PROMPT).length : 0;
for (let r = 0; r < rounds; r++) {
  const w = await wasmRound(), n = nativeRound();
  runs.push({ wasm: w, native: n, decode_ratio: n.decode_cpu_ms / w.decode_cpu_ms, prefill_ratio: n.prefill_cpu_ms / w.prefill_cpu_ms });
  process.stderr.write(`round ${r + 1}: ${JSON.stringify(runs.at(-1))}\n`);
}
g?.close();
// embed_vs_native: wasm ms over native ms of every warm call (target <= 2)
const nat = await nativeEmbedder(emb.path, EMBED_TEXT);
const cpuCalls = async (n) => Array.from({ length: n }, () => { const c0 = cpu(); e.embedSync([EMBED_TEXT]); return cpu() - c0; });
const embed = await embedInterleaved(cpuCalls, async (n) => (await nat.round(n)).cpu_ms, { rounds: embedRounds });
nat.close();
e.close();
const out = {
  ...(rounds ? {
    wasm_decode_tok_s: 1000 / med(runs.map((x) => x.wasm.decode_cpu_ms)),
    native_decode_tok_s: 1000 / med(runs.map((x) => x.native.decode_cpu_ms)),
    decode_vs_native: med(runs.map((x) => x.decode_ratio)), // wasm tok/s over native tok/s (target >= 0.5)
    prefill_tokens: prefillTokens,
    wasm_prefill_tok_s: prefillTokens / med(runs.map((x) => x.wasm.prefill_cpu_ms)) * 1000,
    native_prefill_tok_s: prefillTokens / med(runs.map((x) => x.native.prefill_cpu_ms)) * 1000,
    prefill_vs_native: med(runs.map((x) => x.prefill_ratio)), // wasm tok/s over native tok/s
    ratio_spread: { decode: [Math.min(...runs.map((x) => x.decode_ratio)), Math.max(...runs.map((x) => x.decode_ratio))],
      prefill: [Math.min(...runs.map((x) => x.prefill_ratio)), Math.max(...runs.map((x) => x.prefill_ratio))] },
  } : {}),
  ...embed, embed_tokens: nat.tokens,
  timing: 'CPU time of each process (user + system); decode: medians over rounds; prefill: the faster of 2 cold prefills per round, medians over rounds; embed: medians of every warm call', rounds, tokens, runs,
};
out.wasm_build = e.info().wasmBuild; // 'relaxed' or 'simd128'
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
