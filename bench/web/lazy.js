// The lazy-loading baseline in the browser (in the style of WebANNS), for benchmarks: a
// float HNSW (the graph of a quant='none' .qann) whose vectors stay in the store behind
// an LRU cache in wasm memory. The C search (bench/lazy/lazy.c, in its own module
// dist/lazy.wasm built by bench/lazy/build-wasm.sh) parks whenever a step needs vectors
// that are not cached; the host reads them in one batch, puts them and resumes.
// It borrows the product module's file reader and wasm loader; the product never imports it.
import { readHeader } from '../../web/src/index.js';
import { loadKernel } from '../../web/src/kernel.js';
import { openSource } from '../../web/src/source.js';

const LAZY_WASM = new URL('./dist/lazy.wasm', import.meta.url);

const GRAPH = ['graph.level', 'graph.links0', 'graph.up_nodes', 'graph.up_off', 'graph.upper'];

// Cache capacity (vectors) so that graph + cache block + visited tags = fraction of the
// float bytes (as bench/lazy/__init__.py: LazyIndex.vectors_for_fraction).
export function vectorsForFraction(graphBytes, n, d, fraction) {
  return Math.max(0, Math.floor((fraction * n * d * 4 - (graphBytes + n * 4 + n * 2)) / (d * 4 + 12)));
}

export async function openLazyIndex(source, { store, memoryFraction = 0.2, cacheVectors, wasm = LAZY_WASM } = {}) {
  const src = await openSource(source);
  const K = await loadKernel(wasm);
  // the header, checked by the product kernel's one .qann reader
  const { info } = await readHeader(src, await loadKernel());
  if (info.quant !== 'none') throw new Error(`${src.name}: the lazy baseline needs a quant='none' index`);
  const { n, d, M, M0 } = info;
  const ts = GRAPH.map((t) => info.tensors.get(t)).filter(Boolean);
  const lo = Math.min(...ts.map((t) => t.offset)), hi = Math.max(...ts.map((t) => t.offset + t.nbytes));
  const part = await src.read(lo, hi - lo); // only the graph: the float "codes" stay out
  const ptrs = {};
  for (const t of ts) ptrs[t.name] = K.copyIn(Uint8Array, part.subarray(t.offset - lo, t.offset - lo + t.nbytes));
  if (info.linkBits < 32) { // packed level 0 (format 3): the baseline walks int32 lists
    const packed = ptrs['graph.links0'];
    ptrs['graph.links0'] = K.alloc(Int32Array, n * M0);
    K.x.qa_wasm_lazy_unpack_links(packed, n, M0, info.linkBits, ptrs['graph.links0']);
    K.free(packed);
  }
  const graphBytes = ts.reduce((s, t) => s + t.nbytes, 0);
  const cap = Math.min(n, Math.max(M0 + 1, cacheVectors ?? vectorsForFraction(graphBytes, n, d, memoryFraction)));
  const len = (t, size) => (info.tensors.get(t)?.nbytes ?? 0) / size;
  const metric = info.metric;
  const h = K.x.qa_wasm_lazy_open(metric === 'l2' ? 0 : 1, d, n, M, M0, info.entry, info.maxLevel,
    ptrs['graph.level'], ptrs['graph.links0'], ptrs['graph.up_nodes'] ?? 0, ptrs['graph.up_off'] ?? 0,
    len('graph.up_nodes', 4), ptrs['graph.upper'] ?? 0, len('graph.upper', 4), cap);
  if (!h) throw new Error(`${src.name}: ${K.error()}`);
  return new LazyIndex(K, h, { n, d, metric, cap, graphBytes, store, ptrs });
}

class LazyIndex {
  constructor(K, h, info) {
    Object.assign(this, info);
    this.K = K;
    this.h = h;
    this.dim = info.d;
  }

  memory() {
    const cache = this.K.x.qa_wasm_lazy_cache_bytes(this.h);
    return { graph: this.graphBytes, cache, other: 2 * this.n, total: this.graphBytes + cache + 2 * this.n };
  }

  // queries: already prepared (unit length under cosine) Float32Array of dim.
  async search(q, { k = 10, ef = 64 } = {}) {
    const K = this.K, x = K.x, h = this.h, d = this.d;
    const now = () => performance.now();
    const st = { kernelMs: 0, storeMs: 0, rerankMs: 0, rounds: 0, vectorsRead: 0, bytesRead: 0 };
    K.view(Float32Array, x.qa_wasm_lazy_query(h), d).set(q);
    let t = now();
    let r = x.qa_wasm_lazy_begin(h, Math.max(ef, k), k);
    while (r > 0) {
      const rows = K.view(Int32Array, x.qa_wasm_lazy_missing(h), r).slice();
      const t1 = now();
      st.kernelMs += t1 - t;
      const gp = K.alloc(Int32Array, 2 * r); // the store reads the ranges the kernel coalesced
      const ranges = K.view(Int32Array, gp, 2 * x.qa_wasm_lazy_ranges(x.qa_wasm_lazy_missing(h), r, this.store.maxGap ?? 0, gp)).slice();
      K.free(gp);
      const { vectors, stats } = await this.store.read(rows, ranges);
      const t2 = now();
      st.storeMs += t2 - t1;
      st.vectorsRead += r;
      st.bytesRead += stats.bytes;
      const rp = K.copyIn(Int32Array, rows), vp = K.copyIn(Float32Array, vectors);
      x.qa_wasm_lazy_put(h, rp, vp, r);
      K.free(rp);
      K.free(vp);
      t = now();
      r = x.qa_wasm_lazy_resume(h);
    }
    if (r < 0) throw new Error(r === -2 ? 'cache smaller than one search step' : 'out of memory');
    const orp = K.alloc(Int32Array, k), odp = K.alloc(Float32Array, k);
    const m = x.qa_wasm_lazy_result(h, orp, odp);
    const rows = K.view(Int32Array, orp, m).slice(), distances = K.view(Float32Array, odp, m).slice();
    K.free(orp);
    K.free(odp);
    st.kernelMs += now() - t;
    st.rounds = x.qa_wasm_lazy_rounds(h);
    return { rows, distances, stats: st };
  }

  close() {
    if (this.h) this.K.x.qa_wasm_lazy_close(this.h);
    for (const p of Object.values(this.ptrs)) this.K.free(p);
    this.h = 0;
  }
}
