// Stores read the ranges the kernel's begin coalesced (the one coalescing, in C) and write
// the rows into the searcher's vectors buffer in wasm memory; a store with read(rows) alone
// still works.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { openIndex, SourceStore } from '../src/quantann.js';
import { openSource } from '../src/source.js';
import { OPFSSyncStore } from '../src/opfs-sync.js';
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

// The whole query in one synchronous call (searchSync, as in the index Worker): the OPFS
// store reads each of begin's ranges with one read(view, {at}) straight into the searcher's
// vectors buffer in wasm memory; a range with gap rows is read there too and compacted,
// or, when its span does not fit, into a scratch buffer. Here over a stand-in for the sync
// access handle that serves the index file's vectors and records every call.
function fakeHandle(bytes, offset) {
  const calls = [];
  return { calls, closed: false,
    read(view, { at }) { calls.push({ at, n: view.length, buffer: view.buffer }); view.set(bytes.subarray(offset + at, offset + at + view.length)); return view.length; },
    close() { this.closed = true; } };
}

for (const [name, gap] of [['sq8-cosine', 0], ['sq8-cosine-cells', 8], ['sq8-cosine-cells', 64]]) {
  test(`searchSync + OPFSSyncStore.readInto (${name}, maxGap ${gap}): native's ids and distances, one read per range into wasm memory`, async () => {
    const e = expected[name];
    const index = await openIndex(DATA + e.file, { store: 'memory' });
    const bytes = readFileSync(DATA + e.file);
    const h = fakeHandle(bytes, index.info.vectorsOffset);
    const store = OPFSSyncStore.over(h, { count: index.count, dim: index.dim }, 'test');
    store.maxGap = gap;
    index.store = store;
    const rb = index.dim * 4, mem = index.kernel.x.memory;
    let gapped = 0, scratch = 0;
    for (let i = 0; i < e.nq; i++) {
      h.calls.length = 0;
      const r = index.searchSync(queries.subarray(i * e.dim, (i + 1) * e.dim), { k: e.k, ef: e.ef, rerank: e.rerank });
      assert.deepEqual(Array.from(r.ids, String), e.ids[i], `query ${i}`);
      assert.deepEqual(Array.from(r.distances), e.distances[i], `query ${i}`);
      assert.equal(h.calls.length, r.stats.ranges, 'one read call per range');
      assert.equal(r.stats.bytesRead, h.calls.reduce((s, c) => s + c.n, 0));
      gapped += r.stats.bytesRead > r.stats.vectorsRead * rb;
      for (const c of h.calls) if (c.buffer !== mem.buffer) scratch++;
    }
    if (gap === 0) assert.equal(scratch, 0, 'every read lands in wasm memory');
    if (gap > 0) assert.ok(gapped > 0, 'some ranges were read across gap rows');
    if (gap === 64) assert.ok(scratch > 0, 'a wide span went through the scratch buffer');
    store.close();
    assert.ok(h.closed);
    assert.throws(() => index.searchSync(queries.subarray(0, e.dim), { k: e.k }), /OPFS test\.f32: the store is closed/);
    index.close();
  });
}

test('searchSync needs a synchronous store', async () => {
  const index = await openIndex(DATA + exp.file);
  assert.throws(() => index.searchSync(queries.subarray(0, exp.dim)), /searchSync needs a store that reads synchronously/);
  index.close();
  assert.throws(() => index.searchSync(queries.subarray(0, exp.dim)), /^Error: the index is closed$/);
});
