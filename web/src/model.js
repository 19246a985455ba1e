// What the embedder and the generator share: the model kernel (web/dist/quantann-model*.wasm,
// built from kernel/model by web/build-wasm.sh, one of two builds picked per process), the GGUF header read from a prefix, the
// memory check made before any weight byte is fetched, and loading the file into wasm
// memory. The kernel sizes everything (kernel/wasm/model_exports.c); this file compares
// those sizes with the budget by the rule of src/index.js and quantann/generate.py.
import { MemoryBudgetError } from './index.js';
import { loadKernel, WASM32_LIMIT } from './kernel.js';
import { formatSize as human, parseSize } from './sizes.js';
import { BlobSource, HttpSource, openSource } from './source.js';
import { chunksOf, streamCacheState, streamInto } from './stream-load.js';

export { MemoryBudgetError };
// The model kernel's two builds of the same C: relaxed SIMD (fused f32x4.relaxed_madd where
// native x86 fuses) and plain SIMD128 (that fma emulated exactly in f64x2); both give native's
// bits, the relaxed one faster.
export const MODEL_WASM = new URL('../dist/quantann-model.wasm', import.meta.url);
export const MODEL_WASM_RELAXED = new URL('../dist/quantann-model-relaxed.wasm', import.meta.url);
const NEED_MORE = -5; // QA_ERR_NEED_MORE
const CHUNK = 16 << 20; // bytes per read while loading (the ceiling is 64 MB)

export class ModelError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ModelError';
  }
}

// Whether this engine validates relaxed SIMD and its f32x4.relaxed_madd is fused: a module
// returning relaxed_madd(a, a, c) for a = 1 + 2^-12, c = -(1 + 2^-11) gives 2^-24 fused
// (one rounding) and 0 unfused (a * a rounds the 2^-24 away first).
let relaxed;
export function relaxedMaddFused() {
  if (relaxed === undefined) {
    const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      1, 8, 1, 0x60, 3, 0x7d, 0x7d, 0x7d, 1, 0x7d, // type (f32, f32, f32) -> f32
      3, 2, 1, 0, 7, 5, 1, 1, 0x66, 0, 0, // function 0, exported as "f"
      10, 0x16, 1, 0x14, 0, // code: splat each argument, relaxed_madd, lane 0
      0x20, 0, 0xfd, 0x13, 0x20, 1, 0xfd, 0x13, 0x20, 2, 0xfd, 0x13, 0xfd, 0x85, 0x02, 0xfd, 0x1f, 0, 0x0b]);
    try {
      const f = WebAssembly.validate(bytes) && new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f;
      const a = 1 + 2 ** -12;
      relaxed = !!f && f(a, a, -(1 + 2 ** -11)) === 2 ** -24;
    } catch {
      relaxed = false;
    }
  }
  return relaxed;
}

// The build this process runs: 'relaxed' when relaxedMaddFused(), else 'simd128'.
export const modelBuild = () => (relaxedMaddFused() ? 'relaxed' : 'simd128');
export const modelWasm = (build = modelBuild()) => (build === 'relaxed' ? MODEL_WASM_RELAXED : MODEL_WASM);

// The model kernel (wasm: the build's name, a URL or bytes); K.build names the build it runs
// ('custom' for bytes).
export async function loadModelKernel(wasm = modelWasm()) {
  if (wasm === 'relaxed' || wasm === 'simd128') wasm = modelWasm(wasm);
  const K = await loadKernel(wasm);
  const url = typeof wasm === 'string' || wasm instanceof URL ? String(wasm) : null;
  K.build ??= url === null ? 'custom' : url.endsWith('-relaxed.wasm') ? 'relaxed' : 'simd128';
  return K;
}

// The GGUF header of src (its first 64 KiB, then at least double each time: the kernel
// asks only for the next record, and each ask parses from the start), in wasm memory:
// returns {ptr, len}; the caller frees ptr.
export async function readHeader(src, K) {
  let prefix = await src.read(0, 65536);
  const need = K.alloc(Float64Array, 1);
  try {
    for (;;) {
      const p = K.copyIn(Uint8Array, prefix);
      const rc = K.x.qa_wasm_gguf_header_size(p, prefix.length, src.size, need);
      const n = K.view(Float64Array, need, 1)[0];
      if (rc === 0) return { ptr: p, len: prefix.length };
      K.free(p);
      if (rc !== NEED_MORE || n <= prefix.length) throw new ModelError(`${src.name}: ${K.error()}`);
      const want = Math.min(Math.max(n, 2 * prefix.length), src.size);
      const more = await src.read(prefix.length, want - prefix.length);
      if (!more.length) throw new ModelError(`${src.name}: truncated: the GGUF header needs ${n} bytes`);
      const grown = new Uint8Array(prefix.length + more.length);
      grown.set(prefix);
      grown.set(more, prefix.length);
      prefix = grown;
    }
  } finally {
    K.free(need);
  }
}

// Calls a kernel plan function over the header: fn(ptr, len, fileLen, ...args, out) -> rc;
// returns its `count` doubles.
export async function plan(src, K, fn, args, count) {
  const { ptr, len } = await readHeader(src, K);
  const out = K.alloc(Float64Array, count);
  try {
    const rc = K.x[fn](ptr, len, src.size, ...args, out);
    if (rc) throw new ModelError(`${src.name}: ${K.error()}`);
    return Array.from(K.view(Float64Array, out, count));
  } finally {
    K.free(out);
    K.free(ptr);
  }
}

// breakdown: {weights, ...} in bytes. Over the budget or past wasm32's 4 GiB (with what the
// module holds already): MemoryBudgetError naming every part. Returns the total.
export function checkMemory(name, breakdown, memoryBudget, K) {
  const budget = parseSize(memoryBudget);
  const total = Object.values(breakdown).reduce((a, b) => a + b, 0);
  const parts = Object.entries(breakdown).map(([k, v]) => `${k} ${human(v)}`).join(', ');
  if (budget != null && total > budget)
    throw new MemoryBudgetError(`${name}: the model needs ${human(total)}, over the budget of ${human(budget)} (${parts})`, total, budget);
  if (K.memoryBytes + total > WASM32_LIMIT)
    throw new MemoryBudgetError(`${name}: the model needs ${human(total)} of wasm memory (${parts}); with ${human(K.memoryBytes)} in use that is past the wasm32 limit of ${human(WASM32_LIMIT)}`, total, WASM32_LIMIT);
  return total;
}

// The whole source into dest (a Uint8Array over wasm memory, source.size bytes): one
// streamed request for a URL, reads of CHUNK bytes otherwise; never a second full copy in
// JS. The one place to switch to the streamed, cached loader (src/stream-load.js).
export async function loadInto(src, dest, { onProgress } = {}) {
  let at = 0;
  const report = () => onProgress?.({ loaded: at, total: dest.length });
  if (src.url && typeof fetch === 'function') {
    const r = await fetch(src.url);
    if (!r.ok) throw new ModelError(`${src.url}: HTTP ${r.status}`);
    for await (const value of chunksOf(r.body)) { // one reused scratch buffer (BYOB): no garbage per chunk
      if (at + value.length > dest.length) throw new ModelError(`${src.name}: the file grew while loading`);
      dest.set(value, at);
      at += value.length;
      report();
    }
  } else {
    while (at < dest.length) {
      const b = await src.read(at, Math.min(CHUNK, dest.length - at));
      if (!b.length) break;
      dest.set(b, at);
      at += b.length;
      report();
    }
  }
  if (at !== dest.length) throw new ModelError(`${src.name}: truncated: got ${at} of ${dest.length} bytes`);
}

// Allocates source.size bytes in wasm memory and loads the file there; returns the pointer.
// A cached URL (cachedUrlSource) streams through its OPFS copy (src/stream-load.js), and
// src.loaded is set to streamInto's report (fromCache: bytes read from OPFS).
export async function loadModelBytes(src, K, options) {
  if (!Number.isFinite(src.size)) throw new ModelError(`${src.name}: unknown file size`);
  const p = K.alloc(Uint8Array, src.size);
  try {
    if (src.cache != null)
      src.loaded = await streamInto(src.streamUrl, { cache: src.cache, size: src.size, onProgress: options?.onProgress,
        dest: (total) => K.view(Uint8Array, p, total) });
    else
      await loadInto(src, K.view(Uint8Array, p, src.size), options);
  } catch (e) {
    K.free(p);
    throw e;
  }
  return p;
}

// {url, cache}: the model at url kept in OPFS under the file name `cache`, streamed from
// there (no network once complete) or from the network into wasm memory while it is
// written to OPFS; the GGUF header is read from the complete cached copy, else by a Range
// request. So the bytes go from OPFS or the network straight into wasm memory in the
// Worker, never through a copy in the page.
export const isCachedUrl = (s) => s != null && typeof s === 'object' && typeof s.url === 'string' && typeof s.cache === 'string';

async function cachedUrlSource({ url, cache }) {
  const state = await streamCacheState(cache).catch(() => null);
  let head = null;
  if (state?.complete && state.id === url) {
    const file = await (await (await navigator.storage.getDirectory()).getFileHandle(cache)).getFile();
    if (file.size >= state.total) head = new BlobSource(file);
  }
  head ??= await HttpSource.open(url);
  return { name: url, size: head.size, read: (at, n) => head.read(at, n), cache, streamUrl: url };
}

// fn(src) over the source opened from `source` (a URL, path, File, bytes, {url, cache} or
// source object); a file this opened is closed after.
export async function withSource(source, fn) {
  const src = isCachedUrl(source) ? await cachedUrlSource(source) : await openSource(source);
  try {
    return await fn(src);
  } finally {
    if (src !== source) await src.close?.();
  }
}

export const utf8 = new TextEncoder();

// text as UTF-8 in wasm memory: {ptr, len}; the caller frees ptr.
export function textIn(K, text) {
  if (typeof text !== 'string') throw new TypeError(`expected a string, got ${typeof text}`);
  const b = utf8.encode(text);
  return { ptr: K.copyIn(Uint8Array, b), len: b.length };
}
