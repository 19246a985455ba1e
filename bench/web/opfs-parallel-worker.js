// What splitting the vectors over files buys (bench/web/opfs-parallel.html): `calls` reads of
// one 1536-byte row, as a query's reads, (a) in turn on one sync access handle in this
// Worker; (b) spread over N files, this Worker reading file 0 and a reader Worker per other
// file (opfs-parallel-reader.js: SharedArrayBuffer + Atomics) reading its share at the
// same time; (c) the readers woken with nothing to read (the cost of the hand-over alone).
// Per "query": median and p90 over batches of `batch` queries, the forms interleaved.
import { opfsFiles, syncHandle } from '../../web/src/opfs-sync.js';
import { PartReader } from './opfs-parallel-reader.js';

const partName = (name, p) => `${name}.part${p}`;

const now = () => performance.now(), ROWS = 8192, RB = 1536, DIM = RB / 4;
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };

async function ensure(name) {
  const h = await syncHandle(opfsFiles(name).file, true);
  if (h.getSize() !== ROWS * RB) {
    const b = new Uint8Array(ROWS * RB);
    for (let i = 0; i < b.length; i++) b[i] = i * 31;
    h.write(b, { at: 0 });
    h.flush();
  }
  h.close();
}

self.onmessage = async (e) => {
  const { batches = 30, batch = 100, calls = 8, ports = [], only } = e.data;
  const out = { calls, batch, batches, readers: ports.length ? 'page' : 'nested', forms: {} };
  try {
    const NMAX = 4;
    for (let p = 0; p < NMAX; p++) await ensure(partName('qa-par', p));
    const local = await syncHandle(opfsFiles(partName('qa-par', 0)).file, false, 'read-only');
    const readers = [];
    for (let p = 1; p < NMAX; p++) readers.push(await PartReader.start(partName('qa-par', p), ROWS * RB, DIM, { port: ports[p - 1] }));
    const rows = new Int32Array(calls), pc = new Int32Array(3 * calls), dest = new Uint8Array(calls * RB), at = { at: 0 };
    let k = 1;
    // a query: `calls` rows far apart, row i of the query in file i % n
    const query = (n, read) => {
      for (let i = 0; i < calls; i++) { rows[i] = ((k++ * 7919) % (ROWS - 1)); pc[3 * i] = i; pc[3 * i + 1] = i + 1; pc[3 * i + 2] = i % n; }
      for (let p = 1; p < n; p++) readers[p - 1].post(rows, pc, read ? calls : 0, p, 0, RB);
      for (let i = 0; i < calls; i++) if (i % n === 0) { at.at = rows[i] * RB; local.read(dest.subarray(i * RB, (i + 1) * RB), at); }
      for (let p = 1; p < n; p++) readers[p - 1].collect(dest);
    };
    const forms = { one_file: () => query(1, true), files_2: () => query(2, true), files_4: () => query(4, true),
      wake_3_readers_only: () => { for (let p = 1; p < 4; p++) { rows[0] = 0; pc[0] = 0; pc[1] = 1; pc[2] = p; readers[p - 1].post(rows, pc, 1, p, 0, RB); } for (const r of readers) r.collect(dest); } };
    if (only) for (const f of Object.keys(forms)) if (!only.split(',').includes(f)) delete forms[f];
    const t = Object.fromEntries(Object.keys(forms).map((f) => [f, []]));
    for (const f of Object.keys(forms)) for (let i = 0; i < 20; i++) forms[f](); // warm-up
    for (let b = 0; b < batches; b++) for (const f of Object.keys(forms)) {
      const t0 = now();
      for (let i = 0; i < batch; i++) forms[f]();
      t[f].push((now() - t0) / batch * 1000);
    }
    for (const f of Object.keys(forms)) out.forms[f] = { us_per_query_median: pct(t[f], 50), us_per_query_p90: pct(t[f], 90), best: Math.min(...t[f]) };
    local.close();
    for (const r of readers) r.close();
  } catch (err) {
    out.error = `${err}\n${err?.stack}`;
  }
  self.postMessage(out);
};
