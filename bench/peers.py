"""The methods under test, behind one small interface.

Each method: `load(ds)` (build once, cache under bench/cache/, load from the cache so that
the load's RSS growth is measured), `sweep(k)` (parameter sets to time), `set(params)`,
`query(q, k)` -> k ids of one query (one call per query, one thread), `memory()` ->
counted bytes, and optionally `split()` -> the last query's QueryStats.

Counted memory of a peer is the size of its serialised index (hnswlib, FAISS and usearch
write their in-RAM structures as they are), plus the float vectors FAISS IndexRefineFlat
keeps in RAM. Same M and ef_construction for all graph indexes.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .build import load_meta, quantann_files, save_meta
from .datasets import CACHE, Dataset

EF_SWEEP = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384)
EF_SWEEP_100 = (100, 128, 160, 200, 256, 320, 400, 512, 768)


LEAN = {"on": False}  # --lean: a shorter sweep for a loaded machine or a short time budget
EF_LEAN = (16, 32, 64, 128, 256)
EF_LEAN_100 = (128, 256, 512)


def _ef(k):
    if LEAN["on"]:
        return EF_LEAN if k <= 10 else EF_LEAN_100
    return EF_SWEEP if k <= 10 else EF_SWEEP_100


class Method:
    name = "?"
    family = "?"
    build_s = None
    build_threads = 2

    def sweep(self, k):
        return [{"ef": ef} for ef in _ef(k)]

    def split(self):
        return None

    def label(self, p):
        return ", ".join(f"{a}={b}" for a, b in p.items())

    def close(self):
        pass


def _cached_build(path: str, build, log):
    """Runs build(path) unless path exists; returns the build time (stored next to it)."""
    if not os.path.exists(path):
        log(f"[build] {os.path.basename(path)} ...")
        t0 = time.perf_counter()
        build(path)
        save_meta(path, {"build_s": time.perf_counter() - t0, "threads": 2})
    return load_meta(path).get("build_s")


def _key(ds, M, efc):
    from .build import key
    return key(ds, M, efc)


# ---- quantann ------------------------------------------------------------------------

class Quantann(Method):
    family = "quantann"

    def __init__(self, quant: str, M=16, efc=200, cold=False, store="pread", reranks=None,
                 fetch_latency_ms=0.0, efs=None):
        self.efs = efs
        self.quant, self.M, self.efc, self.cold, self.store = quant, M, efc, cold, store
        self.fetch_latency_ms = fetch_latency_ms
        self.name = f"quantann {quant}" + (" cold" if cold else "") + (f" M={M}" if M != 16 else "")
        if fetch_latency_ms:
            self.name += f" +{fetch_latency_ms:g}ms/fetch (simulated)"
        self.reranks = reranks or ((0, 1) if quant == "none" else ((1, 2, 4) if LEAN["on"] else (1, 2, 4, 8)))

    def load(self, ds: Dataset, log=print):
        import quantann
        paths = quantann_files(ds, self.M, self.efc, log=log)
        self.path = paths[self.quant]
        meta = load_meta(self.path)
        self.build_s = meta.get("build_s")
        self.build_note = meta.get("note")
        self.idx = quantann.open(self.path, store=self.store)
        self.warm_queries = ds.queries
        self._warmed = False
        if self.fetch_latency_ms:
            _add_latency(self.idx.store, self.fetch_latency_ms)

    def sweep(self, k):
        out = []
        efs = self.efs.get(k, _ef(k)) if isinstance(self.efs, dict) else (self.efs or _ef(k))
        for r in self.reranks:
            for ef in efs:
                if ef >= k * max(r, 1):
                    out.append({"ef": ef, "rerank": r})
        return out

    def set(self, p):
        self.p = p
        if not self.cold and not getattr(self, "_warmed", False):
            # warm means the vectors the queries read are in the page cache: one untimed
            # pass (the cold rows share this file and drop its pages), as the lazy
            # baseline gets for its LRU
            self.idx.search(self.warm_queries, k=10, ef=p["ef"], rerank=max(1, p["rerank"]))
            self._warmed = True

    def before_query(self):
        if self.cold:
            self.idx.store.drop_cache()

    def query(self, q, k):
        ids, _ = self.idx.search(q, k=k, ef=self.p["ef"], rerank=self.p["rerank"])
        return ids[0]

    def split(self):
        return self.idx.last_stats[0]

    def memory(self):
        return self.idx.memory()["total"]

    def memory_breakdown(self):
        return self.idx.memory()


def _add_latency(store, ms):
    """Wraps a store's read with a busy wait of `ms` per batched read (a clearly labelled,
    simulated remote-store latency; off by default)."""
    inner = store._read

    def slow(rows):
        out = inner(rows)
        end = time.perf_counter() + ms / 1e3
        while time.perf_counter() < end:
            pass
        return out
    store._read = slow


# ---- the lazy-loading baseline ---------------------------------------------------------

class Lazy(Method):
    family = "lazy"

    def __init__(self, cache_fraction=None, memory_fraction=None, M=16, efc=200, cold=False,
                 fetch_latency_ms=0.0, efs=None):
        self.cache_fraction, self.memory_fraction = cache_fraction, memory_fraction
        self.M, self.efc, self.cold, self.fetch_latency_ms = M, efc, cold, fetch_latency_ms
        what = (f"cache {cache_fraction:.0%} of vectors" if cache_fraction is not None
                else f"memory {memory_fraction:.0%}")
        self.name = f"lazy float HNSW, {what}" + (" cold" if cold else "")
        if fetch_latency_ms:
            self.name += f" +{fetch_latency_ms:g}ms/fetch (simulated)"
        self.efs = efs

    def load(self, ds, log=print):
        from .lazy import LazyIndex
        paths = quantann_files(ds, self.M, self.efc, log=log)
        self.build_s = load_meta(paths["none"]).get("graph_build_s")
        self.idx = LazyIndex.open(paths["none"], cache_fraction=self.cache_fraction,
                                  memory_fraction=self.memory_fraction,
                                  fetch_latency_ms=self.fetch_latency_ms)
        self.warm_queries = ds.queries

    def sweep(self, k):
        efs = self.efs or ((32, 64, 128) if k <= 10 else ((256,) if LEAN["on"] else (128, 256)))
        if isinstance(efs, dict):
            efs = efs.get(k, ())
        return [{"ef": ef} for ef in efs if ef >= k]

    def set(self, p):
        self.p = p
        # steady state: the LRU cache is warmed by one untimed pass of the queries
        self.idx.clear_cache()
        self.idx.search(self.warm_queries, k=10, ef=p["ef"])

    def before_query(self):
        if self.cold:
            self.idx.store.drop_cache()

    def query(self, q, k):
        rows, _ = self.idx.search(q, k=k, ef=self.p["ef"])
        return rows[0]

    def split(self):
        return self.idx.last_stats[0]

    def memory(self):
        return self.idx.memory()["total"]

    def memory_breakdown(self):
        return self.idx.memory()


# ---- hnswlib -----------------------------------------------------------------------------

class Hnswlib(Method):
    family = "hnswlib"
    name = "hnswlib float32 (RAM)"

    def __init__(self, M=16, efc=200):
        self.M, self.efc = M, efc

    def load(self, ds, log=print):
        import hnswlib
        path = os.path.join(CACHE, f"hnswlib-{_key(ds, self.M, self.efc)}.bin")

        def build(p):
            ix = hnswlib.Index(space="ip", dim=ds.dim)
            ix.init_index(max_elements=ds.n, ef_construction=self.efc, M=self.M, random_seed=100)
            ix.set_num_threads(self.build_threads)
            ix.add_items(ds.base, np.arange(ds.n))
            ix.save_index(p)
        self.build_s = _cached_build(path, build, log)
        self.ix = hnswlib.Index(space="ip", dim=ds.dim)
        self.ix.load_index(path, max_elements=ds.n)
        self.ix.set_num_threads(1)
        self.bytes = os.path.getsize(path)

    def set(self, p):
        self.p = p
        self.ix.set_ef(p["ef"])

    def query(self, q, k):
        labels, _ = self.ix.knn_query(q, k=k, num_threads=1)
        return labels[0]

    def memory(self):
        return self.bytes


# ---- FAISS -------------------------------------------------------------------------------

class Faiss(Method):
    family = "faiss"

    def __init__(self, kind: str, refine: bool = False, M=16, efc=200):
        self.kind, self.refine, self.M, self.efc = kind, refine, M, efc
        names = {"flat": "FAISS HNSWFlat", "sq8": "FAISS HNSWSQ8", "sq4": "FAISS HNSWSQ4"}
        self.name = names[kind] + (" + RefineFlat" if refine else "")

    def load(self, ds, log=print):
        import faiss
        path = os.path.join(CACHE, f"faiss-{self.kind}-{_key(ds, self.M, self.efc)}.index")

        def build(p):
            faiss.omp_set_num_threads(self.build_threads)
            if self.kind == "flat":
                ix = faiss.IndexHNSWFlat(ds.dim, self.M, faiss.METRIC_INNER_PRODUCT)
            else:
                qt = faiss.ScalarQuantizer.QT_8bit if self.kind == "sq8" else faiss.ScalarQuantizer.QT_4bit
                ix = faiss.IndexHNSWSQ(ds.dim, qt, self.M, faiss.METRIC_INNER_PRODUCT)
                ix.train(ds.base)
            ix.hnsw.efConstruction = self.efc
            ix.add(ds.base)
            faiss.write_index(ix, p)
        self.build_s = _cached_build(path, build, log)
        faiss.omp_set_num_threads(1)
        self.base = faiss.read_index(path)
        self.bytes = os.path.getsize(path)
        self.hnsw_index = self.base
        if self.refine:
            self.xb = np.ascontiguousarray(ds.base, dtype=np.float32)
            self.ix = faiss.IndexRefineFlat(self.base, faiss.swig_ptr(self.xb))
            self.bytes += self.xb.nbytes
        else:
            self.ix = self.base

    def sweep(self, k):
        if not self.refine:
            return [{"ef": ef} for ef in _ef(k)]
        rr = (2,) if LEAN["on"] else (2, 4)
        return [{"ef": ef, "rerank": r} for r in rr for ef in _ef(k) if ef >= k * r]

    def set(self, p):
        self.p = p
        self.hnsw_index.hnsw.efSearch = p["ef"]
        if self.refine:
            self.ix.k_factor = float(p["rerank"])

    def query(self, q, k):
        _, labels = self.ix.search(q[None, :], k)
        return labels[0]

    def memory(self):
        return self.bytes


# ---- usearch -----------------------------------------------------------------------------

class Usearch(Method):
    family = "usearch"
    name = "usearch i8"

    def __init__(self, M=16, efc=200):
        self.M, self.efc = M, efc

    def load(self, ds, log=print):
        from usearch.index import Index
        path = os.path.join(CACHE, f"usearch-i8-{_key(ds, self.M, self.efc)}.usearch")

        def build(p):
            ix = Index(ndim=ds.dim, metric="cos", dtype="i8", connectivity=self.M, expansion_add=self.efc)
            ix.add(np.arange(ds.n), ds.base, threads=self.build_threads)
            ix.save(p)
        self.build_s = _cached_build(path, build, log)
        self.ix = Index(ndim=ds.dim, metric="cos", dtype="i8", connectivity=self.M, expansion_add=self.efc)
        self.ix.load(path)
        self.bytes = os.path.getsize(path)

    def set(self, p):
        self.p = p
        self.ix.expansion_search = p["ef"]

    def query(self, q, k):
        return self.ix.search(q, k, threads=1).keys

    def memory(self):
        return self.bytes


# ---- exact brute force ------------------------------------------------------------------

class BruteForce(Method):
    family = "exact"
    name = "exact brute force (numpy/BLAS, RAM)"

    def load(self, ds, log=print):
        self.x = np.ascontiguousarray(ds.base, dtype=np.float32)
        self.build_s = 0.0

    def sweep(self, k):
        return [{}]

    def set(self, p):
        self.p = p

    def query(self, q, k):
        s = self.x @ q
        top = np.argpartition(-s, k - 1)[:k]
        return top[np.argsort(-s[top], kind="stable")]

    def memory(self):
        return self.x.nbytes
