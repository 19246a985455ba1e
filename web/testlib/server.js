// The page server (quantann/pageserver.py: Range support), on a free port; resolves to
// {url, close}. Shared by the tests that fetch over HTTP.
import { spawn } from 'node:child_process';

import { ROOT } from './vectors.js';

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
