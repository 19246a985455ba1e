// web/ask.html in headless Chromium and Firefox: a question answered in the tab (embedding,
// search, greedy generation in Workers) with the sources and tokens of native ask on the
// scalar kernels (tests/web/ask_native.py); a reload in the same profile reads the index,
// texts and both models from OPFS; errors shown on the page (an index without texts, an
// LLM that does not load, an empty question, a missing file, the memory budget, an
// ambiguous budget, a server that cannot be reached, and in Chromium a full storage quota).
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';

import { browserSkip, launch, runPage } from '../tools/run-page.js';
import { minilm, runNative, smollm2 } from '../testlib/models.js';
import { startServer } from '../testlib/server.js';

const ASK_NATIVE = 'tests/web/ask_native.py';
const emb = minilm(), llm = smollm2();
const QUESTION = 'What is an eschar?', K = 5, MAX_TOKENS = 8;

for (const browser of ['chromium', 'firefox']) {
const skip = browserSkip(browser) || emb.skip || llm.skip || false;
test(`${browser}: ask.html answers as native ask does, from OPFS after a reload, errors on the page`, { skip, timeout: 900000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quantann-ask-page-'));
  const made = runNative(ASK_NATIVE, { op: 'make', dir, model: emb.path });
  const want = made.skip ? made : runNative(ASK_NATIVE, { op: 'ask', index: made.index, llm: llm.path, question: QUESTION, k: K, max_tokens: MAX_TOKENS });
  if (want.skip) {
    rmSync(dir, { recursive: true, force: true });
    return t.skip(want.skip);
  }
  const server = await startServer([`/d=${dir}`, `/mini=${dirname(emb.path)}`, `/smol=${dirname(llm.path)}`]);
  const instance = await launch(browser);
  const page = (q) => runPage(`${server.url}/ask.html?${new URLSearchParams(q)}`, { browser, instance, timeout: 800, log: () => {} });
  const files = { index: '/d/passages.qann', embedder: `/mini/${basename(emb.path)}`, generator: `/smol/${basename(llm.path)}` };
  try {
    for (const run of ['first', 'reload']) {
      const r = await page({ ...files, question: QUESTION, k: K, maxTokens: MAX_TOKENS });
      assert.ok(r.ok, r.error);
      assert.ok(r.inWorker, 'the models run in Workers');
      assert.deepEqual(r.sources.map((s) => [s.row, s.id, s.text, s.fields]), want.sources.map((s) => [s.row, s.id, s.text, s.fields]));
      r.sources.forEach((s, i) => assert.ok(Math.abs(s.distance - want.sources[i].distance) < 1e-6, `distance ${i}`));
      assert.deepEqual(r.promptIds, want.prompt_ids);
      assert.deepEqual(r.tokens, want.tokens);
      assert.equal(r.answer, want.answer);
      const fromOpfs = Object.values(r.cached).every(Boolean);
      assert.equal(fromOpfs, run === 'reload', `${run}: ${JSON.stringify(r.cached)}`);
      t.diagnostic(`${browser} ${run}: ${JSON.stringify(r.timings)}`);
    }
    const bare = await page({ ...files, index: '/d/bare.qann', question: QUESTION });
    assert.match(bare.error, /^error: \/d\/bare\.qann has no texts beside it .*so it has no passages to answer from/);
    const badLlm = await page({ ...files, generator: '/d/passages.qann', question: QUESTION });
    assert.match(badLlm.error, /^error: the LLM \/d\/passages\.qann did not load: /);
    const empty = await page({ ...files, question: '  ' });
    assert.equal(empty.error, 'error: the question is empty');
    const missing = await page({ ...files, index: '/d/nope.qann', question: QUESTION });
    assert.match(missing.error, /^error: the index \/d\/nope\.qann did not load: .*HTTP 404/);
    const budget = await page({ ...files, memoryBudget: '60MB', question: QUESTION });
    assert.match(budget.error, /^error: the LLM .* did not load: .*the model needs .* over the budget of 60\.00 MB \(weights/);
    const ambiguous = await page({ ...files, memoryBudget: '60M', question: QUESTION });
    assert.match(ambiguous.error, /^error: memoryBudget: ambiguous memory size "60M"/);
    const offline = await page({ ...files, generator: 'http://127.0.0.1:9/llm.gguf', question: QUESTION });
    assert.match(offline.error, /^error: the LLM http:\/\/127\.0\.0\.1:9\/llm\.gguf did not load: network error .*could not be reached/);
    if (browser === 'chromium') { // a full storage: the origin's quota set under what it holds (CDP)
      copyFileSync(join(dir, 'passages.qann'), join(dir, 'copy.qann'));
      const cdp = await (await instance.newPage()).createCDPSession();
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin, quotaSize: 1e6 });
      const full = await page({ ...files, index: '/d/copy.qann', question: QUESTION });
      assert.match(full.error, /^error: the index \/d\/copy\.qann did not load: (no room left in this browser's storage|.*quota)/);
    }
  } finally {
    await instance.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
}
