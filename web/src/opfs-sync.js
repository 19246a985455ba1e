// OPFS through sync access handles: only inside a dedicated Worker (createSyncAccessHandle
// does not exist on the main thread). Shared by src/opfs-worker.js (the OPFS store's and
// the import's Worker) and src/index-worker.js (a whole index in a Worker).
import { output, rangePairs } from './stores.js';

const dec = new TextDecoder(), enc = new TextEncoder();
const now = () => performance.now();

export const opfsFiles = (name) => ({ file: `${name}.f32`, metaFile: `${name}.meta.json` });
// An import split over files (importToOPFS's `files`): part p is an import of its own, named so.
export const partName = (name, p) => `${name}.part${p}`;
export const partRows = (meta, p) => Math.max(0, Math.min(meta.partRows, meta.count - p * meta.partRows));
const missingPart = (name, p, n) => `OPFS ${name}: part ${p + 1} of ${n} (${opfsFiles(partName(name, p)).file}) not found, though ${opfsFiles(name).metaFile} records a complete import (run importToOPFS again)`;

// A sync access handle; read-only (shared between tabs) where the browser supports modes.
export async function syncHandle(name, create, mode) {
  const fh = await (await navigator.storage.getDirectory()).getFileHandle(name, { create });
  if (mode) {
    try { return await fh.createSyncAccessHandle({ mode }); } catch (e) { if (e.name !== 'TypeError') throw e; }
  }
  return fh.createSyncAccessHandle();
}

export function readMeta(h) {
  const n = h.getSize();
  if (!n) return null;
  const b = new Uint8Array(n);
  h.read(b, { at: 0 });
  try { return JSON.parse(dec.decode(b)); } catch { return null; }
}

export function writeMeta(h, m, flush = true) {
  const b = enc.encode(JSON.stringify(m));
  h.truncate(0);
  h.write(b, { at: 0 });
  if (flush) h.flush();
}

/**
 * The vectors of an OPFS import (importToOPFS), read synchronously. readInto(rows, ranges,
 * dest): each (first, last) range (as begin coalesced the ascending rows) with one
 * read(view, {at}) straight into `dest` (in a Worker's index: the searcher's vectors
 * buffer in wasm memory, so the bytes land where the rerank reads them, with no copy in
 * JS and nothing allocated per query). readSync(rows) is the same into a new buffer (the
 * OPFS store's Worker, which transfers it); read(rows) the same behind the store interface.
 *
 * An import split over several files (importToOPFS's `files`: rows in contiguous parts,
 * meta.parts and meta.partRows) is read part by part: a range that crosses a part's end
 * becomes one read in each. With `parallel` (a cross-origin isolated Worker), every part
 * but the first has a reader Worker of its own (opfs-reader.js, its own sync access handle:
 * Firefox gives one per file), handed its reads through a SharedArrayBuffer; this thread
 * reads the first part meanwhile and waits with Atomics. In Firefox each read call is a
 * thread hop of ~20-35 us (docs/BROWSER.md §11): the readers' hops overlap.
 */
export class OPFSSyncStore {
  static async open(name, { parallel = false } = {}) {
    const { file, metaFile } = opfsFiles(name);
    let mh;
    try {
      mh = await syncHandle(metaFile, false, 'read-only');
    } catch (e) {
      if (e.name === 'NotFoundError') throw new Error(`OPFS ${file}: not found (run importToOPFS first)`);
      throw e;
    }
    const meta = readMeta(mh);
    mh.close();
    if (!meta || !meta.complete) throw new Error(`OPFS ${file}: no complete import (run importToOPFS first)`);
    if (meta.parts > 1) return OPFSSyncStore._openParts(name, meta, parallel);
    let data;
    try {
      data = await syncHandle(file, false, 'read-only');
    } catch (e) {
      if (e.name === 'NotFoundError') throw new Error(`OPFS ${file}: not found, though ${metaFile} records a complete import`);
      throw e;
    }
    if (data.getSize() < meta.total) { data.close(); throw new Error(`OPFS ${file}: the file is shorter than its import`); }
    return OPFSSyncStore.over(data, meta, name);
  }

  // Every part's file, checked; parts after the first through reader Workers when parallel.
  static async _openParts(name, meta, parallel) {
    const handles = [], rb = meta.dim * 4;
    try {
      for (let p = 0; p < meta.parts; p++) {
        const pn = partName(name, p), rows = partRows(meta, p);
        let h;
        try {
          if (parallel && p > 0) { handles.push(await PartReader.start(pn, rows * rb, meta.dim)); continue; }
          h = await syncHandle(opfsFiles(pn).file, false, 'read-only');
        } catch (e) {
          if (e.name === 'NotFoundError') throw new Error(missingPart(name, p, meta.parts));
          throw e;
        }
        handles.push(h);
        if (h.getSize() < rows * rb) throw new Error(`OPFS ${name}: part ${p + 1} of ${meta.parts} (${opfsFiles(pn).file}) is shorter than its import`);
      }
    } catch (e) {
      for (const h of handles) h.close();
      throw e;
    }
    return OPFSSyncStore.over(handles, meta, name);
  }

  // A store over open handles (anything with read(view, {at}) and close(); an array of them
  // for meta.parts files of meta.partRows rows, where an element with post() and collect()
  // is a reader in another thread, PartReader) holding meta.count rows of meta.dim floats.
  static over(data, meta, name) {
    const s = new OPFSSyncStore(), handles = Array.isArray(data) ? data : [data];
    const per = handles.length > 1 ? meta.partRows : meta.count;
    Object.assign(s, { name, file: opfsFiles(name).file, meta, count: meta.count, dim: meta.dim, readMs: 0, reads: 0,
      parts: handles.map((h, p) => ({ data: h, first: p * per, remote: typeof h.post === 'function' })),
      partRows: per, data: handles[0], scratch: new Uint8Array(0), _scratchViews: new Map(), _at: { at: 0 },
      _pieces: new Int32Array(0) });
    s.parallel = s.parts.some((p) => p.remote);
    return s;
  }

  // -> {ranges: read calls, bytes: bytes read (gap rows included)}. A range whose rows are
  // not all wanted (begin merged across a gap) is read into `dest` at its first row's slot
  // when the span fits there and the wanted rows are moved down (each moves to a lower or
  // the same slot, in order, so none is overwritten before it moves); else into a scratch
  // buffer kept for the next query. Split files: the pieces of remote parts go to their
  // readers first, then this thread reads its own, then collects theirs.
  readInto(rows, ranges, dest) {
    const rb = this.dim * 4, m = rows.length;
    if (!this.data) throw new Error(`OPFS ${this.file}: the store is closed`);
    if (m && (rows[0] < 0 || rows[m - 1] >= this.count)) throw new RangeError(`row outside the store's ${this.count} rows`);
    if (!ranges) ranges = Int32Array.from(rangePairs(rows).flat());
    // 1. pieces (first slot, end slot, part): each range, cut where a part ends
    const per = this.partRows, np = this.parts.length, nr = ranges.length >> 1;
    if (this._pieces.length < 3 * (nr + np)) this._pieces = new Int32Array(3 * (nr + np) * 2);
    const pc = this._pieces;
    let i = 0, n = 0;
    for (let g = 0; g < nr; g++) {
      const a = ranges[2 * g], b = ranges[2 * g + 1];
      let j = i;
      while (j < m && rows[j] <= b) j++;
      if (j === i || rows[i] !== a || rows[j - 1] !== b) throw new Error('OPFS: the ranges do not match the rows');
      for (let s = i; s < j;) {
        const p = np === 1 ? 0 : Math.floor(rows[s] / per), end = (p + 1) * per;
        let e = s + 1;
        while (e < j && rows[e] < end) e++;
        pc[3 * n] = s; pc[3 * n + 1] = e; pc[3 * n + 2] = p; n++;
        s = e;
      }
      i = j;
    }
    if (i !== m) throw new Error('OPFS: the ranges do not cover the rows');
    // 2. the readers' pieces out, 3. ours read here, 4. theirs collected
    let bytes = 0;
    if (this.parallel) for (let p = 1; p < np; p++) if (this.parts[p].remote) bytes += this.parts[p].data.post(rows, pc, n, p, this.parts[p].first, rb);
    for (let q = 0; q < n; q++) {
      const part = this.parts[pc[3 * q + 2]];
      if (!part.remote) bytes += this._readPiece(part, rows, pc[3 * q], pc[3 * q + 1], dest);
    }
    if (this.parallel) for (let p = 1; p < np; p++) if (this.parts[p].remote) this.parts[p].data.collect(dest);
    return { ranges: n, bytes };
  }

  // rows [s, e) of the query, one read call on this thread
  _readPiece(part, rows, s, e, dest) {
    const rb = this.dim * 4, m = rows.length, a = rows[s], b = rows[e - 1], span = b - a + 1;
    const inPlace = s + span <= m;
    const want = inPlace ? this._view(dest, s, span) : this._scratch(span * rb);
    const at = this._at; // one options object and cached views: no garbage per read call
    at.at = (a - part.first) * rb;
    if (part.data.read(want, at) !== want.length) throw new Error(`OPFS ${this.file}: short read at row ${a}`);
    if (e - s !== span) { // gap rows read: keep the wanted ones
      for (let r = s; r < e; r++) {
        const o = (rows[r] - a) * rb;
        if (inPlace) { if (o !== (r - s) * rb) dest.copyWithin(r * rb, s * rb + o, s * rb + o + rb); }
        else dest.set(want.subarray(o, o + rb), r * rb);
      }
    }
    return want.length;
  }

  // dest's rows [i, i + span) as a view, kept for the next query while dest is the same
  // memory at the same place (a searcher's vectors buffer moves only when it grows).
  _view(dest, i, span) {
    const rb = this.dim * 4;
    if (this._views?.buffer !== dest.buffer || this._views.offset !== dest.byteOffset || this._views.length !== dest.length)
      this._views = { buffer: dest.buffer, offset: dest.byteOffset, length: dest.length, rows: dest.length / rb, cache: new Map() };
    const key = i * (this._views.rows + 1) + span;
    let v = this._views.cache.get(key);
    if (!v) this._views.cache.set(key, v = dest.subarray(i * rb, (i + span) * rb));
    return v;
  }

  _scratch(n) {
    if (this.scratch.length < n) { this.scratch = new Uint8Array(n); this._scratchViews = new Map(); }
    let v = this._scratchViews.get(n);
    if (!v) this._scratchViews.set(n, v = this.scratch.subarray(0, n));
    return v;
  }

  // readInto a new buffer -> {buffer: ArrayBuffer(rows.length * dim * 4), runs, ms}
  readSync(rows, ranges) {
    const t0 = now(), out = new Uint8Array(rows.length * this.dim * 4);
    const r = this.readInto(rows, ranges, out);
    const ms = now() - t0;
    this.readMs += ms;
    this.reads++;
    return { buffer: out.buffer, runs: r.ranges, ms };
  }

  // The gap (rows) worth reading across rather than issuing one more read call, measured
  // on this file. A call costs ~1 us in Chromium but ~15-20 us in Firefox, where every
  // call on a sync access handle (even getSize()) runs a nested event loop while another
  // thread does the work (docs/BROWSER.md §11); a row costs ~0.2 us more in both. Batches
  // of reads of 1 and of SPAN rows at spread offsets, alternated; the fastest batch of each
  // (the least disturbed by other threads); the time of a call over the time of a row,
  // clamped to [0, maxGap].
  measureGap(maxGap = 128) {
    const rb = this.dim * 4, span = 65, batch = 24, batches = 12, count = Math.min(this.count, this.partRows); // the first part's rows
    if (count <= span * 4) return 0;
    const one = new Uint8Array(rb), many = new Uint8Array(span * rb);
    let at = 0;
    const time = (buf) => {
      const t0 = now();
      for (let i = 0; i < batch; i++, at++) this.data.read(buf, { at: ((at * 7919) % (count - span)) * rb });
      return (now() - t0) / batch;
    };
    time(many); // warm-up
    let t1 = Infinity, tMany = Infinity;
    for (let b = 0; b < batches; b++) {
      t1 = Math.min(t1, time(one));
      tMany = Math.min(tMany, time(many));
    }
    const perRow = Math.max((tMany - t1) / (span - 1), 1e-5);
    this.gapMeasure = { callUs: t1 * 1000, rowUs: perRow * 1000 };
    return Math.max(0, Math.min(maxGap, Math.floor((t1 - perRow) / perRow)));
  }

  async read(rows, ranges, into) {
    const out = output(rows, this.dim, into);
    const r = this.readInto(rows, ranges, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    return { vectors: out, stats: { ranges: r.ranges, bytes: r.bytes, requests: 0 } };
  }

  close() {
    for (const p of this.parts ?? []) p.data.close();
    this.parts = [];
    this.data = null;
  }
}

// A part of a split import read by a Worker of its own (opfs-reader.js), driven through a
// SharedArrayBuffer: ctrl holds [request seq, done seq, status, pieces], then the pieces
// (first slot, end slot), then the part-local row of every slot; out holds the rows read,
// each at its slot (the query's row number). post() hands a query's pieces over and wakes
// the reader; collect() waits for it and copies its rows into dest.
const HEAD = 8, WAIT_MS = 10000;
export class PartReader {
  static async start(name, bytes, dim, capRows = 2048) {
    if (typeof SharedArrayBuffer === 'undefined' || !globalThis.crossOriginIsolated)
      throw new Error('parallel OPFS reads need a cross-origin isolated page (SharedArrayBuffer and Atomics.wait)');
    const ctrl = new SharedArrayBuffer(4 * (HEAD + 3 * capRows)), out = new SharedArrayBuffer(capRows * dim * 4);
    const worker = new Worker(new URL('./opfs-reader.js', import.meta.url), { type: 'module', name: 'quantann-opfs-reader' });
    const ready = await new Promise((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => resolve({ ok: false, error: e.message || 'failed to start' });
      worker.postMessage({ file: opfsFiles(name).file, ctrl, out, dim, cap: capRows });
    });
    const file = opfsFiles(name).file;
    if (!ready.ok || ready.size < bytes) {
      worker.terminate();
      if (ready.name === 'NotFoundError') throw Object.assign(new Error(`OPFS ${file}: not found`), { name: 'NotFoundError' });
      throw new Error(ready.ok ? `OPFS ${file}: the file is shorter than its import` : `OPFS reader for ${file}: ${ready.error}`);
    }
    return new PartReader(worker, ctrl, out, dim, capRows, file);
  }

  constructor(worker, ctrl, out, dim, cap, file) {
    Object.assign(this, { worker, c: new Int32Array(ctrl), out: new Uint8Array(out), rb: dim * 4, cap, file, seq: 0, active: false });
  }

  // pieces pc[3q..3q+2] = (first slot, end slot, part) for q < n: part p's go to the reader
  post(rows, pc, n, p, first, rb) {
    const c = this.c, R = HEAD + 2 * this.cap;
    if (rows.length > this.cap) throw new RangeError(`OPFS: ${rows.length} rows in one query, over the split store's ${this.cap}`);
    let k = 0, bytes = 0;
    for (let q = 0; q < n; q++) {
      if (pc[3 * q + 2] !== p) continue;
      const s = pc[3 * q], e = pc[3 * q + 1];
      c[HEAD + 2 * k] = s; c[HEAD + 2 * k + 1] = e; k++;
      for (let r = s; r < e; r++) c[R + r] = rows[r] - first;
      bytes += (rows[e - 1] - rows[s] + 1) * rb;
    }
    this.active = k > 0;
    if (!k) return 0;
    c[3] = k;
    Atomics.store(c, 0, ++this.seq);
    Atomics.notify(c, 0);
    return bytes;
  }

  collect(dest) {
    if (!this.active) return;
    this.active = false;
    const c = this.c, rb = this.rb;
    if (Atomics.load(c, 1) !== this.seq) Atomics.wait(c, 1, this.seq - 1, WAIT_MS);
    if (Atomics.load(c, 1) !== this.seq) throw new Error(`OPFS ${this.file}: its reader did not answer in ${WAIT_MS / 1000} s`);
    if (c[2]) throw new Error(`OPFS ${this.file}: ${c[2] === 1 ? 'short read' : 'read failed'}`);
    for (let k = 0, n = c[3]; k < n; k++) {
      const s = c[HEAD + 2 * k], e = c[HEAD + 2 * k + 1];
      dest.set(this.out.subarray(s * rb, e * rb), s * rb);
    }
  }

  // The reader closes its handle (the file may then be opened again) and ends.
  close() {
    if (!this.worker) return;
    Atomics.store(this.c, 0, -1);
    Atomics.notify(this.c, 0);
    if (Atomics.load(this.c, 1) !== -1) Atomics.wait(this.c, 1, Atomics.load(this.c, 1), 2000);
    this.worker.terminate();
    this.worker = null;
  }
}
