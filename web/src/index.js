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
import { CONSTANTS } from './constants.js';
import { loadKernel, SEARCH_PARAMS, SEARCH_STATS, WASM32_LIMIT } from './kernel.js';
import { formatSize as human, parseSize } from './sizes.js';
import { openSource } from './source.js';
import { SourceStore } from './stores.js';

export const FORMAT_VERSION = CONSTANTS.format.version;
const NEED_MORE = -5; // QA_ERR_NEED_MORE: the prefix ends inside what was asked for

export class FormatError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FormatError';
  }
}

export class MemoryBudgetError extends Error {
  constructor(message, needed, budget) {
    super(message);
    this.name = 'MemoryBudgetError';
    this.needed = needed;
    this.budget = budget;
  }
}

// qa_wasm_qann_info's output (kernel/wasm/exports.c): fixed fields, then (offset, bytes)
// per tensor in file order.
const INFO_FIELDS = ['headerBytes', 'partBytes', 'codes', 'graph', 'ids', 'other', 'ggufVersion', 'formatVersion',
  'metric', 'cosine', 'codec', 'd', 'n', 'M', 'M0', 'entry', 'maxLevel', 'efConstruction', 'vectorsOffset', 'vectorsCrc32', 'linkBits',
  'nextId'];
const TENSORS = ['vmin', 'scale', 'codes', 'norms', 'residuals', 'level', 'links0', 'up_nodes', 'up_off', 'upper', 'ids', 'vectors']
  .map((k) => CONSTANTS.tensors[k]);
const INFO_DOUBLES = INFO_FIELDS.length + 2 * TENSORS.length;
const CODEC_NAMES = Object.fromEntries(Object.entries(CONSTANTS.codecs).map(([k, v]) => [v, k]));

/**
 * The header of a .qann, checked by the kernel's one reader from a prefix of the source:
 * a first 64 KiB, then exactly the length the kernel asks for if the header is longer.
 * Returns {prefix, info}: info has the header values, the memory sizes, partBytes (where
 * the vectors start) and `tensors`, a Map name -> {name, offset, nbytes}.
 */
export async function readHeader(src, K) {
  let prefix = await src.read(0, 65536);
  const out = K.alloc(Float64Array, INFO_DOUBLES);
  try {
    for (;;) {
      const p = K.copyIn(Uint8Array, prefix);
      const rc = K.x.qa_wasm_qann_info(p, prefix.length, src.size, out);
      K.free(p);
      const v = K.view(Float64Array, out, INFO_DOUBLES);
      if (rc === NEED_MORE && v[0] > prefix.length) {
        const more = await src.read(prefix.length, v[0] - prefix.length);
        const grown = new Uint8Array(prefix.length + more.length);
        grown.set(prefix);
        grown.set(more, prefix.length);
        if (more.length === 0) throw new FormatError(`${src.name}: truncated: the header needs ${v[0]} bytes`);
        prefix = grown;
        continue;
      }
      if (rc) throw new FormatError(`${src.name}: ${K.error()}`);
      const info = Object.fromEntries(INFO_FIELDS.map((k, i) => [k, v[i]]));
      info.metric = info.cosine ? 'cosine' : info.metric === CONSTANTS.metrics.l2 ? 'l2' : 'ip';
      info.quant = CODEC_NAMES[info.codec];
      info.tensors = new Map();
      TENSORS.forEach((name, i) => {
        const nbytes = v[INFO_FIELDS.length + 2 * i + 1];
        if (nbytes) info.tensors.set(name, { name, offset: v[INFO_FIELDS.length + 2 * i], nbytes });
      });
      info.tensors.get('vectors').shape = [info.n, info.d];
      return { prefix, info };
    }
  } finally {
    K.free(out);
  }
}

/**
 * Opens an index. source: URL, File/Blob, ArrayBuffer/Uint8Array (or a path under Node).
 * options.store: a store object, or 'http' | 'memory' | 'source' (default: read the
 * vectors from the same source). options.memoryBudget: bytes or '300MB'. The kernel
 * checks the header, every checksum and the graph (options.verify is accepted and ignored).
 */
export async function openIndex(source, { store, memoryBudget, wasm } = {}) {
  const sharded = await import('./sharded.js'); // a sharded index's manifest (.json): its shards
  if (sharded.isManifest(source)) return sharded.openShardedIndex(source, { store, memoryBudget, wasm });
  const src = await openSource(source);
  const kernel = await loadKernel(wasm);
  // 1. the header, checked
  const { prefix, info } = await readHeader(src, kernel);
  // 2. the memory it needs, before fetching anything more
  const budget = parseSize(memoryBudget);
  const need = { codes: info.codes, graph: info.graph, ids: info.ids, other: info.other };
  need.total = need.codes + need.graph + need.ids + need.other;
  // wasm side: the in-memory part, visited tags, scratch and per-query buffers (64 KiB slack)
  const wasmNeed = info.partBytes + 2 * info.n + 65536 + 8 * (info.M0 + 2) * (info.M0 + 64);
  if (budget != null && need.total > budget)
    throw new MemoryBudgetError(`${src.name}: the index needs ${human(need.total)} in memory, over the budget of ${human(budget)} (codes ${human(need.codes)}, graph ${human(need.graph)}, ids ${human(need.ids)}, other ${human(need.other)})`, need.total, budget);
  if (kernel.memoryBytes + wasmNeed > WASM32_LIMIT)
    throw new MemoryBudgetError(`${src.name}: the index needs ${human(wasmNeed)} of wasm memory; with ${human(kernel.memoryBytes)} in use that is past the wasm32 limit of 4 GiB`, wasmNeed, WASM32_LIMIT);
  // 3. the in-memory part, into wasm memory once, checked by the kernel
  const index = new Index(kernel, info, need, src);
  index.ownsSource = src !== source; // a source object the caller made stays the caller's to close
  try {
    await index._load(prefix);
  } catch (e) {
    index.close();
    throw e;
  }
  index.store = await makeStore(store, src, info.vectorsOffset, info.n, info.d);
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

class Index {
  constructor(kernel, info, memory, src) {
    this.kernel = kernel;
    this.info = info;
    this.header = { tensors: info.tensors }; // where each tensor lies in the file
    Object.assign(this, { dim: info.d, count: info.n, metric: info.metric, quant: info.quant });
    this._memory = memory;
    this.source = src;
    this.ptrs = {};
    this.bufs = {}; // per-query scratch, grown on demand
    this.handle = 0;
    this.arrays = 0;
    this.searchers = []; // every searcher made, and the idle ones
    this.idle = [];
    this.lastStats = [];
  }

  async _load(prefix) {
    const K = this.kernel, x = K.x, src = this.source, len = this.info.partBytes;
    const part = this.ptrs.part = K.alloc(Uint8Array, len);
    const head = prefix.subarray(0, len);
    K.view(Uint8Array, part, head.length).set(head);
    if (head.length < len) {
      const rest = await src.read(head.length, len - head.length);
      if (rest.length < len - head.length) throw new FormatError(`${src.name}: truncated: the in-memory part needs ${len} bytes, got ${head.length + rest.length}`);
      K.view(Uint8Array, part + head.length, rest.length).set(rest);
    }
    const arrays = x.qa_wasm_qann_read(part, len, src.size); // every value checked by the one reader
    if (!arrays) throw new FormatError(`${src.name}: ${K.error()}`);
    this.handle = x.qa_wasm_index_open(arrays); // the index copies the arrays struct
    K.free(arrays);
    if (!this.handle) throw new RangeError(`${src.name}: ${K.error()}`);
    const ids = this.info.tensors.get('ids');
    if (ids) this.ids = new BigUint64Array(K.view(Uint8Array, part + ids.offset, ids.nbytes).slice().buffer);
    // quantann.ids.next (format 4): the ids tensor is the index's own numbering of rows
    // stored in a locality order, not user ids; the id an add would give next
    this.hasUserIds = Boolean(ids) && !this.info.nextId;
    this.nextId = ids ? (this.info.nextId || null) : this.count;
  }

  free(p) { this.kernel.free(p); }

  // Bytes held in memory, by part (as Python's Index.memory()).
  memory() { return { ...this._memory }; }

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
   * graph's approximate order; rerank='auto' (sq8, rabitq codes) rescores only the candidates
   * whose error bound leaves them a chance; by default `defaultRerank`. The kernel checks k,
   * ef and rerank.
   */
  async search(queries, options = {}) {
    const c = this._start(queries, options);
    try {
      for (let i = 0; i < c.nq; i++) {
        const st = this._begin(c, i);
        if (c.m > 0) {
          // rows and their ranges (coalesced by begin, the one coalescing) are copied out:
          // memory may grow while we wait. The store writes the rows into the searcher's
          // vectors buffer (`into`) unless memory grew and detached it; then they are copied.
          const K = this.kernel, x = K.x, s = c.s, m = c.m, d = this.dim;
          const cand = K.view(Int32Array, x.qa_wasm_searcher_rows(s), m).slice();
          const ranges = K.view(Int32Array, x.qa_wasm_searcher_ranges(s), 2 * x.qa_wasm_searcher_nranges(s)).slice();
          const into = K.view(Float32Array, x.qa_wasm_searcher_vectors(s), m * d);
          const { vectors, stats: rs } = await this.store.read(cand, ranges, into);
          const dst = K.view(Float32Array, x.qa_wasm_searcher_vectors(s), m * d);
          if (vectors.buffer !== dst.buffer || vectors.byteOffset !== dst.byteOffset) dst.set(vectors); // a store without `into`
          Object.assign(st, { bytesRead: rs.bytes, ranges: rs.ranges, requests: rs.requests ?? 0 });
        }
        this._finish(c, i, st);
      }
    } finally {
      this.idle.push(c.s);
    }
    return this._result(c);
  }

  /**
   * search() without a promise, for a store that reads synchronously (OPFSSyncStore in a
   * Worker: store.readInto): the graph search, the reads straight into the searcher's
   * vectors buffer in wasm memory (nothing allocates wasm memory in between, so the views
   * stay valid and the rows and ranges are not copied out) and the rerank, in one call.
   */
  searchSync(queries, options = {}) {
    if (!this.handle) throw new Error('the index is closed');
    if (typeof this.store?.readInto !== 'function') throw new Error('searchSync needs a store that reads synchronously (readInto)');
    const c = this._start(queries, options);
    try {
      const K = this.kernel, x = K.x, s = c.s, rb = this.dim * 4;
      for (let i = 0; i < c.nq; i++) {
        const st = this._begin(c, i);
        if (c.m > 0) {
          const rs = this.store.readInto(K.view(Int32Array, x.qa_wasm_searcher_rows(s), c.m),
            K.view(Int32Array, x.qa_wasm_searcher_ranges(s), 2 * x.qa_wasm_searcher_nranges(s)),
            K.view(Uint8Array, x.qa_wasm_searcher_vectors(s), c.m * rb));
          st.bytesRead = rs.bytes;
          st.ranges = rs.ranges;
        }
        this._finish(c, i, st);
      }
    } finally {
      this.idle.push(c.s);
    }
    return this._result(c);
  }

  // The parts of one search call, shared by search and searchSync: checks and buffers (_start),
  // query i copied in and the graph search (_begin: c.m rows to read), the rerank and the
  // top k copied out (_finish), the ids (_result).
  /**
   * What search reranks when not told (as Python's Index.default_rerank): 'auto' where the
   * codes' error bound holds for every row (sq8 with its residuals, format 5), else
   * CONSTANTS.limits.rerank_default (rabitq's bound is calibrated, not a guarantee).
   */
  get defaultRerank() {
    return this.info.tensors.has(CONSTANTS.tensors.residuals) ? 'auto' : CONSTANTS.limits.rerank_default;
  }

  _start(queries, { k = 10, ef = 64, rerank = this.defaultRerank } = {}) {
    if (!this.handle) throw new Error('the index is closed');
    // 'auto' (sq8, rabitq codes): read only the candidates the codes' error bound keeps
    if (rerank === 'auto') rerank = CONSTANTS.limits.rerank_auto;
    else if (Number.isSafeInteger(rerank) && rerank < 0) throw new RangeError(`rerank=${rerank} is out of range: it must be 0.. or 'auto'`);
    const d = this.dim, K = this.kernel;
    const q = queries instanceof Float32Array ? queries : Float32Array.from(queries);
    if (q.length === 0 || q.length % d) throw new RangeError(`queries have ${q.length} values, not a multiple of the index's dimension ${d}`);
    if (!Number.isSafeInteger(k)) throw new RangeError(`k must be an integer, got ${k}`);
    if (!Number.isSafeInteger(ef)) throw new RangeError(`ef must be an integer, got ${ef}`);
    if (!Number.isSafeInteger(rerank)) throw new RangeError(`rerank must be an integer, got ${rerank}`);
    const nq = q.length / d;
    const kk = k >= 1 && k <= this.count ? k : 1; // outputs for a k the kernel accepts
    const rows = new Int32Array(nq * kk).fill(-1), dists = new Float32Array(nq * kk).fill(Infinity);
    const s = this._borrow();
    const pp = this._buf(`params${s}`, Uint8Array, SEARCH_PARAMS.bytes + SEARCH_STATS.bytes);
    const orp = this._buf(`orows${s}`, Int32Array, kk), odp = this._buf(`odists${s}`, Float32Array, kk);
    const gap = this.store.maxGap ?? 0, last = this.bufs[`params${s}`];
    if (last.k !== k || last.ef !== ef || last.rerank !== rerank || last.gap !== gap) { // written when they change
      K.writeStruct(SEARCH_PARAMS, pp, { k, ef, rerank, max_gap: gap }); // the store's gap: begin coalesces
      Object.assign(last, { k, ef, rerank, gap });
    }
    return { q, nq, kk, rows, dists, s, pp, stp: pp + SEARCH_PARAMS.bytes, orp, odp, stats: [], m: 0, t1: 0 };
  }

  _begin(c, i) {
    const K = this.kernel, x = K.x, d = this.dim;
    const st = { candidates: 0, vectorsRead: 0, bytesRead: 0, ranges: 0, requests: 0, storeReads: 0, distances: 0, kernelMs: 0, storeMs: 0, rerankMs: 0 };
    const mem = K.f32(), at = x.qa_wasm_searcher_query(c.s) >> 2, q = c.q, o = i * d;
    for (let j = 0; j < d; j++) mem[at + j] = q[o + j]; // the one copy in (no view made per query)
    const t0 = performance.now();
    const m = x.qa_wasm_search_begin(c.s, c.pp);
    c.t1 = performance.now();
    if (m < 0) throw new RangeError(`${c.nq > 1 ? `query ${i}: ` : ''}${K.string(x.qa_wasm_searcher_error(c.s))}`);
    st.kernelMs = c.t1 - t0;
    c.m = m;
    if (m > 0) { st.vectorsRead = m; st.storeReads = 1; }
    return st;
  }

  _finish(c, i, st) {
    const K = this.kernel, x = K.x;
    const t2 = performance.now();
    if (c.m > 0) st.storeMs = t2 - c.t1;
    if (x.qa_wasm_search_finish(c.s, c.orp, c.odp, c.stp) < 0) throw new RangeError(K.string(x.qa_wasm_searcher_error(c.s)));
    if (c.m > 0) st.rerankMs = performance.now() - t2;
    const dv = K.dataView(), F = SEARCH_STATS.fields, i32 = K.i32(), f32 = K.f32();
    st.candidates = Number(dv.getBigInt64(c.stp + F.candidates[0], true));
    st.distances = Number(dv.getBigInt64(c.stp + F.distances[0], true));
    const found = Number(dv.getBigInt64(c.stp + F.found[0], true)), ro = c.orp >> 2, dof = c.odp >> 2;
    for (let j = 0; j < found; j++) { c.rows[i * c.kk + j] = i32[ro + j]; c.dists[i * c.kk + j] = f32[dof + j]; }
    c.stats.push(st);
  }

  _result(c) {
    const rows = c.rows, ids = new BigUint64Array(rows.length);
    for (let i = 0; i < rows.length; i++)
      ids[i] = rows[i] < 0 ? 0xffffffffffffffffn : this.ids ? this.ids[rows[i]] : BigInt(rows[i]);
    this.lastStats = c.stats;
    return { ids, rows, distances: c.dists, stats: c.nq === 1 ? c.stats[0] : c.stats };
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
    if (this.ownsSource) Promise.resolve(this.source?.close?.()).catch(() => {}); // e.g. a Node file handle
    this.ownsSource = false;
  }
}
