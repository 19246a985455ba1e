// One short query's embedding, wasm against native, in interleaved rounds: native is one
// process (bench/web/embed_native.py) that keeps its Embedder open, so each round of the
// caller's calls (a page, or this Node process) and each native round run under the same
// machine load. embedInterleaved returns medians of every warm call, their 10th-90th
// percentiles, the ratio of the 10th percentiles (load only ever adds time, so the fast
// calls of each side are the ones least disturbed), and the ratio per round (its median,
// range and a bootstrap 95% interval): short rounds pair calls made under nearly the same load.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import { ROOT } from '../testlib/vectors.js';
import { bootstrapMedianCI, med, quantile } from './stats.js';

export const EMBED_TEXT = 'How do I install a Debian package from a local .deb file?';

// {tokens, round(n) -> {ms, cpu_ms}, close()}: native's embedder, one thread, default SIMD
export async function nativeEmbedder(path, text = EMBED_TEXT) {
  const proc = spawn(process.env.PYTHON || 'python3', ['-m', 'bench.web.embed_native'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('bench.web.embed_native exited');
    return JSON.parse(value);
  };
  proc.stdin.write(JSON.stringify({ embedder: path, text }) + '\n');
  const { tokens } = await next();
  return {
    tokens,
    round: (n) => { proc.stdin.write(`${n}\n`); return next(); },
    close: () => { proc.stdin.end(); proc.kill(); },
  };
}

// rounds x calls warm calls on each side (default 30 x 2), alternating; ours(n) and theirs(n) resolve to n
// per-call times in ms. Warm-up first: `warmup` calls of ours (the engine's optimizing tier)
// and of theirs.
export async function embedInterleaved(ours, theirs, { rounds = 30, calls = 2, warmup = 20 } = {}) {
  await ours(warmup);
  await theirs(Math.min(warmup, 5));
  const a = [], b = [], ratios = [];
  for (let r = 0; r < rounds; r++) {
    const x = await ours(calls), y = await theirs(calls);
    a.push(...x);
    b.push(...y);
    ratios.push(med(x) / med(y));
  }
  return {
    embed_ms: med(a), native_embed_ms: med(b), embed_vs_native: med(a) / med(b),
    embed_vs_native_p10: quantile(a, 0.1) / quantile(b, 0.1),
    embed_ms_p10_p90: [quantile(a, 0.1), quantile(a, 0.9)], native_embed_ms_p10_p90: [quantile(b, 0.1), quantile(b, 0.9)],
    embed_ratio_rounds: { median: med(ratios), min: Math.min(...ratios), max: Math.max(...ratios), ci95: bootstrapMedianCI(ratios) },
    embed_calls: a.length, embed_rounds: rounds,
  };
}
