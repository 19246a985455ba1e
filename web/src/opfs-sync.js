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
 * The vectors of an OPFS import (importToOPFS), read synchronously: readSync(rows) reads
 * each run of neighbouring rows (ascending rows) with one read(view, {at}) straight into
 * the output; read(rows) is the same behind the store interface.
 */
export class OPFSSyncStore {
  static async open(name) {
    const { file, metaFile } = opfsFiles(name);
    const mh = await syncHandle(metaFile, false, 'read-only');
    const meta = readMeta(mh);
    mh.close();
    if (!meta || !meta.complete) throw new Error(`OPFS ${file}: no complete import (run importToOPFS first)`);
    const data = await syncHandle(file, false, 'read-only');
    if (data.getSize() < meta.total) { data.close(); throw new Error(`OPFS ${file}: the file is shorter than its import`); }
    const s = new OPFSSyncStore();
    Object.assign(s, { name, meta, data, count: meta.count, dim: meta.dim, readMs: 0, reads: 0 });
    return s;
  }

  // One synchronous read per (first, last) range (as begin coalesced the rows; one per row
  // when none are given) -> {buffer: ArrayBuffer(rows.length * dim * 4), runs, ms}
  readSync(rows, ranges) {
    const t0 = now(), rb = this.dim * 4, out = new Uint8Array(rows.length * rb), data = this.data;
    if (rows.length && (rows[0] < 0 || rows[rows.length - 1] >= this.count)) throw new RangeError(`row outside the store's ${this.count} rows`);
    const runs = rangePairs(rows, ranges);
    let i = 0;
    for (const [a, b] of runs) {
      let j = i;
      while (j < rows.length && rows[j] <= b) j++;
      const dense = j - i === b - a + 1;
      const want = dense ? out.subarray(i * rb, j * rb) : new Uint8Array((b - a + 1) * rb); // gap rows: read, then dropped
      if (data.read(want, { at: a * rb }) !== want.length) throw new Error(`OPFS: short read at row ${a}`);
      if (!dense) for (let r = i; r < j; r++) out.set(want.subarray((rows[r] - a) * rb, (rows[r] - a + 1) * rb), r * rb);
      i = j;
    }
    if (i !== rows.length) throw new Error('OPFS: the ranges do not cover the rows');
    const ms = now() - t0;
    this.readMs += ms;
    this.reads++;
    return { buffer: out.buffer, runs: runs.length, ms };
  }

  // The gap (rows) worth reading across rather than issuing one more read call, measured
  // on this file: a call costs ~1 us in Chromium, ~30 us in Firefox, a row well under a
  // microsecond more. Batches of reads of 1 and of SPAN rows at spread offsets, alternated;
  // the fastest batch of each (the least disturbed by other threads), the time of a call
  // over the time of a row, clamped to [0, maxGap].
  measureGap(maxGap = 32) {
    const rb = this.dim * 4, span = 17, batch = 32, batches = 12;
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
    return Math.max(0, Math.min(maxGap, Math.floor((t1 - perRow) / perRow)));
  }

  async read(rows, ranges, into) {
    const r = this.readSync(rows, ranges);
    const out = output(rows, this.dim, into);
    out.set(new Float32Array(r.buffer));
    return { vectors: out, stats: { ranges: r.runs, bytes: r.buffer.byteLength, requests: 0 } };
  }

  close() { this.data?.close(); this.data = null; }
}
