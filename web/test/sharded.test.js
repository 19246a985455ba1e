// The sharded index in the JS runtime: openIndex(manifest) opens every shard and answers
// with the same ids and bit-identical distances as native quantann's ShardedIndex, from
// local files and over HTTP Range; bad manifests get a FormatError.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { FormatError, openIndex } from '../src/quantann.js';
import { DATA, ROOT, testVectors } from '../testlib/vectors.js';
import { startServer } from '../testlib/server.js';

const { queries } = testVectors();
const DIR = DATA + 'sharded/';
if (!existsSync(DIR + 'expected.json'))
  execFileSync(process.env.PYTHON || 'python3', ['tests/web/make_sharded.py', DATA], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, PYTHONPATH: ROOT } });
const exp = JSON.parse(readFileSync(DIR + 'expected.json', 'utf8'));

async function sameAsNative(index) {
  assert.equal(index.shards.length, 3);
  assert.equal(index.count, JSON.parse(readFileSync(DIR + 's.json', 'utf8')).count);
  for (let i = 0; i < exp.nq; i++) {
    const r = await index.search(queries.subarray(i * exp.dim, (i + 1) * exp.dim), { k: exp.k, ef: exp.ef, rerank: exp.rerank });
    assert.deepEqual(Array.from(r.ids, String), exp.ids[i], `query ${i}`);
    assert.deepEqual(Array.from(r.distances), exp.distances[i], `query ${i}`);
    assert.equal(r.stats.storeReads, 3); // one batched read per shard
  }
  const all = await index.search(queries.subarray(0, 4 * exp.dim), { k: exp.k, ef: exp.ef, rerank: exp.rerank });
  assert.deepEqual(Array.from(all.ids.subarray(exp.k, 2 * exp.k), String), exp.ids[1]); // a batch of queries
  assert.ok(index.memory().total > 0);
}

test('a sharded index from local files answers as native quantann', async () => {
  const index = await openIndex(DIR + 's.json');
  try { await sameAsNative(index); } finally { index.close(); }
});

test('a sharded index over HTTP Range answers as native quantann', { timeout: 120000 }, async () => {
  const server = await startServer([`/data=${DATA}`]);
  try {
    const index = await openIndex(`${server.url}/data/sharded/s.json`);
    try {
      await sameAsNative(index);
      const r = await index.search(queries.subarray(0, exp.dim), { k: exp.k, ef: exp.ef, rerank: exp.rerank });
      assert.ok(r.stats.requests >= 3, 'the vectors are read with Range requests');
    } finally { index.close(); }
  } finally { server.close(); }
});

test('bad manifests are refused with a FormatError', async () => {
  const good = JSON.parse(readFileSync(DIR + 's.json', 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'qa-manifest-'));
  const cases = [
    [{ ...good, version: 2 }, /newer than this quantann reads/],
    [{ ...good, format: 'x' }, /not a sharded index manifest/],
    [{ ...good, count: 5 }, /the shards hold/],
    [{ ...good, shards: [{ ...good.shards[0], file: '../x.qann' }, ...good.shards.slice(1)] }, /inside the manifest's folder/],
  ];
  for (const [m, re] of cases) {
    writeFileSync(join(dir, 'm.json'), JSON.stringify(m));
    await assert.rejects(openIndex(join(dir, 'm.json')), (e) => e instanceof FormatError && re.test(e.message));
  }
  writeFileSync(join(dir, 'm.json'), '{not json');
  await assert.rejects(openIndex(join(dir, 'm.json')), FormatError);
  const index = await openIndex(DIR + 's.json');
  await assert.rejects(index.search(queries.subarray(0, exp.dim), { k: 100000 }), /k=100000 is out of range/);
  index.close();
});

// Two shards numbered by their rows after saved deletes (the first one's ids run past its
// count): made natively, with the native global rows of some ids.
const MAKE_DELETED = `
import json, sys
sys.path.insert(0, "tests/web")
import numpy as np, quantann
from make_vectors import data
from quantann.shard.build import build_sharded
from quantann.shard.runner import LocalRunner
out = sys.argv[1]
x, _ = data()
build_sharded(out + "/s.json", x[:600], 2, LocalRunner(1), M=12, ef_construction=100, seed=1, progress=False, row_order="cells")
s = quantann.open(out + "/s.json")
s.delete([5, 299])
s.save()
ids = np.array([0, 7, 298, 300, 599], np.uint64)
print(json.dumps({"ids": ids.astype(str).tolist(), "rows": s.rows_of(ids).tolist()}))
`;

test('shards numbered by their rows after saved deletes: ranges up to the next id, rows of ids as native', { timeout: 120000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qa-deleted-shards-'));
  const want = JSON.parse(execFileSync(process.env.PYTHON || 'python3', ['-c', MAKE_DELETED, dir],
    { cwd: ROOT, env: { ...process.env, PYTHONPATH: ROOT } }).toString());
  const path = join(dir, 's.json'), m = JSON.parse(readFileSync(path, 'utf8'));
  assert.deepEqual(m.shards.map((e) => e.count), [298, 300]);
  const index = await openIndex(path); // [0, 300) and [300, 600): they touch
  try {
    assert.equal(index.shards[0].nextId, 300);
    assert.deepEqual(want.ids.map((id) => index.rowOf(BigInt(id))), want.rows);
  } finally { index.close(); }
  m.shards[1].id_offset = 298; // by count [0, 298): id 298 would be held twice
  writeFileSync(path, JSON.stringify(m));
  await assert.rejects(openIndex(path), (e) => e instanceof FormatError && /id ranges of shards 0 and 1 overlap \(at id 298/.test(e.message));
});
