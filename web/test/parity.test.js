// The wasm kernel returns the same ids as native Python, distances within float tolerance.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { openIndex } from '../src/quantann.js';
import { DATA, testVectors } from '../testlib/vectors.js';

const { expected, queries } = testVectors();

for (const [name, exp] of Object.entries(expected)) {
  for (const rerank of [exp.rerank, 0]) {
    test(`${name} rerank=${rerank}: same ids as native`, async () => {
      const index = await openIndex(DATA + exp.file);
      const want = rerank ? exp.ids : exp.graph_ids;
      const wantD = rerank ? exp.distances : exp.graph_distances;
      let same = 0, maxErr = 0;
      for (let i = 0; i < exp.nq; i++) {
        const q = queries.subarray(i * exp.dim, (i + 1) * exp.dim);
        const r = await index.search(q, { k: exp.k, ef: exp.ef, rerank });
        assert.deepEqual(Array.from(r.ids, String), want[i], `query ${i}: ids differ`);
        same++;
        for (let j = 0; j < exp.k; j++) maxErr = Math.max(maxErr, Math.abs(r.distances[j] - wantD[i][j]));
        if (rerank) assert.equal(r.stats.storeReads, 1);
      }
      assert.equal(same, exp.nq);
      assert.equal(maxErr, 0, `distances differ by up to ${maxErr}`); // the same kernel code, bit for bit
      index.close();
    });
  }
}

// sq8 with rerank='auto': the candidates the error bound keeps, read and reranked; the ids,
// distances and rows read equal native's
for (const [name, exp] of Object.entries(expected).filter(([, e]) => e.auto_ids)) {
  test(`${name} rerank=auto: same ids, distances and reads as native`, async () => {
    const index = await openIndex(DATA + exp.file);
    for (let i = 0; i < exp.nq; i++) {
      const r = await index.search(queries.subarray(i * exp.dim, (i + 1) * exp.dim), { k: exp.k, ef: exp.ef, rerank: 'auto' });
      assert.deepEqual(Array.from(r.ids, String), exp.auto_ids[i], `query ${i}: ids differ`);
      assert.deepEqual(Array.from(r.distances), exp.auto_distances[i].map(Math.fround), `query ${i}: distances differ`);
      assert.equal(r.stats.vectorsRead, exp.auto_reads[i], `query ${i}: rows read`);
    }
    index.close();
  });
}

test("each file's default rerank is native's: 'auto' over sq8 (residuals), else 4; search without one uses it", async () => {
  for (const exp of Object.values(expected)) {
    const index = await openIndex(DATA + exp.file);
    assert.equal(index.defaultRerank, exp.default_rerank, exp.file);
    assert.equal(index.defaultRerank === 'auto', exp.quant === 'sq8', exp.file);
    const q = queries.subarray(0, exp.dim);
    const plain = await index.search(q, { k: exp.k, ef: exp.ef });
    const given = await index.search(q, { k: exp.k, ef: exp.ef, rerank: exp.default_rerank });
    assert.deepEqual(plain.ids, given.ids, exp.file);
    assert.equal(plain.stats.vectorsRead, given.stats.vectorsRead, exp.file);
    index.close();
  }
});

test('each file says what native says of its ids: user ids, or numbering and the next id', async () => {
  for (const exp of Object.values(expected)) {
    const index = await openIndex(DATA + exp.file);
    assert.equal(index.hasUserIds, exp.has_user_ids, exp.file);
    assert.equal(index.nextId, exp.next_id, exp.file);
    index.close();
  }
  const edited = expected['sq8-cosine-cells-edited'];
  assert.ok(edited.next_id === 3005 && !edited.has_user_ids); // 3000 built, 5 added, 3 deleted: 3002 rows
});

test('in-memory bytes source and memory store give the same answers', async () => {
  const exp = expected['sq8-cosine'];
  const bytes = readFileSync(DATA + exp.file);
  const index = await openIndex(new Uint8Array(bytes), { store: 'memory' });
  const r = await index.search(queries.subarray(0, exp.dim * 5), { k: exp.k, ef: exp.ef, rerank: exp.rerank });
  for (let i = 0; i < 5; i++) assert.deepEqual(Array.from(r.ids.subarray(i * exp.k, (i + 1) * exp.k), String), exp.ids[i]);
  assert.equal(r.stats.length, 5);
  index.close();
});

test('concurrent searches of one index (each awaiting its store read) give the sequential answers', async () => {
  const exp = expected['sq8-cosine'];
  const index = await openIndex(DATA + exp.file);
  const one = (i) => index.search(queries.subarray(i * exp.dim, (i + 1) * exp.dim), { k: exp.k, ef: exp.ef, rerank: exp.rerank });
  const n = Math.min(exp.nq, 20);
  const together = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  for (let i = 0; i < n; i++) {
    assert.deepEqual(Array.from(together[i].ids, String), exp.ids[i]);
    assert.deepEqual(Array.from(together[i].distances), exp.distances[i]);
  }
  index.close();
});
