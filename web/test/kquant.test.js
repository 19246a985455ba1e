// The K-quant rows in wasm (kernel/model/types/q4_k.c, q6_k.c, q8_k.c, q5_0.c): each SIMD128
// dot and the SIMD128 Q8_K activation quantizer equal their scalar references bit for bit
// (the references carry llama.cpp's summation order: tests/test_types_ggml.py).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

import { loadModelKernel } from '../src/model.js';
import { rng, weightBlocks } from '../testlib/blocks.js';

if (!existsSync(new URL('../dist/quantann-model.wasm', import.meta.url)))
  execFileSync(new URL('../build-wasm.sh', import.meta.url).pathname, { stdio: 'inherit' });

// ggml type id, block bytes, offsets of fp16 scales, values per block
const TYPES = { Q5_0: [6, 22, [0], 32], Q4_K: [12, 144, [0, 2], 256], Q6_K: [14, 210, [208], 256] };

test('K-quant SIMD128 dots and the Q8_K quantizer equal their scalar references bit for bit', async () => {
  const K = await loadModelKernel();
  const r = rng(11);
  for (const [name, [type, size, scales, blck]] of Object.entries(TYPES)) {
    for (const n of [256, 1024, 2048]) {
      const nb = n / blck;
      const x = Float32Array.from({ length: n }, () => (r() - 0.5) * 8 * (r() < 0.05 ? 30 : 1));
      if (name === 'Q4_K') x.fill(0, 256, 512); // an all-zero super-block
      const xp = K.copyIn(Float32Array, x);
      const ap = K.alloc(Uint8Array, 2 * n), aq = K.alloc(Uint8Array, 2 * n);
      const as = K.x.qa_wasm_type_quantize_act(type, 1, n, xp, ap);
      assert.ok(as > 0, `${name}: no activation quantizer`);
      assert.equal(K.x.qa_wasm_type_quantize_act(type, 0, n, xp, aq), as);
      assert.deepEqual(K.view(Uint8Array, aq, as), K.view(Uint8Array, ap, as), `${name} activations n=${n}`);
      const wp = K.copyIn(Uint8Array, weightBlocks(size, scales, 4 * nb, r));
      for (let row = 0; row < 4; row++) {
        const ref = K.x.qa_wasm_type_dot(type, 1, n, wp + row * nb * size, ap);
        const simd = K.x.qa_wasm_type_dot(type, 0, n, wp + row * nb * size, ap);
        assert.ok(Number.isFinite(ref) && ref !== 0, `${name}: degenerate test data`);
        assert.equal(simd, ref, `${name} n=${n} row ${row}`);
      }
      [xp, ap, aq, wp].forEach((p) => K.free(p));
    }
  }
});
