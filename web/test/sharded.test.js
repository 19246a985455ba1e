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
