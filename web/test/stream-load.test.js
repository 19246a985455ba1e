// streamInto (src/stream-load.js) in Node: a URL (Range requests of at most chunkBytes, or
// one whole body from a server that ignores Range) and a Blob land byte for byte in the
// destination, which is asked for once with the file's size. The OPFS cache is tested in
// the browsers (browsers.test.js).
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { createServer } from 'node:http';
import { test } from 'node:test';

import { MAX_CHUNK_BYTES, quotaProblem, streamInto } from '../src/stream-load.js';

const FILE = randomFillSync(new Uint8Array(5 * 1024 * 1024 + 123));

// A server of FILE: Range honoured unless `ignoreRange`; records the bytes asked per request.
async function serve({ ignoreRange = false, status = 200 } = {}) {
  const asked = [];
  const server = createServer((req, res) => {
    if (status !== 200) { res.writeHead(status); res.end(); return; }
    const m = /bytes=(\d+)-(\d*)/.exec(req.headers.range || '');
    if (!m || ignoreRange) {
      asked.push(FILE.length);
      res.writeHead(200, { 'Content-Length': FILE.length });
      res.end(FILE);
      return;
    }
    const a = Number(m[1]), b = m[2] ? Math.min(Number(m[2]), FILE.length - 1) : FILE.length - 1;
    asked.push(b - a + 1);
    res.writeHead(206, { 'Content-Range': `bytes ${a}-${b}/${FILE.length}`, 'Content-Length': b - a + 1 });
    res.end(FILE.subarray(a, b + 1));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/model.gguf`, asked, close: () => server.close() };
}

async function load(source, options = {}) {
  const sizes = [], progress = [];
  let view = null;
  const r = await streamInto(source, {
    dest: (n) => { sizes.push(n); view = new Uint8Array(n); return view; },
    onProgress: (p) => progress.push(p), ...options });
  return { r, view, sizes, progress };
}

function assertLoaded({ r, view, sizes, progress }) {
  assert.deepEqual(sizes, [FILE.length], 'dest is asked for once, with the size');
  assert.ok(Buffer.from(view).equals(Buffer.from(FILE)), 'the bytes differ');
  assert.equal(r.total, FILE.length);
  assert.equal(r.fromSource + r.fromCache, FILE.length);
  const loaded = progress.map((p) => p.loaded);
  assert.deepEqual(loaded, [...loaded].sort((a, b) => a - b), 'progress never goes back');
  assert.equal(loaded.at(-1), FILE.length);
}

test('a URL arrives by Range requests of at most chunkBytes', async () => {
  const s = await serve();
  try {
    const got = await load(s.url, { chunkBytes: 1 << 20 });
    assertLoaded(got);
    assert.equal(s.asked.length, 6);
    assert.ok(s.asked.every((n) => n <= 1 << 20), `requests of ${s.asked}`);
    assert.equal(got.r.requests, 6);
    assert.equal(got.r.maxReadBytes, 1 << 20);
  } finally { s.close(); }
});

test('a server that ignores Range: one whole body, streamed', async () => {
  const s = await serve({ ignoreRange: true });
  try {
    assertLoaded(await load(s.url, { chunkBytes: 1 << 20 }));
    assert.equal(s.asked.length, 1);
  } finally { s.close(); }
});

test('a Blob is read by slices', async () => {
  const got = await load(new Blob([FILE]), { chunkBytes: 2 << 20 });
  assertLoaded(got);
  assert.equal(got.r.requests, 3);
});

test('mistakes get clear errors', async () => {
  const s = await serve({ status: 404 });
  try {
    await assert.rejects(load(s.url), /model\.gguf: HTTP 404/);
  } finally { s.close(); }
  await assert.rejects(load(new Blob([FILE]), { chunkBytes: MAX_CHUNK_BYTES + 1 }), /chunkBytes must be a whole number from 1 to 67108864/);
  await assert.rejects(streamInto(new Blob([FILE]), {}), /dest must be a function/);
  await assert.rejects(streamInto(new Blob([FILE]), { dest: () => new Uint8Array(10) }), /at least 5243003 bytes/);
  await assert.rejects(load(new Blob([FILE]), { size: 7 }), /5243003 bytes, expected 7/);
  await assert.rejects(load(new Blob([FILE]), { cache: 'x' }), /no Origin Private File System/);
});

test('a quota problem names the numbers of navigator.storage.estimate()', async () => {
  const storage = { estimate: async () => ({ usage: 900e6, quota: 1e9 }) };
  const e = await quotaProblem('model.gguf', 250e6, storage);
  assert.equal(e.name, 'QuotaExceededError');
  assert.match(e.message, /cache model\.gguf: needs 250\.00 MB more, but the origin has only 100\.00 MB free \(900\.00 MB used of its 1\.00 GB quota/);
  assert.equal(await quotaProblem('model.gguf', 50e6, storage), null);
  assert.equal(await quotaProblem('model.gguf', 50e6, {}), null);
});
