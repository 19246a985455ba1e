// The shared test vectors in headless Chromium (Debian's chromium via playwright-core):
// same ids and bit-identical distances as native Python through the HTTP Range, IndexedDB
// and OPFS stores, and an interrupted OPFS import resumed.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { CHROMIUM, runPage } from '../tools/run-page.js';
import { DATA, testVectors } from '../testlib/vectors.js';
import { startServer } from '../testlib/server.js';

let playwright = true;
try { await import('playwright-core'); } catch { playwright = false; }
const skip = !existsSync(CHROMIUM) ? `no ${CHROMIUM}` : !playwright ? 'npm playwright-core not installed' : false;

test('Chromium: same ids as native through the HTTP, IndexedDB and OPFS stores; OPFS import resumes', { skip, timeout: 300000 }, async () => {
  testVectors();
  const server = await startServer([`/data=${DATA}`]);
  try {
    const r = await runPage(`${server.url}/parity.html`, { timeout: 240, log: () => {} });
    assert.ok(!r.error, r.error);
    for (const c of r.cases) {
      assert.equal(c.same, c.nq, `${c.name} via ${c.store}: ${c.nq - c.same} queries differ (${c.mismatches})`);
      assert.equal(c.maxErr, 0, `${c.name} via ${c.store}: distances differ by ${c.maxErr}`);
    }
    const nHttp = Object.keys(testVectors().expected).length; // every case over HTTP
    assert.deepEqual(r.cases.map((c) => c.store), [...Array(nHttp).fill('http'), 'indexeddb', 'opfs', 'opfs-async', 'opfs-inworker']);
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

// The demo page (index.html) shows every error on the page and settles, instead of
// staying on "loading…": a missing file, an index over the memory budget, a bad row.
test('Chromium: the demo page shows its errors', { skip, timeout: 300000 }, async () => {
  const { expected } = testVectors();
  const demo = mkdtempSync(join(tmpdir(), 'quantann-demo-page-'));
  copyFileSync(DATA + expected['sq8-cosine'].file, join(demo, 'passages.qann'));
  writeFileSync(join(demo, 'passages.jsonl'), Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `passage ${i}`, src: 't' })).join('\n'));
  const server = await startServer([`/data=${demo}`, `/empty=${mkdtempSync(join(tmpdir(), 'quantann-empty-'))}`]);
  const page = (query) => runPage(`${server.url}/index.html?${query}`, { timeout: 60, log: () => {} });
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
    server.close();
    rmSync(demo, { recursive: true, force: true });
  }
});
