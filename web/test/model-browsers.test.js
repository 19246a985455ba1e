// The models in headless Chromium and Firefox, each in a Worker (web/model-parity.html): the
// relaxed-SIMD build picked (both support it, fused), MiniLM embeddings equal to native scalar
// Python's, SmolLM2 greedy tokens equal to native's default kernel, streamed text, and the
// budget error crossing the Worker by name.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';

import { browserSkip, runPage } from '../tools/run-page.js';
import { minilm, native, smollm2 } from '../testlib/models.js';
import { startServer } from '../testlib/server.js';

const emb = minilm(), gen = smollm2();

const TEXTS = ['How do I install a Debian package from a local .deb file?', 'naïve café — 東京 🙂', 'a'];
const PROMPTS = ['The capital of France is', 'def fibonacci(n):'];
const CHAT = ['What is the capital of France?'];
const MAX_TOKENS = 10;

for (const browser of ['chromium', 'firefox']) {
const skip = browserSkip(browser) || emb.skip || gen.skip || false;
test(`${browser}: the relaxed build; embeddings equal native scalar, greedy tokens native default; a budget error by name; in Workers`, { skip, timeout: 900000 }, async (t) => {
  const ref = native({ op: 'embed', path: emb.path, texts: TEXTS, scalar: true, repeat: 1 });
  const plain = native({ op: 'generate', path: gen.path, prompts: PROMPTS, max_tokens: MAX_TOKENS });
  const chat = native({ op: 'generate', path: gen.path, prompts: CHAT, max_tokens: MAX_TOKENS, chat: true });
  if (ref.skip || plain.skip || chat.skip) return t.skip(ref.skip || plain.skip || chat.skip);
  const dir = mkdtempSync(join(tmpdir(), 'quantann-model-page-'));
  writeFileSync(join(dir, 'cases.json'), JSON.stringify({ texts: TEXTS, prompts: PROMPTS, chat: CHAT, maxTokens: MAX_TOKENS }));
  const server = await startServer([`/cases=${dir}`, `/mini=${dirname(emb.path)}`, `/smol=${dirname(gen.path)}`]);
  try {
    const url = `${server.url}/model-parity.html?cases=/cases/cases.json&embedder=/mini/${basename(emb.path)}&generator=/smol/${basename(gen.path)}`;
    const r = await runPage(url, { browser, timeout: 800, log: () => {} });
    assert.ok(r.ok, r.error);
    assert.ok(r.embedInWorker && r.genInWorker, 'the models run in Workers');
    assert.equal(r.genWasmBuild, 'relaxed', 'the generator runs the relaxed-SIMD build');
    assert.equal(r.embedWasmBuild, 'relaxed', 'the embedder runs the relaxed-SIMD build');
    r.embeddings.forEach((v, i) => assert.deepEqual(v, ref.vectors[i].map(Math.fround), `text ${i}`));
    assert.deepEqual(r.tokens, [...plain.tokens, ...chat.tokens]);
    assert.ok(r.streamedOk, 'the streamed pieces make the text');
    assert.equal(r.budgetError?.name, 'MemoryBudgetError');
    assert.match(r.budgetError.message, /over the budget of 50\.00 MB \(weights 98\.36 MB, KV cache/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
}
