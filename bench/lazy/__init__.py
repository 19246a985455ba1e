"""The lazy-loading baseline, in the style of WebANNS: a float HNSW whose vectors live
in the external store (the same local file quantann reads), behind an LRU cache that
holds only a fraction of them.

The search runs in C (bench/lazy/lazy.c, built as bench/_lazy by bench/setup_lazy.py) and is resumable: when a step needs vectors that
are not cached, it parks and hands back the missing rows; this driver reads them with
one batched store read, puts them into the cache (evicting the least recently used) and
resumes. The graph is the one of a quant='none' quantann index (same layout), so with a
cache that holds every vector it returns exactly what the in-memory float search does.

Counted memory = graph + cache block (vectors, slot table, row->slot map) + visited tags.
"""
from __future__ import annotations

import time

import numpy as np

from quantann.constants import METRICS
from quantann.index import QueryStats


def _lazy():
    try:
        from .. import _lazy as mod
    except ImportError as e:
        raise ImportError("the lazy baseline's extension bench._lazy is not built: run "
                          "`python bench/setup_lazy.py`") from e
    return mod


class LazyIndex:
    def __init__(self, graph, store, metric: str, cache_vectors: int, fetch_latency_ms: float = 0.0):
        mod = _lazy()
        self.graph, self.store, self.metric = graph, store, metric
        self.dim = store.dim
        self.n = graph.n
        self.cap = int(min(self.n, max(cache_vectors, graph.M0 + 1)))
        self.fetch_latency_ms = fetch_latency_ms
        self.mem = np.zeros(mod.lru_bytes(self.n, self.cap, self.dim), np.uint8)
        self.missing = np.zeros(graph.M0 + 1, np.int32)
        self._s = mod.LazySearcher(graph.as_tuple(None), METRICS[metric], self.dim, self.cap,
                                   self.mem, self.missing)
        self.last_stats: list[QueryStats] = []
        self.last_rounds: list[int] = []

    # ---- sizing ------------------------------------------------------------------------

    @staticmethod
    def fixed_bytes(graph, dim: int) -> int:
        """Memory that does not depend on the cache size: graph, row->slot map, visited."""
        return graph.nbytes() + graph.n * 4 + graph.n * 2

    @classmethod
    def vectors_for_fraction(cls, graph, dim: int, memory_fraction: float) -> int:
        """Cache capacity (vectors) so that graph + cache = memory_fraction of the floats."""
        budget = memory_fraction * graph.n * dim * 4 - cls.fixed_bytes(graph, dim)
        return max(0, int(budget // (dim * 4 + 12)))

    @classmethod
    def open(cls, path: str, cache_fraction: float | None = None, memory_fraction: float | None = None,
             store: str = "pread", fetch_latency_ms: float = 0.0) -> "LazyIndex":
        """From a quant='none' .qann file: its graph, and its vectors through `store`.
        Give the cache size as a fraction of the vectors or of the float bytes in all."""
        from quantann import open as qopen
        idx = qopen(path, store=store)
        if idx.quant != "none":
            raise ValueError(f"{path}: the lazy baseline needs a quant='none' index (float graph)")
        g, st, metric = idx.graph, idx.store, idx.metric
        del idx  # drop the in-memory float codes: the baseline only keeps the graph
        if memory_fraction is not None:
            cap = cls.vectors_for_fraction(g, st.dim, memory_fraction)
        else:
            cap = int(round((1.0 if cache_fraction is None else cache_fraction) * g.n))
        return cls(g, st, metric, cap, fetch_latency_ms)

    def memory(self) -> dict:
        out = {"graph": self.graph.nbytes(), "cache": int(self.mem.nbytes), "other": self.n * 2}
        out["total"] = sum(out.values())
        return out

    def float_bytes(self) -> int:
        return self.n * self.dim * 4

    def cache_stats(self) -> dict:
        return self._s.stats()

    def clear_cache(self) -> None:
        self._s.clear()

    # ---- search ------------------------------------------------------------------------

    def search(self, queries, k: int = 10, ef: int = 64):
        """(rows int64 (nq, k), distances float32 (nq, k)): exact float distances."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.metric == "cosine":
            q = np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)
        nq = q.shape[0]
        out_r = np.full((nq, k), -1, np.int64)
        out_d = np.full((nq, k), np.inf, np.float32)
        rbuf = np.empty(k, np.int32)
        dbuf = np.empty(k, np.float32)
        s, store, miss = self._s, self.store, self.missing
        clock = time.perf_counter
        lat = self.fetch_latency_ms / 1e3
        self.last_stats = stats = []
        for i in range(nq):
            st = QueryStats()
            t0 = clock()
            read = 0.0
            r = s.begin(q[i], ef, k)
            while r > 0:
                rows = miss[:r].copy()
                t1 = clock()
                vecs, rs = store.read(rows)
                if lat:
                    end = clock() + lat
                    while clock() < end:
                        pass
                read += clock() - t1
                st.bytes_read += rs.bytes
                st.ranges += rs.ranges
                s.put(rows, vecs)
                r = s.resume()
            found, st.distances, st.store_reads, st.vectors_read = s.result(rbuf, dbuf)
            st.read_ms = read * 1e3
            st.graph_ms = (clock() - t0 - read) * 1e3
            st.candidates = found
            out_r[i, :found] = rbuf[:found]
            out_d[i, :found] = dbuf[:found]
            stats.append(st)
        return out_r, out_d
