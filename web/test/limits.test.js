// A truncated or corrupt file, or one past the memory budget / wasm32 limit, gives a
// clear error, never a crash.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BytesSource } from '../src/source.js';
import { FormatError, MemoryBudgetError, openIndex } from '../src/quantann.js';
import { DATA, testVectors } from '../testlib/vectors.js';

const { expected } = testVectors();
const file = readFileSync(DATA + expected['sq8-cosine'].file);
const bytes = () => new Uint8Array(file);

async function rejects(source, opts, Type, pattern) {
  await assert.rejects(openIndex(source, opts), (e) => {
    assert.ok(e instanceof Type, `${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('not a GGUF file', () => rejects(new TextEncoder().encode('hello world, this is not an index at all'), {}, FormatError, /not a GGUF file/));
test('too short', () => rejects(new Uint8Array(10), {}, FormatError, /too short/));
test('truncated inside the header', () => rejects(bytes().subarray(0, 300), {}, FormatError, /truncated/));
test('truncated inside the vectors', () => rejects(bytes().subarray(0, file.length - 1000), {}, FormatError, /truncated: tensor vectors/));

test('corrupt codes fail the checksum', async () => {
  const b = bytes();
  b[b.length - 3000 * 384 * 4 - 5000] ^= 0x55; // inside the codes/graph, before the vectors
  await rejects(b, {}, FormatError, /checksum mismatch/);
});

test('random garbage after the magic never crashes', async () => {
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let t = 0; t < 200; t++) {
    const b = bytes().slice(0, 4096 + Math.floor(rnd() * 4096));
    for (let i = 0; i < 8; i++) b[4 + Math.floor(rnd() * 1200)] = Math.floor(rnd() * 256);
    await assert.rejects(openIndex(b), (e) => e instanceof FormatError || e instanceof MemoryBudgetError || e instanceof RangeError);
  }
});

test('over the memory budget: refused from the header', async () => {
  await rejects(bytes(), { memoryBudget: '100KB' }, MemoryBudgetError, /over the budget of 100\.00 KB/);
  const index = await openIndex(bytes(), { memoryBudget: '10MB' });
  assert.ok(index.memory().total < 10 * 1024 * 1024);
  index.close();
});

test('past the wasm32 limit: refused before anything else is fetched', async () => {
  const header = new Uint8Array(readFileSync(DATA + 'huge.qann.header'));
  const size = 1e12; // more than the file would be
  let fetched = 0;
  const src = new BytesSource(header, 'huge.qann');
  src.size = size;
  const read = src.read.bind(src);
  src.read = (o, l) => { fetched += Math.min(l, header.length); return read(o, l); };
  await rejects(src, {}, MemoryBudgetError, /past the wasm32 limit of 4 GiB/);
  assert.ok(fetched <= 65536 * 2);
});

test('search parameters are checked in the kernel and named with their limit', async () => {
  const exp = expected['sq8-cosine'];
  const index = await openIndex(bytes());
  const q = new Float32Array(exp.dim).fill(0.1);
  const cases = [
    [{ ef: 2 ** 31 - 1 }, /ef=2147483647 is out of range: it must be 1\.\.1048576/], // once wrapped ef + 2 in hnsw.c
    [{ ef: 1e12 }, /ef=1000000000000 is out of range/],
    [{ k: 1e12 }, /k=1000000000000 is out of range: it must be 1\.\.100000/],
    [{ k: 0 }, /k=0 is out of range/],
    [{ k: index.count + 1 }, new RegExp(`larger than the ${index.count} vectors`)],
    [{ rerank: -1 }, /rerank=-1 is out of range/],
    [{ k: 100, rerank: 20000 }, /k\*rerank=2000000 candidates is over the limit of 1048576/],
    [{ k: 1.5 }, /k must be an integer/],
  ];
  for (const [opts, pattern] of cases)
    await assert.rejects(index.search(q, opts), (e) => e instanceof RangeError && pattern.test(e.message));
  await assert.rejects(index.search(new Float32Array(exp.dim)), /all zeros and has no direction/);
  await assert.rejects(index.search(new Float32Array(exp.dim).fill(NaN)), /NaN or infinity/);
  // still answers, and a huge rerank gives its buffers back
  const r = await index.search(q, { k: 5, rerank: 10000 });
  assert.equal(r.ids.length, 5);
  index.close();
});
