// Random quantized weight blocks for the type tests (model.test.js, kquant.test.js).

// A seeded uniform [0, 1) generator (an LCG): the same blocks on every run.
export function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

// nb random blocks of `size` bytes whose fp16 scales (at the byte offsets `scales`) are
// finite: random bytes could make NaN or infinite scales.
export function weightBlocks(size, scales, nb, r) {
  const b = new Uint8Array(nb * size).map(() => Math.floor(r() * 256));
  const dv = new DataView(b.buffer);
  for (let i = 0; i < nb; i++)
    for (const off of scales) dv.setUint16(i * size + off, (r() < 0.5 ? 0x8000 : 0) | (Math.floor(5 + r() * 15) << 10) | Math.floor(r() * 1024), true);
  return b;
}
