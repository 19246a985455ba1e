"""The index: quantizer + graph over codes in memory, full vectors in a store.

    query ──► begin: graph search over codes (C) ──► R = k·rerank candidate rows
          ──► one batched store read of their float vectors
          ──► finish: exact top-k (C)

The pipeline is the kernel's (kernel/index/index.h); for the pread, mmap and memory
stores the whole batch is one kernel call without the GIL. Searches may run from many
threads at once: each borrows a searcher (its own scratch) from a pool; add and delete
wait for running searches and hold new ones off (a readers-writer lock).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import _kernel
from .budget import format_breakdown, human
from .errors import MemoryBudgetError
from .fileformat import IndexFile, read_index, write_index
from .graph import Graph, default_threads
from .progress import Progress
from .quantize import KINDS, Quantizer
from .row_order import ORDERS as ROW_ORDERS, order as locality_order, resolve as resolve_order
from .store import MemoryStore, VectorStore

from .constants import ARCH, FORMAT_VERSION, LIMITS, METRICS  # noqa: E402  (re-exported)
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


class _ReadersWriter:
    """Many readers (searches) or one writer (add, delete); a waiting writer holds new
    readers off so it cannot starve. Plain methods over one Lock: searches pay two lock
    round trips, not a context manager."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting = 0

    def acquire_read(self):
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1

    def release_read(self):
        with self._cond:
            self._readers -= 1
            if not self._readers and self._waiting:
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _rerank(value) -> int:
    """rerank: a factor (0 = none), or "auto" (the kernel's code for reading only the
    candidates the codes' error bound cannot rule out; sq8 and rabitq codes)."""
    if value == "auto":
        return LIMITS["rerank_auto"]
    r = _count(value, "rerank")
    if r < 0:
        raise ValueError(f"rerank={r} is out of range: it must be 0.. or 'auto'")
    return r


def _count(value, name: str) -> int:
    """An integer search/build parameter as given (the kernel checks its range)."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


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
                 memory_budget: int | None = None, file: IndexFile | None = None,
                 next_id: int | None = None, residuals: np.ndarray | None = None):
        self.quantizer = quantizer
        self.metric = metric
        self.graph = graph
        self.codes = codes
        self.norms = norms
        # sq8: |x - x^| per row (Quantizer.encode_rows), so rerank="auto"'s bound holds for
        # every row; None: codecs without them, or a file written before them
        self.residuals = residuals
        self._ids = ids  # id of each row; None: ids are the rows
        # ids the index numbers itself, stored in a permuted row order (row_order.py): the
        # id `add` gives next. None: the ids are the rows, or (with _ids) the caller's.
        self._next_id = next_id
        self._id_order = (None, None)  # (the ids array, its argsort) for rows_of
        self.store = store
        self._pending: list[np.ndarray] = []  # vectors added since the last save
        self._deleted = deleted  # bitset over rows, None when nothing is deleted
        self._n_deleted = 0 if deleted is None else int(
            np.unpackbits(deleted, bitorder="little")[:graph.n].sum())
        self.path = path
        self.file = file  # the file it was opened from (header values, vectors' offset and CRC)
        self.memory_budget = memory_budget
        self._local = threading.local()  # last_stats: per thread, as searches run in parallel
        self._kix = None  # the kernel index over the current arrays (None: make on use)
        self._native = False  # the kernel reads the store itself (pread, mmap, memory)
        self._idle: list = []  # searchers of _kix not in use
        self._n_searchers = 0  # searchers of _kix in all
        self._pool_cond = threading.Condition(threading.Lock())
        self._rw = _ReadersWriter()
        self.seed = 0  # level draws are seeded by (seed, first row of the batch)
        # level 0 packed after every build or add (the default: no slower, BENCHMARKS.md)
        self._compact = graph.packed or graph.n == 0
        # experiment (bench/rabitq.py --graph-layout): searchers over linked level-0 records
        self._linked0 = False

    @property
    def compact_graph(self) -> bool:
        """True when level 0 holds ceil(log2(n + 1)) bits per neighbour id instead of 32
        (searched as is, saved as is). Set it to switch; the default for a build is True."""
        return self._compact

    @compact_graph.setter
    def compact_graph(self, on: bool) -> None:
        with self._rw.write():
            self._compact = bool(on)
            if self._compact:
                self.graph.pack()
            else:
                self.graph.unpack()
            self._reset_searchers()

    @property
    def last_stats(self) -> list[QueryStats]:
        """Per-query costs of this thread's last `search` (each thread sees its own)."""
        return getattr(self._local, "stats", [])

    @last_stats.setter
    def last_stats(self, stats: list[QueryStats]) -> None:
        self._local.stats = stats

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
        """True when the caller gave the ids; False when the index numbers the vectors
        itself (0, 1, 2, ... in the order they were built and added), whatever the order
        of the rows that hold them."""
        return self._ids is not None and self._next_id is None

    @property
    def stored_ids(self) -> np.ndarray | None:
        """The id of each row as the file stores it; None when the ids are the rows."""
        return self._ids

    @property
    def next_id(self) -> int | None:
        """The id `add` gives the next vector when no ids are given (None: the index has
        user ids, so `add` needs them)."""
        if self._ids is None:
            return self.rows
        return self._next_id

    def rows_of(self, ids) -> np.ndarray:
        """The rows (int64) that hold these ids; -1 for an id not in the index."""
        ids = np.atleast_1d(np.asarray(ids)).astype(np.uint64).ravel()
        rows = np.full(len(ids), -1, np.int64)
        if self._ids is None or not self.rows:
            ok = ids < np.uint64(self.rows)
            rows[ok] = ids[ok]
            return rows
        ids_now, order = self._id_order
        if ids_now is not self._ids:  # sorted once per ids array (every change makes a new one)
            order = np.argsort(self._ids, kind="stable")
            self._id_order = (self._ids, order)
        pos = np.minimum(np.searchsorted(self._ids, ids, sorter=order), len(order) - 1)
        rows = order[pos].astype(np.int64)
        return np.where(self._ids[rows] == ids, rows, -1)

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
                   memory_budget=p.memory_budget, file=p.file, next_id=p.next_id, residuals=p.residuals)

    @classmethod
    def build(cls, vectors, quant: str = "sq8", metric: str = "cosine", M: int = 16,
              ef_construction: int = 200, ids=None, threads: int | None = None,
              progress: bool = False, seed: int = 0, clip: float | None = None,
              quantizer: Quantizer | None = None, row_order: str = "auto") -> "Index":
        """Trains the quantizer on `vectors` (or takes `quantizer`, trained elsewhere: the
        shards of one sharded index share one), encodes them and builds the graph from the
        float vectors (both cores). The vectors stay in an in-memory store until `save`.
        row_order="cells" then stores the rows in a locality order (see `order_rows`);
        "auto" (the default) does so from row_order.AUTO_MIN_ROWS rows up, "none" never.
        Either way vector i gets id i (or ids[i]), and `add` continues the numbering."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
        if quant not in KINDS:
            raise ValueError(f"unknown quantizer {quant!r}: choose one of {', '.join(KINDS)}")
        if row_order not in ROW_ORDERS:
            raise ValueError(f"unknown row order {row_order!r}: choose one of {', '.join(ROW_ORDERS)}")
        efc = _count(ef_construction, "ef_construction")
        if not 1 <= efc <= LIMITS["max_ef_construction"]:
            raise ValueError(f"ef_construction={efc} is out of range: it must be 1..{LIMITS['max_ef_construction']}")
        x = as_matrix(vectors)
        if x.shape[0] >= 2**31 - 1:
            raise ValueError("at most 2^31 - 2 vectors per index")
        if metric == "cosine":
            x = normalize(x)
        if quantizer is None:
            qz = Quantizer.train(quant, x, clip=clip, seed=seed)
        elif (quantizer.kind, quantizer.d) != (quant, x.shape[1]):
            raise ValueError(f"the quantizer is {quantizer.kind} over {quantizer.d} dimensions; the build asks for "
                             f"{quant} over {x.shape[1]}")
        else:
            qz = quantizer
        idx = cls(qz, metric, Graph.empty(M, ef_construction), np.empty((0, qz.code_size), np.uint8),
                  None, None, MemoryStore(np.empty((0, x.shape[1]), np.float32)))
        idx.seed = seed
        idx._append(x, ids, threads, progress, float_space=True)
        idx.store = MemoryStore(x)
        idx._pending = []
        if quantizer is None and quant.startswith("rabitq"):  # a shared quantizer stays as given
            idx._calibrate(x)
        how = resolve_order(row_order, idx.rows)
        if how != "none":
            idx.order_rows(how)
        return idx

    def order_rows(self, how: str = "cells") -> None:
        """Stores the rows in a locality order (quantann/row_order.py): near vectors on
        near rows, so that a query's rerank reads coalesce into fewer ranges. The graph is
        relabelled, not rebuilt: searches return the same ids and distances. Ids stay what
        they were: the caller's, or the index's own numbering (the row numbers before the
        reorder; saved as the ids tensor with `quantann.ids.next`, so `add` without ids
        still continues at next_id). Needs every vector in memory (they are read from the
        store) and no deleted rows."""
        with self._rw.write():
            if self._n_deleted:
                raise ValueError("order_rows needs an index without deleted rows: save it first")
            x = np.concatenate(list(self.vectors())) if self.rows else np.empty((0, self.dim), np.float32)
            perm = locality_order(x, how, seed=self.seed)
            if perm is None:
                return
            if self._ids is None:  # the index's own numbering, now stored
                self._ids, self._next_id = np.arange(self.rows, dtype=np.uint64), self.rows
            self._ids = self._ids[perm]
            self.codes = np.ascontiguousarray(self.codes[perm])
            if self.norms is not None:
                self.norms = np.ascontiguousarray(self.norms[perm])
            if self.residuals is not None:
                self.residuals = np.ascontiguousarray(self.residuals[perm])
            self.graph.permute(perm)
            self.store = MemoryStore(x[perm])
            self._pending = []
            self._reset_searchers()

    def calibrate_bound(self) -> float:
        """rabitq codes: picks rerank="auto"'s bound multiplier for this index from sample
        rows (a build does this; files built before it use the default 1.9) and keeps it in
        the quantizer (`quant.scale[0]`, saved with the index). Reads every full vector
        once. Returns the multiplier."""
        if not self.quant.startswith("rabitq"):
            raise ValueError(f"calibrate_bound needs rabitq codes, not {self.quant}")
        return self._calibrate(np.concatenate(list(self.vectors())) if self.rows else None)

    def _calibrate(self, x) -> float:
        if x is None:
            return 0.0
        eps = self._kernel_index().calibrate_bound(np.ascontiguousarray(x, np.float32))
        qz = self.quantizer
        scale = qz.scale.copy()  # a new array: another index may hold this quantizer
        scale[0] = eps
        self.quantizer = Quantizer(qz.kind, qz.d, qz.vmin, scale)
        self._reset_searchers()
        return eps

    def _append(self, x: np.ndarray, ids, threads, progress, float_space: bool) -> None:
        n0, m = self.rows, x.shape[0]
        new_ids = self._check_new_ids(ids, m)
        codes, res = self.quantizer.encode_rows(x)
        self.codes = np.concatenate([self.codes, codes]) if n0 else codes
        if res is not None and (self.residuals is not None or not n0):
            self.residuals = np.concatenate([self.residuals, res]) if n0 else res
        if self.metric == "l2" and self.quant != "none":
            nrm = (self.quantizer.decode(codes) ** 2).sum(axis=1, dtype=np.float32)
            self.norms = np.concatenate([self.norms, nrm]) if self.norms is not None else nrm
        if new_ids is not None or self._ids is not None:
            old = self._ids if self._ids is not None else np.arange(n0, dtype=np.uint64)
            nxt = self.next_id
            new = new_ids if new_ids is not None else np.arange(nxt, nxt + m, dtype=np.uint64)
            self._ids = np.concatenate([old, new])
            # the index keeps numbering unless the caller gave ids (then they are user ids)
            self._next_id = None if new_ids is not None or self._next_id is None else nxt + m
        if self._deleted is not None:
            grown = np.zeros((n0 + m + 7) // 8, np.uint8)
            grown[:len(self._deleted)] = self._deleted
            self._deleted = grown
        self.graph.grow(self.graph.random_levels(n0, m, self.seed))
        # building (from empty): distances between the full vectors; after load: the stored
        # rows are codes and the new rows come as floats
        space = x if float_space else None
        threads = default_threads() if threads is None else _count(threads, "threads")
        kix = self._kernel_index()
        chunk = max(1000, m // 100)
        bar = Progress(m, "build graph", enabled=progress)
        for s in range(0, m, chunk):
            e = min(m, s + chunk)
            self.graph.entry, self.graph.max_level = kix.insert(n0 + s, n0 + e, x[s:e], space, threads)
            bar.update(e - s)
        bar.close()
        if self._compact:
            self.graph.pack()
        self._reset_searchers()

    def _check_new_ids(self, ids, m):
        if ids is None:
            if self.has_user_ids:
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

    def _kernel_index(self):
        """The kernel's index (kernel/index/index.h) over this index's arrays."""
        g, qz = self.graph, self.quantizer
        return _kernel.Index(
            METRICS[self.metric], int(self.metric == "cosine"), qz.kind_id, self.dim, g.M, g.M0, g.entry,
            g.max_level, g.ef_construction, vmin=qz.vmin, scale=qz.scale, codes=self.codes,
            norms=self.norms, residuals=self.residuals, level=g.level, links0=g.level0_array(), up_nodes=g.up_nodes, up_off=g.up_off,
            upper=g.upper, deleted=self._deleted, link_bits=g.link_bits)

    # ---- mutation ----------------------------------------------------------------------

    def add(self, vectors, ids=None, threads: int | None = None, progress: bool = False) -> np.ndarray:
        """Adds vectors: codes from the trained quantizer, inserted into the graph over
        the codes, as new rows at the end. Their full vectors are kept in memory until
        `save`. ids: one new id per vector; None (an index without user ids): next_id,
        next_id + 1, ... Ids given to an index without user ids make it one with user ids
        (its earlier vectors keep theirs). Returns the new vectors' ids."""
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
        with self._rw.write():
            n0 = self.rows
            self._append(x, ids, threads, progress, float_space=False)
            self._pending.append(x)
            return self.ids[n0:].copy()

    def delete(self, ids) -> int:
        """Marks the vectors with these ids deleted (search skips them; `save` drops
        them). Returns how many were deleted; unknown ids raise KeyError."""
        with self._rw.write():
            return self._delete(ids)

    def _delete(self, ids) -> int:
        ids = np.atleast_1d(np.asarray(ids)).astype(np.uint64)
        rows = self.rows_of(ids)
        missing = ids[rows < 0]
        if len(missing):
            raise KeyError(f"id {missing[0]} is not in the index")
        if self._deleted is None:
            self._deleted = np.zeros((self.rows + 7) // 8, np.uint8)
        bits = np.unpackbits(self._deleted, bitorder="little")[:self.rows].astype(bool)
        fresh = ~bits[rows]
        bits[rows] = True
        self._deleted[:] = np.packbits(bits, bitorder="little")
        newly = int(np.unique(rows[fresh]).size)
        self._n_deleted += newly
        self._reset_searchers()  # the kernel counts the live rows when it opens
        return newly

    # ---- search ------------------------------------------------------------------------

    def _reset_searchers(self) -> None:
        with self._pool_cond:
            self._kix = None
            self._idle = []
            self._n_searchers = 0

    def _borrow(self):
        """A searcher: an idle one, a new one while fewer than max_threads exist, or the
        next one returned. Returns (searcher, its kernel index, native source?)."""
        with self._pool_cond:
            if self._kix is None:
                kix = self._kernel_index()
                if self._linked0 and self._compact:
                    kix.link_level0(True)
                # the kernel reads the store itself in the search call, unless rows are pending
                src = self.store.native_source() if self.store.count == self.rows else None
                kix.set_source(src)
                self._kix, self._native = kix, src is not None
            while not self._idle and self._n_searchers >= LIMITS["max_threads"]:
                self._pool_cond.wait()
            if self._idle:
                s = self._idle.pop()
            else:
                s = _kernel.Searcher(self._kix)
                self._n_searchers += 1
            return s, self._kix, self._native

    def _give_back(self, s, kix) -> None:
        with self._pool_cond:
            if kix is self._kix:  # searchers of a replaced kernel index are dropped
                self._idle.append(s)
            self._pool_cond.notify()

    def prepare_queries(self, queries) -> np.ndarray:
        q = as_matrix(queries, self.dim, "queries")
        return normalize(q, "queries") if self.metric == "cosine" else q

    @property
    def default_rerank(self):
        """What `search` reranks when not told: "auto" where the codes' error bound holds
        for every row (sq8 with its residuals: the exact top k of the candidate pool from
        the fewest reads), else constants.json limits.rerank_default (4): rabitq's bound is
        calibrated, not a guarantee, and an sq8 file before format 5 has no residuals."""
        return "auto" if self.residuals is not None else LIMITS["rerank_default"]

    def search(self, queries, k: int = 10, ef: int = 64, rerank=None, threads: int = 1):
        """Nearest neighbours of each query: (ids uint64 (nq, k), distances float32
        (nq, k)), best first. Distances are squared L2, or 1 - inner product (ip,
        cosine). rerank=0 returns the graph's approximate order and distances; rerank=r
        rescores k·r candidates exactly from the store; rerank="auto" (sq8, rabitq codes)
        rescores only the candidates of the ef beam (at least 4k over sq8) whose error bound
        leaves them a chance (sq8: |q| |x - x^| per row, a guarantee). None: `default_rerank`
        ("auto" over sq8, else 4). threads > 1 splits a batch of
        queries over threads. Safe to call from many threads at once. Per-query costs go
        to `last_stats`. The kernel checks k, ef and rerank against quantann's limits."""
        q = as_matrix(queries, self.dim, "queries")
        k, ef = _count(k, "k"), _count(ef, "ef")
        rerank = _rerank(self.default_rerank if rerank is None else rerank)
        threads = _count(threads, "threads")
        if threads != 1 and not 1 <= threads <= LIMITS["max_threads"]:
            raise ValueError(f"threads={threads} is out of range: it must be 1..{LIMITS['max_threads']}")
        nq = q.shape[0]
        # outputs sized only for a k the kernel will accept (it names the bad value)
        kk = k if 1 <= k <= min(LIMITS["max_k"], len(self)) else 1
        out_rows = np.empty((nq, kk), np.int32)  # the kernel fills every slot (-1, inf past the results)
        out_d = np.empty((nq, kk), np.float32)
        stats = [None] * nq
        self._rw.acquire_read()
        try:
            threads = min(threads, nq)
            if threads == 1:
                self._search_batch(q, k, ef, rerank, out_rows, out_d, stats, 0, nq)
            else:
                from concurrent.futures import ThreadPoolExecutor
                bounds = np.linspace(0, nq, threads + 1).astype(int)
                with ThreadPoolExecutor(threads) as ex:
                    jobs = [ex.submit(self._search_batch, q, k, ef, rerank, out_rows, out_d, stats, lo, hi)
                            for lo, hi in zip(bounds[:-1], bounds[1:])]
                    for j in jobs:
                        j.result()
        finally:
            self._rw.release_read()
        self.last_stats = stats
        return self._rows_to_ids(out_rows), out_d

    def _search_batch(self, q, k, ef, rerank, out_rows, out_d, stats, lo, hi):
        """Queries lo..hi with one borrowed searcher: one kernel call for the batch when the
        kernel reads the store itself, else begin / store read / finish per query."""
        s, kix, native = self._borrow()
        try:
            if native or not rerank:
                raw = np.empty((hi - lo, 9), np.int64)
                s.search(q[lo:hi], k, ef, rerank, out_rows[lo:hi], out_d[lo:hi], raw)
                for i, (cand, dist, fetch, ranges, nbytes, g_ns, r_ns, k_ns, _) in enumerate(raw.tolist(), lo):
                    stats[i] = QueryStats(cand, fetch, nbytes, ranges, 1 if fetch else 0, dist,
                                          g_ns * 1e-6, r_ns * 1e-6, k_ns * 1e-6)
                return
            clock = time.perf_counter
            max_gap = int(getattr(self.store, "max_gap", 0))
            for i in range(lo, hi):
                t0 = clock()
                rows, ranges = s.begin(q[i], k, ef, rerank, max_gap)
                rows, ranges = np.frombuffer(rows, np.int32), np.frombuffer(ranges, np.int32).reshape(-1, 2)
                t1 = clock()
                vecs, rs = self._read(rows, ranges) if len(rows) else (None, None)
                t2 = clock()
                _, cand, dist, _ = s.finish(vecs, out_rows[i], out_d[i])
                st = stats[i] = QueryStats(cand, len(rows), 0, 0, 0, dist, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                                           (clock() - t2) * 1e3)
                if rs is not None:
                    st.bytes_read, st.ranges, st.store_reads = rs.bytes, rs.ranges, 1
        finally:
            self._give_back(s, kix)

    def _rows_to_ids(self, rows: np.ndarray) -> np.ndarray:
        if self._ids is None:
            return rows.astype(np.uint64)  # -1 (empty slot) wraps to NO_ID
        ids = np.full(rows.shape, NO_ID, np.uint64)
        ok = rows >= 0
        ids[ok] = rows[ok] if self._ids is None else self._ids[rows[ok]]
        return ids

    def _read(self, rows: np.ndarray, ranges: np.ndarray):
        """One batched read of full vectors for ascending rows and their coalesced ranges
        (pending rows from RAM)."""
        base = self.store.count
        if not self._pending or rows[-1] < base:
            return self.store.read(rows, ranges)
        pend = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending = [pend]
        cut = int(np.searchsorted(rows, base))
        if cut:  # the store's ranges: those starting in it, the last one ending at its last row
            ranges = ranges[ranges[:, 0] < base].copy()
            ranges[-1, 1] = rows[cut - 1]
        head, rs = self.store.read(rows[:cut], ranges) if cut else (np.empty((0, self.dim), np.float32), None)
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
                 + (0 if self.residuals is None else n * 4)
                 + (0 if self._deleted is None else (n + 7) // 8)
                 + 2 * n * max(1, self._n_searchers))  # each searcher's visited tags (uint16 per row)
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
