// Stores: where the full-precision vectors live. Each serves
//   read(rows: Int32Array ascending, ranges: Int32Array of (first, last) row pairs,
//        into: Float32Array(rows.length * dim))
//     -> Promise<{vectors: Float32Array(rows.length * dim), stats: {ranges, bytes, requests}}>
// in one batched fetch per query. The ranges are the ones the kernel's begin coalesced the
// rows into (within the store's maxGap): a store reads them as given. `into` is the
// searcher's vectors buffer in wasm memory: a store writes the rows there (vectors ===
// into), so they are copied once; it allocates its own when `into` is missing or was
// detached by a memory growth while it waited. Called with rows alone, a store reads one
// range per row.
//   MemoryStore     a Float32Array in the JS heap (the reference)
//   SourceStore     rows of the .qann file itself, through a byte source (File, bytes, Node file)
//   HttpStore       HTTP Range requests: all ranges of a query in one multipart/byteranges
//                   request when the server supports it
//   IndexedDBStore  vectors in records of `chunkRows` rows; fill it with importToIndexedDB

// The (first, last) pairs of `ranges`, or one per row when none were given.
export function rangePairs(rows, ranges) {
  const out = [];
  if (!ranges) for (const r of rows) out.push([r, r]);
  else for (let i = 0; i + 1 < ranges.length; i += 2) out.push([ranges[i], ranges[i + 1]]);
  return out;
}

// Where a read of `rows` lands: `into` while it is a live view of the right size.
export function output(rows, dim, into) {
  return into && into.length === rows.length * dim ? into : new Float32Array(rows.length * dim);
}

function checkRows(store, rows) {
  if (rows.length && (rows[0] < 0 || rows[rows.length - 1] >= store.count))
    throw new RangeError(`row outside the store's ${store.count} rows`);
}

// Copies the requested rows out of fetched runs: parts = [[firstRow, Float32Array], ...].
function gather(rows, dim, parts, into) {
  const out = output(rows, dim, into);
  let p = 0;
  for (let i = 0; i < rows.length; i++) {
    while (p < parts.length && rows[i] >= parts[p][0] + parts[p][1].length / dim) p++;
    if (p >= parts.length || rows[i] < parts[p][0]) throw new Error(`row ${rows[i]} missing from the fetched ranges`);
    const off = (rows[i] - parts[p][0]) * dim;
    out.set(parts[p][1].subarray(off, off + dim), i * dim);
  }
  return out;
}

// Little-endian float32 view of bytes (copied when unaligned).
function floats(bytes) {
  if (bytes.byteOffset % 4) bytes = bytes.slice();
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

export class MemoryStore {
  constructor(vectors, dim) {
    this.vectors = vectors;
    this.dim = dim;
    this.count = vectors.length / dim;
  }
  async read(rows, ranges, into) {
    checkRows(this, rows);
    const d = this.dim, out = output(rows, d, into);
    for (let i = 0; i < rows.length; i++) out.set(this.vectors.subarray(rows[i] * d, rows[i] * d + d), i * d);
    return { vectors: out, stats: { ranges: rows.length ? 1 : 0, bytes: out.byteLength, requests: 0 } };
  }
  nbytes() { return this.vectors.byteLength; }
}

export class SourceStore {
  constructor(source, offset, count, dim, { maxGap = 0 } = {}) {
    if (source.size < offset + count * dim * 4)
      throw new RangeError(`${source.name}: truncated: the vectors need ${offset + count * dim * 4} bytes, the file has ${source.size}`);
    Object.assign(this, { source, offset, count, dim, maxGap });
  }
  async read(rows, ranges, into) {
    checkRows(this, rows);
    const rb = this.dim * 4, runs = rangePairs(rows, ranges);
    const parts = await Promise.all(runs.map(async ([a, b]) => [a, floats(await this.source.read(this.offset + a * rb, (b - a + 1) * rb))]));
    const bytes = runs.reduce((s, [a, b]) => s + (b - a + 1) * rb, 0);
    return { vectors: gather(rows, this.dim, parts, into), stats: { ranges: runs.length, bytes, requests: 0 } };
  }
}

/**
 * Vectors at `offset + row * dim * 4` of a file on an HTTP server.
 * mode 'multipart' (default): one request per query, all runs in one Range header; the
 *   server answers multipart/byteranges (or merges them into one range, or ignores
 *   multi-range: then the store switches to 'parallel' for good).
 * mode 'parallel': one single-range request per run, concurrently.
 * mode 'span': one request for the span from the first to the last row (gaps included).
 */
export class HttpStore {
  constructor(url, offset, count, dim, { mode = 'multipart', maxGap = 0, maxRanges = 256 } = {}) {
    Object.assign(this, { url, offset, count, dim, mode, maxGap, maxRanges });
  }

  async read(rows, ranges, into) {
    checkRows(this, rows);
    const rb = this.dim * 4;
    let runs = rangePairs(rows, ranges);
    if (this.mode === 'span' && runs.length) runs = [[runs[0][0], runs[runs.length - 1][1]]];
    const bytes = runs.reduce((s, [a, b]) => s + (b - a + 1) * rb, 0);
    const byteRanges = runs.map(([a, b]) => [this.offset + a * rb, this.offset + (b + 1) * rb - 1]);
    let parts, requests;
    if (runs.length <= 1 || this.mode !== 'multipart' || runs.length > this.maxRanges) {
      parts = await Promise.all(byteRanges.map((r) => this._fetch([r])));
      parts = parts.flat();
      requests = byteRanges.length;
    } else {
      parts = await this._fetch(byteRanges);
      requests = 1;
      if (parts === null) { // the server does not do multi-range
        this.mode = 'parallel';
        return this.read(rows, ranges, into);
      }
    }
    // byte parts -> row parts (a part may hold several runs when the server merged them)
    const rowParts = parts.map(([start, data]) => {
      const rel = start - this.offset;
      const skip = (rb - (rel % rb)) % rb;
      const first = Math.ceil(rel / rb);
      return [first, floats(data.subarray(skip, skip + Math.floor((data.length - skip) / rb) * rb))];
    }).sort((a, b) => a[0] - b[0]);
    return { vectors: gather(rows, this.dim, rowParts, into), stats: { ranges: runs.length, bytes, requests } };
  }

  // -> [[byteStart, Uint8Array], ...], or null when a multi-range request came back whole.
  async _fetch(ranges) {
    const r = await fetch(this.url, { headers: { Range: 'bytes=' + ranges.map(([a, b]) => `${a}-${b}`).join(',') } });
    if (r.status === 200) {
      if (ranges.length > 1) { r.body?.cancel(); return null; }
      throw new Error(`${this.url}: the server ignores Range requests (HTTP 200): it cannot serve as a vector store`);
    }
    if (r.status !== 206) throw new Error(`${this.url}: HTTP ${r.status} reading vectors`);
    const type = r.headers.get('Content-Type') || '';
    const body = new Uint8Array(await r.arrayBuffer());
    const m = /multipart\/byteranges;\s*boundary="?([^";]+)"?/i.exec(type);
    if (!m) {
      const cr = /bytes (\d+)-(\d+)/.exec(r.headers.get('Content-Range') || '');
      if (!cr) throw new Error(`${this.url}: 206 without Content-Range`);
      return [[Number(cr[1]), body]];
    }
    return parseMultipart(body, m[1], this.url);
  }
}

// multipart/byteranges body -> [[byteStart, Uint8Array], ...]
function parseMultipart(body, boundary, url) {
  const parts = [];
  const dec = new TextDecoder('latin1');
  const delim = new TextEncoder().encode(`--${boundary}`);
  const find = (seq, from) => {
    outer: for (let i = from; i + seq.length <= body.length; i++) {
      for (let j = 0; j < seq.length; j++) if (body[i + j] !== seq[j]) continue outer;
      return i;
    }
    return -1;
  };
  const crlf2 = new Uint8Array([13, 10, 13, 10]);
  let pos = find(delim, 0);
  while (pos >= 0) {
    pos += delim.length;
    if (body[pos] === 45 && body[pos + 1] === 45) break; // closing "--"
    const hend = find(crlf2, pos);
    if (hend < 0) throw new Error(`${url}: malformed multipart response`);
    const cr = /content-range:\s*bytes (\d+)-(\d+)/i.exec(dec.decode(body.subarray(pos, hend)));
    if (!cr) throw new Error(`${url}: multipart part without Content-Range`);
    const start = Number(cr[1]), len = Number(cr[2]) - start + 1, at = hend + 4;
    if (at + len > body.length) throw new Error(`${url}: truncated multipart response`);
    parts.push([start, body.subarray(at, at + len)]);
    pos = find(delim, at + len);
  }
  return parts;
}

// ---- IndexedDB ------------------------------------------------------------------------

const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
const done = (tx) => new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); tx.onabort = () => reject(tx.error || new Error('transaction aborted')); });

async function openDB(name) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => {
    r.result.createObjectStore('chunks');
    r.result.createObjectStore('meta');
  };
  return req(r);
}

// 4 rows (6 KB at d=384) per record: the best store read by measurement (docs/BROWSER.md)
export const IDB_CHUNK_ROWS = 4;

/**
 * Copies `count` x `dim` float32 vectors at byte `offset` of `source` (URL, File, bytes or
 * a byte source) into the IndexedDB database `dbName`, `chunkRows` rows per record (an
 * ArrayBuffer, or a Float32Array with format 'f32'), `batchBytes` of records per
 * readwrite transaction (durability 'relaxed': each batch commits its records and the
 * resume point together, so a lost batch is simply written again). Resumable: a later call
 * with the same source continues after the last committed batch. The next batch is read
 * from the source while the current one is written.
 * onProgress({rows, count, bytes, seconds}). Returns {rows, resumedAt, seconds, fetchSeconds
 * (waiting for the source), writeSeconds (in write transactions), records, transactions}.
 */
export async function importToIndexedDB(dbName, source, { offset, count, dim, chunkRows = IDB_CHUNK_ROWS,
  batchBytes = 16 << 20, format = 'buffer', durability = 'relaxed', onProgress, key } = {}) {
  const { openSource } = await import('./source.js');
  const src = source && typeof source.read === 'function' ? source : await openSource(source);
  const db = await openDB(dbName);
  try {
    const id = key ?? `${src.name}|${src.size}|${offset}|${count}|${dim}|${chunkRows}|${format}`;
    let meta = await req(db.transaction('meta').objectStore('meta').get('meta'));
    if (!meta || meta.id !== id) { // a different source: start over
      const tx = db.transaction(['chunks', 'meta'], 'readwrite');
      tx.objectStore('chunks').clear();
      meta = { id, count, dim, chunkRows, format, nextChunk: 0, complete: false };
      tx.objectStore('meta').put(meta, 'meta');
      await done(tx);
    }
    const nChunks = Math.ceil(count / chunkRows), rb = dim * 4;
    const perBatch = Math.max(1, Math.floor(batchBytes / (chunkRows * rb)));
    const now = () => performance.now();
    const t0 = now();
    let next = meta.nextChunk, fetchMs = 0, writeMs = 0, records = 0, transactions = 0;
    const startRow = next * chunkRows;
    const fetchBatch = (c) => {
      const r0 = c * chunkRows, r1 = Math.min(count, (c + perBatch) * chunkRows);
      return src.read(offset + r0 * rb, (r1 - r0) * rb);
    };
    let pending = next < nChunks ? fetchBatch(next) : null;
    while (next < nChunks) {
      const tf = now();
      const bytes = await pending;
      fetchMs += now() - tf;
      const c1 = Math.min(nChunks, next + perBatch);
      pending = c1 < nChunks ? fetchBatch(c1) : null; // read ahead while this batch is written
      const expect = (Math.min(count, c1 * chunkRows) - next * chunkRows) * rb;
      if (bytes.length !== expect) throw new RangeError(`${src.name}: truncated: expected ${expect} bytes of vectors at chunk ${next}, got ${bytes.length}`);
      const tw = now();
      const tx = db.transaction(['chunks', 'meta'], 'readwrite', { durability });
      const cs = tx.objectStore('chunks');
      for (let c = next; c < c1; c++) {
        const a = bytes.byteOffset + (c - next) * chunkRows * rb;
        const buf = bytes.buffer.slice(a, Math.min(bytes.byteOffset + bytes.length, a + chunkRows * rb));
        cs.put(format === 'f32' ? new Float32Array(buf) : format === 'blob' ? new Blob([buf]) : buf, c);
      }
      meta.nextChunk = c1;
      meta.complete = c1 === nChunks;
      tx.objectStore('meta').put(meta, 'meta');
      await done(tx);
      writeMs += now() - tw;
      records += c1 - next;
      transactions++;
      next = c1;
      const rows = Math.min(count, next * chunkRows);
      onProgress?.({ rows, count, bytes: (rows - startRow) * rb, seconds: (now() - t0) / 1000 });
    }
    return { rows: count, resumedAt: startRow, seconds: (now() - t0) / 1000, fetchSeconds: fetchMs / 1000,
      writeSeconds: writeMs / 1000, records, transactions };
  } finally {
    db.close();
  }
}

/**
 * Vectors in IndexedDB records of `chunkRows` rows (written by importToIndexedDB).
 * A query's rows become one readonly transaction with every record get issued at once
 * (mode 'parallel'; 'getAll' reads runs of neighbouring records with one getAll each,
 * 'serial' awaits the gets one by one: both for the profile only). cacheBytes > 0 keeps
 * the most recently used records in an LRU of at most that many bytes of vectors
 * (cacheBytes() reports what it holds).
 */
export class IndexedDBStore {
  static async open(dbName, { mode = 'parallel', cacheBytes = 0 } = {}) {
    const db = await openDB(dbName);
    const meta = await req(db.transaction('meta').objectStore('meta').get('meta'));
    if (!meta || !meta.complete) {
      db.close();
      throw new Error(`IndexedDB ${dbName}: no complete import (run importToIndexedDB first)`);
    }
    const s = new IndexedDBStore();
    Object.assign(s, { db, name: dbName, count: meta.count, dim: meta.dim, chunkRows: meta.chunkRows,
      format: meta.format || 'buffer', mode, cacheMax: cacheBytes, cache: new Map(), cached: 0, hits: 0, misses: 0 });
    if (s.format === 'blob') // Blob records: keep the handles (no vector bytes), read slices
      s.blobs = await req(db.transaction('chunks').objectStore('chunks').getAll());
    return s;
  }

  // Records, not ranges, are what it reads: the rows' records (the ranges only matter to
  // Blob records, split at record boundaries).
  async read(rows, ranges, into) {
    checkRows(this, rows);
    if (this.blobs) return this._readBlobs(rows, ranges, into);
    const cr = this.chunkRows, rb = this.dim * 4;
    const chunks = [];
    for (const r of rows) {
      const c = Math.floor(r / cr);
      if (chunks[chunks.length - 1] !== c) chunks.push(c);
    }
    const got = new Array(chunks.length), want = [];
    for (let i = 0; i < chunks.length; i++) {
      const v = this.cacheMax ? this.cache.get(chunks[i]) : undefined;
      if (v) { // LRU: move to the back
        this.cache.delete(chunks[i]);
        this.cache.set(chunks[i], v);
        got[i] = v;
        this.hits++;
      } else want.push(i);
    }
    this.misses += want.length;
    let bytes = 0;
    if (want.length) {
      const os = this.db.transaction('chunks', 'readonly').objectStore('chunks');
      if (this.mode === 'getAll') {
        const runs = [];
        for (const i of want) {
          const last = runs[runs.length - 1];
          if (last && chunks[i] === chunks[last[last.length - 1]] + 1) last.push(i); else runs.push([i]);
        }
        await Promise.all(runs.map(async (run) => {
          const vals = run.length === 1 ? [await req(os.get(chunks[run[0]]))]
            : await req(os.getAll(IDBKeyRange.bound(chunks[run[0]], chunks[run[run.length - 1]])));
          run.forEach((i, j) => { got[i] = vals[j]; });
        }));
      } else if (this.mode === 'serial') {
        for (const i of want) got[i] = await req(os.get(chunks[i]));
      } else {
        await Promise.all(want.map(async (i) => { got[i] = await req(os.get(chunks[i])); }));
      }
      for (const i of want) {
        const v = got[i];
        if (!v) throw new Error(`IndexedDB ${this.name}: chunk ${chunks[i]} is missing`);
        got[i] = v instanceof Float32Array ? v : new Float32Array(v);
        bytes += got[i].byteLength;
        if (this.cacheMax) this._put(chunks[i], got[i]);
      }
    }
    const parts = chunks.map((c, i) => [c * cr, got[i]]);
    return { vectors: gather(rows, this.dim, parts, into), stats: { ranges: chunks.length, bytes, requests: want.length } };
  }

  // Blob records: one slice read per range, all at once.
  async _readBlobs(rows, ranges, into) {
    const cr = this.chunkRows, rb = this.dim * 4, runs = [];
    for (const [a, b] of rangePairs(rows, ranges)) // split ranges at record boundaries
      for (let x = a; x <= b; x = (Math.floor(x / cr) + 1) * cr) runs.push([x, Math.min(b, (Math.floor(x / cr) + 1) * cr - 1)]);
    const parts = await Promise.all(runs.map(async ([a, b]) => {
      const blob = this.blobs[Math.floor(a / cr)], o = (a % cr) * rb;
      return [a, new Float32Array(await blob.slice(o, o + (b - a + 1) * rb).arrayBuffer())];
    }));
    return { vectors: gather(rows, this.dim, parts, into), stats: { ranges: runs.length, bytes: rows.length * rb, requests: runs.length } };
  }

  _put(c, v) {
    if (v.byteLength > this.cacheMax) return;
    this.cache.set(c, v);
    this.cached += v.byteLength;
    for (const [k, old] of this.cache) {
      if (this.cached <= this.cacheMax) break;
      this.cache.delete(k);
      this.cached -= old.byteLength;
    }
  }

  // Bytes of vectors held by the record cache.
  cacheBytes() { return this.cached; }

  close() { this.db?.close(); this.db = null; this.cache?.clear(); this.cached = 0; }

  static async delete(dbName) { await req(indexedDB.deleteDatabase(dbName)); }
}
