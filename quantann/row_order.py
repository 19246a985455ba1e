"""A locality order of an index's rows, chosen at build time.

The rerank candidates of a query are its near neighbours; when near vectors sit on
neighbouring rows, the kernel's range coalescing (`max_gap`) turns a query's ~k·rerank row
reads into fewer, longer ones. That matters where a read call is dear: OPFS in Firefox
(~30 µs per call), HTTP ranges. The order is a tree of k-means cells (split each cell
into up to `fanout` cells until it holds at most `leaf` rows), rows listed cell by cell,
so rows close in the order are close in space at every scale.

The graph is built first and then relabelled (Graph.permute): the same graph, the same
results; the file's `ids` tensor maps the new rows back to the caller's ids, or to the
index's own numbering (with `quantann.ids.next`, FORMAT.md), so `add` keeps numbering.

"auto", the default of a build, orders the rows from AUTO_MIN_ROWS rows up: the k-means
tree costs 1-6% of the graph build and cuts a query's read calls by about 37% (what a
browser's OPFS store, an HTTP store or IndexedDB pays per call: docs/BROWSER.md §9, §11).
Native search speed is unchanged by it on a quiet machine (BENCHMARKS.md: 0.97-1.02x from
5,000 to 100,000 rows, fresh builds); below AUTO_MIN_ROWS the ids tensor (8 bytes a row) is
not spent by default, and `cells` remains the choice for a small index a browser reads.
"""
from __future__ import annotations

import numpy as np

ORDERS = ("auto", "none", "cells")
AUTO_MIN_ROWS = 50_000  # "auto" orders the rows of an index at least this large
LEAF = 24  # rows per finest cell
FANOUT = 64  # cells per split
ITERS = 6  # Lloyd rounds per split
SAMPLE = 40  # rows per cell that train a split (all rows are then assigned)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means (squared L2), `ITERS` rounds from k distinct rows, trained on at
    most SAMPLE·k rows: the cell of each row."""
    t = x[rng.choice(len(x), SAMPLE * k, replace=False)] if len(x) > SAMPLE * k else x
    c = t[rng.choice(len(t), k, replace=False)].copy()
    for _ in range(ITERS):
        a = _nearest(t, c)
        onehot = np.zeros((len(t), k), np.float32)
        onehot[np.arange(len(t)), a] = 1
        counts = onehot.sum(0)
        sums = onehot.T @ t
        keep = counts > 0  # an emptied cell keeps its centre
        c[keep] = sums[keep] / counts[keep, None]
    return _nearest(x, c)


def _nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.argmax(x @ c.T - 0.5 * np.einsum("ij,ij->i", c, c), axis=1)


def cell_order(x: np.ndarray, leaf: int = LEAF, fanout: int = FANOUT, seed: int = 0) -> np.ndarray:
    """The rows of `x` (n, d) listed cell by cell of a k-means tree: int64 (n,), a
    permutation. Deterministic for a given seed."""
    x = np.ascontiguousarray(x, np.float32)
    rng = np.random.default_rng([seed, 0x0D0E])
    out: list[np.ndarray] = []
    todo = [np.arange(len(x), dtype=np.int64)]
    while todo:  # depth first, children in cell order: a stack, last child pushed first
        rows = todo.pop()
        if len(rows) <= leaf:
            out.append(rows)
            continue
        k = min(fanout, -(-len(rows) // leaf))
        a = _kmeans(x[rows], k, rng)
        cells = [rows[a == j] for j in range(k)]
        cells = [c for c in cells if len(c)]
        if len(cells) == 1:  # identical rows: no split possible
            out.append(rows)
            continue
        todo.extend(reversed(cells))
    return np.concatenate(out) if out else np.empty(0, np.int64)


def resolve(how: str, rows: int) -> str:
    """The order "auto" means for an index of `rows` rows; other orders as they are."""
    if how not in ORDERS:
        raise ValueError(f"unknown row order {how!r}: choose one of {', '.join(ORDERS)}")
    if how == "auto":
        return "cells" if rows >= AUTO_MIN_ROWS else "none"
    return how


def order(x: np.ndarray, how: str, seed: int = 0) -> np.ndarray | None:
    """The permutation for `how` ("cells", or "auto" by the size of x), or None for "none"."""
    return None if resolve(how, len(x)) == "none" else cell_order(x, seed=seed)
