// Streamed loading: a file (URL or File/Blob) straight into a destination view (typically
// wasm memory), chunk by chunk. Every read (one HTTP Range request, one Blob slice) is at
// most `chunkBytes` (≤ 64 MB, constants.json `stream_chunk_max_bytes`), and each piece the
// browser hands over is copied into the destination as it arrives: JS never holds a second
// full copy of the file.
//
// With `cache: name`, the bytes are kept in OPFS too (file `name`, its import record
// `name.meta.json`), written by the OPFS Worker (src/opfs-worker.js: sync access handle,
// each batch flushed, then committed in the record): an interrupted load resumes after the
// last committed byte, and a complete copy is reopened with no network request at all.
//
//   const r = await streamInto('/models/model.gguf', {
//     dest: (total) => kernel.view(Uint8Array, kernel.alloc(Uint8Array, total), total),
//     cache: 'model.gguf', onProgress: ({ loaded, total }) => { bar.value = loaded / total; } });
//   // r: {total, fromCache, fromSource, resumedAt, requests, maxReadBytes, seconds, persisted}
import { CONSTANTS } from './constants.js';
import { WorkerRpc } from './opfs.js';
import { formatSize } from './sizes.js';

export const MAX_CHUNK_BYTES = CONSTANTS.limits.stream_chunk_max_bytes;
const DEFAULT_CHUNK_BYTES = 16 << 20;
// bytes per cache write: the copy the cache adds (one buffer, handed back and forth with the
// OPFS Worker; while a batch is in flight it is held there, beside the stream's read buffer)
const CACHE_BATCH = 1 << 20;
const PROGRESS_STEP = 1 << 20;
const PIECE_BYTES = 256 << 10; // the scratch buffer network and file reads land in
const now = () => performance.now();

export class QuotaError extends Error {
  constructor(message, { need, usage, quota } = {}) {
    super(message);
    this.name = 'QuotaExceededError';
    Object.assign(this, { need, usage, quota });
  }
}

// The QuotaError for `need` more bytes in the cache `name`, with the numbers of
// navigator.storage.estimate(); null when they say there is room (or give no numbers).
export async function quotaProblem(name, need, storage = globalThis.navigator?.storage) {
  const est = await storage?.estimate?.().catch(() => null);
  if (!est || !(est.quota >= 0) || !(est.usage >= 0)) return null;
  const free = est.quota - est.usage;
  if (need <= free) return null;
  return new QuotaError(`cache ${name}: needs ${formatSize(need)} more, but the origin has only ${formatSize(Math.max(0, free))} free `
    + `(${formatSize(est.usage)} used of its ${formatSize(est.quota)} quota, navigator.storage.estimate())`, { need, usage: est.usage, quota: est.quota });
}

const metaName = (name) => `${name}.meta.json`;

// navigator.storage.persist(), asked without waiting on the user: Firefox asks with a
// prompt, which a page must not block on. true / false, or null while the browser asks.
async function askPersist() {
  if (await navigator.storage.persisted?.().catch(() => false)) return true;
  const asked = navigator.storage.persist?.().catch(() => false);
  if (!asked) return false;
  return Promise.race([asked, new Promise((r) => setTimeout(() => r(null), 200))]);
}

async function readCacheMeta(root, name) {
  try {
    return JSON.parse(await (await (await root.getFileHandle(metaName(name))).getFile()).text());
  } catch (e) {
    if (e.name === 'NotFoundError' || e instanceof SyntaxError) return null;
    throw e;
  }
}

/** The cache's record ({id, total, written, complete}) or null. */
export async function streamCacheState(name) {
  return readCacheMeta(await navigator.storage.getDirectory(), name);
}

/** Removes a cached copy (both files). */
export async function dropStreamCache(name) {
  const root = await navigator.storage.getDirectory();
  for (const f of [name, metaName(name)]) {
    try { await root.removeEntry(f); } catch (e) { if (e.name !== 'NotFoundError') throw e; }
  }
}

// The chunks of a byte stream, read into one reused scratch buffer (BYOB) where the stream
// allows it, so that reading leaves no garbage behind: each chunk is a view that is valid
// until the next one is asked for (the caller copies it out at once).
export async function* chunksOf(stream) {
  let reader, scratch = null;
  try {
    reader = stream.getReader({ mode: 'byob' });
    scratch = new ArrayBuffer(PIECE_BYTES);
  } catch {
    reader = stream.getReader();
  }
  try {
    for (;;) {
      const { value, done } = await (scratch ? reader.read(new Uint8Array(scratch)) : reader.read());
      if (done) return;
      if (scratch) scratch = value.buffer; // handed back, transferred: the same memory
      yield value;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Pieces of [from, to) of a Blob, each slice at most chunkBytes (counted in stats: reads of the source).
async function* blobPieces(blob, from, to, chunkBytes, stats) {
  for (let a = from; a < to; a += chunkBytes) {
    const b = Math.min(to, a + chunkBytes);
    if (stats) {
      stats.requests++;
      stats.maxReadBytes = Math.max(stats.maxReadBytes, b - a);
    }
    yield* chunksOf(blob.slice(a, b).stream());
  }
}

// The response of a Range request for [a, b) (b may be unknown: Infinity) -> {response, total}.
async function rangeRequest(url, a, b, signal) {
  const headers = { Range: `bytes=${a}-${Number.isFinite(b) ? b - 1 : ''}` };
  const r = await fetch(url, { headers, signal });
  if (r.status !== 206 && r.status !== 200) throw new Error(`${url}: HTTP ${r.status}${r.statusText ? ' ' + r.statusText : ''}`);
  let total = null;
  if (r.status === 206) {
    const m = /bytes (\d+)-(\d+)\/(\d+)/.exec(r.headers.get('Content-Range') || '');
    if (!m || Number(m[1]) !== a) throw new Error(`${url}: bad Content-Range ${r.headers.get('Content-Range')}`);
    total = Number(m[3]);
  } else if (!r.headers.get('Content-Encoding') && r.headers.get('Content-Length') != null) {
    total = Number(r.headers.get('Content-Length'));
  }
  return { response: r, total };
}

// Pieces of [from, total) of a URL, one Range request per chunk (a server that ignores
// Range sends the whole body once: the bytes before `from` are skipped).
async function* urlPieces(url, from, first, chunkBytes, stats, signal) {
  let { response, total } = first, pos = from;
  for (;;) {
    const whole = response.status === 200;
    let skip = whole ? pos : 0;
    for await (let v of chunksOf(response.body)) {
      if (skip) { const s = Math.min(skip, v.length); v = v.subarray(s); skip -= s; }
      if (v.length) { pos += v.length; yield v; }
    }
    if (whole || pos >= total) return;
    const b = Math.min(total, pos + chunkBytes);
    ({ response } = await rangeRequest(url, pos, b, signal));
    stats.requests++;
    stats.maxReadBytes = Math.max(stats.maxReadBytes, b - pos);
  }
}

/**
 * Streams `source` (URL string/URL, File/Blob) into the view `dest(totalBytes)` returns
 * (a Uint8Array of at least totalBytes, e.g. over wasm memory; called again only if that
 * view was detached by a memory growth, and must then return the same place).
 * options: size (bytes, when known: saves nothing else but a check), chunkBytes (each read,
 * ≤ 64 MB, default 16 MiB), onProgress({loaded, total, fromCache, fromSource}), signal,
 * cache (an OPFS file name: persisted copy, resumed and reopened offline), key (what
 * identifies the source in the cache; default the URL, or a File's name|size|lastModified).
 * Returns {total, fromCache, fromSource, resumedAt, requests (reads of the source: HTTP requests
 * or Blob slices; 0 when the cache had it all), maxReadBytes, seconds, persisted (true, false, or null while the browser asks the user)}.
 */
export async function streamInto(source, { size, dest, chunkBytes = DEFAULT_CHUNK_BYTES, onProgress, signal, cache, key } = {}) {
  if (typeof dest !== 'function') throw new TypeError('streamInto: dest must be a function (totalBytes) -> Uint8Array');
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES)
    throw new RangeError(`chunkBytes must be a whole number from 1 to ${MAX_CHUNK_BYTES} (64 MiB), got ${chunkBytes}`);
  const isBlob = typeof Blob !== 'undefined' && source instanceof Blob;
  const url = isBlob ? null : new URL(String(source), globalThis.location?.href).href;
  const id = key ?? (isBlob ? `${source.name ?? 'blob'}|${source.size}|${source.lastModified ?? ''}` : url);
  const t0 = now(), stats = { requests: 0, maxReadBytes: 0 };
  let view = null, total = null, loaded = 0, fromCache = 0, lastReport = 0, persisted;

  const target = () => {
    if (!view || (view.byteLength === 0 && total > 0)) {
      view = dest(total);
      if (!(view instanceof Uint8Array) || view.length < total) throw new RangeError(`streamInto: dest(${total}) must return a Uint8Array of at least ${total} bytes`);
    }
    return view;
  };
  const report = (force) => {
    if (onProgress && (force || loaded - lastReport >= PROGRESS_STEP)) {
      lastReport = loaded;
      onProgress({ loaded, total, fromCache, fromSource: loaded - fromCache });
    }
  };
  let resumedAt = 0;
  const put = (piece) => {
    if (loaded + piece.length > total) throw new RangeError(`${url ?? id}: more bytes than the ${total} announced`);
    target().set(piece, loaded);
    loaded += piece.length;
  };
  const done = () => ({ total, fromCache, fromSource: loaded - fromCache, resumedAt, requests: stats.requests,
    maxReadBytes: stats.maxReadBytes, seconds: (now() - t0) / 1000, persisted });

  // 1. a complete cached copy: read from OPFS, no network
  let root = null, meta = null;
  if (cache != null) {
    if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function')
      throw new Error(`cache ${cache}: this browser has no Origin Private File System (navigator.storage.getDirectory)`);
    root = await navigator.storage.getDirectory();
    meta = await readCacheMeta(root, cache);
    if (meta && meta.id !== id) meta = null;
    persisted = await askPersist();
    if (meta?.complete && (size == null || size === meta.total)) {
      const file = await (await root.getFileHandle(cache)).getFile();
      if (file.size >= meta.total) {
        total = meta.total;
        target();
        for await (const piece of blobPieces(file, 0, total, chunkBytes, null)) {
          signal?.throwIfAborted();
          put(piece);
          fromCache = loaded;
          report();
        }
        if (loaded !== total) throw new Error(`cache ${cache}: read ${loaded} of ${total} bytes`);
        report(true);
        return done();
      }
    }
  }

  // 2. the size: known, a File's, or the first Range response's
  let first = null;
  if (isBlob) total = source.size;
  else {
    const from = meta?.written ?? 0, want = size ?? meta?.total;
    const b = want != null ? Math.min(want, from + chunkBytes) : from + chunkBytes;
    if (want == null || from < want) {
      first = await rangeRequest(url, from, b, signal);
      stats.requests++;
      stats.maxReadBytes = Math.max(stats.maxReadBytes, b - from);
      total = first.total ?? size;
      if (total == null) throw new Error(`${url}: the server gave no size (no Content-Range or Content-Length): pass {size}`);
    } else total = want;
  }
  if (size != null && size !== total) throw new Error(`${url ?? id}: ${total} bytes, expected ${size}`);
  if (meta && meta.total !== total) {
    first?.response.body?.cancel().catch(() => {});
    throw new Error(`cache ${cache}: the source changed since it was cached (${meta.total} bytes cached, now ${total}): `
      + 'drop the cache (dropStreamCache) or pass another key');
  }

  // 3. with a cache: resume after its last committed byte, and write the rest as it arrives
  let rpc = null, writing = null, sent = 0, spare = null;
  const flushCache = async (upTo) => { // hands [sent, upTo) to the Worker, one batch in flight
    while (upTo - sent >= CACHE_BATCH || (upTo === total && sent < total)) {
      const end = Math.min(upTo, sent + CACHE_BATCH);
      await writing; // the previous batch written: copy the next one only now (one copy alive at a time)
      // into the buffer the Worker handed back (one batch buffer for the whole load)
      const buf = spare ?? new ArrayBuffer(CACHE_BATCH);
      spare = null;
      const bytes = new Uint8Array(buf, 0, end - sent);
      bytes.set(target().subarray(sent, end));
      const at = sent;
      writing = rpc.call('write', { at, bytes: buf, length: end - sent }, [buf]).then((w) => { spare = w.bytes; return w; }, async (e) => {
        if (e.name === 'QuotaExceededError' || /quota/i.test(e.message))
          throw (await quotaProblem(cache, total - at)) ?? new QuotaError(`cache ${cache}: ${e.message}`);
        throw e;
      });
      sent = end;
    }
  };
  try {
    target();
    if (cache != null) {
      rpc = new WorkerRpc();
      const begun = await rpc.call('begin', { file: cache, metaFile: metaName(cache), id, total, count: total, dim: null, offset: 0, unit: 1 });
      resumedAt = begun.written;
      const problem = await quotaProblem(cache, total - resumedAt);
      if (problem) throw problem;
      for (let a = 0; a < resumedAt; a += CACHE_BATCH) { // the committed prefix, from OPFS
        signal?.throwIfAborted();
        put(new Uint8Array(await rpc.call('readAt', { at: a, length: Math.min(CACHE_BATCH, resumedAt - a) })));
        fromCache = loaded;
        report();
      }
      sent = resumedAt;
      if (first && (meta?.written ?? 0) !== resumedAt) { // the record said more than the file holds
        first.response.body?.cancel().catch(() => {});
        first = null;
      }
    }
    const pieces = isBlob ? blobPieces(source, loaded, total, chunkBytes, stats)
      : loaded < total ? urlPieces(url, loaded, first ?? await (async () => {
        const b = Math.min(total, loaded + chunkBytes);
        stats.requests++;
        stats.maxReadBytes = Math.max(stats.maxReadBytes, b - loaded);
        return rangeRequest(url, loaded, b, signal);
      })(), chunkBytes, stats, signal) : [];
    for await (const piece of pieces) {
      signal?.throwIfAborted();
      put(piece);
      if (rpc) await flushCache(loaded);
      report();
    }
    if (loaded !== total) throw new RangeError(`${url ?? id}: truncated: ${loaded} of ${total} bytes arrived`
      + (rpc ? ` (${sent} cached; a later call resumes)` : ''));
    if (rpc) { await flushCache(total); await writing; }
    report(true);
    return done();
  } finally {
    if (rpc) {
      await writing?.catch(() => {});
      await rpc.call('close').catch(() => {});
      rpc.terminate();
    }
  }
}
