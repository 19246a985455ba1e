#!/usr/bin/env node
// The models in headless Chromium against native and wllama (npm @wllama/wllama, llama.cpp
// in wasm) on the same GGUF, single-thread: prints one JSON object.
//   PYTHON=/work/venv/bin/python node tools/model-bench.js [--tokens 32] [--no-wllama] [--browser-name chromium|firefox]
// Keys: embed_ms / native_embed_ms (one short query, medians), first_token_ms,
// prefill_tok_s, decode_tok_s (page-side timings), native_* (quantann.Generator, default
// SIMD), wllama_*, tokens_match (fraction of prompts whose greedy tokens equal native's
// default build), tokens_match_scalar (native scalar: the order the wasm build keeps),
// load_s, model_bytes, wasm_bytes / model_wasm_bytes.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

import { minilm, native, smollm2 } from '../testlib/models.js';
import { startServer } from '../testlib/server.js';
import { runPage } from './run-page.js';

const argv = process.argv.slice(2);
const tokens = Number(argv.includes('--tokens') ? argv[argv.indexOf('--tokens') + 1] : 32);
const browserName = argv.includes('--browser-name') ? argv[argv.indexOf('--browser-name') + 1] : 'chromium';
const PROMPTS = ['The capital of France is', 'def fibonacci(n):', 'Once upon a time, in a small village,',
  'The three primary colours are'];
const TEXTS = ['How do I install a Debian package from a local .deb file?'];
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const emb = minilm(), gen = smollm2();
if (emb.skip || gen.skip) throw new Error(emb.skip || gen.skip);
const dir = mkdtempSync(join(tmpdir(), 'quantann-model-bench-'));
writeFileSync(join(dir, 'cases.json'), JSON.stringify({ texts: TEXTS, prompts: PROMPTS, maxTokens: tokens, repeat: 30 }));
const server = await startServer([`/cases=${dir}`, `/mini=${dirname(emb.path)}`, `/smol=${dirname(gen.path)}`]);
try {
  const nat = native({ op: 'generate', path: gen.path, prompts: PROMPTS, max_tokens: tokens });
  const natScalar = native({ op: 'generate', path: gen.path, prompts: PROMPTS, max_tokens: tokens, scalar: true });
  const natEmb = native({ op: 'embed', path: emb.path, texts: TEXTS, repeat: 30 });
  const url = `${server.url}/model-parity.html?cases=/cases/cases.json&embedder=/mini/${basename(emb.path)}` +
    `&generator=/smol/${basename(gen.path)}${argv.includes('--no-wllama') ? '' : '&wllama=1'}`;
  const r = await runPage(url, { timeout: 1800, browser: browserName });
  if (!r.ok) throw new Error(r.error);
  const match = (ref) => r.tokens.filter((t, i) => JSON.stringify(t) === JSON.stringify(ref.tokens[i])).length / PROMPTS.length;
  const out = {
    browser: browserName, embed_ms: r.embedMs, native_embed_ms: natEmb.ms,
    first_token_ms: med(r.stats.map((s) => s.pageFirstMs)),
    prefill_tok_s: med(r.stats.map((s) => s.prefillTokS)),
    decode_tok_s: med(r.stats.map((s) => s.pageDecodeTokS)),
    native_first_token_ms: med(nat.stats.map((s) => s.first_token_ms)),
    native_decode_tok_s: med(nat.stats.map((s) => s.decode_tok_s)),
    tokens_match: match(nat), tokens_match_scalar: match(natScalar),
    load_s: r.genLoadMs / 1000, model_bytes: statSync(gen.path).size,
    wasm_bytes: statSync(new URL('../dist/quantann.wasm', import.meta.url)).size,
    model_wasm_bytes: statSync(new URL('../dist/quantann-model.wasm', import.meta.url)).size,
  };
  if (r.wllama) {
    out.wllama_first_token_ms = med(r.wllama.runs.map((x) => x.firstMs));
    out.wllama_decode_tok_s = med(r.wllama.runs.map((x) => x.decodeTokS));
    out.wllama_load_s = r.wllama.loadMs / 1000;
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
