// The wasm kernel (web/dist/quantann.wasm, built by web/build-wasm.sh from kernel/*.c):
// loading, and typed views over its linear memory. Arrays are allocated inside the wasm
// memory and filled by the host; views are re-made after every call that may grow memory.

export const WASM32_LIMIT = 4 * 1024 ** 3; // 65536 pages of 64 KiB

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

  error() {
    const p = this.x.qa_wasm_error();
    const mem = new Uint8Array(this.x.memory.buffer);
    let e = p;
    while (mem[e]) e++;
    return new TextDecoder().decode(mem.subarray(p, e));
  }

  // Allocates `count` elements of a typed array type; returns the pointer.
  alloc(Type, count) {
    const p = this.x.qa_wasm_alloc(Type.BYTES_PER_ELEMENT * Math.max(1, count));
    if (!p) throw new RangeError(`wasm memory exhausted allocating ${Type.BYTES_PER_ELEMENT * count} bytes`);
    return p;
  }

  view(Type, ptr, count) { return new Type(this.x.memory.buffer, ptr, count); }

  // Copies a typed array (or bytes) into newly allocated wasm memory; returns the pointer.
  copyIn(Type, src) {
    const p = this.alloc(Type, src.length);
    this.view(Type, p, src.length).set(src);
    return p;
  }

  free(p) { if (p) this.x.qa_wasm_free(p); }
}
