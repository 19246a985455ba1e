// The shared test vectors in headless Chromium (Debian's chromium via playwright-core):
// same ids and bit-identical distances as native Python through the HTTP Range, IndexedDB
// and OPFS stores, and an interrupted OPFS import resumed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

import { CHROMIUM, runPage } from '../tools/run-page.js';
import { DATA, ROOT, testVectors } from '../testlib/vectors.js';

let playwright = true;
try { await import('playwright-core'); } catch { playwright = false; }
const skip = !existsSync(CHROMIUM) ? `no ${CHROMIUM}` : !playwright ? 'npm playwright-core not installed' : false;

// The Python static server (Range support), on a free port; resolves to its URL.
export function startServer(mounts) {
  const args = ['-m', 'quantann.pageserver', '--port', '0', ...mounts];
  const proc = spawn(process.env.PYTHON || 'python3', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (b) => {
      const m = /at (http:\/\/\S+)/.exec(String(b));
      if (m) resolve({ url: m[1], close: () => proc.kill() });
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

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
    assert.deepEqual(r.cases.map((c) => c.store), ['http', 'http', 'http', 'indexeddb', 'opfs', 'opfs-async', 'opfs-inworker']);
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
