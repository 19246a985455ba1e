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
