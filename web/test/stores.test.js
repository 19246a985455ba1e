// Stores read the ranges the kernel's begin coalesced (the one coalescing, in C) and write
// the rows into the searcher's vectors buffer in wasm memory; a store with read(rows) alone
// still works.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { openIndex, SourceStore } from '../src/quantann.js';
import { openSource } from '../src/source.js';
import { DATA, testVectors } from '../testlib/vectors.js';

const { expected, queries } = testVectors();
const exp = expected['sq8-cosine'];

// Reference: (first, last) runs of ascending rows, split where the gap exceeds `gap` rows.
function runs(rows, gap) {
  const out = [];
  for (const r of rows) {
    if (out.length && r - out[out.length - 1][1] <= gap + 1) out[out.length - 1][1] = r;
    else out.push([r, r]);
  }
  return out;
}

test('close() closes the file the index opened, not a source the caller passed', async () => {
  const index = await openIndex(DATA + exp.file, { store: 'memory' });
  const fh = index.source.fh;
  assert.ok(fh.fd >= 0);
  index.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fh.fd, -1); // Node's FileHandle after close
  const src = await openSource(DATA + exp.file);
  const mine = { name: 'mine', size: src.size, read: (o, n) => src.read(o, n), closed: false, close() { this.closed = true; } };
  const again = await openIndex(mine);
  again.close();
  assert.equal(mine.closed, false);
  await src.close();
});

for (const gap of [0, 3, 40]) {
  test(`maxGap ${gap}: the store is handed begin's ranges and fills wasm memory`, async () => {
    const index = await openIndex(DATA + exp.file);
    const store = new SourceStore(index.source, index.info.vectorsOffset, index.count, index.dim, { maxGap: gap });
    const seen = [];
    const read = store.read.bind(store);
    store.read = async (rows, ranges, into) => {
      const r = await read(rows, ranges, into);
      seen.push({ rows: Array.from(rows), ranges: Array.from(ranges), r, into });
      return r;
    };
    index.store = store;
    const rb = index.dim * 4;
    for (let i = 0; i < 8; i++) {
      const r = await index.search(queries.subarray(i * exp.dim, (i + 1) * exp.dim), { k: exp.k, ef: exp.ef, rerank: exp.rerank });
      assert.deepEqual(Array.from(r.ids, String), exp.ids[i]);
      assert.deepEqual(Array.from(r.distances), exp.distances[i]);
      const { rows, ranges, r: got, into } = seen[i];
      const want = runs(rows, gap);
      assert.deepEqual(ranges, want.flat());
      assert.equal(r.stats.ranges, want.length);
      assert.equal(r.stats.bytesRead, want.reduce((s, [a, b]) => s + (b - a + 1) * rb, 0));
      assert.equal(got.vectors, into, 'the rows land in the buffer they were handed');
      assert.equal(into.buffer, index.kernel.x.memory.buffer, 'that buffer is wasm memory');
    }
    index.close();
  });
}

test('a store with read(rows) alone gives the same answers', async () => {
  const index = await openIndex(DATA + exp.file);
  const inner = index.store;
  index.store = { count: inner.count, dim: inner.dim, read: (rows) => inner.read(rows) };
  for (let i = 0; i < 5; i++) {
    const r = await index.search(queries.subarray(i * exp.dim, (i + 1) * exp.dim), { k: exp.k, ef: exp.ef, rerank: exp.rerank });
    assert.deepEqual(Array.from(r.ids, String), exp.ids[i]);
    assert.deepEqual(Array.from(r.distances), exp.distances[i]);
    assert.equal(r.stats.ranges, r.stats.vectorsRead, 'rows alone: one range per row');
  }
  index.close();
});
