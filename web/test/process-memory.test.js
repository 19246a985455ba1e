// The resident-memory probe of tools/process-memory.js: it finds the process that hosts a
// page (and its Workers) and measures its peak growth through a real streamed load into
// wasm memory, in each browser (skipped without the browser or Linux /proc).
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { startServer } from '../testlib/server.js';
import { processKind, processTree, rssProbeSkip } from '../tools/process-memory.js';
import { browserSkip, launch, runPage } from '../tools/run-page.js';

test('the process tree holds this process and a child; roles come from the command line', { skip: rssProbeSkip() }, async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn('sleep', ['30']);
  try {
    const tree = processTree(process.pid);
    assert.deepEqual(tree.map((p) => p.pid).sort(), [process.pid, child.pid].sort());
  } finally { child.kill(); }
  assert.equal(processKind(['/usr/lib/chromium/chromium', '--type=renderer', '--renderer-client-id=5']), 'content');
  assert.equal(processKind(['/usr/lib/chromium/chromium', '--type=gpu-process']), 'gpu-process');
  assert.equal(processKind(['/usr/lib/firefox-esr/firefox-esr', '-contentproc', '-isForBrowser', '9', 'tab']), 'content');
  assert.equal(processKind(['/usr/lib/firefox-esr/firefox-esr', '-contentproc', '5', 'rdd']), 'rdd');
  assert.equal(processKind(['/usr/lib/firefox-esr/firefox-esr', '--headless']), 'browser');
});

const FILE_BYTES = (32 << 20) - 4321;
for (const name of ['chromium', 'firefox']) {
  test(`${name}: the page's process grows by more than the file it streams into wasm memory`, { skip: browserSkip(name) || rssProbeSkip(), timeout: 300000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quantann-rss-'));
    writeFileSync(join(dir, 'model.bin'), randomFillSync(new Uint8Array(FILE_BYTES)));
    const server = await startServer([`/blob=${dir}`]);
    const browser = await launch(name, { network: false });
    try {
      const r = await runPage(`${server.url}/stream.html?file=/blob/model.bin&mode=memory&chunk=${4 << 20}`,
        { browser: name, instance: browser, timeout: 240, rss: true, log: () => {} });
      assert.ok(!r.error, r.error);
      assert.equal(r.load.fromSource, FILE_BYTES);
      const host = r._rss.processes.find((p) => p.pid === r._rss.host);
      assert.ok(host && host.kind === 'content' && host.before > 0, `no content process hosted the page: ${JSON.stringify(r._rss)}`);
      assert.equal(r._rss.bytes, host.peak - host.before);
      assert.ok(r._rss.bytes > FILE_BYTES, `the host grew ${r._rss.bytes} bytes for a ${FILE_BYTES}-byte load`);
      for (const p of r._rss.processes) assert.ok(p.kind !== 'content' || p.before == null || p.growth <= r._rss.bytes);
    } finally {
      server.close();
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
