"""The index: quantizer + graph over codes in memory, full vectors in a store.

    query ──► graph search over codes (C) ──► R = k·rerank candidate rows
          ──► one batched store read of their float vectors ──► exact top-k (C)
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import _kernel
from .budget import format_breakdown, human
from .errors import MemoryBudgetError
from .fileformat import IndexFile, read_index, write_index
from .graph import Graph, default_threads
from .progress import Progress
from .quantize import KINDS, Quantizer
from .store import MemoryStore, VectorStore

from .constants import ARCH, FORMAT_VERSION, METRICS  # noqa: E402  (re-exported)
NO_ID = np.iinfo(np.uint64).max  # id of an empty result slot


@dataclass
class QueryStats:
    """What one query cost."""
    candidates: int = 0  # rows the graph search returned for rerank
    vectors_read: int = 0  # full vectors fetched from the store
    bytes_read: int = 0
    ranges: int = 0  # contiguous runs fetched
    store_reads: int = 0  # batched store calls (0 or 1)
    distances: int = 0  # code distances computed in the graph search
    graph_ms: float = 0.0
    read_ms: float = 0.0
    rerank_ms: float = 0.0


def as_matrix(x, d: int | None = None, what: str = "vectors") -> np.ndarray:
    """float32 C-contiguous (n, d) from float32/float16/float64/int8/uint8 input, checked."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be numeric (float32, float16 or uint8), got {a.dtype}")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, d), got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"no {what}: the array has 0 rows")
    if a.shape[1] == 0:
        raise ValueError(f"{what} have 0 dimensions")
    if d is not None and a.shape[1] != d:
        raise ValueError(f"{what} have dimension {a.shape[1]}, the index has {d}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        raise ValueError(f"{what} contain NaN or infinity (row {bad})")
    return a


def normalize(x: np.ndarray, what: str = "vectors") -> np.ndarray:
    """Unit-length copy of the rows, by the kernel (the wasm build normalises the same way)."""
    out = np.array(x, dtype=np.float32, order="C", copy=True)
    bad = _kernel.normalize_rows(out, out.shape[1])
    if bad >= 0:
        raise ValueError(f"{what}: row {bad} is all zeros and has no direction under the cosine metric")
    return out


class Index:
    """A quantized HNSW index. Make one with `Index.build` or `quantann.open`."""

    def __init__(self, quantizer: Quantizer, metric: str, graph: Graph, codes: np.ndarray,
                 norms: np.ndarray | None, ids: np.ndarray | None, store: VectorStore,
                 deleted: np.ndarray | None = None, path: str | None = None,
                 memory_budget: int | None = None, file: IndexFile | None = None):
        self.quantizer = quantizer
        self.metric = metric
        self.graph = graph
        self.codes = codes
        self.norms = norms
        self._ids = ids  # None: ids are the rows
        self.store = store
        self._pending: list[np.ndarray] = []  # vectors added since the last save
        self._deleted = deleted  # bitset over rows, None when nothing is deleted
        self._n_deleted = 0 if deleted is None else int(
            np.unpackbits(deleted, bitorder="little")[:graph.n].sum())
        self.path = path
        self.file = file  # the file it was opened from (header values, vectors' offset and CRC)
        self.memory_budget = memory_budget
        self.last_stats: list[QueryStats] = []
        self._searcher = None
        self._pool: list = []  # extra searchers for threaded batches
        self.seed = 0  # level draws are seeded by (seed, first row of the batch)

    # ---- properties ------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self.quantizer.d

    @property
    def quant(self) -> str:
        return self.quantizer.kind

    @property
    def rows(self) -> int:
        """Rows held, deleted ones included."""
        return self.graph.n

    @property
    def n_deleted(self) -> int:
        return self._n_deleted

    def __len__(self) -> int:
        return self.rows - self.n_deleted

    @property
    def ids(self) -> np.ndarray:
        return self._ids if self._ids is not None else np.arange(self.rows, dtype=np.uint64)

    @property
    def has_user_ids(self) -> bool:
        """False when the ids are the row numbers."""
        return self._ids is not None

    def deleted_mask(self) -> np.ndarray | None:
        """bool per row, True for deleted rows; None when nothing was ever deleted."""
        if self._deleted is None:
            return None
        return np.unpackbits(self._deleted, bitorder="little")[:self.rows].astype(bool)

    def __repr__(self):
        return (f"<quantann.Index {len(self)} x {self.dim} {self.quant} {self.metric} "
                f"M={self.graph.M} memory={human(self.memory()['total'])}>")

    # ---- opening and building ----------------------------------------------------------

    @classmethod
    def open(cls, path, store="pread", memory_budget=None) -> "Index":
        """Opens an index file or http(s) URL without reading its full vectors (see
        quantann.open)."""
        p = read_index(path, store=store, memory_budget=memory_budget)
        return cls(p.quantizer, p.metric, p.graph, p.codes, p.norms, p.ids, p.store, path=str(path),
                   memory_budget=p.memory_budget, file=p.file)

    @classmethod
    def build(cls, vectors, quant: str = "sq8", metric: str = "cosine", M: int = 16,
              ef_construction: int = 200, ids=None, threads: int | None = None,
              progress: bool = False, seed: int = 0, clip: float | None = None) -> "Index":
        """Trains the quantizer on `vectors`, encodes them and builds the graph from the
        float vectors (both cores). The vectors stay in an in-memory store until `save`."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
        if quant not in KINDS:
            raise ValueError(f"unknown quantizer {quant!r}: choose one of {', '.join(KINDS)}")
        if ef_construction < 1:
            raise ValueError(f"ef_construction must be >= 1, got {ef_construction}")
        x = as_matrix(vectors)
        if x.shape[0] >= 2**31 - 1:
            raise ValueError("at most 2^31 - 2 vectors per index")
        if metric == "cosine":
            x = normalize(x)
        qz = Quantizer.train(quant, x, clip=clip, seed=seed)
        idx = cls(qz, metric, Graph.empty(M, ef_construction), np.empty((0, qz.code_size), np.uint8),
                  None, None, MemoryStore(np.empty((0, x.shape[1]), np.float32)))
        idx.seed = seed
        idx._append(x, ids, threads, progress, float_space=True)
        idx.store = MemoryStore(x)
        idx._pending = []
        return idx

    def _append(self, x: np.ndarray, ids, threads, progress, float_space: bool) -> None:
        n0, m = self.rows, x.shape[0]
        new_ids = self._check_new_ids(ids, m)
        codes = self.quantizer.encode(x)
        self.codes = np.concatenate([self.codes, codes]) if n0 else codes
        if self.metric == "l2" and self.quant != "none":
            nrm = (self.quantizer.decode(codes) ** 2).sum(axis=1, dtype=np.float32)
            self.norms = np.concatenate([self.norms, nrm]) if self.norms is not None else nrm
        if new_ids is not None or self._ids is not None:
            old = self._ids if self._ids is not None else np.arange(n0, dtype=np.uint64)
            new = new_ids if new_ids is not None else np.arange(n0, n0 + m, dtype=np.uint64)
            self._ids = np.concatenate([old, new])
        if self._deleted is not None:
            grown = np.zeros((n0 + m + 7) // 8, np.uint8)
            grown[:len(self._deleted)] = self._deleted
            self._deleted = grown
        self.graph.grow(self.graph.random_levels(n0, m, self.seed))
        if float_space:  # building (from empty): distances between full vectors
            space = (METRICS[self.metric], self.quantizer.kind_id, self.dim, self.quantizer.vmin,
                     self.quantizer.scale, self.codes, None, x)
        else:  # after load: the stored rows are codes; the new rows come as floats
            space = self._space()
        threads = threads or default_threads()
        chunk = max(1000, m // 100)
        bar = Progress(m, "build graph", enabled=progress)
        for s in range(0, m, chunk):
            e = min(m, s + chunk)
            self.graph.insert(space, n0 + s, n0 + e, x[s:e], threads)
            bar.update(e - s)
        bar.close()
        self._searcher = None

    def _check_new_ids(self, ids, m):
        if ids is None:
            if self._ids is not None:
                raise ValueError("this index has user ids: pass ids= for the new vectors")
            return None
        ids = np.asarray(ids)
        if ids.shape != (m,):
            raise ValueError(f"ids must have shape ({m},), got {ids.shape}")
        if ids.dtype.kind not in "iu" or (ids.dtype.kind == "i" and (ids < 0).any()):
            raise ValueError("ids must be non-negative integers")
        ids = ids.astype(np.uint64)
        if (ids == NO_ID).any():
            raise ValueError(f"id {NO_ID} is reserved for empty result slots")
        if len(np.unique(ids)) != m:
            raise ValueError("ids contain duplicates")
        if self.rows and np.isin(ids, self.ids).any():
            raise ValueError(f"id {ids[np.isin(ids, self.ids)][0]} is already in the index")
        return ids

    def _space(self) -> tuple:
        return (METRICS[self.metric], self.quantizer.kind_id, self.dim, self.quantizer.vmin,
                self.quantizer.scale, self.codes, self.norms, None)

    # ---- mutation ----------------------------------------------------------------------

    def add(self, vectors, ids=None, threads: int | None = None, progress: bool = False) -> None:
        """Adds vectors: codes from the trained quantizer, inserted into the graph over
        the codes. Their full vectors are kept in memory until `save`."""
        x = as_matrix(vectors, self.dim)
        if self.metric == "cosine":
            x = normalize(x)
        if self.memory_budget is not None:
            after = self.memory(extra_rows=x.shape[0])
            if after["total"] > self.memory_budget:
                raise MemoryBudgetError(
                    f"adding {x.shape[0]} vectors would need {human(after['total'])}, over the "
                    f"memory budget of {human(self.memory_budget)} ({format_breakdown(after)})",
                    after, self.memory_budget)
        self._append(x, ids, threads, progress, float_space=False)
        self._pending.append(x)

    def delete(self, ids) -> int:
        """Marks the vectors with these ids deleted (search skips them; `save` drops
        them). Returns how many were deleted; unknown ids raise KeyError."""
        ids = np.atleast_1d(np.asarray(ids)).astype(np.uint64)
        if self._ids is None:
            rows = ids.astype(np.int64)
            missing = ids[rows >= self.rows]
        else:
            order = np.argsort(self._ids, kind="stable")
            pos = np.searchsorted(self._ids, ids, sorter=order)
            pos = np.minimum(pos, len(order) - 1)
            rows = order[pos].astype(np.int64)
            missing = ids[self._ids[rows] != ids]
        if len(missing):
            raise KeyError(f"id {missing[0]} is not in the index")
        if self._deleted is None:
            self._deleted = np.zeros((self.rows + 7) // 8, np.uint8)
            self._searcher = None
        bits = np.unpackbits(self._deleted, bitorder="little")[:self.rows].astype(bool)
        fresh = ~bits[rows]
        bits[rows] = True
        self._deleted[:] = np.packbits(bits, bitorder="little")
        newly = int(np.unique(rows[fresh]).size)
        self._n_deleted += newly
        return newly

    # ---- search ------------------------------------------------------------------------

    def _get_searcher(self):
        if self._searcher is None:
            self._pool = []
            self._searcher = _kernel.Searcher(self.graph.as_tuple(self._deleted), self._space())
            # the store reads in the same C call as the search, unless rows are pending
            src = self.store.native_source() if self.store.count == self.rows else None
            self._searcher.set_source(src)
            self._native = src is not None
        return self._searcher

    def prepare_queries(self, queries) -> np.ndarray:
        q = as_matrix(queries, self.dim, "queries")
        return normalize(q, "queries") if self.metric == "cosine" else q

    def search(self, queries, k: int = 10, ef: int = 64, rerank: int = 4, threads: int = 1):
        """Nearest neighbours of each query: (ids uint64 (nq, k), distances float32
        (nq, k)), best first. Distances are squared L2, or 1 - inner product (ip,
        cosine). rerank=0 returns the graph's approximate order and distances; rerank=r
        rescores k·r candidates exactly from the store. threads > 1 splits a batch of
        queries over threads (each with its own search scratch). Per-query costs go to
        `last_stats`."""
        q = self.prepare_queries(queries)
        live = len(self)
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if live == 0:
            raise ValueError("the index is empty")
        if k > live:
            raise ValueError(f"k={k} is larger than the {live} vectors in the index")
        if ef < 1 or rerank < 0:
            raise ValueError(f"ef must be >= 1 and rerank >= 0, got ef={ef}, rerank={rerank}")
        nres = min(k * rerank if rerank else k, live)
        nq = q.shape[0]
        out_rows = np.full((nq, k), -1, np.int32)
        out_d = np.full((nq, k), np.inf, np.float32)
        stats = [None] * nq
        searcher = self._get_searcher()
        args = (q, k, max(ef, nres), nres, rerank, out_rows, out_d, stats)
        threads = max(1, min(int(threads), nq))
        if threads == 1:
            self._search_range(searcher, 0, nq, *args)
        else:
            from concurrent.futures import ThreadPoolExecutor
            while len(self._pool) < threads - 1:  # more scratch, same arrays
                s = _kernel.Searcher(self.graph.as_tuple(self._deleted), self._space())
                s.set_source(self.store.native_source() if self._native else None)
                self._pool.append(s)
            bounds = np.linspace(0, nq, threads + 1).astype(int)
            with ThreadPoolExecutor(threads) as ex:
                jobs = [ex.submit(self._search_range, s, lo, hi, *args)
                        for s, lo, hi in zip([searcher] + self._pool, bounds[:-1], bounds[1:])]
                for j in jobs:
                    j.result()
        self.last_stats = stats
        return self._rows_to_ids(out_rows), out_d

    def _search_range(self, searcher, lo, hi, q, k, ef, nres, rerank, out_rows, out_d, stats):
        native = self._native and rerank > 0
        metric = METRICS[self.metric]
        clock = time.perf_counter
        rows_buf = np.empty(nres, np.int32)
        dist_buf = np.empty(nres, np.float32)
        for i in range(lo, hi):
            st = stats[i] = QueryStats()
            if native:  # the whole pipeline in one kernel call
                (_, st.candidates, st.distances, st.ranges, st.bytes_read, g_ns, r_ns,
                 k_ns) = searcher.query(q[i], k, nres, ef, out_rows[i], out_d[i])
                st.graph_ms, st.read_ms, st.rerank_ms = g_ns * 1e-6, r_ns * 1e-6, k_ns * 1e-6
                st.vectors_read = st.candidates
                st.store_reads = 1 if st.candidates else 0
                continue
            t0 = clock()
            found, st.distances = searcher.search(q[i], nres, ef, rows_buf, dist_buf)
            t1 = clock()
            st.graph_ms = (t1 - t0) * 1e3
            st.candidates = found
            if rerank and found:
                cand = np.sort(rows_buf[:found])
                vecs, rs = self._read(cand)
                t2 = clock()
                _kernel.rerank(metric, q[i], self.dim, vecs, cand, k, out_rows[i], out_d[i])
                st.rerank_ms = (clock() - t2) * 1e3
                st.read_ms = (t2 - t1) * 1e3
                st.vectors_read, st.bytes_read, st.ranges, st.store_reads = found, rs.bytes, rs.ranges, 1
            else:
                m = min(found, k)
                out_rows[i, :m] = rows_buf[:m]
                out_d[i, :m] = dist_buf[:m]

    def _rows_to_ids(self, rows: np.ndarray) -> np.ndarray:
        if self._ids is None:
            return rows.astype(np.uint64)  # -1 (empty slot) wraps to NO_ID
        ids = np.full(rows.shape, NO_ID, np.uint64)
        ok = rows >= 0
        ids[ok] = rows[ok] if self._ids is None else self._ids[rows[ok]]
        return ids

    def _read(self, rows: np.ndarray):
        """One batched read of full vectors for ascending rows (pending ones from RAM)."""
        base = self.store.count
        if not self._pending or rows[-1] < base:
            return self.store.read(rows)
        pend = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending = [pend]
        cut = int(np.searchsorted(rows, base))
        head, rs = self.store.read(rows[:cut]) if cut else (np.empty((0, self.dim), np.float32), None)
        out = np.concatenate([head, pend[rows[cut:] - base]])
        if rs is None:
            from .store import ReadStats
            rs = ReadStats(1, 0)
        rs.bytes += (len(rows) - cut) * self.dim * 4
        return out, rs

    def vectors(self, chunk: int = 65536):
        """Yields all full vectors in row order, in chunks."""
        yield from self.store.all(chunk)
        for p in self._pending:
            yield p

    # ---- memory ------------------------------------------------------------------------

    def memory(self, extra_rows: int = 0) -> dict:
        """Bytes held in memory, by part. `extra_rows` projects the size after adding."""
        n = self.rows + extra_rows
        scale = (n / self.rows) if self.rows else 1.0
        codes = self.codes.nbytes + extra_rows * self.quantizer.code_size
        graph = int(self.graph.nbytes() * scale) if extra_rows else self.graph.nbytes()
        ids = 0 if self._ids is None else n * 8
        other = (self.quantizer.nbytes()
                 + (0 if self.norms is None else n * 4)
                 + (0 if self._deleted is None else (n + 7) // 8)
                 + 2 * n * (1 + len(self._pool)))  # each searcher's visited tags (uint16 per row)
        pending = sum(p.nbytes for p in self._pending) + extra_rows * self.dim * 4
        if isinstance(self.store, MemoryStore):
            pending += self.store.nbytes()
        out = {"codes": codes, "graph": graph, "ids": ids, "other": other}
        if pending:
            out["vectors_in_ram"] = pending
        out["total"] = sum(out.values())
        return out

    def float_bytes(self) -> int:
        return self.rows * self.dim * 4

    # ---- saving ------------------------------------------------------------------------

    def save(self, path, progress: bool = False) -> None:
        """Writes the index and its full vectors to one file, atomically. Deleted rows
        are dropped (compaction) on the way."""
        write_index(self, path, progress=progress)
