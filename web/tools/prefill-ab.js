#!/usr/bin/env node
// Two model wasm files (say main's and this tree's, the same build) in one Node process:
// SmolLM2-135M Q4_1's cold prefill of tools/prefill-timing.js's prompt by each, interleaved
// round by round, timed by this process's CPU time. Prints one JSON object: each side's
// median ms and tok/s and the ratio B / A of their times (median over rounds, range and
// bootstrap 95% interval), and whether both sampled the same first token. A few minutes.
//   taskset -c 1 node --experimental-wasm-relaxed-simd tools/prefill-ab.js A.wasm B.wasm [--rounds 10]
import { Generator } from '../src/generator.js';
import { smollm2 } from '../testlib/models.js';
import { PREFILL_PROMPT, prefillCpuMs } from './prefill-timing.js';
import { bootstrapMedianCI, med } from './stats.js';

const argv = process.argv.slice(2);
const arg = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const files = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1].startsWith('--')));
if (files.length !== 2) { console.error('error: give two model wasm files (A, B)'); process.exit(1); }
const gen = smollm2();
if (gen.skip) { console.error(`error: ${gen.skip}`); process.exit(1); }
const [a, b] = await Promise.all(files.map((f) => Generator.open(gen.path, { wasm: new URL(f, `file://${process.cwd()}/`) })));
const first = async (g) => { g.forget(); return (await g.generate(PREFILL_PROMPT, { maxTokens: 1, temperature: 0 })).tokens[0]; };
const sameToken = (await first(a)) === (await first(b)); // also the warm-up
const tokens = a.tokenize(PREFILL_PROMPT).length, rounds = Number(arg('--rounds', 10));
const ta = [], tb = [], ratios = [];
for (let r = 0; r < rounds; r++) { // alternate which side runs first
  if (r % 2) tb.push(await prefillCpuMs(b)), ta.push(await prefillCpuMs(a));
  else ta.push(await prefillCpuMs(a)), tb.push(await prefillCpuMs(b));
  ratios.push(tb.at(-1) / ta.at(-1));
}
console.log(JSON.stringify({
  a: files[0], b: files[1], builds: [a.info().wasmBuild, b.info().wasmBuild], prompt_tokens: tokens, same_first_token: sameToken,
  a_ms: med(ta), b_ms: med(tb), a_tok_s: tokens / med(ta) * 1000, b_tok_s: tokens / med(tb) * 1000,
  b_over_a: { median: med(ratios), min: Math.min(...ratios), max: Math.max(...ratios), ci95: bootstrapMedianCI(ratios) },
  timing: 'CPU time of this process per prefill (cold, one thread); rounds alternate which file runs first', rounds,
}));
a.close();
b.close();
