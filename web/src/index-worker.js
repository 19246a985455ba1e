// A whole index in a dedicated module Worker (src/index-worker-client.js is the main-thread side):
// the kernel, and the vectors read synchronously from OPFS (OPFSSyncStore) or any store
// openIndex accepts. Requests: {id, op, args} -> {id, ok, result} | {id, ok: false, error}.
//   open   {source, opfs?, options}   -> {dim, count, metric, quant, hasUserIds, nextId, memory, wasmMemory}
//   search {queries, options}         -> openIndex's search result (buffers transferred)
//   close  {}
import { serve } from './worker-rpc.js';
import { openIndex } from './index.js';
import { OPFSSyncStore } from './opfs-sync.js';

let index = null;

const ops = {
  async open({ source, opfs, options = {} }) {
    const store = opfs ? await OPFSSyncStore.open(opfs) : options.store;
    if (opfs) store.maxGap = store.measureGap(); // the rows one read call costs (opfs-sync.js)
    index = await openIndex(source, { ...options, store });
    return { dim: index.dim, count: index.count, metric: index.metric, quant: index.quant,
      hasUserIds: index.hasUserIds, nextId: index.nextId, memory: index.memory(), wasmMemory: index.wasmMemory };
  },
  async search({ queries, options }) {
    const r = await index.search(queries, options);
    return [r, [r.ids.buffer, r.rows.buffer, r.distances.buffer]];
  },
  close() { index?.close(); index = null; return true; },
};

serve(ops);
