// The main-thread side of src/index-worker.js. openIndexInWorker: the whole index
// (kernel + store) in a dedicated Worker, so that the vectors can be read from OPFS with synchronous
// reads and the page's main thread stays free; a query is one postMessage there and back,
// and with OPFS one synchronous call there (graph search, reads into wasm memory, rerank).
//
//   const index = await openIndexInWorker('/data/passages.qann', { opfs: 'passages' });
//   const { ids, distances, stats } = await index.search(query, { k: 10 });
//
// source: URL (resolved against the page), File/Blob or ArrayBuffer; opfs: the name given
// to importToOPFS (default: the vectors are read from the source, as openIndex does);
// maxGap: rows worth reading across instead of one more read call ('auto': measured on
// the file when it opens, as OPFSStore does).
let next = 1;

export async function openIndexInWorker(source, { opfs, maxGap = 'auto', memoryBudget, verify, store } = {}) {
  if (typeof source === 'string' || source instanceof URL) source = new URL(source, location.href).href;
  const worker = new Worker(new URL('./index-worker.js', import.meta.url), { type: 'module', name: 'quantann-index' });
  const waiting = new Map();
  worker.onmessage = (e) => {
    const { id, ok, result, error, name } = e.data, w = waiting.get(id);
    waiting.delete(id);
    if (ok) w.resolve(result); else w.reject(Object.assign(new Error(error), { name: name || 'Error' }));
  };
  worker.onerror = (e) => {
    for (const w of waiting.values()) w.reject(new Error(`index worker: ${e.message || 'failed to start'}`));
    waiting.clear();
  };
  let closed = false;
  const call = (op, args, transfer = []) => new Promise((resolve, reject) => {
    if (closed) throw new Error('the index is closed');
    const id = next++;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ id, op, args }, transfer);
  });
  let info;
  try {
    info = await call('open', { source, opfs, maxGap, options: { memoryBudget, verify, store } });
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return {
    ...info,
    inWorker: true,
    memory: () => info.memory,
    // a copy: posting a subarray would clone its whole underlying buffer
    search: (queries, options) => call('search', { queries: Float32Array.from(queries), options }),
    // one search call per query, each timed inside the Worker: {ms, ids, stats} (the benchmark's loop)
    timed: (queries, options, { warmup = 0, pauseMs = 0 } = {}) => call('timed', { queries: Float32Array.from(queries), options, warmup, pauseMs }),
    close: () => {
      if (closed) return Promise.resolve();
      const done = call('close').catch(() => {}).finally(() => worker.terminate());
      closed = true; // later calls reject at once (a terminated Worker would never answer)
      return done;
    },
  };
}
