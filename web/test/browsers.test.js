// The shared test vectors in both headless browsers, Debian's chromium and firefox-esr (one
// launcher, tools/run-page.js): same ids and bit-identical distances as native Python
// through the HTTP Range, IndexedDB, OPFS and default persistent stores, an interrupted
// OPFS import resumed, the IndexedDB fallback where OPFS is missing; the demo page's errors;
// streamed loading with its OPFS cache.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { browserSkip, launch, runPage } from '../tools/run-page.js';
import { DATA, testVectors } from '../testlib/vectors.js';
import { startServer } from '../testlib/server.js';

for (const browser of ['chromium', 'firefox']) {
  const skip = browserSkip(browser);

  test(`${browser}: same ids as native through the HTTP, IndexedDB and OPFS stores; OPFS import resumes`, { skip, timeout: 300000 }, async () => {
    testVectors();
    const server = await startServer([`/data=${DATA}`]);
    try {
      const r = await runPage(`${server.url}/parity.html`, { browser, timeout: 240, log: () => {} });
      assert.ok(!r.error, r.error);
      for (const c of r.cases) {
        assert.equal(c.same, c.nq, `${c.name} via ${c.store}: ${c.nq - c.same} queries differ (${c.mismatches})`);
        assert.equal(c.maxErr, 0, `${c.name} via ${c.store}: distances differ by ${c.maxErr}`);
      }
      const nHttp = Object.keys(testVectors().expected).length; // every case over HTTP
      assert.deepEqual(r.cases.map((c) => c.store), [...Array(nHttp).fill('http'), 'indexeddb', 'opfs', 'opfs-async', 'opfs-inworker',
        'opfs-gap-0', 'opfs-gap-8', 'opfs-gap-auto', 'opfs-inworker-gap-8', 'opfs-inworker-gap-64', 'opfs-inworker-gap-auto', 'opfs-inworker-rerank-auto', 'persistent-opfs']);
      for (const kind of ['opfs-gap-', 'opfs-inworker-gap-']) {
        const gaps = r.cases.filter((c) => c.store.startsWith(kind)).map((c) => c.maxGap);
        assert.deepEqual(gaps.slice(0, 2), kind === 'opfs-gap-' ? [0, 8] : [8, 64]);
        assert.ok(Number.isInteger(gaps[2]) && gaps[2] >= 0 && gaps[2] <= 128, `measured gap ${gaps[2]}`);
      }
      assert.equal(r.timed.n, 5, 'one time per query');
      assert.equal(r.timed.same, 5, 'the Worker-timed loop gives native ids');
      assert.ok(r.timed.positive && r.timed.reads.every((n) => n > 0), JSON.stringify(r.timed));
      // a missing or closed OPFS file: an error that says so, shown on the page
      assert.match(r.errors.notImported, /OPFS quantann-parity-none\.f32: not found \(run importToOPFS first\)/);
      assert.match(r.errors.fileMissing, /OPFS quantann-parity-cells\.f32: not found, though quantann-parity-cells\.meta\.json records a complete import/);
      assert.equal(r.errors.closed, 'the index is closed');
      assert.match(r.shown, /not found \(run importToOPFS first\)/, 'the errors are on the page');
      assert.equal(r.cases.at(-1).storeClass, 'OPFSStore', 'OPFS is the default persistent store');
      const z = r.resume, rb = 384 * 4;
      assert.equal(z.aborted, 'AbortError');
      assert.equal(z.afterAbort, 2 * Math.floor((256 << 10) / rb) * rb, 'an aborted import keeps its committed batches');
      assert.match(z.truncated, /truncated/);
      assert.equal(z.afterTruncated, 1200 * rb, 'the whole rows before the cut are kept');
      assert.ok(!z.completeAfterTruncated);
      assert.equal(z.resumedAtRow * rb, z.afterTruncated, 'resumed from the last committed byte');
      assert.equal(z.resumedBytes, z.total - z.afterTruncated, 'only the rest is written again');
      assert.ok(z.fileEqual, `the resumed file differs from the source (${z.fileBytes} of ${z.total} bytes)`);
      assert.ok(z.complete);
      assert.ok(r.ok);
    } finally {
      server.close();
    }
  });

  // Without OPFS (hidden from the page), the persistent store falls back to IndexedDB, with the
  // same results.
  test(`${browser}: the persistent store falls back to IndexedDB where OPFS is missing`, { skip, timeout: 300000 }, async () => {
    testVectors();
    const server = await startServer([`/data=${DATA}`]);
    try {
      const r = await runPage(`${server.url}/parity.html?noopfs=1`, { browser, timeout: 240, log: () => {} });
      assert.ok(!r.error, r.error);
      const [c] = r.cases;
      assert.equal(c.store, 'persistent-indexeddb');
      assert.equal(c.storeClass, 'IndexedDBStore');
      assert.match(c.reason, /no navigator\.storage\.getDirectory/);
      assert.equal(c.same, c.nq, `${c.nq - c.same} queries differ`);
      assert.equal(c.maxErr, 0);
      assert.ok(r.ok);
    } finally {
      server.close();
    }
  });

  // The demo page (index.html) shows every error on the page and settles, instead of
  // staying on "loading…": a missing file, an index over the memory budget, a bad row.
  test(`${browser}: the demo page shows its errors`, { skip, timeout: 300000 }, async () => {
    const { expected } = testVectors();
    const demo = mkdtempSync(join(tmpdir(), 'quantann-demo-page-'));
    copyFileSync(DATA + expected['sq8-cosine'].file, join(demo, 'passages.qann'));
    writeFileSync(join(demo, 'passages.jsonl'), Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `passage ${i}`, src: 't' })).join('\n'));
    const server = await startServer([`/data=${demo}`, `/empty=${mkdtempSync(join(tmpdir(), 'quantann-empty-'))}`]);
    const instance = await launch(browser);
    const page = (query) => runPage(`${server.url}/index.html?${query}`, { instance, timeout: 60, log: () => {} });
    try {
      const missing = await page('data=/empty/');
      assert.match(missing.error ?? '', /^error: .*passages\.qann/, JSON.stringify(missing));
      const budget = await page('budget=1KB');
      assert.match(budget.error ?? '', /^error: .*over the budget of 1\.00 KB/, JSON.stringify(budget));
      const ambiguous = await page('budget=300M');
      assert.match(ambiguous.error ?? '', /ambiguous .*300MB.*300MiB/, JSON.stringify(ambiguous));
      for (const row of ['abc', '-1', '1.5', '999999999']) {
        const bad = await page(`row=${row}`);
        assert.match(bad.error ?? '', /row must be a whole number from 0 to \d+, got/, `${row}: ${JSON.stringify(bad)}`);
        assert.doesNotMatch(bad.error, /NaN|undefined/);
      }
      const good = await page('row=3');
      assert.ok(!good.error, good.error);
      assert.match(good.status, /candidates; kernel/);
    } finally {
      await instance.close();
      server.close();
      rmSync(demo, { recursive: true, force: true });
    }
  });
}

// streamInto with its OPFS cache (stream.html): an aborted load resumes from its committed
// bytes, a complete copy reopens with fetch() disabled; in Chromium, the peak of JS heap +
// ArrayBuffer backing stores (CDP Runtime.getHeapUsage, sampled every 5 ms) + the wasm
// memory during a cached load of a 64 MiB file stays within 1.15 x the file.
const STREAM_BYTES = 64 << 20;
function fnv(v) {
  let h = 0x811c9dc5;
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i], 0x01000193);
  return (h >>> 0).toString(16);
}

for (const browser of ['chromium', 'firefox']) {
  test(`${browser}: streamed loading into wasm memory, cached in OPFS: resumed, reopened offline`, { skip: browserSkip(browser), timeout: 300000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quantann-stream-'));
    const bytes = randomFillSync(new Uint8Array(STREAM_BYTES - 12345));
    writeFileSync(join(dir, 'model.bin'), bytes);
    const server = await startServer([`/blob=${dir}`]);
    try {
      const url = `${server.url}/stream.html?file=/blob/model.bin&chunk=${4 << 20}`;
      const r = await runPage(url, { browser, timeout: 240, log: () => {} });
      assert.ok(!r.error, r.error);
      const n = bytes.length, want = fnv(bytes);
      assert.equal(r.aborted, 'AbortError');
      const w = r.afterAbort.written;
      assert.ok(w > 0 && w < n && !r.afterAbort.complete, `after the abort: ${JSON.stringify(r.afterAbort)}`);
      assert.equal(r.resumed.resumedAt, w, 'resumed from the committed bytes');
      assert.equal(r.resumed.fromCache, w);
      assert.equal(r.resumed.fromSource, n - w, 'only the rest comes from the network');
      assert.ok(r.resumed.maxReadBytes <= 4 << 20);
      assert.equal(r.resumed.fnv, want, 'the resumed bytes differ from the file');
      assert.ok(r.progressMonotonic);
      assert.ok(r.afterResume.complete && r.afterResume.written === n);
      assert.equal(r.offlineFetches, 0);
      assert.equal(r.offline.fromCache, n);
      assert.equal(r.offline.requests, 0);
      assert.equal(r.offline.fnv, want, 'the cached copy differs from the file');
      assert.ok([true, false, null].includes(r.offline.persisted), 'navigator.storage.persist() was asked');
      if (browser === 'chromium') {
        const m = await runPage(`${url}&mode=memory`, { browser, timeout: 240, sampleMemory: 5, log: () => {} });
        assert.ok(!m.error, m.error);
        assert.equal(m.load.fromSource, n);
        assert.ok(m._memory.samples > 10, `only ${m._memory.samples} memory samples`);
        const peak = m._memory.peakSum + m.wasmBytes; // CDP counts the wasm memory in neither
        assert.ok(peak <= 1.15 * n, `peak JS heap + backing stores + wasm memory ${peak} > 1.15 x ${n}: ${JSON.stringify(m)}`);
      }
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
