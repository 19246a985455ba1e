// A whole index in a dedicated module Worker (src/index-worker-client.js is the main-thread side):
// the kernel, and the vectors read synchronously from OPFS (OPFSSyncStore) or any store
// openIndex accepts. Requests: {id, op, args} -> {id, ok, result} | {id, ok: false, error}.
//   open   {source, opfs?, maxGap?, options} -> {dim, count, metric, quant, hasUserIds, nextId,
//                                        defaultRerank, memory, wasmMemory, maxGap, gapMeasure}
//   search {queries, options}         -> openIndex's search result (buffers transferred); with
//                                        OPFS the whole query is one synchronous call here
//                                        (searchSync: graph search, reads into wasm memory, rerank)
//   timed  {queries, options, warmup, pauseMs} -> one search call per query, each timed here where the
//                                        index lives (as native's Index.search is timed):
//                                        {ms: Float64Array, ids: BigUint64Array(nq*k), stats}
//   close  {}
import { serve } from './worker-rpc.js';
import { openIndex } from './index.js';
import { OPFSSyncStore } from './opfs-sync.js';

let index = null;

const search = (q, options) => (index.store?.readInto ? index.searchSync(q, options) : index.search(q, options));

function need() {
  if (!index) throw new Error('the index is closed');
  return index;
}

const ops = {
  async open({ source, opfs, maxGap = 'auto', options = {} }) {
    const store = opfs ? await OPFSSyncStore.open(opfs) : options.store;
    if (opfs) store.maxGap = maxGap === 'auto' ? store.measureGap() : maxGap; // the rows one read call costs (opfs-sync.js)
    try {
      index = await openIndex(source, { ...options, store });
    } catch (e) {
      store?.close?.();
      throw e;
    }
    return { dim: index.dim, count: index.count, metric: index.metric, quant: index.quant,
      hasUserIds: index.hasUserIds, nextId: index.nextId, defaultRerank: index.defaultRerank,
      memory: index.memory(), wasmMemory: index.wasmMemory,
      maxGap: index.store.maxGap ?? 0, gapMeasure: store?.gapMeasure };
  },
  async search({ queries, options }) {
    need();
    const r = await search(queries, options);
    return [r, [r.ids.buffer, r.rows.buffer, r.distances.buffer]];
  },
  // pauseMs: the thread sleeps that long between queries (Atomics.wait; cross-origin
  // isolated pages only), as when queries come one at a time from a user
  async timed({ queries, options = {}, warmup = 0, pauseMs = 0 }) {
    const d = need().dim, nq = queries.length / d, k = options.k ?? 10;
    const sleeper = pauseMs > 0 ? new Int32Array(new SharedArrayBuffer(4)) : null;
    const ms = new Float64Array(nq), ids = new BigUint64Array(nq * k).fill(0xffffffffffffffffn), stats = [];
    const sync = !!index.store?.readInto; // no await (not even a microtask) inside the timed call
    for (let i = 0; i < Math.min(warmup, nq); i++) await search(queries.subarray(i * d, (i + 1) * d), options);
    for (let i = 0; i < nq; i++) {
      const q = queries.subarray(i * d, (i + 1) * d);
      const t0 = performance.now();
      const r = sync ? index.searchSync(q, options) : await index.search(q, options);
      ms[i] = performance.now() - t0;
      if (sleeper) Atomics.wait(sleeper, 0, 0, pauseMs);
      ids.set(r.ids.subarray(0, k), i * k);
      stats.push(r.stats);
    }
    return [{ ms, ids, stats }, [ms.buffer, ids.buffer]];
  },
  close() { index?.close(); index = null; return true; },
};

serve(ops);
