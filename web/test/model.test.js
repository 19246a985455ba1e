// The model kernel in wasm (web/dist/quantann-model*.wasm) under Node: each SIMD128 dot held
// to its scalar reference, the memory ceiling checked before any weight byte is read,
// bad files, and parity with native Python (tests/web/model_native.py): MiniLM embeddings
// bit-identical to the native scalar kernel, SmolLM2 greedy tokens identical to native's
// default kernel, the chat template rendered as jinja2 renders it. Model tests skip when the
// packages or Python are missing. Both builds are tested: plain SIMD128 here, relaxed SIMD
// here too when Node runs it, else in a child `node --experimental-wasm-relaxed-simd`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { Embedder } from '../src/embedder.js';
import { Generator } from '../src/generator.js';
import { loadModelKernel, MemoryBudgetError, ModelError, relaxedMaddFused } from '../src/model.js';
import { rng, weightBlocks } from '../testlib/blocks.js';
import { minilm as findMinilm, native, smollm2 } from '../testlib/models.js';

if (!existsSync(new URL('../dist/quantann-model.wasm', import.meta.url)) || !existsSync(new URL('../dist/quantann-model-relaxed.wasm', import.meta.url)))
  execFileSync(new URL('../build-wasm.sh', import.meta.url).pathname, { stdio: 'inherit' });

// The builds this process tests: the child run for the relaxed build tests only that one.
const CHILD = process.env.QUANTANN_RELAXED_CHILD === '1';
const BUILDS = CHILD ? ['relaxed'] : relaxedMaddFused() ? ['simd128', 'relaxed'] : ['simd128'];

const minilm = findMinilm();
const smollm = smollm2();

// ---- SIMD128 dots against the scalar references (kernel/model/types/*.c)

// Block 1 adds 16777217 * 2^-17 (a midpoint between two floats) to lane 0's 2^-48 from block 0:
// fma's one rounding gives 128 + 2^-16, two roundings (a product, then the sum; or a double
// rounded again to float) 128. The reference, the checked dot, the 4-row dot and the tile
// must all give fma's (as native's AVX2 does: tests/test_generate_types.py).
for (const build of BUILDS) test(`${build} build: Q8_0 dots round once like fma on a float midpoint`, async () => {
  const K = await loadModelKernel(build);
  const block = (e, m, q0) => { const b = new Uint8Array(34); new DataView(b.buffer).setUint16(0, e << 10 | m, true); b[2] = q0; return b; };
  const two = (a, b) => { const x = new Uint8Array(68); x.set(a); x.set(b, 34); return x; };
  const w = two(block(0, 1, 1), block(15, 1346 - 1024, 97)), a = two(block(0, 1, 1), block(15, 4, 1));
  const wp = K.copyIn(Uint8Array, new Uint8Array([...w, ...w, ...w, ...w])), ap = K.copyIn(Uint8Array, new Uint8Array([...a, ...a, ...a, ...a]));
  const want = 128 + 2 ** -16, out = K.alloc(Float32Array, 8);
  assert.equal(K.x.qa_wasm_type_dot(8, 1, 64, wp, ap), want, 'reference');
  assert.equal(K.x.qa_wasm_type_dot(8, 0, 64, wp, ap), want, 'SIMD128 dot');
  assert.equal(K.x.qa_wasm_type_rows4(8, 64, wp, 68, ap, out), 0);
  assert.deepEqual(Array.from(K.view(Float32Array, out, 4)), [want, want, want, want], 'rows4');
  assert.equal(K.x.qa_wasm_type_tile(8, 64, wp, 68, ap, 68, out), 0);
  assert.deepEqual(Array.from(K.view(Float32Array, out, 8)), Array(8).fill(want), 'tile');
  [wp, ap, out].forEach((p) => K.free(p));
});

// ggml type ids (kernel/gguf/gguf.h) and block layouts: [bytes, offsets of fp16 scales]
const TYPES = { F32: [0, 4, []], Q4_0: [2, 18, [0]], Q4_1: [3, 20, [0, 2]], Q8_0: [8, 34, [0]] };

for (const build of BUILDS) test(`${build} build: each SIMD128 dot, tile and 4-row dot equals its scalar reference bit for bit`, async () => {
  const K = await loadModelKernel(build);
  assert.equal(K.build, build);
  const r = rng(7);
  for (const [name, [type, size, scales]] of Object.entries(TYPES)) {
    for (const n of type ? [32, 64, 576, 1536] : [3, 32, 67, 576]) {
      const nb = type ? n / 32 : n; // blocks per row (F32: one value each)
      const x = Float32Array.from({ length: 4 * n }, () => (r() - 0.5) * 8 * (r() < 0.05 ? 30 : 1));
      const xp = K.copyIn(Float32Array, x);
      let ap = xp, as = 4 * n, wp; // F32: the activations are the floats
      if (type) {
        ap = K.alloc(Uint8Array, 4 * n * 2);
        as = K.x.qa_wasm_type_quantize_act(type, 1, n, xp, ap); // bytes of one activation row
        assert.ok(as > 0, `${name}: no activation quantizer`);
        for (let j = 1; j < 4; j++) K.x.qa_wasm_type_quantize_act(type, 1, n, xp + 4 * j * n, ap + j * as);
        // the SIMD quantizer writes the reference's bytes (zero, subnormal and, for Q8_0's
        // act type, non-finite blocks included)
        const special = Float32Array.from(x.subarray(0, n), (v, i) => (i < 32 ? 0 : i < 64 ? v * 1e-40
          : i === 70 ? Infinity : v));
        for (const xs of [x, special]) {
          const sp = K.copyIn(Float32Array, xs), simd = K.alloc(Uint8Array, 4 * as), ref = K.alloc(Uint8Array, 4 * as);
          const rows = xs.length / n;
          for (let j = 0; j < rows; j++) {
            K.x.qa_wasm_type_quantize_act(type, 0, n, sp + 4 * j * n, simd + j * as);
            K.x.qa_wasm_type_quantize_act(type, 1, n, sp + 4 * j * n, ref + j * as);
          }
          assert.deepEqual(K.view(Uint8Array, simd, rows * as), K.view(Uint8Array, ref, rows * as), `${name} quantizer n=${n}`);
          [sp, simd, ref].forEach((p) => K.free(p));
        }
        wp = K.copyIn(Uint8Array, weightBlocks(size, scales, 4 * nb, r));
      } else {
        wp = K.copyIn(Float32Array, Float32Array.from({ length: 4 * n + 3 }, () => r() - 0.5));
      }
      const ref = [0, 1, 2, 3].map((row) => [0, 1, 2, 3].map((j) => K.x.qa_wasm_type_dot(type, 1, n, wp + row * nb * size, ap + j * as)));
      for (let row = 0; row < 2; row++)
        for (let j = 0; j < 4; j++) {
          const simd = K.x.qa_wasm_type_dot(type, 0, n, wp + row * nb * size, ap + j * as);
          assert.ok(Number.isFinite(ref[row][j]) && ref[row][j] !== 0, `${name}: degenerate test data`);
          assert.equal(simd, ref[row][j], `${name} n=${n} row ${row} act ${j}`);
        }
      const out = K.alloc(Float32Array, 8), j4 = (n >> 5) % 4; // rows4 against one of the activation rows
      if (K.x.qa_wasm_type_tile(type, n, wp, nb * size, ap, as, out) === 0) {
        const t = K.view(Float32Array, out, 8);
        for (let row = 0; row < 2; row++)
          for (let j = 0; j < 4; j++) assert.equal(t[row * 4 + j], ref[row][j], `${name} tile n=${n} [${row}][${j}]`);
      } else {
        assert.notEqual(name, 'Q4_1', 'Q4_1 has a SIMD128 tile');
      }
      if (K.x.qa_wasm_type_rows4(type, n, wp, nb * size, ap + j4 * as, out) === 0) {
        const t = K.view(Float32Array, out, 4);
        for (let row = 0; row < 4; row++) assert.equal(t[row], ref[row][j4], `${name} rows4 n=${n} row ${row}`);
      } else {
        assert.ok(!['Q4_1', 'Q8_0'].includes(name), `${name} has a SIMD128 4-row dot`);
      }
      new Set([xp, ap, wp, out]).forEach((p) => K.free(p));
    }
  }
});

// The matmul over every token count from 1 to 20 (SIMD128 Q8_0: panels of 8 tokens, then 2 x 4
// tiles, then 4-row dots; an odd last weight row by single dots): each output equals the scalar
// reference's dot of its weight row and its token's row bit for bit.
for (const build of BUILDS) test(`${build} build: the matmul's panels, tiles and leftover tokens equal the scalar reference bit for bit`, async () => {
  const K = await loadModelKernel(build);
  const r = rng(11), rows = 7;
  for (const [name, [type, size, scales]] of Object.entries(TYPES)) {
    if (!type) continue;
    for (const n of [64, 576]) {
      const nb = n / 32, T = 20;
      // every third token's block 1 tiny: past the plain build's bound for unchecked sums
      const x = Float32Array.from({ length: T * n }, (_, i) => (r() - 0.5) * 8 * (r() < 0.05 ? 30 : 1) *
        (Math.floor(i / n) % 3 === 2 && (i % n >> 5) === 1 ? 1e-30 : 1));
      const xp = K.copyIn(Float32Array, x), ap = K.alloc(Uint8Array, T * n * 2), wp = K.copyIn(Uint8Array, weightBlocks(size, scales, rows * nb, r));
      const as = K.x.qa_wasm_type_quantize_act(type, 1, n, xp, ap);
      for (let t = 1; t < T; t++) K.x.qa_wasm_type_quantize_act(type, 1, n, xp + 4 * t * n, ap + t * as);
      const ref = Array.from({ length: T }, (_, t) => Array.from({ length: rows }, (_, o) => K.x.qa_wasm_type_dot(type, 1, n, wp + o * nb * size, ap + t * as)));
      const yp = K.alloc(Float32Array, T * rows);
      for (let tokens = 1; tokens <= T; tokens++) {
        assert.equal(K.x.qa_wasm_type_matmul(type, n, rows, wp, xp, tokens, yp), 0);
        const y = K.view(Float32Array, yp, tokens * rows);
        for (let t = 0; t < tokens; t++)
          for (let o = 0; o < rows; o++) assert.equal(y[t * rows + o], ref[t][o], `${name} n=${n} ${tokens} tokens: token ${t} row ${o}`);
      }
      [xp, ap, wp, yp].forEach((p) => K.free(p));
    }
  }
});

// ---- SIMD128 activations against the scalar references (kernel/model/ops_act.c)

test('the SIMD128 GELU and exp equal their scalar references bit for bit', async () => {
  const K = await loadModelKernel();
  const r = rng(11);
  const n = 1027; // 256 vectors of 4 and a scalar tail
  const cases = [
    ['gelu', 0, 0, Float32Array.from({ length: n }, () => (r() - 0.5) * 24)],
    ['gelu', 0, 0, Float32Array.from({ length: n }, (_, i) => [0, -0, 1e-40, -1e-40, 1e30, -1e30, -9, 9][i % 8] * (1 + r()))],
    ['exp', 1, 2.5, Float32Array.from({ length: n }, () => 2.5 - r() * 100)], // x - m over [-100, 0]
    ['exp', 1, 0, Float32Array.from({ length: n }, () => (r() - 0.5) * 200)], // clamped both sides
  ];
  for (const [name, op, m, x] of cases) {
    const simd = K.copyIn(Float32Array, x), ref = K.copyIn(Float32Array, x);
    assert.equal(K.x.qa_wasm_act(op, 0, simd, n, m), 0);
    assert.equal(K.x.qa_wasm_act(op, 1, ref, n, m), 0);
    const a = new Uint32Array(K.view(Float32Array, simd, n).slice().buffer);
    const b = new Uint32Array(K.view(Float32Array, ref, n).slice().buffer);
    assert.ok(K.view(Float32Array, ref, n).every(Number.isFinite), `${name}: finite`);
    assert.deepEqual(a, b, `${name} (m=${m}): SIMD128 bits differ from the reference`);
    [simd, ref].forEach((p) => K.free(p));
  }
  const p = K.copyIn(Float32Array, [NaN, NaN, NaN, NaN, NaN]); // a vector and the tail
  K.x.qa_wasm_act(0, 0, p, 5, 0);
  assert.ok(K.view(Float32Array, p, 5).every(Number.isNaN), 'GELU(NaN) is NaN');
  K.free(p);
});

// ---- attention over the fp16 KV cache (kernel/model/ops_decoder.c)

// The batch rows (SIMD128: a KV head's cells as f32 once per batch, the query and weights
// rounded to fp16 in vectors) against the scalar reference row, bit for bit, on shapes the
// models do not reach: head_dim not a multiple of 16 (6: the reference's fallback), a cache
// prefix, a sliding window, heads sharing a KV head, blocks of 16 cells cut at both ends,
// queries on fp16 rounding ties and subnormals, weights in fp16's subnormals (scale 8). The
// cells past the batch hold NaN: a row that read them would show it.
for (const build of BUILDS) test(`${build} build: batch attention rows equal the scalar reference bit for bit`, async () => {
  const K = await loadModelKernel(build);
  const r = rng(5);
  const f16 = () => (r() < 0.05 ? 0 : (5 + Math.floor(r() * 13)) << 10) | Math.floor(r() * 1024) | (r() < 0.5 ? 0x8000 : 0);
  const qval = () => { // normal values, fp16 ties (a half unit in the last place), subnormals and their ties
    const u = r(), sgn = r() < 0.5 ? -1 : 1;
    if (u < 0.1) return sgn * (Math.floor(r() * 1024) + 1024.5) * 2 ** (-10 - Math.floor(r() * 8));
    if (u < 0.15) return sgn * (Math.floor(r() * 1024) + 0.5) * 2 ** -24;
    if (u < 0.2) return sgn * r() * 2 ** -18;
    return sgn * r() * 3;
  };
  let cases = 0;
  for (const hd of [64, 20, 12, 6]) for (const [nHead, nKv] of [[3, 1], [2, 2]]) for (const n of [2, 9, 33])
    for (const pos0 of [0, 13]) for (const nSwa of [0, 10]) for (const scale of [0.125, 8]) {
      const nCtx = pos0 + n + 20, end = pos0 + n, stride = nHead * hd;
      const cache = () => Uint16Array.from({ length: nKv * nCtx * hd }, (_, i) => (Math.floor(i / hd) % nCtx < end ? f16() : 0x7e00));
      const k = K.copyIn(Uint16Array, cache()), v = K.copyIn(Uint16Array, cache());
      const q = K.copyIn(Float32Array, Float32Array.from({ length: n * stride }, qval));
      const outs = [0, 1].map((ref) => {
        const o = K.alloc(Float32Array, n * stride);
        assert.equal(K.x.qa_wasm_attention(ref, k, v, nCtx, nKv, hd, q, stride, n, pos0, nHead, scale, nSwa, o), 0);
        const y = K.view(Float32Array, o, n * stride).slice();
        K.free(o);
        return y;
      });
      const at = `head_dim ${hd}, ${nHead}/${nKv} heads, ${n} rows at ${pos0}, window ${nSwa}, scale ${scale}`;
      assert.ok(outs[1].every(Number.isFinite), `${at}: finite`);
      assert.deepEqual(new Uint32Array(outs[0].buffer), new Uint32Array(outs[1].buffer), at);
      [k, v, q].forEach((p) => K.free(p));
      cases++;
    }
  assert.equal(cases, 192);
});

// ---- opening: the memory ceiling before loading, bad files

// A source that counts the bytes read from it (the weights must not be read when over).
function countingSource(bytes, name = 'model.gguf') {
  const s = {
    name, size: bytes.length, bytesRead: 0,
    async read(off, len) {
      s.bytesRead += Math.max(0, Math.min(len, bytes.length - off));
      return bytes.subarray(off, off + len);
    },
  };
  return s;
}

test('over the budget or past wasm32: MemoryBudgetError with the breakdown, before the weights are read', { skip: smollm.skip }, async () => {
  const { readFile } = await import('node:fs/promises');
  const bytes = new Uint8Array(await readFile(smollm.path));
  const src = countingSource(bytes);
  await assert.rejects(Generator.open(src, { memoryBudget: '100MB' }), (e) => {
    assert.ok(e instanceof MemoryBudgetError, e.message);
    assert.match(e.message, /over the budget of 100\.00 MB \(weights 98\.36 MB, KV cache 47\.19 MB, scratch [0-9.]+ [KM]B, vocabulary [0-9.]+ MB\)/);
    assert.equal(e.budget, 100e6);
    assert.ok(e.needed > 145e6);
    return true;
  });
  assert.ok(src.bytesRead < bytes.length / 4, `${src.bytesRead} of ${bytes.length} bytes read before refusing`);
  const src2 = countingSource(bytes);
  await assert.rejects(Generator.open(src2, { nCtx: 1 << 20 }), (e) => {
    assert.ok(e instanceof MemoryBudgetError);
    assert.match(e.message, /past the wasm32 limit of 4\.29 GB/);
    assert.match(e.message, /KV cache 24\.16 GB/);
    return true;
  });
  assert.ok(src2.bytesRead < bytes.length / 4);
});

test('bad files and bad arguments get clear errors', async () => {
  const K = await loadModelKernel();
  const before = K.memoryBytes;
  await assert.rejects(Generator.open(new Uint8Array(100)), (e) => e instanceof ModelError && /GGUF|magic/i.test(e.message));
  await assert.rejects(Embedder.open(new TextEncoder().encode('GGUF')), ModelError);
  await assert.rejects(Generator.open(new Uint8Array(100), { memoryBudget: '300M' }), /ambiguous memory size/);
  await assert.rejects(Generator.open(new Uint8Array(100), { threads: 2 }), RangeError);
  if (!smollm.skip) {
    const { readFile } = await import('node:fs/promises');
    const bytes = new Uint8Array(await readFile(smollm.path));
    await assert.rejects(Generator.open(bytes.subarray(0, bytes.length - 1000)), (e) => e instanceof ModelError, 'a truncated file');
    await assert.rejects(Embedder.open(bytes), /not an encoder|bert|architecture/i);
  }
  assert.ok(K.memoryBytes >= before);
});

// ---- parity with native

const TEXTS = ['How do I install a Debian package from a local .deb file?', 'The quick brown fox jumps over the lazy dog.',
  'naïve café — 東京 🙂', 'a', 'Mean pooling averages the token embeddings of the last layer. '.repeat(30)];

// Texts 0-3 are bit-identical to native scalar; the long text 4 (256 tokens) too since GELU's
// erf and exp are the kernel's own (kernel/model/ops_act.c; libm's erff differs between glibc
// and wasi-libc), held here within 1e-3 as before and exactly by the assertion after.
for (const build of BUILDS) test(`${build} build: MiniLM embeddings bit-identical to the native scalar kernel on short texts`, { skip: minilm.skip }, async (t) => {
  const e = await Embedder.open(minilm.path, { memoryBudget: '100MB', wasm: build });
  assert.equal(e.info().wasmBuild, build);
  const ours = await e.embed(TEXTS);
  const ref = native({ op: 'embed', path: minilm.path, texts: TEXTS, scalar: true, repeat: 1 });
  const simd = native({ op: 'embed', path: minilm.path, texts: TEXTS, repeat: 1 });
  if (ref.skip || simd.skip) return t.skip(ref.skip || simd.skip);
  assert.equal(ours.length, TEXTS.length);
  let maxSimd = 0, maxLong = 0;
  ours.forEach((v, i) => {
    assert.equal(v.length, 384);
    if (i < 4) assert.deepEqual(Array.from(v), ref.vectors[i].map(Math.fround), `text ${i} differs from native scalar`);
    else v.forEach((x, j) => { maxLong = Math.max(maxLong, Math.abs(x - ref.vectors[i][j])); });
    v.forEach((x, j) => { maxSimd = Math.max(maxSimd, Math.abs(x - simd.vectors[i][j])); });
  });
  t.diagnostic(`max abs diff: long text to native scalar ${maxLong}, all texts to native AVX2 ${maxSimd}`);
  assert.ok(maxLong < 1e-3, `long text: max abs diff to native scalar ${maxLong}`);
  assert.deepEqual(Array.from(ours[4]), ref.vectors[4].map(Math.fround), 'the long text differs from native scalar');
  // native's AVX2 kernel sums in another order (FMA, 8 lanes): close, not equal
  assert.ok(maxSimd < 0.02, `max abs diff to native AVX2 ${maxSimd}`);
  assert.deepEqual(e.embedSync('a'), ours[3]);
  e.close();
});

const PROMPTS = ['The capital of France is', 'def fibonacci(n):', 'Once upon a time, in a small village,'];

// Every Q4_1 / Q8_0 dot (native scalar, AVX2, AVX-512 VNNI and its panels, both wasm builds)
// follows llama.cpp's x86 order (kernel/model/types/simd_blocks.h), so greedy tokens equal
// those of native's default kernel (tests/test_generate_levels.py holds native's levels equal).
for (const build of BUILDS) test(`${build} build: SmolLM2 greedy tokens identical to native's default kernel, plain and chat prompts; streamed text`, { skip: smollm.skip, timeout: 900000 }, async (t) => {
  const plain = native({ op: 'generate', path: smollm.path, prompts: PROMPTS, max_tokens: 12 });
  if (plain.skip) return t.skip(plain.skip);
  const g = await Generator.open(smollm.path, { memoryBudget: '300MB', wasm: build });
  assert.equal(g.info().wasmBuild, build);
  for (const [i, p] of PROMPTS.entries()) {
    const pieces = [];
    const r = await g.generate(p, { maxTokens: 12, temperature: 0, onToken: (s) => pieces.push(s) });
    assert.deepEqual(r.tokens, plain.tokens[i], `prompt ${JSON.stringify(p)}`);
    assert.equal(pieces.join(''), r.text);
    assert.equal(r.stats.generatedTokens, r.tokens.length);
  }
  const chatQ = ['What is the capital of France?', 'Name three colours.'];
  const chat = native({ op: 'generate', path: smollm.path, prompts: chatQ, max_tokens: 10, chat: true });
  for (const [i, q] of chatQ.entries()) {
    assert.equal(await g.renderChat(q), chat.prompts[i], 'the chat template renders as jinja2 does');
    const r = await g.generate(q, { chat: true, maxTokens: 10, temperature: 0 });
    assert.deepEqual(r.tokens, chat.tokens[i], `chat ${JSON.stringify(q)}`);
  }
  // seeded sampling reproduces itself
  const a = await g.generate('Hello', { maxTokens: 6, temperature: 0.9, seed: 42 });
  const b = await g.generate('Hello', { maxTokens: 6, temperature: 0.9, seed: 42 });
  assert.deepEqual(a.tokens, b.tokens);
  await assert.rejects(g.generate('x', { maxTokens: 5000 }), /exceeds the context/);
  await assert.rejects(g.generate('x', { temperature: -1 }), /temperature/);
  g.close();
  await assert.rejects(g.generate('x'), /closed/);
});

// The decoder ops' SIMD128 variants (attention over the fp16 cache, softmax exp, SiLU with
// wasi-libc's fmaf emulated in f64x2) against their scalar references: the logits of a
// 20-token prompt (prompt attention) and of 3 single-token steps, bit for bit.
test('SmolLM2 logits with the SIMD128 decoder ops equal the scalar references bit for bit', { skip: smollm.skip, timeout: 900000 }, async () => {
  const g = await Generator.open(smollm.path, { memoryBudget: '300MB' });
  const K = g.K, x = K.x, ids = g.tokenize('Once upon a time, in a small village, there lived an old clockmaker who');
  assert.ok(ids.length >= 16, 'a prompt long enough for blocks of 16 cache cells');
  const run = (simd) => {
    x.qa_wasm_decoder_ops_simd(simd);
    const p = K.copyIn(Int32Array, ids), out = [];
    assert.equal(x.qa_wasm_decoder_prefill(g.h, p, ids.length, 0, 1), 0);
    K.free(p);
    for (let i = 0; i < 4; i++) {
      const l = K.view(Float32Array, x.qa_wasm_decoder_logits(g.h), g.nVocab).slice();
      out.push(l);
      if (i < 3) assert.equal(x.qa_wasm_decoder_step(g.h, l.indexOf(Math.max(...l))), 0);
    }
    return out;
  };
  const ref = run(0), simd = run(1);
  for (let i = 0; i < 4; i++)
    assert.deepEqual(new Uint32Array(simd[i].buffer), new Uint32Array(ref[i].buffer), `logits ${i}`);
  g.close();
});

test('closing a generator or embedder gives its wasm memory back', { skip: smollm.skip || minilm.skip }, async () => {
  const K = await loadModelKernel();
  for (const open of [() => Generator.open(smollm.path), () => Embedder.open(minilm.path)]) {
    (await open()).close();
    const after = K.memoryBytes;
    for (let i = 0; i < 3; i++) (await open()).close();
    assert.equal(K.memoryBytes, after, 'reopening grew wasm memory: something was not freed');
  }
});

// The relaxed build where this Node does not run relaxed SIMD by default (Node 20): the tests
// above for that build, in a child Node with the flag.
test('relaxed build in a child node --experimental-wasm-relaxed-simd', { skip: CHILD || BUILDS.includes('relaxed') ? 'tested in this process' : false, timeout: 1800000 }, (t) => {
  let out;
  try {
    const env = { ...process.env, QUANTANN_RELAXED_CHILD: '1' };
    delete env.NODE_TEST_CONTEXT; // the child reports as a top-level run (TAP on stdout)
    out = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--test-reporter=tap', fileURLToPath(import.meta.url)],
      { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  } catch (e) {
    if (/bad option|not allowed/.test(String(e.stderr))) return t.skip(`this Node has no --experimental-wasm-relaxed-simd: ${e.stderr.split('\n')[0]}`);
    assert.fail(`the child run failed:\n${e.stdout}\n${e.stderr}`);
  }
  const count = (k) => Number((out.match(new RegExp(`^# ${k} (\\d+)`, 'm')) || [])[1]);
  t.diagnostic(`child: pass ${count('pass')}, skipped ${count('skipped')}, fail ${count('fail')}`);
  assert.equal(count('fail'), 0);
  assert.ok(count('pass') >= 3, 'the child ran the relaxed build\'s tests');
});
