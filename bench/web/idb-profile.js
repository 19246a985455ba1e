#!/usr/bin/env node
// Runs bench/web/idb-profile.html (or --page opfs-profile.html) in headless Chromium (or Firefox) over an
// index file and a raw float32 queries file; prints the page's JSON (docs/BROWSER.md).
// (playwright-core comes from web/node_modules: `cd web && npm ci` once)
//   node ../bench/web/idb-profile.js [--page P.html] [--isolated] [--browser chromium|firefox] INDEX.qann QUERIES.f32 [query string, e.g. 'nq=300&reps=5']
// --isolated: the server sends COOP/COEP (a cross-origin isolated page: 5 us timer).
import { spawn } from 'node:child_process';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runPage } from '../../web/tools/run-page.js';

const argv = process.argv.slice(2);
const flag = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv.splice(i, 1) && true : false; };
const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv.splice(i, 2)[1] : def; };
const page = opt('--page', 'idb-profile.html'), isolated = flag('--isolated'), browser = opt('--browser', 'chromium');
const [index, queries, extra = ''] = argv;
// the repository root at / (the page imports ../../web/src/), the data beside it
const root = fileURLToPath(new URL('../..', import.meta.url));
const proc = spawn(process.env.PYTHON || 'python3', ['-m', 'quantann.pageserver', '--port', '0', ...(isolated ? ['--isolated'] : []), `/=${root}`,
  `/idx=${dirname(index)}`, `/q=${dirname(queries)}`], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  proc.stdout.on('data', (b) => { const m = /at (http:\/\/\S+)/.exec(String(b)); if (m) resolve(m[1]); });
  proc.on('exit', (c) => reject(new Error(`server exited with ${c}`)));
});
try {
  const r = await runPage(`${url}/bench/web/${page}?index=/idx/${basename(index)}&queries=/q/${basename(queries)}&${extra}`, { timeout: 3600, browser });
  process.stdout.write(JSON.stringify(r, null, 1) + '\n');
} finally {
  proc.kill();
}
