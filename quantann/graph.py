"""The HNSW graph: its arrays (owned here, in numpy) and the calls that fill them.

Construction and search run in the C kernel (the index ABI, kernel/index/index.h, over
kernel/hnsw.c) on these arrays in place; see FORMAT.md for the layout.

Level 0 is held in one of two forms: `links0`, int32 lists that a build or an add writes,
or `packed0`, the same lists in `link_bits` bits per id (kernel/links.h), which is what a
search reads and a file stores. `pack()` and `unpack()` switch between them (in C).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from . import _kernel
from .constants import LIMITS

MAX_LEVEL = LIMITS["max_level"]


@dataclass
class Graph:
    M: int
    M0: int
    links0: np.ndarray | None  # int32 [n, M0], -1 terminated; None when packed
    level: np.ndarray  # uint8 [n]
    up_nodes: np.ndarray  # int32 [n_up], ascending
    up_off: np.ndarray  # int64 [n_up]
    upper: np.ndarray  # int32 pool
    entry: int = -1
    max_level: int = 0
    ef_construction: int = 200
    packed0: np.ndarray | None = None  # uint8 [n, row bytes]: level 0 packed, or None
    link_bits: int = 32  # bits per level-0 id: 32 for links0, fewer for packed0

    @property
    def n(self) -> int:
        return int(self.level.shape[0])

    @property
    def packed(self) -> bool:
        return self.packed0 is not None

    def lists0(self) -> np.ndarray:
        """The level-0 lists as int32 [n, M0] (-1 terminated), unpacked when packed."""
        if self.packed0 is None:
            return self.links0
        out = np.empty((self.n, self.M0), np.int32)
        _kernel.unpack_links(self.packed0, self.n, self.M0, self.link_bits, out)
        return out

    def pack(self) -> None:
        """Level 0 in ceil(log2(n + 1)) bits per id (the int32 lists are dropped)."""
        if self.packed0 is not None or self.n == 0:
            return
        bits, row_bytes = _kernel.link_bits(self.n, self.M0)
        out = np.empty((self.n, row_bytes), np.uint8)
        _kernel.pack_links(self.links0, self.n, self.M0, bits, out)
        self.packed0, self.link_bits, self.links0 = out, bits, None

    def unpack(self) -> None:
        """Level 0 as writable int32 lists again (an insert writes those)."""
        if self.packed0 is None:
            return
        self.links0 = self.lists0()
        self.packed0, self.link_bits = None, 32

    def permute(self, order: np.ndarray) -> None:
        """Renumbers the nodes: new row i is old row `order[i]`. The same graph, relabelled
        (lists keep their order), packed again if it was packed."""
        n = self.n
        order = np.asarray(order, np.int64)
        if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
            raise ValueError(f"a row order must be a permutation of the {n} rows")
        was_packed = self.packed
        self.unpack()
        rank = np.empty(n, np.int32)
        rank[order] = np.arange(n, dtype=np.int32)

        def relabel(a):
            out = a.copy()
            live = a >= 0
            out[live] = rank[a[live]]
            return out

        lens = self.level[self.up_nodes].astype(np.int64) * self.M  # each upper node's pool slice
        new_nodes = rank[self.up_nodes]
        by_new = np.argsort(new_nodes, kind="stable")
        pieces = [self.upper[o:o + ln] for o, ln in zip(self.up_off[by_new].tolist(), lens[by_new].tolist())]
        self.upper = relabel(np.concatenate(pieces)) if pieces else self.upper
        self.up_off = (np.cumsum(lens[by_new]) - lens[by_new]).astype(np.int64)
        self.up_nodes = new_nodes[by_new].astype(np.int32)
        self.links0 = relabel(self.links0[order])
        self.level = self.level[order]
        if self.entry >= 0:
            self.entry = int(rank[self.entry])
        if was_packed:
            self.pack()

    def level0_array(self) -> np.ndarray:
        """The level-0 array as stored: packed0 when packed, else links0."""
        return self.packed0 if self.packed0 is not None else self.links0

    @classmethod
    def empty(cls, M: int, ef_construction: int) -> "Graph":
        if not isinstance(M, (int, np.integer)) or not 2 <= M <= LIMITS["max_M"]:
            raise ValueError(f"M={M!r} is out of range: it must be 2..{LIMITS['max_M']}")
        return cls(M, 2 * M, np.empty((0, 2 * M), np.int32), np.empty(0, np.uint8),
                   np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int32),
                   ef_construction=ef_construction)

    def random_levels(self, start: int, count: int, seed: int) -> np.ndarray:
        """HNSW's level distribution, P(level >= l) = M^-l, seeded by the rows' position
        so that a build is reproducible."""
        rng = np.random.default_rng([seed, start])
        u = rng.random(count)
        lv = np.floor(-np.log(np.maximum(u, 1e-300)) / math.log(self.M))
        return np.minimum(lv, MAX_LEVEL).astype(np.uint8)

    def grow(self, levels: np.ndarray) -> None:
        """Appends nodes with the given levels, their lists empty."""
        self.unpack()
        start = self.n
        m = len(levels)
        links = np.full((m, self.M0), -1, np.int32)
        self.links0 = np.concatenate([self.links0, links]) if start else links
        self.level = np.concatenate([self.level, levels])
        new_up = np.flatnonzero(levels > 0).astype(np.int32) + start
        new_len = levels[levels > 0].astype(np.int64) * self.M
        off = (np.cumsum(new_len) - new_len + self.upper.size).astype(np.int64)
        self.up_nodes = np.concatenate([self.up_nodes, new_up])
        self.up_off = np.concatenate([self.up_off, off])
        self.upper = np.concatenate([self.upper, np.full(int(new_len.sum()), -1, np.int32)])

    def as_tuple(self, deleted: np.ndarray | None) -> tuple:
        """The positional form the lazy-loading baseline (bench) still parses."""
        return (self.lists0(), self.level, self.up_nodes, self.up_off, self.upper, self.entry,
                self.max_level, self.M, self.M0, deleted, self.n)

    def nbytes(self) -> int:
        return (self.level0_array().nbytes + self.level.nbytes + self.up_nodes.nbytes
                + self.up_off.nbytes + self.upper.nbytes)

    def neighbours(self, row: int, lev: int = 0) -> np.ndarray:
        if lev == 0:
            if self.packed0 is not None:
                out = np.empty((1, self.M0), np.int32)
                _kernel.unpack_links(self.packed0[row], 1, self.M0, self.link_bits, out)
                lst = out[0]
            else:
                lst = self.links0[row]
        else:
            k = np.searchsorted(self.up_nodes, row)
            if k >= len(self.up_nodes) or self.up_nodes[k] != row or self.level[row] < lev:
                return np.empty(0, np.int32)
            o = int(self.up_off[k]) + (lev - 1) * self.M
            lst = self.upper[o:o + self.M]
        return lst[lst >= 0]


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
