// Parallel OPFS reads, measured and not kept (docs/BROWSER.md §12): a file read by a Worker
// of its own (opfs-parallel-reader-worker.js), driven through a SharedArrayBuffer. Used by
// the probe bench/web/opfs-parallel-worker.js only.
import { opfsFiles } from '../../web/src/opfs-sync.js';

// A part of a split import read by a Worker of its own, driven through a
// SharedArrayBuffer: ctrl holds [request seq, done seq, status, pieces], then the pieces
// (first slot, end slot), then the part-local row of every slot; out holds the rows read,
// each at its slot (the query's row number). post() hands a query's pieces over and wakes
// the reader; collect() waits for it and copies its rows into dest.
const HEAD = 8, WAIT_MS = 10000;
export class PartReader {
  // port: a MessagePort to a reader the page started; else a nested Worker
  static async start(name, bytes, dim, { capRows = 2048, port } = {}) {
    if (typeof SharedArrayBuffer === 'undefined' || !globalThis.crossOriginIsolated)
      throw new Error('parallel OPFS reads need a cross-origin isolated page (SharedArrayBuffer and Atomics.wait)');
    const ctrl = new SharedArrayBuffer(4 * (HEAD + 3 * capRows)), out = new SharedArrayBuffer(capRows * dim * 4);
    const worker = port ? null : new Worker(new URL('./opfs-parallel-reader-worker.js', import.meta.url), { type: 'module', name: 'quantann-opfs-reader' });
    const to = port ?? worker;
    const ready = await new Promise((resolve) => {
      to.onmessage = (e) => resolve(e.data);
      if (worker) worker.onerror = (e) => resolve({ ok: false, error: e.message || 'failed to start' });
      to.postMessage({ file: opfsFiles(name).file, ctrl, out, dim, cap: capRows });
    });
    const file = opfsFiles(name).file;
    if (!ready.ok || ready.size < bytes) {
      worker?.terminate();
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
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.c, 0, -1);
    Atomics.notify(this.c, 0);
    if (Atomics.load(this.c, 1) !== -1) Atomics.wait(this.c, 1, Atomics.load(this.c, 1), 2000);
    this.worker?.terminate();
    this.worker = null;
  }
}
