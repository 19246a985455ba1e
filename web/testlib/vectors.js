// Shared test vectors (tests/web/make_vectors.py), built once by native Python.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DATA = fileURLToPath(new URL('../dist/testdata/', import.meta.url));

export function testVectors() {
  if (!existsSync(new URL('../dist/quantann.wasm', import.meta.url)))
    execFileSync(new URL('../build-wasm.sh', import.meta.url).pathname, { stdio: 'inherit' });
  if (!existsSync(DATA + 'expected.json'))
    execFileSync(process.env.PYTHON || 'python3', ['tests/web/make_vectors.py', DATA], { cwd: ROOT, stdio: 'inherit' });
  const expected = JSON.parse(readFileSync(DATA + 'expected.json', 'utf8'));
  const raw = readFileSync(DATA + 'queries.f32');
  const queries = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  return { expected, queries };
}
