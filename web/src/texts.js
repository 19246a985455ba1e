// The texts beside a text index (INDEX.texts, written by quantann/text.py TextStore): a GGUF
// file read by the kernel's one GGUF reader (kernel/wasm/exports.c qa_wasm_texts_read, which
// checks it as native does); the texts and their other fields are then cut out of the bytes
// here, by id, for the results shown.
//
//   const texts = await openTexts(bytes);          // the whole file (Uint8Array / ArrayBuffer)
//   texts.get([3n, 7n])   // [{text, fields}, null (an unknown id)]
//   texts.lexicalSearch('What is an eschar?', 10)   // {ids, scores}: BM25, when the store has a lexical index
//   texts.fuse(vectorIds, lexicalIds, 5)             // {ids, scores}: reciprocal rank fusion
// The lexical index (kernel/text/lexical.c, the C native runs too) stays in wasm memory
// until texts.close().
import { CONSTANTS } from './constants.js';
import { FormatError } from './index.js';
import { loadKernel } from './kernel.js';

const utf8 = new TextDecoder('utf-8'); // invalid bytes replaced, as native's decode("utf-8", "replace")
const utf8in = new TextEncoder();
const TEXTS_DOUBLES = 25; // kernel/wasm/exports.c qa_wasm_texts_read

export async function openTexts(bytes, { name = 'texts', wasm } = {}) {
  // a plain Uint8Array over the same bytes (a Node Buffer's slice() would not copy)
  const buf = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  const K = await loadKernel(wasm);
  const p = K.copyIn(Uint8Array, buf), out = K.alloc(Float64Array, TEXTS_DOUBLES);
  let info;
  try {
    const rc = K.x.qa_wasm_texts_read(p, buf.length, out);
    if (rc) throw new FormatError(`${name}: ${K.error()}`);
    info = Array.from(K.view(Float64Array, out, TEXTS_DOUBLES));
  } finally {
    K.free(p);
    K.free(out);
  }
  const texts = new Texts(buf, info, name, K);
  if (info[14]) texts._openLexical(buf, info.slice(13, 25));
  return texts;
}

class Texts {
  constructor(buf, info, name, K) {
    const [n, ...at] = info;
    this.K = K;
    this.lexical = 0; // the kernel's handle of the lexical index, 0 when the store has none
    this.lexicalBytes = 0;
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

  // the lexical tensors copied into wasm memory as one block, checked by the kernel
  _openLexical(buf, parts) {
    const K = this.K, lo = Math.min(...parts.filter((_, i) => i % 2 === 0));
    const hi = Math.max(...parts.map((v, i) => (i % 2 === 0 ? v + parts[i + 1] : 0)));
    const block = K.copyIn(Uint8Array, buf.subarray(lo, hi)), rel = K.alloc(Float64Array, 12);
    K.view(Float64Array, rel, 12).set(parts.map((v, i) => (i % 2 === 0 ? v - lo : v)));
    const h = K.x.qa_wasm_lex_open(block, rel, this.count);
    K.free(rel);
    if (!h) {
      const msg = K.error();
      K.free(block);
      throw new FormatError(`${this.name}: ${msg}`);
    }
    this.lexical = h;
    this._lexBlock = block;
    this.lexicalBytes = parts.reduce((s, v, i) => s + (i % 2 ? v : 0), 0);
  }

  /** The BM25 top-k of query (only texts holding one of its words): {ids: BigUint64Array, scores: Float32Array}. */
  lexicalSearch(query, k) {
    if (!this.lexical) throw new Error(`${this.name} has no lexical index: rebuild the index (quantann build ... --texts)`);
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
    k = Math.min(k, this.count);
    const K = this.K, q = utf8in.encode(String(query));
    const qp = K.copyIn(Uint8Array, q), docs = K.alloc(Uint32Array, k), sc = K.alloc(Float32Array, k);
    try {
      const m = K.x.qa_wasm_lex_search(this.lexical, qp, q.length, k, docs, sc);
      if (m < 0) throw new RangeError(K.error());
      const pos = K.view(Uint32Array, docs, m);
      return { ids: BigUint64Array.from(pos, (p) => this.ids[p]), scores: K.view(Float32Array, sc, m).slice() };
    } finally {
      K.free(qp);
      K.free(docs);
      K.free(sc);
    }
  }

  /** Reciprocal rank fusion of two rankings of ids (best first), as native's (kernel/text/fuse.c):
   * the top k {ids: BigUint64Array, scores: Float64Array}. */
  fuse(a, b, k, { wa = 1, wb = 1, rrfK = CONSTANTS.lexical.rrf_k } = {}) {
    const K = this.K, A = BigUint64Array.from(a, BigInt), B = BigUint64Array.from(b, BigInt);
    const pa = K.copyIn(BigUint64Array, A), pb = K.copyIn(BigUint64Array, B);
    const cap = Math.max(1, Math.min(k, A.length + B.length));
    const oi = K.alloc(BigUint64Array, cap), os = K.alloc(Float64Array, cap);
    try {
      const m = K.x.qa_wasm_rrf_fuse(pa, A.length, pb, B.length, wa, wb, rrfK, Math.min(k, cap), oi, os);
      if (m < 0) throw new RangeError(K.error());
      return { ids: K.view(BigUint64Array, oi, m).slice(), scores: K.view(Float64Array, os, m).slice() };
    } finally {
      for (const p of [pa, pb, oi, os]) K.free(p);
    }
  }

  /** Frees the lexical index's wasm memory. */
  close() {
    if (this.lexical) {
      this.K.x.qa_wasm_lex_close(this.lexical);
      this.K.free(this._lexBlock);
      this.lexical = 0;
    }
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

const NO_ID = 0xffffffffffffffffn;

/**
 * One query by vectors and words fused, as native TextIndex.search_ids(..., hybrid=True): the
 * vector top-N and the BM25 top-N of text (N = constants.json lexical.candidates, at least k)
 * by reciprocal rank (texts.fuse). {ids, rows, distances}, best first; each distance is the
 * vector's, computed by the kernel from one store read for a text only the words found.
 */
export async function hybridSearch(index, texts, vector, text, { k = 10, ef = 64, rerank = index.defaultRerank } = {}) {
  if (!texts.lexical) throw new Error(`${texts.name} has no lexical index for hybrid search: build the index with --texts (without --no-lexical)`);
  const n = Math.max(k, CONSTANTS.lexical.candidates);
  // the vector top-n, reranked from as many candidates as the plain top-k would read (at least n)
  const rr = rerank === 0 || rerank === 'auto' ? rerank : Math.max(1, Math.ceil((k * rerank) / n));
  const v = await index.search(vector, { k: Math.min(n, index.count, CONSTANTS.limits.max_k), ef: Math.max(ef, n), rerank: rr });
  const known = new Map();
  v.ids.forEach((id, i) => { if (id !== NO_ID) known.set(id, [v.rows[i], v.distances[i]]); });
  const rowOf = index.rowOf ? (id) => index.rowOf(id) : rowLookup(index); // a ShardedIndex knows its global rows
  const lex = Array.from(texts.lexicalSearch(text, n).ids).filter((id) => rowOf(id) >= 0);
  const { ids } = texts.fuse([...known.keys()], lex, k);
  const missing = Array.from(ids).filter((id) => !known.has(id));
  if (missing.length) {
    const rows = Int32Array.from(missing, rowOf).sort();
    const ranges = Int32Array.from(Array.from(rows, (r) => [r, r]).flat());
    const { vectors } = index.readRows ? await index.readRows(rows) : await index.store.read(rows, ranges);
    const dist = floatDistances(index, vector, vectors, rows.length);
    const idOfRow = new Map(missing.map((id) => [rowOf(id), id]));
    rows.forEach((r, i) => known.set(idOfRow.get(r), [r, dist[i]]));
  }
  return { ids, rows: Int32Array.from(ids, (id) => known.get(id)[0]), distances: Float32Array.from(ids, (id) => known.get(id)[1]) };
}

// id -> index row (-1: not in the index)
function rowLookup(index) {
  if (!index.ids) return (id) => (id < BigInt(index.count) ? Number(id) : -1);
  index._rowOfId ??= new Map(Array.from(index.ids, (id, r) => [id, r]));
  return (id) => index._rowOfId.get(id) ?? -1;
}

// the kernel's float distances from the (normalised, for cosine) query to m vectors
function floatDistances(index, vector, vectors, m) {
  const K = index.kernel, d = index.dim;
  const q = K.copyIn(Float32Array, vector), x = K.copyIn(Float32Array, vectors.subarray(0, m * d));
  const out = K.alloc(Float32Array, m);
  try {
    if (index.metric === 'cosine') K.x.qa_wasm_normalize(q, 1, d);
    K.x.qa_wasm_float_dists(CONSTANTS.metrics[index.metric], q, x, m, d, out);
    return K.view(Float32Array, out, m).slice();
  } finally {
    for (const p of [q, x, out]) K.free(p);
  }
}
