// The texts beside a text index (INDEX.texts, written by quantann/text.py TextStore): a GGUF
// file read by the kernel's one GGUF reader (kernel/wasm/exports.c qa_wasm_texts_read, which
// checks it as native does); the texts and their other fields are then cut out of the bytes
// here, by id, for the results shown.
//
//   const texts = await openTexts(bytes);          // the whole file (Uint8Array / ArrayBuffer)
//   texts.get([3n, 7n])   // [{text, fields}, null (an unknown id)]
import { FormatError } from './index.js';
import { loadKernel } from './kernel.js';

const utf8 = new TextDecoder('utf-8'); // invalid bytes replaced, as native's decode("utf-8", "replace")

export async function openTexts(bytes, { name = 'texts', wasm } = {}) {
  // a plain Uint8Array over the same bytes (a Node Buffer's slice() would not copy)
  const buf = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  const K = await loadKernel(wasm);
  const p = K.copyIn(Uint8Array, buf), out = K.alloc(Float64Array, 13);
  let info;
  try {
    const rc = K.x.qa_wasm_texts_read(p, buf.length, out);
    if (rc) throw new FormatError(`${name}: ${K.error()}`);
    info = Array.from(K.view(Float64Array, out, 13));
  } finally {
    K.free(p);
    K.free(out);
  }
  return new Texts(buf, info, name);
}

class Texts {
  constructor(buf, info, name) {
    const [n, ...at] = info;
    const part = (i) => buf.subarray(at[2 * i], at[2 * i] + at[2 * i + 1]);
    const u64 = (b) => new BigUint64Array(b.slice().buffer); // copied: GGUF aligns data to 32, but not in a sliced buffer
    this.name = name;
    this.count = n;
    this.ids = u64(part(0));
    this.offsets = u64(part(1));
    this.bytes = part(2);
    this.fieldsOffsets = at[7] ? u64(part(3)) : null;
    this.fieldsBytes = at[7] ? part(4) : null;
    this.model = at[11] ? utf8.decode(buf.subarray(at[10], at[10] + at[11])) : null;
  }

  // position of id in the sorted ids, or -1
  _position(id) {
    const want = BigInt(id);
    let lo = 0, hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ids[mid] < want) lo = mid + 1; else hi = mid;
    }
    return lo < this.ids.length && this.ids[lo] === want ? lo : -1;
  }

  _fields(p) {
    if (!this.fieldsOffsets) return {};
    const a = Number(this.fieldsOffsets[p]), b = Number(this.fieldsOffsets[p + 1]);
    if (a === b) return {};
    let f;
    try {
      f = JSON.parse(utf8.decode(this.fieldsBytes.subarray(a, b)));
    } catch {
      throw new FormatError(`${this.name}: corrupt text store (fields of id ${this.ids[p]} are not JSON)`);
    }
    if (!f || typeof f !== 'object' || Array.isArray(f))
      throw new FormatError(`${this.name}: corrupt text store (fields of id ${this.ids[p]} are not an object)`);
    return f;
  }

  /** {text, fields} of each id (null for an id with no text). */
  get(ids) {
    return Array.from(ids, (id) => {
      const p = this._position(id);
      if (p < 0) return null;
      return { text: utf8.decode(this.bytes.subarray(Number(this.offsets[p]), Number(this.offsets[p + 1]))), fields: this._fields(p) };
    });
  }
}
