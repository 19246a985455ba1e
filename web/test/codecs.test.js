// Every row of the codec table in wasm: each variant (SIMD128) gives the bits of the scalar
// reference, one code at a time and in a batch (tests/test_kernel.py does the same natively).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CONSTANTS } from '../src/constants.js';
import { loadKernel } from '../src/kernel.js';

const padDims = (d) => (d + 63) & ~63;

test('every codec variant equals its reference, bit for bit', async () => {
  const K = await loadKernel();
  const x = K.x;
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const [name, kind] of Object.entries(CONSTANTS.codecs)) {
    const nv = x.qa_wasm_codec_variants(kind);
    assert.equal(nv, 2, `${name}: the reference and SIMD128`);
    for (const d of [1, 7, 64, 100, 384]) {
      const dpad = padDims(d), n = 40;
      const bits = name.startsWith('rabitq') ? Number(name.slice(6)) : 0; // B bit planes + 4 float factors
      const codeSize = name === 'none' ? 4 * d : name === 'sq8' ? dpad : bits ? (bits * dpad) / 8 + 16 : dpad / 2;
      const vmin = new Float32Array(dpad), scale = new Float32Array(dpad);
      for (let i = 0; i < d; i++) { vmin[i] = -1 - rnd(); scale[i] = (2 + rnd()) / 255; }
      const codes = new Uint8Array(n * codeSize);
      if (name === 'none') new Float32Array(codes.buffer).forEach((_, i, a) => { a[i] = rnd() * 2 - 1; });
      else codes.forEach((_, i, a) => { a[i] = Math.floor(rnd() * 256); });
      const q = Float32Array.from({ length: d }, () => rnd() * 2 - 1);
      const norms = Float32Array.from({ length: n }, () => rnd() * 4);
      const pv = K.copyIn(Float32Array, vmin), ps = K.copyIn(Float32Array, scale), pq = K.copyIn(Float32Array, q);
      const pc = K.copyIn(Uint8Array, codes), pn = K.copyIn(Float32Array, norms), po = K.alloc(Float32Array, n);
      for (const metric of [0, 1]) {
        const run = (v, batch, m = n) => {
          assert.equal(x.qa_wasm_codec_distances(kind, v, metric, d, pv, ps, pq, pc, metric === 0 ? pn : 0, m, batch, po), 0);
          return Array.from(new Uint32Array(K.x.memory.buffer, po, m));
        };
        const ref = run(0, 0);
        assert.deepEqual(run(0, 1), ref);
        for (let v = 1; v < nv; v++) {
          assert.deepEqual(run(v, 0), ref, `${name} d=${d} metric=${metric} variant ${v}`);
          assert.deepEqual(run(v, 1), ref, `${name} d=${d} metric=${metric} variant ${v} (batch)`);
          // short batches: a batch may take codes in groups (sq8: pairs) and the rest one by one
          for (const m of [1, 2, 3, 5])
            assert.deepEqual(run(v, 1, m), ref.slice(0, m), `${name} d=${d} metric=${metric} variant ${v} (batch of ${m})`);
        }
      }
      for (const p of [pv, ps, pq, pc, pn, po]) K.free(p);
    }
  }
});
