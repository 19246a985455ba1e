// The page's side of src/model-worker.js: one Worker per model, requests by src/worker-rpc.js,
// plus the events a request emits while it runs (progress, generated tokens).
let next = 1;

// A Worker only where there is a page (a Node process runs the model in-thread).
export function useWorker(worker) {
  return worker ?? (typeof Worker !== 'undefined' && typeof window !== 'undefined');
}

// Starts the Worker and opens the model there (kind: 'embedder' | 'generator'); resolves to
// {info, call(op, args, onEvent), close()}.
// Bytes are transferred, never cloned: the caller's ArrayBuffer is detached (a Worker would
// otherwise hold a second copy of the model while it loads); URLs, {url, cache} and Files
// are read by the Worker itself.
export async function callWorker(kind, source, options, onProgress) {
  if (typeof source === 'string' || source instanceof URL) source = new URL(source, location.href).href;
  else if (source?.cache != null && source.url != null) source = { url: new URL(source.url, location.href).href, cache: String(source.cache) };
  const transfer = source instanceof ArrayBuffer ? [source] : ArrayBuffer.isView(source) ? [source.buffer] : [];
  const worker = new Worker(new URL('./model-worker.js', import.meta.url), { type: 'module', name: `quantann-${kind}` });
  const waiting = new Map();
  worker.onmessage = (e) => {
    const { id, ok, result, error, name, event } = e.data, w = waiting.get(id);
    if (!w) return;
    if (event !== undefined) return w.onEvent?.(event);
    waiting.delete(id);
    if (ok) w.resolve(result); else w.reject(Object.assign(new Error(error), { name: name || 'Error' }));
  };
  worker.onerror = (e) => {
    for (const w of waiting.values()) w.reject(new Error(`model worker: ${e.message || 'failed to start'}`));
    waiting.clear();
  };
  const call = (op, args, onEvent, xfer = []) => new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject, onEvent });
    worker.postMessage({ id, op, args }, xfer);
  });
  let info;
  try {
    info = await call('open', { kind, source, options }, onProgress, transfer);
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return { info, call, close: () => call('close').catch(() => {}).finally(() => worker.terminate()) };
}
