// The lexical index of a text store in wasm (web/src/texts.js over kernel/text/, the C the
// native build runs): BM25 results and reciprocal rank fusion equal native's, id for id
// (tests/web/lexical_native.py); a store without one; a corrupt one refused by name.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { FormatError, openIndex } from '../src/index.js';
import { hybridSearch, openTexts } from '../src/texts.js';
import { runNative } from '../testlib/models.js';

const NATIVE = 'tests/web/lexical_native.py';
const QUERIES = ['What is an eschar?', 'python function returns a string', 'Firefox ESR language package',
  'naïve café ÉCOLE', 'no such wordzzz', 'the of a'];
let dir, made;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'quantann-lexical-'));
  made = runNative(NATIVE, { op: 'make', dir, n: 2000, queries: QUERIES, k: 20 });
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

test('BM25 in wasm equals native: the same ids in the same order, the same scores', async (t) => {
  if (made.skip) return t.skip(made.skip);
  const texts = await openTexts(readFileSync(made.texts));
  assert.ok(texts.lexical, 'the store holds a lexical index');
  assert.ok(texts.lexicalBytes > 0);
  QUERIES.forEach((q, i) => {
    const got = texts.lexicalSearch(q, 20), want = made.search[i];
    assert.deepEqual(Array.from(got.ids, String), want.ids, q);
    got.scores.forEach((s, j) => assert.ok(Math.abs(s - want.scores[j]) <= 1e-6 * Math.abs(want.scores[j]), `${q} #${j}`));
  });
  assert.equal(texts.lexicalSearch('wordzzz qqqxx', 5).ids.length, 0);
  assert.throws(() => texts.lexicalSearch('x', 0), /k must be a positive integer/);
  texts.close();
});

test('fusion in wasm equals native', async (t) => {
  if (made.skip) return t.skip(made.skip);
  const texts = await openTexts(readFileSync(made.texts));
  const a = [5, 3, 9, 1, 7], b = [9, 2, 5, 8];
  for (const [k, wb] of [[3, 1], [10, 0.5], [1, 2]]) {
    const want = runNative(NATIVE, { op: 'fuse', a, b, k, wb });
    const got = texts.fuse(a, b, k, { wb });
    assert.deepEqual(Array.from(got.ids, String), want.ids);
    assert.deepEqual(Array.from(got.scores), want.scores);
  }
  texts.close();
});

test('hybrid search in wasm equals native search_ids: ids, rows and distances', async (t) => {
  // the last: a text whose passage (row 3) is far from the vector given, so only the words find it
  const queries = [[3, 'What is an eschar?'], [40, 'python string methods'], [700, 'Firefox ESR'], [1234, 'zzzqqq'],
    [1500, 'eschar']];
  const want = runNative(NATIVE, { op: 'hybrid', dir, n: 2000, queries, k: 5 });
  if (want.skip) return t.skip(want.skip);
  const index = await openIndex(want.index);
  const texts = await openTexts(readFileSync(want.index + '.texts'));
  const x = new Float32Array(readNpyRows(2000));
  for (const [i, [row, text]] of queries.entries()) {
    const got = await hybridSearch(index, texts, x.subarray(row * 384, row * 384 + 384), text, { k: 5 });
    assert.deepEqual(Array.from(got.ids, String), want.results[i].ids, text);
    assert.deepEqual(Array.from(got.rows), want.results[i].rows, text);
    got.distances.forEach((d, j) => assert.ok(Math.abs(d - want.results[i].distances[j]) < 1e-5, `${text} #${j}`));
  }
  assert.ok(want.results[4].rows.includes(3), 'a passage only the lexical search found, with its distance computed');
  texts.close();
  index.close();
});

test('hybrid search on a sharded text index in wasm equals native: the words ranked over every shard', async (t) => {
  // the sharded build's one text store beside the manifest: BM25 over the whole collection
  const queries = [[3, 'What is an eschar?'], [40, 'python string methods'], [700, 'Firefox ESR'], [1500, 'eschar'],
    [1999, 'a loaf of bread']];
  const want = runNative(NATIVE, { op: 'hybrid-sharded', dir, n: 2000, queries, k: 5 });
  if (want.skip) return t.skip(want.skip);
  const index = await openIndex(want.index);
  const texts = await openTexts(readFileSync(want.index + '.texts'));
  const x = new Float32Array(readNpyRows(2000));
  assert.equal(index.shards.length, 3);
  for (const [i, [row, text]] of queries.entries()) {
    const got = await hybridSearch(index, texts, x.subarray(row * 384, row * 384 + 384), text, { k: 5 });
    assert.deepEqual(Array.from(got.ids, String), want.results[i].ids, text);
    assert.deepEqual(Array.from(got.rows), want.results[i].rows, text);
    got.distances.forEach((d, j) => assert.ok(Math.abs(d - want.results[i].distances[j]) < 1e-5, `${text} #${j}`));
  }
  // a passage in the first shard that only the words found, from a query vector of the last shard
  assert.ok(want.results[3].rows.includes(3), 'a passage only the lexical search found, its distance read from its shard');
  texts.close();
  index.close();
});

// the first n rows of the demo vectors (float16 .npy) as float32, read through native Python
function readNpyRows(n) {
  const r = runNative(NATIVE, { op: 'vectors', n });
  return r.vectors;
}

test('a corrupt lexical index is a FormatError naming the store', async (t) => {
  if (made.skip) return t.skip(made.skip);
  const bytes = new Uint8Array(readFileSync(made.texts));
  const bad = bytes.slice();
  const at = findTensor(bad, 'lex.postings');
  bad.fill(0xff, at, at + 16); // a varint running past its list
  await assert.rejects(openTexts(bad, { name: 'bad.texts' }), (e) => e instanceof FormatError && /bad\.texts: corrupt text store .*postings/.test(e.message));
});

// the file offset of a tensor's data, from the GGUF header (a test's own small parse)
function findTensor(bytes, name) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  const nT = Number(dv.getBigUint64(p, true)); p += 8;
  const nKV = Number(dv.getBigUint64(p, true)); p += 8;
  const str = () => { const n = Number(dv.getBigUint64(p, true)); p += 8; const s = new TextDecoder().decode(bytes.subarray(p, p + n)); p += n; return s; };
  const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skipValue = (type) => {
    if (type === 8) { str(); return; }
    if (type === 9) { const t = dv.getUint32(p, true); p += 4; const n = Number(dv.getBigUint64(p, true)); p += 8; for (let i = 0; i < n; i++) skipValue(t); return; }
    p += SIZES[type];
  };
  for (let i = 0; i < nKV; i++) { str(); const t = dv.getUint32(p, true); p += 4; skipValue(t); }
  let want = -1;
  for (let i = 0; i < nT; i++) {
    const s = str(); const nd = dv.getUint32(p, true); p += 4 + 8 * nd + 4;
    const off = Number(dv.getBigUint64(p, true)); p += 8;
    if (s === name) want = off;
  }
  const data = Math.ceil(p / 32) * 32;
  return data + want;
}
