// The shared test vectors in headless Chromium (Debian's chromium via playwright-core):
// same ids as native Python through the HTTP Range and IndexedDB stores.
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
  const args = ['-m', 'quantann.web.server', '--port', '0', ...mounts];
  const proc = spawn(process.env.PYTHON || 'python3', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (b) => {
      const m = /at (http:\/\/\S+)/.exec(String(b));
      if (m) resolve({ url: m[1], close: () => proc.kill() });
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

test('Chromium: same ids as native through the HTTP and IndexedDB stores', { skip, timeout: 300000 }, async () => {
  testVectors();
  const server = await startServer([`/data=${DATA}`]);
  try {
    const r = await runPage(`${server.url}/parity.html`, { timeout: 240, log: () => {} });
    assert.ok(!r.error, r.error);
    for (const c of r.cases) {
      assert.equal(c.same, c.nq, `${c.name} via ${c.store}: ${c.nq - c.same} queries differ (${c.mismatches})`);
      assert.equal(c.maxErr, 0, `${c.name} via ${c.store}: distances differ by ${c.maxErr}`);
    }
    assert.equal(r.cases.length, 4);
    assert.ok(r.ok);
  } finally {
    server.close();
  }
});
