// Origin Private File System (OPFS) store: the float vectors in one on-device file,
// `<name>.f32` (row r at byte r * dim * 4), with `<name>.meta.json` beside it recording the
// import ({id, total, count, dim, written, complete}). The default persistent store
// (persistent.js; docs/BROWSER.md §5, §11). The fastest way to search it is the whole index
// in a Worker, openIndexInWorker(source, {opfs: name}): a query is then one synchronous call
// there; OPFSStore below serves an index on the calling thread, one message per query.
//
//   await importToOPFS('passages', '/data/passages.qann', { offset, count, dim, onProgress });
//   index.store = await OPFSStore.open('passages');           // reads in a Worker (default)
//   index.store = await OPFSStore.open('passages', { mode: 'async' }); // main thread only
//
// The import and the default store run in a dedicated Worker (src/opfs-worker.js) with
// createSyncAccessHandle(): a query is one postMessage there and back, the worker reading
// each range (as the kernel's begin coalesced the rows) with one synchronous read(view, {at}). mode 'async' needs
// no Worker: one File snapshot (getFile()) kept across queries, one
// slice(a, b).arrayBuffer() per run, all runs at once ('async-fresh': a new snapshot per
// query, for the profile only).
import { output, rangePairs } from './stores.js';

const now = () => performance.now();
const files = (name) => ({ file: `${name}.f32`, metaFile: `${name}.meta.json` });

export function opfsSupported() {
  return typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';
}

// A Worker (src/opfs-worker.js) behind promises (also the cache of src/stream-load.js).
export class WorkerRpc {
  constructor() {
    this.worker = new Worker(new URL('./opfs-worker.js', import.meta.url), { type: 'module', name: 'quantann-opfs' });
    this.next = 1;
    this.waiting = new Map();
    this.worker.onmessage = (e) => {
      const { id, ok, result, error, name } = e.data, w = this.waiting.get(id);
      this.waiting.delete(id);
      if (ok) w.resolve(result);
      else w.reject(Object.assign(new Error(error), { name: name || 'Error' }));
    };
    this.worker.onerror = (e) => {
      const err = new Error(`OPFS worker: ${e.message || 'failed to start'}`);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
  }
  call(op, args = {}, transfer = []) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ op, args, id }, transfer);
    });
  }
  terminate() { this.worker.terminate(); }
}

// Batches of `batchBytes` (the last one shorter) of the byte range [start, end) of a source.
// URLs are streamed (one Range request, the body read as it arrives); files and byte
// sources are read by slices.
async function* batches(source, start, end, batchBytes) {
  if (source.url) {
    if (start >= end) return;
    const r = await fetch(source.url, { headers: { Range: `bytes=${start}-${end - 1}` } });
    if (r.status !== 206 && r.status !== 200) throw new Error(`${source.url}: HTTP ${r.status}`);
    const reader = r.body.getReader();
    try {
      let skip = r.status === 200 ? start : 0; // the server ignored Range
      let buf = new Uint8Array(Math.min(batchBytes, end - start)), fill = 0, pos = start;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let v = value;
        if (skip) { const s = Math.min(skip, v.length); v = v.subarray(s); skip -= s; }
        while (v.length) {
          const n = Math.min(v.length, buf.length - fill);
          buf.set(v.subarray(0, n), fill);
          fill += n;
          v = v.subarray(n);
          if (fill === buf.length) {
            yield buf;
            pos += fill;
            if (pos >= end) return;
            buf = new Uint8Array(Math.min(batchBytes, end - pos));
            fill = 0;
          }
        }
      }
      if (fill) yield buf.subarray(0, fill); // cut short: the caller reports the truncation
    } finally {
      reader.cancel().catch(() => {});
    }
    return;
  }
  for (let a = start; a < end; a += batchBytes) {
    const b = await source.read(a, Math.min(batchBytes, end - a));
    yield b;
    if (b.length < Math.min(batchBytes, end - a)) return;
  }
}

/**
 * Copies `count` x `dim` float32 vectors at byte `offset` of `source` (URL, File/Blob,
 * bytes or a byte source) into the OPFS file `<name>.f32`. A Worker writes each batch of
 * `batchBytes` with a sync access handle, flushes it and then records the bytes written in
 * `<name>.meta.json`, so an interrupted import (closed tab, network error, `signal`
 * aborted) resumes after the last committed batch on the next call with the same source
 * (bytes past it, from a batch cut off mid-way, are truncated away). The next batch is
 * read from the source while the current one is written.
 * onProgress({rows, count, bytes, seconds}). Returns {rows, resumedAt, seconds,
 * fetchSeconds (waiting for the source), writeSeconds (writes + flushes in the Worker),
 * flushSeconds (the flushes and meta writes alone), batches, bytes}. flush 'none': no flush
 * per batch (only the last): a closed tab or crashed browser keeps the written bytes, an OS
 * crash may lose some of what the meta records.
 */
export async function importToOPFS(name, source, { offset, count, dim, batchBytes = 16 << 20, flush = 'batch', onProgress, signal, key } = {}) {
  const { openSource } = await import('./source.js');
  const src = source && typeof source.read === 'function' ? source : await openSource(source);
  const rb = dim * 4, total = count * rb;
  batchBytes = Math.max(rb, Math.floor(batchBytes / rb) * rb);
  const rpc = new WorkerRpc();
  let it = null;
  try {
    const id = key ?? `${src.name}|${src.size}|${offset}|${count}|${dim}`;
    const t0 = now();
    const begun = await rpc.call('begin', { ...files(name), id, total, count, dim, offset });
    const startRow = begun.written / rb;
    let at = begun.written, fetchMs = 0, writeMs = 0, flushMs = 0, nb = 0;
    it = batches(src, offset + at, offset + total, batchBytes);
    let pending = at < total ? it.next() : null;
    while (at < total) {
      signal?.throwIfAborted();
      const tf = now();
      const { value, done } = await pending;
      fetchMs += now() - tf;
      const want = Math.min(batchBytes, total - at), got = done ? 0 : value.length, end = at + got;
      pending = got === want && at + got < total ? it.next() : null; // read ahead while this batch is written
      if (got >= rb) { // a short batch (the source ended early): its whole rows are kept
        let bytes = got === want ? value : value.subarray(0, Math.floor(got / rb) * rb);
        if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
        const w = await rpc.call('write', { at, bytes: bytes.buffer, flush }, [bytes.buffer]);
        writeMs += w.writeMs;
        flushMs += w.flushMs + w.metaMs;
        at = w.written;
        nb++;
        onProgress?.({ rows: at / rb, count, bytes: at - begun.written, seconds: (now() - t0) / 1000 });
      }
      if (got < want) throw new RangeError(`${src.name}: truncated: the vectors end at byte ${end} of ${total}; ${at / rb} of ${count} rows imported (a later call resumes from there)`);
    }
    return { rows: count, resumedAt: startRow, seconds: (now() - t0) / 1000, fetchSeconds: fetchMs / 1000,
      writeSeconds: writeMs / 1000, flushSeconds: flushMs / 1000, batches: nb, bytes: at - begun.written };
  } finally {
    it?.return().catch(() => {}); // stop reading the source
    await rpc.call('close').catch(() => {}); // release the handles before the Worker goes
    rpc.terminate();
  }
}

/** The import's record ({id, total, count, dim, written, complete}), or null. */
export async function opfsImportState(name) {
  try {
    const root = await navigator.storage.getDirectory();
    const f = await (await root.getFileHandle(files(name).metaFile)).getFile();
    return JSON.parse(await f.text());
  } catch (e) {
    if (e.name === 'NotFoundError') return null;
    throw e;
  }
}

/**
 * Vectors in the OPFS file written by importToOPFS. read(rows) as every store: the rows'
 * vectors in one batch. mode 'worker' (default): sync access handle in a Worker, one
 * message per query; 'async': main thread, one File snapshot reused, one slice read per
 * run of neighbouring rows, all at once; 'async-fresh': as 'async' with a new snapshot per
 * query.
 */
export class OPFSStore {
  static async open(name, { mode = 'worker', maxGap = 'auto' } = {}) {
    const s = new OPFSStore();
    const auto = maxGap === 'auto';
    Object.assign(s, { name, mode, maxGap: auto ? 0 : maxGap });
    if (mode === 'worker') {
      s.workerMs = 0; // time spent reading inside the Worker
      s.rpc = new WorkerRpc();
      try {
        s.meta = await s.rpc.call('open', { name, measureGap: auto });
        if (auto) s.maxGap = s.meta.gap;
      } catch (e) {
        s.rpc.terminate();
        throw e;
      }
    } else if (mode === 'async' || mode === 'async-fresh') {
      s.meta = await opfsImportState(name);
      if (!s.meta || !s.meta.complete) throw new Error(`OPFS ${name}: no complete import (run importToOPFS first)`);
      const root = await navigator.storage.getDirectory();
      s.handle = await root.getFileHandle(files(name).file);
      s.file = await s.handle.getFile();
      if (s.file.size < s.meta.total) throw new Error(`OPFS ${name}: the file is shorter than its import`);
    } else throw new Error(`OPFSStore: unknown mode ${JSON.stringify(mode)}`);
    s.count = s.meta.count;
    s.dim = s.meta.dim;
    return s;
  }

  // rows, the ranges begin coalesced them into, and where they go (stores.js)
  async read(rows, ranges, into) {
    if (rows.length && (rows[0] < 0 || rows[rows.length - 1] >= this.count))
      throw new RangeError(`row outside the store's ${this.count} rows`);
    const d = this.dim, rb = d * 4;
    if (this.rpc) {
      const r = await this.rpc.call('read', { rows, ranges });
      this.workerMs += r.ms;
      const out = output(rows, d, into);
      out.set(new Float32Array(r.buffer));
      return { vectors: out, stats: { ranges: r.runs, bytes: r.buffer.byteLength, requests: 1 } };
    }
    const file = this.mode === 'async-fresh' ? await this.handle.getFile() : this.file;
    const runs = rangePairs(rows, ranges);
    const parts = await Promise.all(runs.map(async ([a, b]) => [a, new Float32Array(await file.slice(a * rb, (b + 1) * rb).arrayBuffer())]));
    const out = output(rows, d, into);
    let p = 0;
    for (let i = 0; i < rows.length; i++) {
      while (rows[i] > parts[p][0] + parts[p][1].length / d - 1) p++;
      const o = (rows[i] - parts[p][0]) * d;
      out.set(parts[p][1].subarray(o, o + d), i * d);
    }
    const bytes = runs.reduce((s, [a, b]) => s + (b - a + 1) * rb, 0);
    return { vectors: out, stats: { ranges: runs.length, bytes, requests: runs.length } };
  }

  // Resolves once the Worker has released the file (a new sync handle may then be opened).
  close() {
    this.file = this.handle = null;
    const rpc = this.rpc;
    this.rpc = null;
    if (rpc) this.closing = rpc.call('close').catch(() => {}).finally(() => rpc.terminate());
    return this.closing ?? Promise.resolve();
  }

  static async delete(name) {
    const root = await navigator.storage.getDirectory();
    for (const f of Object.values(files(name))) {
      try { await root.removeEntry(f); } catch (e) { if (e.name !== 'NotFoundError') throw e; }
    }
  }
}
