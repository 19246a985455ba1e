// An opened .qann index in the wasm kernel, searched through the kernel's index ABI
// (kernel/index/index.h):
//
//   query ──► begin: graph search over the codes ──► R = k·rerank candidate rows
//         ──► ONE batched store read of their vectors (awaited)
//         ──► finish: exact rerank ──► top k
//
// Opening reads only the in-memory part (header, quantizer, codes, graph, ids): the
// vectors stay in the store. Every size is checked against the memory budget and the
// wasm32 limit before anything is fetched, and every tensor against its checksum.
import { FormatError, parseGGUF } from './gguf.js';
import { ARRAYS, loadKernel, SEARCH_PARAMS, SEARCH_STATS, WASM32_LIMIT } from './kernel.js';
import { openSource } from './source.js';
import { SourceStore } from './stores.js';

export { FormatError };
export const FORMAT_VERSION = 1;
const ARCH = 'quantann';
const METRICS = { l2: 0, ip: 1, cosine: 1 };
const KINDS = { none: 0, sq8: 1, sq4: 2 };
const MAX_LEVEL = 16;

export class MemoryBudgetError extends Error {
  constructor(message, needed, budget) {
    super(message);
    this.name = 'MemoryBudgetError';
    this.needed = needed;
    this.budget = budget;
  }
}

const padDims = (d) => (d + 63) & ~63;
const codeSize = (kind, d) => (kind === 'sq8' ? padDims(d) : kind === 'sq4' ? padDims(d) / 2 : d * 4);
const human = (b) => (b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(2)} GiB` : b >= 1024 ** 2 ? `${(b / 1024 ** 2).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

export function parseSize(s) {
  if (s == null || typeof s === 'number') return s;
  const m = /^\s*([\d.]+)\s*([kmgt]?i?b?)?\s*$/i.exec(s);
  if (!m) throw new Error(`bad size ${JSON.stringify(s)}`);
  const unit = (m[2] || '').toLowerCase().replace('b', '').replace('i', '');
  return Math.round(Number(m[1]) * 1024 ** ' kmgt'.indexOf(unit || ' '));
}

// The tensors copied into wasm memory, with their expected types.
const WASM_TENSORS = ['quant.vmin', 'quant.scale', 'codes', 'norms', 'graph.level', 'graph.links0',
  'graph.up_nodes', 'graph.up_off', 'graph.upper'];

/**
 * Opens an index. source: URL, File/Blob, ArrayBuffer/Uint8Array (or a path under Node).
 * options.store: a store object, or 'http' | 'memory' | 'source' (default: read the
 * vectors from the same source). options.memoryBudget: bytes or '300MB'.
 */
export async function openIndex(source, { store, memoryBudget, verify = true, wasm } = {}) {
  const src = await openSource(source);
  const kernel = await loadKernel(wasm);
  // 1. the header, from a prefix that grows until it holds the whole header
  let prefix = await src.read(0, 65536);
  let hdr;
  for (;;) {
    try {
      hdr = parseGGUF(prefix, src.size, src.name);
      break;
    } catch (e) {
      if (!e.needMore) throw e;
      prefix = await src.read(0, Math.min(src.size, prefix.length * 4));
    }
  }
  const info = checkHeader(hdr, src.name);
  // 2. the memory it needs, before fetching anything more
  const budget = parseSize(memoryBudget);
  const need = info.memory;
  if (budget != null && need.total > budget)
    throw new MemoryBudgetError(`${src.name}: the index needs ${human(need.total)} in memory, over the budget of ${human(budget)} (codes ${human(need.codes)}, graph ${human(need.graph)}, ids ${human(need.ids)}, other ${human(need.other)})`, need.total, budget);
  if (kernel.memoryBytes + need.wasm > WASM32_LIMIT)
    throw new MemoryBudgetError(`${src.name}: the index needs ${human(need.wasm)} of wasm memory; with ${human(kernel.memoryBytes)} in use that is past the wasm32 limit of 4 GiB`, need.wasm, WASM32_LIMIT);
  // 3. the in-memory part, in one read
  const end = hdr.tensors.get('vectors').offset;
  const part = prefix.length >= end ? prefix : await src.read(0, end);
  if (part.length < end) throw new FormatError(`${src.name}: truncated: the in-memory part needs ${end} bytes, got ${part.length}`);
  const index = new Index(kernel, hdr, info, src);
  try {
    index._load(part, verify);
  } catch (e) {
    index.close();
    throw e;
  }
  index.store = await makeStore(store, src, hdr.tensors.get('vectors').offset, info.n, info.d);
  return index;
}

async function makeStore(store, src, offset, count, dim) {
  if (store && typeof store === 'object') {
    if (store.count !== count || store.dim !== dim) throw new Error(`store holds ${store.count} x ${store.dim}, index has ${count} x ${dim}`);
    return store;
  }
  const { HttpStore, MemoryStore } = await import('./stores.js');
  if (store === 'http' || (store == null && src.url)) return new HttpStore(src.url, offset, count, dim);
  if (store === 'memory') return new MemoryStore(new Float32Array((await src.read(offset, count * dim * 4)).slice().buffer), dim);
  if (store == null || store === 'source') return new SourceStore(src, offset, count, dim);
  throw new Error(`unknown store ${JSON.stringify(store)}: use 'http', 'memory', 'source' or a store object`);
}

function checkHeader(hdr, name) {
  const md = hdr.metadata;
  const req = (key, type) => {
    if (!md.has(key)) throw new FormatError(`${name}: missing metadata key ${key}`);
    const v = md.get(key);
    if (typeof v !== type) throw new FormatError(`${name}: metadata ${key} has the wrong type (${typeof v})`);
    return v;
  };
  if (md.get('general.architecture') !== ARCH)
    throw new FormatError(`${name}: not a quantann index (GGUF architecture ${JSON.stringify(md.get('general.architecture'))})`);
  const version = req(`${ARCH}.format_version`, 'number');
  if (version > FORMAT_VERSION)
    throw new FormatError(`${name}: written by a newer quantann (format ${version}); this module reads format ${FORMAT_VERSION} and older`);
  const d = req(`${ARCH}.dim`, 'number'), metric = req(`${ARCH}.metric`, 'string'), quant = req(`${ARCH}.quant`, 'string');
  const n = req(`${ARCH}.count`, 'number'), M = req(`${ARCH}.hnsw.M`, 'number'), M0 = req(`${ARCH}.hnsw.M0`, 'number');
  const entry = req(`${ARCH}.hnsw.entry`, 'number'), maxLevel = req(`${ARCH}.hnsw.max_level`, 'number');
  if (!(metric in METRICS) || !(quant in KINDS)) throw new FormatError(`${name}: unknown metric ${metric} or quantizer ${quant}`);
  if (!(d >= 1 && d <= 65536 && n > 0 && n < 2 ** 31 - 1 && M >= 2 && M <= 127 && M0 === 2 * M && entry >= 0 && entry < n && maxLevel >= 0 && maxLevel <= MAX_LEVEL))
    throw new FormatError(`${name}: header values out of range (dim=${d}, count=${n}, M=${M}, M0=${M0}, entry=${entry}, max_level=${maxLevel})`);
  if ((md.get(`${ARCH}.vectors.dtype`) ?? 'f32') !== 'f32') throw new FormatError(`${name}: vectors are not f32`);
  const dpad = padDims(d);
  const expect = { 'quant.vmin': ['F32', [dpad]], 'quant.scale': ['F32', [dpad]], codes: ['I8', [n, codeSize(quant, d)]],
    'graph.level': ['I8', [n]], 'graph.links0': ['I32', [n, M0]], vectors: ['F32', [n, d]] };
  if (metric === 'l2' && quant !== 'none') expect.norms = ['F32', [n]];
  for (const [t, [type, shape]] of Object.entries(expect)) {
    const ti = hdr.tensors.get(t);
    if (!ti) throw new FormatError(`${name}: missing tensor ${t}`);
    if (ti.type !== type || ti.shape.join() !== shape.join())
      throw new FormatError(`${name}: tensor ${t} is ${ti.type}[${ti.shape}], expected ${type}[${shape}]`);
  }
  const opt = { 'graph.up_nodes': 'I32', 'graph.up_off': 'I64', 'graph.upper': 'I32', ids: 'I64' };
  for (const [t, type] of Object.entries(opt)) {
    const ti = hdr.tensors.get(t);
    if (ti && (ti.shape.length !== 1 || ti.type !== type)) throw new FormatError(`${name}: tensor ${t} must be 1-D ${type}`);
  }
  const vt = hdr.tensors.get('vectors');
  for (const ti of hdr.tensors.values())
    if (ti.name !== 'vectors' && ti.offset + ti.nbytes > vt.offset) throw new FormatError(`${name}: tensor ${ti.name} lies after the vectors`);
  const size = (t) => hdr.tensors.get(t)?.nbytes ?? 0;
  const graph = ['graph.level', 'graph.links0', 'graph.up_nodes', 'graph.up_off', 'graph.upper'].reduce((s, t) => s + size(t), 0);
  const memory = { codes: size('codes'), graph, ids: size('ids'),
    other: size('quant.vmin') + size('quant.scale') + size('norms') + 2 * n };
  memory.total = memory.codes + memory.graph + memory.ids + memory.other;
  // wasm side: the tensors, visited tags, scratch, and per-query buffers (64 KiB slack)
  memory.wasm = memory.total - memory.ids + 65536 + 8 * (M0 + 2) * (M0 + 64);
  return { d, n, M, M0, entry, maxLevel, metric, quant, memory };
}

class Index {
  constructor(kernel, hdr, info, src) {
    this.kernel = kernel;
    this.header = hdr;
    Object.assign(this, { dim: info.d, count: info.n, metric: info.metric, quant: info.quant });
    this.info = info;
    this.source = src;
    this.ptrs = {};
    this.bufs = {}; // per-query scratch, grown on demand
    this.handle = 0;
    this.arrays = 0;
    this.searchers = []; // every searcher made, and the idle ones
    this.idle = [];
    this.lastStats = [];
  }

  _load(part, verify) {
    const { kernel: K, header: hdr, info } = this;
    const md = hdr.metadata;
    if (verify) {
      const names = md.get(`${ARCH}.checksums.tensors`), crcs = md.get(`${ARCH}.checksums.crc32`);
      if (!Array.isArray(names) || !Array.isArray(crcs) || names.length !== crcs.length)
        throw new FormatError(`${this.source.name}: checksums missing`);
      for (let i = 0; i < names.length; i++) {
        const t = hdr.tensors.get(names[i]);
        if (!t) throw new FormatError(`${this.source.name}: checksum for a missing tensor ${names[i]}`);
        this.ptrs[names[i]] = K.copyIn(Uint8Array, part.subarray(t.offset, t.offset + t.nbytes));
        if ((K.x.qa_wasm_crc32(this.ptrs[names[i]], t.nbytes, 0) >>> 0) !== crcs[i])
          throw new FormatError(`${this.source.name}: checksum mismatch in tensor ${names[i]}: the file is corrupt`);
      }
    }
    for (const name of WASM_TENSORS) {
      const t = hdr.tensors.get(name);
      if (t && !this.ptrs[name]) this.ptrs[name] = K.copyIn(Uint8Array, part.subarray(t.offset, t.offset + t.nbytes));
    }
    if (this.ptrs.ids) { // ids stay on the JS side
      this.free(this.ptrs.ids);
      delete this.ptrs.ids;
    }
    const ids = hdr.tensors.get('ids');
    if (ids) {
      if (ids.shape[0] !== info.n) throw new FormatError(`${this.source.name}: ids tensor has the wrong length`);
      this.ids = new BigUint64Array(part.slice(ids.offset, ids.offset + ids.nbytes).buffer);
    }
    const p = this.ptrs, len = (t) => hdr.tensors.get(t)?.shape[0] ?? 0;
    this.arrays = K.alloc(Uint8Array, ARRAYS.bytes);
    K.view(Uint8Array, this.arrays, ARRAYS.bytes).fill(0);
    K.writeStruct(ARRAYS, this.arrays, { metric: METRICS[info.metric], cosine: info.metric === 'cosine' ? 1 : 0,
      codec: KINDS[info.quant], d: info.d, n: info.n, M: info.M, M0: info.M0, entry: info.entry, max_level: info.maxLevel,
      ef_construction: md.get(`${ARCH}.hnsw.ef_construction`) ?? 200, vmin: p['quant.vmin'], scale: p['quant.scale'],
      codes: p.codes, norms: p.norms ?? 0, level: p['graph.level'], links0: p['graph.links0'],
      up_nodes: p['graph.up_nodes'] ?? 0, up_off: p['graph.up_off'] ?? 0, n_up: len('graph.up_nodes'),
      upper: p['graph.upper'] ?? 0, n_upper: len('graph.upper') });
    this.handle = K.x.qa_wasm_index_open(this.arrays);
    if (!this.handle) throw new FormatError(`${this.source.name}: ${K.error()}`);
  }

  free(p) { this.kernel.free(p); }

  // Bytes held in memory, by part (as Python's Index.memory()).
  memory() { const { wasm, ...m } = this.info.memory; return m; }

  _buf(name, Type, count) {
    const b = this.bufs[name];
    if (b && b.count >= count) return b.ptr;
    if (b) this.free(b.ptr);
    this.bufs[name] = { ptr: this.kernel.alloc(Type, count), count };
    return this.bufs[name].ptr;
  }

  // A searcher (the kernel's per-query scratch) for one search call: concurrent searches
  // of one Index (each awaiting its store read) each hold their own.
  _borrow() {
    if (this.idle.length) return this.idle.pop();
    const s = this.kernel.x.qa_wasm_searcher_new(this.handle);
    if (!s) throw new RangeError(this.kernel.error());
    this.searchers.push(s);
    return s;
  }

  /**
   * Nearest neighbours of one query (Float32Array of dim) or several (nq * dim):
   * {ids: BigUint64Array(nq*k), rows: Int32Array, distances: Float32Array, stats}.
   * Distances are squared L2, or 1 - inner product (ip, cosine). rerank=0 returns the
   * graph's approximate order. The kernel checks k, ef and rerank against its limits.
   */
  async search(queries, { k = 10, ef = 64, rerank = 4 } = {}) {
    if (!this.handle) throw new Error('the index is closed');
    const d = this.dim, K = this.kernel, x = K.x;
    const q = queries instanceof Float32Array ? queries : Float32Array.from(queries);
    if (q.length === 0 || q.length % d) throw new RangeError(`queries have ${q.length} values, not a multiple of the index's dimension ${d}`);
    for (const [name, v] of Object.entries({ k, ef, rerank }))
      if (!Number.isSafeInteger(v)) throw new RangeError(`${name} must be an integer, got ${v}`);
    const nq = q.length / d;
    const kk = k >= 1 && k <= this.count ? k : 1; // outputs for a k the kernel accepts
    const rows = new Int32Array(nq * kk).fill(-1), dists = new Float32Array(nq * kk).fill(Infinity);
    const s = this._borrow();
    const pp = this._buf(`params${s}`, Uint8Array, SEARCH_PARAMS.bytes + SEARCH_STATS.bytes);
    const stp = pp + SEARCH_PARAMS.bytes;
    const orp = this._buf(`orows${s}`, Int32Array, kk), odp = this._buf(`odists${s}`, Float32Array, kk);
    K.writeStruct(SEARCH_PARAMS, pp, { k, ef, rerank, max_gap: 0 });
    const stats = [];
    const now = () => performance.now();
    try {
      for (let i = 0; i < nq; i++) {
        const st = { candidates: 0, vectorsRead: 0, bytesRead: 0, ranges: 0, requests: 0, storeReads: 0, distances: 0, kernelMs: 0, storeMs: 0, rerankMs: 0 };
        K.view(Float32Array, x.qa_wasm_searcher_query(s), d).set(q.subarray(i * d, (i + 1) * d)); // the one copy in
        const t0 = now();
        const m = x.qa_wasm_search_begin(s, pp);
        const t1 = now();
        if (m < 0) throw new RangeError(`${nq > 1 ? `query ${i}: ` : ''}${K.string(x.qa_wasm_searcher_error(s))}`);
        st.kernelMs = t1 - t0;
        let t2 = t1;
        if (m > 0) {
          const cand = K.view(Int32Array, x.qa_wasm_searcher_rows(s), m).slice(); // memory may grow while we wait
          const { vectors, stats: rs } = await this.store.read(cand);
          t2 = now();
          K.view(Float32Array, x.qa_wasm_searcher_vectors(s), m * d).set(vectors); // the one copy of the rows
          Object.assign(st, { vectorsRead: m, bytesRead: rs.bytes, ranges: rs.ranges, requests: rs.requests ?? 0, storeReads: 1 });
          st.storeMs = t2 - t1;
        }
        if (x.qa_wasm_search_finish(s, orp, odp, stp) < 0) throw new RangeError(K.string(x.qa_wasm_searcher_error(s)));
        if (m > 0) st.rerankMs = now() - t2;
        const ks = K.readStruct(SEARCH_STATS, stp);
        st.candidates = ks.candidates;
        st.distances = ks.distances;
        rows.set(K.view(Int32Array, orp, ks.found), i * kk);
        dists.set(K.view(Float32Array, odp, ks.found), i * kk);
        stats.push(st);
      }
    } finally {
      this.idle.push(s);
    }
    const ids = new BigUint64Array(rows.length);
    for (let i = 0; i < rows.length; i++)
      ids[i] = rows[i] < 0 ? 0xffffffffffffffffn : this.ids ? this.ids[rows[i]] : BigInt(rows[i]);
    this.lastStats = stats;
    return { ids, rows, distances: dists, stats: nq === 1 ? stats[0] : stats };
  }

  // wasm linear memory in use (bytes)
  get wasmMemory() { return this.kernel.memoryBytes; }

  close() {
    for (const s of this.searchers) this.kernel.x.qa_wasm_searcher_free(s);
    this.searchers = [];
    this.idle = [];
    if (this.handle) this.kernel.x.qa_wasm_index_close(this.handle);
    this.handle = 0;
    this.free(this.arrays);
    this.arrays = 0;
    for (const p of Object.values(this.ptrs)) this.free(p);
    for (const b of Object.values(this.bufs)) this.free(b.ptr);
    this.ptrs = {};
    this.bufs = {};
    this.store?.close?.();
  }
}
