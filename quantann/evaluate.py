"""Exact ground truth and the measurements shared by `eval`, `demo` and the benchmarks."""
from __future__ import annotations

import time

import numpy as np

from .index import Index


def exact_knn(vectors_chunks, queries: np.ndarray, k: int, metric: str, dead: np.ndarray | None = None):
    """Exact top-k rows by brute force over chunks of float vectors (BLAS), best first."""
    best_d = np.full((len(queries), 0), np.inf, np.float32)
    best_r = np.empty((len(queries), 0), np.int64)
    qn = (queries ** 2).sum(1, keepdims=True)
    row = 0
    for chunk in vectors_chunks:
        chunk = np.asarray(chunk, np.float32)
        ip = queries @ chunk.T
        d = (qn + (chunk ** 2).sum(1)[None, :] - 2 * ip) if metric == "l2" else -ip
        if dead is not None:
            d[:, dead[row:row + len(chunk)]] = np.inf
        rows = np.arange(row, row + len(chunk))[None, :].repeat(len(queries), 0)
        d = np.concatenate([best_d, d], 1)
        r = np.concatenate([best_r, rows], 1)
        kk = min(k, d.shape[1])
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        best_d = np.take_along_axis(d, part, 1)
        best_r = np.take_along_axis(r, part, 1)
        row += len(chunk)
    order = np.argsort(best_d, axis=1, kind="stable")
    return np.take_along_axis(best_r, order, 1)


def ground_truth(index: Index, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids over the index's own full vectors (deleted rows excluded)."""
    q = index.prepare_queries(queries)
    dead = index.deleted_mask()
    rows = exact_knn(index.vectors(), q, k, index.metric, dead)
    return index.ids[rows]


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per-query recall@k: |found[:k] ∩ truth[:k]| / k."""
    return np.array([len(np.intersect1d(f[:k], t[:k])) / k for f, t in zip(found, truth)])


def measure(index: Index, queries: np.ndarray, truth: np.ndarray, k: int = 10, ef: int = 64,
            rerank=None, warmup: int = 20) -> dict:
    """One query per call, one thread: recall, QPS, latency percentiles, time split,
    reads per query and memory, as a flat dict (rerank None: the index's default)."""
    q = np.asarray(queries, np.float32)
    rerank = index.default_rerank if rerank is None else rerank
    for i in range(min(warmup, len(q))):
        index.search(q[i], k=k, ef=ef, rerank=rerank)
    lat = np.empty(len(q))
    found = np.empty((len(q), k), np.uint64)
    stats = []
    clock = time.perf_counter
    t_all = clock()
    for i in range(len(q)):
        t0 = clock()
        ids, _ = index.search(q[i], k=k, ef=ef, rerank=rerank)
        lat[i] = clock() - t0
        found[i] = ids[0]
        stats.append(index.last_stats[0])
    total = clock() - t_all
    rec = recall(found, truth, k)
    mem = index.memory()
    fb = index.float_bytes()

    def mean(attr):
        return float(np.mean([getattr(s, attr) for s in stats]))
    return {
        "quant": index.quant, "metric": index.metric, "n": len(index), "dim": index.dim,
        "k": k, "ef": ef, "rerank": rerank, "queries": len(q),
        "recall": float(rec.mean()), "recall_min": float(rec.min()), "recall_std": float(rec.std()),
        "qps": len(q) / total,
        "p50_ms": float(np.percentile(lat, 50) * 1e3), "p95_ms": float(np.percentile(lat, 95) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "graph_ms": mean("graph_ms"), "read_ms": mean("read_ms"), "rerank_ms": mean("rerank_ms"),
        "distances_per_query": mean("distances"),
        "vectors_read_per_query": mean("vectors_read"), "bytes_read_per_query": mean("bytes_read"),
        "ranges_per_query": mean("ranges"), "store_reads_per_query": mean("store_reads"),
        "memory_bytes": mem["total"], "memory_breakdown": mem, "float_bytes": fb,
        "memory_fraction": mem["total"] / fb,
        "latencies_ms": (lat * 1e3).tolist(),
    }
