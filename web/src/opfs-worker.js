// The OPFS side of the OPFS store (web/src/opfs.js), in a dedicated module Worker: only a
// Worker may call createSyncAccessHandle(), whose read(view, {at}) and write(view, {at})
// are synchronous calls into the file (no promise, no copy through the browser's blob
// machinery). Requests: {id, op, args} -> {id, ok, result} | {id, ok: false, error, name}.
//   begin  {file, metaFile, id, total, unit?}  open (or reset) an import; -> {written, meta}
//                                       (unit: what a resumed import rounds down to; default a
//                                       vector row, dim * 4 bytes; 1 for plain bytes)
//   write  {at, bytes, length?}          write a batch (the first length bytes), flush, commit {written} to the meta;
//                                       -> {written, ...timings, bytes} (the buffer handed back)
//   readAt {at, length}                  bytes of the file being imported (a resumed load's
//                                       committed prefix) -> ArrayBuffer
//   open   {name, measureGap}           open a store for reading (OPFSSyncStore); -> meta
//                                       (+ gap: OPFSSyncStore.measureGap() when asked)
//   read   {rows, ranges: Int32Array}   the rows' vectors (ascending rows, their (first, last)
//                                       ranges) -> ArrayBuffer
//   probe  {}                           whether this Worker has OPFS sync access handles
//   close  {}
import { serve } from './worker-rpc.js';
import { OPFSSyncStore, readMeta, syncHandle, writeMeta } from './opfs-sync.js';

let data = null, meta = null, metaHandle = null, store = null;
const now = () => performance.now();

function closeAll() {
  data?.close();
  metaHandle?.close();
  store?.close();
  data = metaHandle = store = null;
}

const ops = {
  async begin({ file, metaFile, id, total, count, dim, offset, unit = dim * 4 }) {
    closeAll();
    metaHandle = await syncHandle(metaFile, true);
    data = await syncHandle(file, true);
    meta = readMeta(metaHandle);
    if (!meta || meta.id !== id || meta.total !== total) { // a different source: start over
      meta = { id, total, count, dim, offset, written: 0, complete: false };
      data.truncate(0);
      data.flush();
      writeMeta(metaHandle, meta);
    } else if (data.getSize() !== meta.written) {
      // bytes past the last commit (a batch cut off mid-way) or a shorter file: back to the
      // last committed byte, which is what the import resumes from
      if (data.getSize() < meta.written) meta.written = Math.floor(data.getSize() / unit) * unit;
      data.truncate(meta.written);
      data.flush();
      writeMeta(metaHandle, meta);
    }
    return { written: meta.written, complete: meta.complete };
  },

  // flush: 'batch' (data flushed before the meta records it: durable even across an OS
  // crash) or 'none' (left to the OS: a closed tab or crashed browser still keeps the
  // written bytes, an OS crash may not); the last batch is always flushed.
  write({ at, bytes, length = bytes.byteLength, flush = 'batch' }) {
    if (at !== meta.written) throw new Error(`OPFS import: write at ${at}, but ${meta.written} bytes are committed`);
    const t0 = now();
    const v = new Uint8Array(bytes, 0, length);
    let done = 0;
    while (done < v.length) {
      const n = data.write(v.subarray(done), { at: at + done });
      if (n <= 0) throw new Error(`OPFS import: the write at ${at + done} wrote nothing (quota?)`);
      done += n;
    }
    const t1 = now();
    meta.written = at + v.length;
    meta.complete = meta.written === meta.total;
    if (flush !== 'none' || meta.complete) data.flush();
    const t2 = now();
    writeMeta(metaHandle, meta, flush !== 'none' || meta.complete);
    // the batch's buffer goes back (transferred) for the caller to fill again: one batch
    // buffer for a whole import, not one per batch waiting for the GC
    return [{ written: meta.written, writeMs: now() - t0, dataWriteMs: t1 - t0, flushMs: t2 - t1, metaMs: now() - t2, bytes }, [bytes]];
  },

  readAt({ at, length }) {
    if (at + length > meta.written) throw new RangeError(`OPFS import: read past the ${meta.written} committed bytes`);
    const b = new Uint8Array(length);
    if (data.read(b, { at }) !== length) throw new Error(`OPFS import: short read at ${at}`);
    return [b.buffer, [b.buffer]];
  },

  ping() { return 0; },

  probe() {
    return typeof navigator.storage?.getDirectory === 'function' && typeof FileSystemFileHandle !== 'undefined'
      && typeof FileSystemFileHandle.prototype.createSyncAccessHandle === 'function';
  },

  async open({ name, measureGap = false }) {
    closeAll();
    store = await OPFSSyncStore.open(name);
    return measureGap ? { ...store.meta, gap: store.measureGap() } : store.meta;
  },

  read({ rows, ranges }) {
    const r = store.readSync(rows, ranges);
    return [r, [r.buffer]];
  },

  stats() { return { readMs: store?.readMs, reads: store?.reads }; },

  close() { closeAll(); return true; },
};

serve(ops);
