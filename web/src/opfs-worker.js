// The OPFS side of the OPFS store (web/src/opfs.js), in a dedicated module Worker: only a
// Worker may call createSyncAccessHandle(), whose read(view, {at}) and write(view, {at})
// are synchronous calls into the file (no promise, no copy through the browser's blob
// machinery). Requests: {id, op, args} -> {id, ok, result} | {id, ok: false, error, name}.
//   begin  {file, metaFile, id, total}  open (or reset) an import; -> {written, meta}
//   write  {at, bytes}                   write a batch, flush, commit {written} to the meta
//   open   {file, metaFile}             open a store for reading; -> meta
//   read   {rows: Int32Array}           the rows' vectors (ascending rows) -> ArrayBuffer
//   close  {}
const enc = new TextEncoder(), dec = new TextDecoder();
let data = null, meta = null, metaHandle = null, rowBytes = 0, readMs = 0, reads = 0;
const now = () => performance.now();

async function dir() { return navigator.storage.getDirectory(); }

// A sync access handle; read-only (shared between tabs) where the browser supports modes.
async function syncHandle(name, create, mode) {
  const fh = await (await dir()).getFileHandle(name, { create });
  if (mode) {
    try { return await fh.createSyncAccessHandle({ mode }); } catch (e) { if (e.name !== 'TypeError') throw e; }
  }
  return fh.createSyncAccessHandle();
}

function readMeta(h) {
  const n = h.getSize();
  if (!n) return null;
  const b = new Uint8Array(n);
  h.read(b, { at: 0 });
  try { return JSON.parse(dec.decode(b)); } catch { return null; }
}

function writeMeta(h, m, flush = true) {
  const b = enc.encode(JSON.stringify(m));
  h.truncate(0);
  h.write(b, { at: 0 });
  if (flush) h.flush();
}

function closeAll() {
  data?.close();
  metaHandle?.close();
  data = metaHandle = null;
}

const ops = {
  async begin({ file, metaFile, id, total, count, dim, offset }) {
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
      if (data.getSize() < meta.written) meta.written = Math.floor(data.getSize() / (dim * 4)) * dim * 4;
      data.truncate(meta.written);
      data.flush();
      writeMeta(metaHandle, meta);
    }
    return { written: meta.written, complete: meta.complete };
  },

  // flush: 'batch' (data flushed before the meta records it: durable even across an OS
  // crash) or 'none' (left to the OS: a closed tab or crashed browser still keeps the
  // written bytes, an OS crash may not); the last batch is always flushed.
  write({ at, bytes, flush = 'batch' }) {
    if (at !== meta.written) throw new Error(`OPFS import: write at ${at}, but ${meta.written} bytes are committed`);
    const t0 = now();
    const v = new Uint8Array(bytes);
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
    return { written: meta.written, writeMs: now() - t0, dataWriteMs: t1 - t0, flushMs: t2 - t1, metaMs: now() - t2 };
  },

  ping() { return 0; },

  async open({ file, metaFile }) {
    closeAll();
    const mh = await syncHandle(metaFile, false, 'read-only');
    meta = readMeta(mh);
    mh.close();
    if (!meta || !meta.complete) throw new Error(`OPFS ${file}: no complete import (run importToOPFS first)`);
    data = await syncHandle(file, false, 'read-only');
    if (data.getSize() < meta.total) { closeAll(); throw new Error(`OPFS ${file}: the file is shorter than its import`); }
    rowBytes = meta.dim * 4;
    return meta;
  },

  // Runs of neighbouring rows are read with one call each, straight into the output.
  read({ rows }) {
    const t0 = now(), rb = rowBytes, out = new Uint8Array(rows.length * rb);
    let runs = 0, strict = true;
    for (let i = 1; i < rows.length; i++) if (rows[i] <= rows[i - 1]) { strict = false; break; }
    if (strict) {
      for (let i = 0; i < rows.length;) {
        let j = i + 1;
        while (j < rows.length && rows[j] === rows[j - 1] + 1) j++;
        const want = out.subarray(i * rb, j * rb);
        if (data.read(want, { at: rows[i] * rb }) !== want.length) throw new Error(`OPFS: short read at row ${rows[i]}`);
        runs++;
        i = j;
      }
    } else { // duplicates or unsorted: one read per row
      for (let i = 0; i < rows.length; i++) {
        const want = out.subarray(i * rb, (i + 1) * rb);
        if (data.read(want, { at: rows[i] * rb }) !== rb) throw new Error(`OPFS: short read at row ${rows[i]}`);
      }
      runs = rows.length;
    }
    const ms = now() - t0;
    readMs += ms;
    reads++;
    return [{ buffer: out.buffer, runs, ms }, [out.buffer]];
  },

  stats() { return { readMs, reads }; },

  close() { closeAll(); return true; },
};

self.onmessage = async (e) => {
  const { id, op, args } = e.data;
  try {
    const r = await ops[op](args);
    const [result, transfer] = Array.isArray(r) ? r : [r, []];
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message || err), name: err?.name });
  }
};
