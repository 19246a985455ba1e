// The wasm kernel (web/dist/quantann.wasm, built by web/build-wasm.sh from kernel/*.c):
// loading, and typed views over its linear memory. Arrays are allocated inside the wasm
// memory and filled by the host; views are re-made after every call that may grow memory.

export const WASM32_LIMIT = 4 * 1024 ** 3; // 65536 pages of 64 KiB

// Layouts of the index ABI's structs in wasm32 linear memory (kernel/index/*.h); the C
// side asserts the same offsets at compile time (kernel/wasm/exports.c).
// [offset, type]: i32, i64 (a safe-integer Number), ptr (u32)
export const ARRAYS = {
  bytes: 136,
  fields: { metric: [0, 'i32'], cosine: [4, 'i32'], codec: [8, 'i32'], d: [12, 'i32'], n: [16, 'i64'],
    M: [24, 'i32'], M0: [28, 'i32'], entry: [32, 'i32'], max_level: [36, 'i32'], ef_construction: [40, 'i32'],
    vmin: [44, 'ptr'], scale: [48, 'ptr'], codes: [52, 'ptr'], norms: [56, 'ptr'], level: [60, 'ptr'],
    links0: [64, 'ptr'], up_nodes: [68, 'ptr'], up_off: [72, 'ptr'], n_up: [80, 'i64'], upper: [88, 'ptr'],
    n_upper: [96, 'i64'], ids: [104, 'ptr'], deleted: [108, 'ptr'], vectors_offset: [112, 'i64'],
    vectors_crc32: [120, 'i32'], link_bits: [124, 'i32'], links0_packed: [128, 'ptr'], resid: [132, 'ptr'] },
};
export const SEARCH_PARAMS = { bytes: 32, fields: { k: [0, 'i64'], ef: [8, 'i64'], rerank: [16, 'i64'], max_gap: [24, 'i64'] } };
export const SEARCH_STATS = { bytes: 48, fields: { candidates: [0, 'i64'], distances: [8, 'i64'], fetch: [16, 'i64'],
  ranges: [24, 'i64'], span: [32, 'i64'], found: [40, 'i64'] } };

const cache = new Map();

async function loadBytes(url) {
  if (url instanceof Uint8Array || url instanceof ArrayBuffer) return url;
  const u = new URL(url, import.meta.url);
  if (u.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return readFile(u);
  }
  const r = await fetch(u);
  if (!r.ok) throw new Error(`${u}: HTTP ${r.status} loading the wasm kernel (build it with web/build-wasm.sh)`);
  return r.arrayBuffer();
}

export async function loadKernel(wasm = new URL('../dist/quantann.wasm', import.meta.url)) {
  const key = typeof wasm === 'string' || wasm instanceof URL ? String(wasm) : wasm;
  if (!cache.has(key)) {
    cache.set(key, (async () => {
      const bytes = await loadBytes(wasm);
      const { instance } = await WebAssembly.instantiate(bytes, {});
      return new Kernel(instance.exports, bytes.byteLength);
    })());
  }
  return cache.get(key);
}

export class Kernel {
  constructor(exports, wasmBytes) {
    this.x = exports;
    this.wasmBytes = wasmBytes; // size of the .wasm module
  }

  get memoryBytes() { return this.x.memory.buffer.byteLength; }

  error() { return this.string(this.x.qa_wasm_error()); }

  // Allocates `count` elements of a typed array type; returns the pointer.
  alloc(Type, count) {
    const p = this.x.qa_wasm_alloc(Type.BYTES_PER_ELEMENT * Math.max(1, count));
    if (!p) throw new RangeError(`wasm memory exhausted allocating ${Type.BYTES_PER_ELEMENT * count} bytes`);
    return p;
  }

  view(Type, ptr, count) { return new Type(this.x.memory.buffer, ptr, count); }

  // One DataView over the memory, made again only when a growth replaced the buffer (a
  // search reads and writes its structs through it without allocating one per call).
  dataView() {
    const b = this.x.memory.buffer;
    if (this._dv?.buffer !== b) this._dv = new DataView(b);
    return this._dv;
  }

  // The whole memory as a Float32Array / Int32Array (index = byte address / 4), likewise kept.
  f32() {
    const b = this.x.memory.buffer;
    if (this._f32?.buffer !== b) this._f32 = new Float32Array(b);
    return this._f32;
  }

  i32() {
    const b = this.x.memory.buffer;
    if (this._i32?.buffer !== b) this._i32 = new Int32Array(b);
    return this._i32;
  }

  // Copies a typed array (or bytes) into newly allocated wasm memory; returns the pointer.
  copyIn(Type, src) {
    const p = this.alloc(Type, src.length);
    this.view(Type, p, src.length).set(src);
    return p;
  }

  free(p) { if (p) this.x.qa_wasm_free(p); }

  // Writes `values` into a struct of `layout` at p (fields not given are left as they are).
  // An i64 takes any integer Number as is (the kernel checks its range).
  writeStruct(layout, p, values) {
    const dv = this.dataView();
    for (const [name, v] of Object.entries(values)) {
      const [off, type] = layout.fields[name];
      if (type === 'i32') dv.setInt32(p + off, v, true);
      else if (type === 'ptr') dv.setUint32(p + off, v, true);
      else dv.setBigInt64(p + off, BigInt(v), true);
    }
  }

  readStruct(layout, p) {
    const dv = this.dataView(), out = {};
    for (const [name, [off, type]] of Object.entries(layout.fields))
      out[name] = type === 'i32' ? dv.getInt32(p + off, true) : type === 'ptr' ? dv.getUint32(p + off, true) : Number(dv.getBigInt64(p + off, true));
    return out;
  }

  // A NUL-terminated string at p.
  string(p) {
    const mem = new Uint8Array(this.x.memory.buffer);
    let e = p;
    while (mem[e]) e++;
    return new TextDecoder().decode(mem.subarray(p, e));
  }
}
