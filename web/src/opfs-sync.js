// OPFS through sync access handles: only inside a dedicated Worker (createSyncAccessHandle
// does not exist on the main thread). Shared by src/opfs-worker.js (the OPFS store's and
// the import's Worker) and src/index-worker.js (a whole index in a Worker).
import { output, rangePairs } from './stores.js';

const dec = new TextDecoder(), enc = new TextEncoder();
const now = () => performance.now();

export const opfsFiles = (name) => ({ file: `${name}.f32`, metaFile: `${name}.meta.json` });

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
 */
export class OPFSSyncStore {
  static async open(name) {
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

  // A store over an open handle (anything with read(view, {at}) and close()) holding
  // meta.count rows of meta.dim floats.
  static over(data, meta, name) {
    const s = new OPFSSyncStore();
    Object.assign(s, { name, file: opfsFiles(name).file, meta, data, count: meta.count, dim: meta.dim, readMs: 0, reads: 0,
      scratch: new Uint8Array(0), _scratchViews: new Map(), _at: { at: 0 } });
    return s;
  }

  // -> {ranges: read calls, bytes: bytes read (gap rows included)}. A range whose rows are
  // not all wanted (begin merged across a gap) is read into `dest` at its first row's slot
  // when the span fits there and the wanted rows are moved down (each moves to a lower or
  // the same slot, in order, so none is overwritten before it moves); else into a scratch
  // buffer kept for the next query.
  readInto(rows, ranges, dest) {
    const data = this.data, rb = this.dim * 4, m = rows.length;
    if (!data) throw new Error(`OPFS ${this.file}: the store is closed`);
    if (m && (rows[0] < 0 || rows[m - 1] >= this.count)) throw new RangeError(`row outside the store's ${this.count} rows`);
    if (!ranges) ranges = Int32Array.from(rangePairs(rows).flat());
    const at = this._at; // one options object and cached views: no garbage per read call
    let i = 0, bytes = 0;
    const nr = ranges.length >> 1;
    for (let g = 0; g < nr; g++) {
      const a = ranges[2 * g], b = ranges[2 * g + 1], span = b - a + 1;
      let j = i;
      while (j < m && rows[j] <= b) j++;
      if (j === i || rows[i] !== a || rows[j - 1] !== b) throw new Error('OPFS: the ranges do not match the rows');
      const inPlace = i + span <= m;
      const want = inPlace ? this._view(dest, i, span) : this._scratch(span * rb);
      at.at = a * rb;
      if (data.read(want, at) !== want.length) throw new Error(`OPFS ${this.file}: short read at row ${a}`);
      bytes += want.length;
      if (j - i !== span) { // gap rows read: keep the wanted ones
        for (let r = i; r < j; r++) {
          const o = (rows[r] - a) * rb;
          if (inPlace) { if (o !== (r - i) * rb) dest.copyWithin(r * rb, i * rb + o, i * rb + o + rb); }
          else dest.set(want.subarray(o, o + rb), r * rb);
        }
      }
      i = j;
    }
    if (i !== m) throw new Error('OPFS: the ranges do not cover the rows');
    return { ranges: nr, bytes };
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
    const rb = this.dim * 4, span = 65, batch = 24, batches = 12;
    if (this.count <= span * 4) return 0;
    const one = new Uint8Array(rb), many = new Uint8Array(span * rb);
    let at = 0;
    const time = (buf) => {
      const t0 = now();
      for (let i = 0; i < batch; i++, at++) this.data.read(buf, { at: ((at * 7919) % (this.count - span)) * rb });
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

  close() { this.data?.close(); this.data = null; }
}
