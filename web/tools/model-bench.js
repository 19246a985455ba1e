#!/usr/bin/env node
// The models in a headless browser against native and wllama (npm @wllama/wllama, llama.cpp
// in wasm) on the same GGUF, single-thread: prints one JSON object.
//   PYTHON=/work/venv/bin/python node tools/model-bench.js [--tokens 32] [--rounds 2] [--no-wllama] [--browser-name chromium|firefox]
//     [--embed-rounds 30] [--embed-only (step 4 alone)]
// One browser profile, five pages:
//   0. the generator opened from its URL (streamed from the network into wasm memory):
//      peak_memory_bytes = the peak of JS heap used + ArrayBuffer backing stores of the page
//      and its Workers (Chromium: CDP Runtime.getHeapUsage every 50 ms through the load) +
//      the wasm memory the model ends with (V8 counts it in neither; wasm memory only grows,
//      so its end size is its peak; the sum is an upper bound of the simultaneous peak);
//      Firefox has no such probe: null, with the reason in peak_memory_note;
//      peak_rss_growth_bytes, in both browsers: the peak resident growth (Linux /proc
//      VmHWM - RSS before) of the one content process that hosts the page and its Workers
//      (tools/process-memory.js; peak_rss_processes lists every process's): an upper bound,
//      as it also holds compiled code, code pages read in (peak_rss_anon_growth_bytes: less
//      those) and allocator slack; the KV cache's pages are not touched by a load;
//   1. the generator opened with an OPFS cache (network -> OPFS + wasm memory): load_s, and
//      peak_memory_caching_bytes and peak_rss_growth_caching_bytes, the same measures;
//   2. the page server restarted on the same origin without the model's directory (every
//      model request fails) and the generator reopened: cached_load_s, cached_from_opfs;
//   3. the prompts `--rounds` times, each prompt in quantann and then in
//      wllama (both open: interleaved): first_token_ms, prefill_tok_s, decode_tok_s (page
//      timings), wllama_*, tokens_match (fraction of prompts whose greedy tokens equal
//      native's default kernel), tokens_match_scalar (native scalar references),
//      decode_vs_wllama with its 95% bootstrap CI (resampling the interleaved pairs), and a
//      one-sided Mann-Whitney p-value that quantann's per-token latencies are the smaller.
//   4. one short query embedded (tools/embed-page.html on a cross-origin isolated server, so
//      timers resolve 5-20 us): after a warm-up of 20 calls (the first timed apart,
//      embed_first_ms), `--embed-rounds` rounds of 2 calls through the Worker, 2 in the page's
//      thread (embed_in_page_ms: the same wasm without the messages) and 2 native calls in one
//      open native process (bench/web/embed_native.py), alternating (tools/embed-timing.js):
//      embed_ms and native_embed_ms are medians of every warm call, embed_vs_native their
//      ratio (embed_vs_native_p10: of the 10th percentiles), embed_ratio_rounds the per-round
//      ratios' median, range and bootstrap 95% CI.
// native decode figures come from a separate process (quantann.Generator, default SIMD), not interleaved.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

import { minilm, native, smollm2 } from '../testlib/models.js';
import { startServer } from '../testlib/server.js';
import { EMBED_TEXT, embedInterleaved, nativeEmbedder } from './embed-timing.js';
import { launch, runPage } from './run-page.js';
import { bootstrapMedianCI, med } from './stats.js';

const argv = process.argv.slice(2);
const arg = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const tokens = Number(arg('--tokens', 32)), rounds = Number(arg('--rounds', 2)), embedRounds = Number(arg('--embed-rounds', 30));
const browserName = arg('--browser-name', 'chromium');
const PROMPTS = ['The capital of France is', 'def fibonacci(n):', 'Once upon a time, in a small village,',
  'The three primary colours are'];

// One-sided Mann-Whitney U test that a's values tend to be smaller than b's: the normal
// approximation with the tie correction (samples here are tens to hundreds of tokens).
function mannWhitneyLess(a, b) {
  const all = [...a.map((v) => [v, 0]), ...b.map((v) => [v, 1])].sort((x, y) => x[0] - y[0]);
  const ranks = new Array(all.length);
  let tie = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1][0] === all[i][0]) j++;
    for (let k = i; k <= j; k++) ranks[k] = (i + j) / 2 + 1;
    const t = j - i + 1;
    tie += t ** 3 - t;
    i = j + 1;
  }
  const n1 = a.length, n2 = b.length, n = n1 + n2;
  const r1 = all.reduce((acc, x, i) => acc + (x[1] === 0 ? ranks[i] : 0), 0);
  const u = r1 - n1 * (n1 + 1) / 2;
  const sd = Math.sqrt(n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1))));
  const z = (u - n1 * n2 / 2 + 0.5) / sd; // continuity-corrected; small U = a smaller
  return { u, p: 0.5 * erfc(-z / Math.SQRT2) };
}

function erfc(x) { // Numerical Recipes' erfcc (relative error < 1.2e-7)
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const r = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// the page server on `port` (retried while the one before it lets the port go)
async function serve(args) {
  for (let i = 0; ; i++) {
    try {
      return await startServer(args);
    } catch (e) {
      if (i >= 20) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

// Step 4: its own isolated page server; the page's rounds (Worker, then this thread) and
// native's alternate.
async function embedBench(instance, path) {
  const iso = await serve(['--port', String(await freePort()), '--isolated', `/mini=${dirname(emb.path)}`]);
  const nat = await nativeEmbedder(emb.path, EMBED_TEXT);
  const page = await instance.newPage();
  try {
    page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
    await page.goto(`${iso.url}/tools/embed-page.html?embedder=${path}`);
    await page.waitForFunction(() => window.quantannResult !== undefined, { timeout: 300000, polling: 200 });
    const ready = await page.evaluate(() => window.quantannResult);
    if (!ready.ok) throw new Error(`embed page: ${ready.error}`);
    const calls = (n, where) => page.evaluate((t, k, w) => window.embedCalls(t, k, w), EMBED_TEXT, n, where);
    const first = await calls(1, 'worker');
    await calls(5, 'page');
    const inPage = [];
    const res = await embedInterleaved(async (n) => {
      const ms = await calls(n, 'worker');
      inPage.push(...await calls(n, 'page'));
      return ms;
    }, async (n) => (await nat.round(n)).ms, { rounds: embedRounds });
    return { ...res, embed_first_ms: first[0], embed_in_page_ms: med(inPage), embed_tokens: nat.tokens,
      embed_page_isolated: ready.isolated, embed_worker: ready.inWorker };
  } finally {
    await page.close().catch(() => {});
    nat.close();
    iso.close();
  }
}

const embedOnly = argv.includes('--embed-only');
const emb = minilm(), gen = embedOnly ? {} : smollm2();
if (emb.skip || gen.skip) throw new Error(emb.skip || gen.skip);
if (embedOnly) { // step 4 alone (~1-2 minutes)
  const browser = await launch(browserName);
  try {
    process.stdout.write(JSON.stringify({ browser: browserName, ...await embedBench(browser, `/mini/${basename(emb.path)}`) }, null, 1) + '\n');
  } finally {
    await browser.close();
  }
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'quantann-model-bench-'));
const prompts = Array.from({ length: rounds }, () => PROMPTS).flat();
writeFileSync(join(dir, 'cases.json'), JSON.stringify({ prompts, maxTokens: tokens }));
const port = await freePort();
const mounts = (withModel) => ['--port', String(port), `/cases=${dir}`, `/mini=${dirname(emb.path)}`,
  ...(withModel ? [`/smol=${dirname(gen.path)}`] : [])];
let server = await serve(mounts(true));
const browser = await launch(browserName, { network: false }); // no DevTools copies of the responses in the memory measured
try {
  const nat = native({ op: 'generate', path: gen.path, prompts: PROMPTS, max_tokens: tokens });
  const natScalar = native({ op: 'generate', path: gen.path, prompts: PROMPTS, max_tokens: tokens, scalar: true });
  const smol = `/smol/${basename(gen.path)}`, cache = 'model-bench.gguf';
  // 0. network -> wasm memory, memory sampled through the load
  const plain = await runPage(`${server.url}/model-parity.html?cases=/cases/cases.json&generator=${smol}&reopen=1`,
    { browser: browserName, instance: browser, timeout: 900, sampleMemory: 50, rss: true });
  if (!plain.ok) throw new Error(plain.error);
  // 1. network -> OPFS + wasm memory, memory sampled through the load
  const first = await runPage(`${server.url}/model-parity.html?cases=/cases/cases.json&generator=${smol}&cache=${cache}&reopen=1`,
    { browser: browserName, instance: browser, timeout: 900, sampleMemory: 50, rss: true });
  if (!first.ok) throw new Error(first.error);
  // 2. the model unreachable: reopened from OPFS
  server.close();
  server = await serve(mounts(false));
  const cached = await runPage(`${server.url}/model-parity.html?cases=/cases/cases.json&generator=${smol}&cache=${cache}&reopen=1`,
    { browser: browserName, instance: browser, timeout: 900 });
  if (!cached.ok) throw new Error(`cached reload with the model unreachable: ${cached.error}`);
  server.close();
  server = await serve(mounts(true));
  // 3. parity and speed, interleaved with wllama
  const url = `${server.url}/model-parity.html?cases=/cases/cases.json` +
    `&generator=${smol}${argv.includes('--no-wllama') ? '' : '&wllama=1'}`;
  const r = await runPage(url, { browser: browserName, instance: browser, timeout: 3600 });
  if (!r.ok) throw new Error(r.error);
  // 4. the embedding, interleaved with native
  const embed = await embedBench(browser, `/mini/${basename(emb.path)}`);
  const match = (ref) => r.tokens.filter((t, i) => JSON.stringify(t) === JSON.stringify(ref.tokens[i % PROMPTS.length])).length / r.tokens.length;
  const memory = plain._memory, kv = first.genMemory?.['KV cache'];
  const peak = (page) => (page._memory?.samples && page.genWasmMemoryBytes ? page._memory.peakSum + page.genWasmMemoryBytes : null);
  const out = {
    browser: browserName, rounds, tokens, ...embed,
    first_token_ms: med(r.stats.map((s) => s.pageFirstMs)),
    prefill_tok_s: med(r.stats.map((s) => s.prefillTokS)),
    decode_tok_s: med(r.stats.map((s) => s.pageDecodeTokS)),
    native_first_token_ms: med(nat.stats.map((s) => s.first_token_ms)),
    native_decode_tok_s: med(nat.stats.map((s) => s.decode_tok_s)),
    tokens_match: match(nat), tokens_match_scalar: match(natScalar),
    load_s: first.genLoadMs / 1000, cached_load_s: cached.genLoadMs / 1000, cached_from_opfs: cached.genLoaded?.fromCache ?? null,
    model_bytes: statSync(gen.path).size, kv_cache_bytes: kv ?? null,
    wasm_memory_bytes: first.genWasmMemoryBytes ?? null,
    peak_memory_bytes: peak(plain), peak_memory_caching_bytes: peak(first),
    wasm_bytes: statSync(new URL('../dist/quantann.wasm', import.meta.url)).size,
    model_wasm_bytes: statSync(new URL('../dist/quantann-model.wasm', import.meta.url)).size,
    model_wasm_relaxed_bytes: statSync(new URL('../dist/quantann-model-relaxed.wasm', import.meta.url)).size,
    wasm_build: r.genWasmBuild ?? null, embed_wasm_build: r.embedWasmBuild ?? null, // src/model.js's pick
  };
  out.decode_vs_native = out.decode_tok_s / out.native_decode_tok_s;
  out.peak_rss_growth_bytes = plain._rss?.bytes ?? null;
  out.peak_rss_growth_caching_bytes = first._rss?.bytes ?? null;
  out.peak_rss_anon_growth_bytes = plain._rss?.anonBytes ?? null; // less the browser's code pages read in
  out.peak_rss_anon_growth_caching_bytes = first._rss?.anonBytes ?? null;
  if (kv != null) {
    const over = (bytes) => (bytes == null ? null : bytes / (out.model_bytes + kv));
    out.peak_rss_growth_over_model_kv = over(out.peak_rss_growth_bytes);
    out.peak_rss_growth_caching_over_model_kv = over(out.peak_rss_growth_caching_bytes);
    // like for like with the target's wasm memory: a load leaves the KV cache's pages untouched
    // (not resident), so they are added as if a full context had touched them
    const withKv = (bytes) => (bytes == null ? null : over(bytes + kv));
    out.peak_rss_with_kv_over_model_kv = withKv(out.peak_rss_growth_bytes);
    out.peak_rss_anon_with_kv_over_model_kv = withKv(out.peak_rss_anon_growth_bytes);
    out.peak_rss_anon_with_kv_caching_over_model_kv = withKv(out.peak_rss_anon_growth_caching_bytes);
  }
  const rssList = (r) => r._rss?.processes.filter((p) => p.growth > 1 << 20).map((p) => ({ ...p, host: p.pid === r._rss.host }));
  out.peak_rss_processes = { plain: rssList(plain), caching: rssList(first) };
  if (out.peak_memory_bytes != null) {
    out.peak_memory_js_bytes = memory.peakSum; // JS heap used + ArrayBuffers, page + Workers
    out.peak_memory_js_heap_bytes = memory.peakHeapUsed;
    out.memory_samples = memory.samples;
    out.peak_memory_over_model_kv = out.peak_memory_bytes / (out.model_bytes + kv);
    if (out.peak_memory_caching_bytes != null) out.peak_memory_caching_over_model_kv = out.peak_memory_caching_bytes / (out.model_bytes + kv);
  } else {
    out.peak_memory_note = browserName === 'firefox'
      ? 'unavailable: Firefox offers no heap or ArrayBuffer usage over WebDriver BiDi, and no performance.measureUserAgentSpecificMemory()'
      : 'no samples';
  }
  if (r.wllama) {
    const w = r.wllama.runs;
    out.wllama_first_token_ms = med(w.map((x) => x.firstMs));
    out.wllama_decode_tok_s = med(w.map((x) => x.decodeTokS));
    out.wllama_load_s = r.wllama.loadMs / 1000;
    const pairs = w.map((x, i) => r.stats[i].pageDecodeTokS / x.decodeTokS); // interleaved: prompt i in both
    out.decode_vs_wllama = med(pairs);
    out.decode_vs_wllama_ci95 = bootstrapMedianCI(pairs);
    out.decode_vs_wllama_pairs = pairs.length;
    const ours = r.stats.flatMap((s) => s.tokenMs), theirs = w.flatMap((x) => x.tokenMs);
    out.token_ms_median = med(ours);
    out.wllama_token_ms_median = med(theirs);
    out.mannwhitney_p_faster_than_wllama = mannWhitneyLess(ours, theirs).p;
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
} finally {
  server.close();
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}
