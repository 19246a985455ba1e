// The conformance corpus (tests/conformance/manifest.json, written by
// tests/conformance/make_index_corpus.py): every bad index file gives its error through
// the same C reader as native Python, compiled to wasm. Model files (kind "model") are
// run here once the browser opens models.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { FormatError, openIndex } from '../src/quantann.js';
import { ROOT, testVectors } from '../testlib/vectors.js';

const DIR = `${ROOT}tests/conformance/`;
const manifest = JSON.parse(readFileSync(`${DIR}manifest.json`, 'utf8'));
testVectors(); // builds the wasm kernel if missing

for (const c of manifest.filter((e) => e.kind === 'index')) {
  test(`${c.file}: ${c.error}`, async () => {
    const bytes = new Uint8Array(readFileSync(DIR + c.file));
    await assert.rejects(openIndex(bytes), (e) => {
      assert.ok(e instanceof FormatError, `${e.name}: ${e.message}`);
      assert.ok(e.message.includes(c.error), e.message);
      return true;
    });
  });
}

test('the corpus base opens and searches', async () => {
  const index = await openIndex(new Uint8Array(readFileSync(`${DIR}index/good.qann`)));
  assert.equal(index.count, 48);
  const q = (await index.store.read(Int32Array.of(3))).vectors;
  const { ids } = await index.search(q, { k: 3 });
  assert.equal(ids[0], 3n * 3n + 5n);
  index.close();
});
