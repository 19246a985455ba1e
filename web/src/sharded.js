// A sharded index in the browser (FORMAT.md, "Sharded index"): the JSON manifest, then
// each shard opened by openIndex (its in-memory part fetched once, its vectors read over
// HTTP Range, or from a local file under Node), all shards searched at once (their store
// reads overlap), and their top k merged by distance. Global id = shard id + id_offset.
import { CONSTANTS } from './constants.js';
import { FormatError, MemoryBudgetError, openIndex } from './index.js';
import { parseSize } from './sizes.js';

const NO_ID = 0xffffffffffffffffn;

// A manifest is named by a .json URL or path.
export function isManifest(source) {
  return (typeof source === 'string' || (typeof URL !== 'undefined' && source instanceof URL))
    && /\.json([?#].*)?$/i.test(String(source));
}

const isHttp = (s) => /^https?:/i.test(s) || (typeof location !== 'undefined' && !/^file:/i.test(s));

async function readManifestText(loc) {
  if (isHttp(loc)) {
    const r = await fetch(loc);
    if (!r.ok) throw new Error(`${loc}: HTTP ${r.status}`);
    return r.text();
  }
  const fs = await import('node:fs/promises');
  return fs.readFile(loc.startsWith('file:') ? new URL(loc) : loc, 'utf8');
}

function shardLocation(loc, file) {
  if (isHttp(loc)) return new URL(file, new URL(loc, typeof location !== 'undefined' ? location.href : undefined)).href;
  return loc.slice(0, loc.lastIndexOf('/') + 1) + file;
}

// The checks of quantann/shard/manifest.py that need no shard file.
function checkManifest(m, name) {
  const bad = (msg) => new FormatError(`${name}: ${msg}`);
  const { format, version } = CONSTANTS.manifest;
  if (!m || typeof m !== 'object' || m.format !== format) throw bad(`not a sharded index manifest (expected "format": "${format}")`);
  if (!Number.isSafeInteger(m.version) || m.version < 1) throw bad('the manifest has no valid version');
  if (m.version > version) throw bad(`manifest version ${m.version} is newer than this quantann reads (${version}): upgrade quantann`);
  for (const key of ['dim', 'count', 'next_id'])
    if (!Number.isSafeInteger(m[key]) || m[key] < 0) throw bad(`'${key}' is missing or not an int`);
  if (!(m.metric in CONSTANTS.metrics)) throw bad(`unknown metric ${JSON.stringify(m.metric)}`);
  if (!(m.quant in CONSTANTS.codecs)) throw bad(`unknown quantizer ${JSON.stringify(m.quant)}`);
  if (!Array.isArray(m.shards) || !m.shards.length) throw bad("'shards' must be a non-empty list");
  let total = 0;
  m.shards.forEach((s, i) => {
    for (const key of ['count', 'id_offset', 'size', 'vectors_crc32'])
      if (!Number.isSafeInteger(s?.[key]) || s[key] < 0) throw bad(`shard ${i}: '${key}' is missing or not an int`);
    const f = typeof s.file === 'string' ? s.file.replace(/\\/g, '/') : '';
    if (!f || f.startsWith('/') || /^[a-z]+:/i.test(f) || f.split('/').includes('..'))
      throw bad(`shard ${i}: file ${JSON.stringify(s.file)} must be a path inside the manifest's folder`);
    if (s.ids !== 'rows' && s.ids !== 'stored') throw bad(`shard ${i}: ids must be one of rows, stored, got ${JSON.stringify(s.ids)}`);
    total += s.count;
  });
  if (total !== m.count) throw bad(`the shards hold ${total} rows, the manifest says ${m.count}`);
}

export async function openShardedIndex(source, { store, memoryBudget, wasm } = {}) {
  const loc = String(source);
  let m;
  try {
    m = JSON.parse(await readManifestText(loc));
  } catch (e) {
    if (e instanceof SyntaxError) throw new FormatError(`${loc}: not a JSON manifest of a sharded index: ${e.message}`);
    throw e;
  }
  checkManifest(m, loc);
  const budget = parseSize(memoryBudget);
  const shards = [];
  let used = 0;
  try {
    for (const [i, e] of m.shards.entries()) {
      if (budget != null && budget - used <= 0)
        throw new MemoryBudgetError(`${loc}: the first ${i} shards already hold ${used} bytes, over the memory budget of ${budget}`, used, budget);
      const idx = await openIndex(shardLocation(loc, e.file), { store, wasm, memoryBudget: budget == null ? undefined : budget - used });
      shards.push(idx);
      const size = idx.source?.size;
      if (idx.count !== e.count || idx.dim !== m.dim || idx.metric !== m.metric || idx.quant !== m.quant
          || (Number.isFinite(size) && size !== e.size))
        throw new FormatError(`${loc}: shard ${i} (${e.file}): the file is not the one the manifest was written with`);
      used += idx.memory().total;
    }
    checkIdRanges(m, shards, loc);
  } catch (err) {
    new ShardedIndex(m, shards).close();
    throw err;
  }
  return new ShardedIndex(m, shards);
}

// The shards numbered by their rows hold disjoint id ranges: each one's ids run from
// id_offset up to its next id (its count, or past it for a numbered file after saved
// deletes: the ids of deleted rows stay taken). As native quantann/shard/index.py.
function checkIdRanges(m, shards, loc) {
  const spans = m.shards.map((e, i) => [e.id_offset, e.id_offset + shards[i].nextId, i])
    .filter((_, i) => m.shards[i].ids === 'rows').sort((a, b) => a[0] - b[0]);
  for (let j = 1; j < spans.length; j++) {
    const [, end, a] = spans[j - 1], [start, , b] = spans[j];
    if (start < end) throw new FormatError(`${loc}: the id ranges of shards ${a} and ${b} overlap (at id ${start}; shard ${a}'s ids run to ${end - 1})`);
  }
}

class ShardedIndex {
  constructor(manifest, shards) {
    this.manifest = manifest;
    this.shards = shards;
    Object.assign(this, { dim: manifest.dim, metric: manifest.metric, quant: manifest.quant });
    this.count = shards.reduce((n, s) => n + s.count, 0);
    this.kernel = shards[0]?.kernel; // the one wasm kernel every shard runs on (texts.js computes distances with it)
    // global row = the shard's first row + its row (shard after shard, as native ShardedIndex.ids)
    this.starts = shards.reduce((a, s) => [...a, a.at(-1) + s.count], [0]);
  }

  /** The global row of a global id, or -1. */
  rowOf(id) {
    id = BigInt(id);
    for (const [j, s] of this.shards.entries()) {
      const e = this.manifest.shards[j];
      if (e.ids === 'rows' && !s.ids) { // ids are the rows (a numbered file's are not)
        const r = id - BigInt(e.id_offset);
        if (r >= 0n && r < BigInt(s.count)) return this.starts[j] + Number(r);
      } else {
        s._rowOfId ??= new Map(Array.from(s.ids, (x, r) => [x, r]));
        const r = s._rowOfId.get(id - BigInt(e.id_offset));
        if (r !== undefined) return this.starts[j] + r;
      }
    }
    return -1;
  }

  /** Full vectors of ascending global rows: {vectors}, one read per shard that holds some
   * (for the exact distance of a text only the lexical search found: texts.js hybridSearch). */
  async readRows(rows) {
    const out = new Float32Array(rows.length * this.dim);
    await Promise.all(this.shards.map(async (s, j) => {
      const at = [];
      rows.forEach((r, i) => { if (r >= this.starts[j] && r < this.starts[j + 1]) at.push(i); });
      if (!at.length) return;
      const local = Int32Array.from(at, (i) => rows[i] - this.starts[j]);
      const { vectors } = await s.store.read(local, Int32Array.from(Array.from(local, (r) => [r, r]).flat()));
      at.forEach((i, t) => out.set(vectors.subarray(t * this.dim, (t + 1) * this.dim), i * this.dim));
    }));
    return { vectors: out };
  }

  // Bytes held in memory by part, summed over the shards.
  memory() {
    const out = {};
    for (const s of this.shards) for (const [part, v] of Object.entries(s.memory())) out[part] = (out[part] ?? 0) + v;
    return out;
  }

  /**
   * As Index.search, over every shard: {ids: BigUint64Array(nq*k), rows (global), distances, stats}; each
   * shard answers its own top k (one batched store read per shard and query), merged by
   * distance, ties to the lower shard (as native quantann).
   */
  /** As Index.defaultRerank, of the shards (one quantizer: the same for each). */
  get defaultRerank() {
    return this.shards[0].defaultRerank;
  }

  async search(queries, { k = 10, ef = 64, rerank = this.defaultRerank } = {}) {
    const q = queries instanceof Float32Array ? queries : Float32Array.from(queries);
    if (q.length === 0 || q.length % this.dim) throw new RangeError(`queries have ${q.length} values, not a multiple of the index's dimension ${this.dim}`);
    if (!Number.isSafeInteger(k) || k < 1 || k > Math.min(this.count, CONSTANTS.limits.max_k))
      throw new RangeError(`k=${k} is out of range: it must be 1..${Math.min(this.count, CONSTANTS.limits.max_k)} (the vectors of the index)`);
    const nq = q.length / this.dim;
    const parts = await Promise.all(this.shards.map((s) => s.search(q, { k: Math.min(k, s.count), ef, rerank })));
    const ids = new BigUint64Array(nq * k).fill(NO_ID), distances = new Float32Array(nq * k).fill(Infinity);
    const rows = new Int32Array(nq * k).fill(-1); // global rows (shard after shard)
    const stats = [];
    for (let i = 0; i < nq; i++) {
      const cand = [];
      parts.forEach((r, j) => {
        const kj = Math.min(k, this.shards[j].count), off = BigInt(this.manifest.shards[j].id_offset);
        for (let t = i * kj; t < (i + 1) * kj; t++)
          if (r.ids[t] !== NO_ID) cand.push([r.distances[t], r.ids[t] + off, this.starts[j] + r.rows[t]]);
      });
      cand.sort((a, b) => a[0] - b[0]); // stable: shard order among equals
      cand.slice(0, k).forEach(([d, id, row], t) => { ids[i * k + t] = id; distances[i * k + t] = d; rows[i * k + t] = row; });
      const st = {};
      for (const r of parts) {
        const s = nq === 1 ? r.stats : r.stats[i];
        for (const [key, v] of Object.entries(s)) st[key] = (st[key] ?? 0) + v;
      }
      stats.push(st);
    }
    this.lastStats = stats;
    return { ids, rows, distances, stats: nq === 1 ? stats[0] : stats };
  }

  close() {
    for (const s of this.shards) {
      s.close();
      s.source?.close?.(); // the shard files this object opened (Index.close leaves its source open)
    }
    this.shards = [];
  }
}
