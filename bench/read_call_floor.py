"""The fewest read calls an exact rerank can make per query, whatever the search: the
exact top-k rows of each minilm-100k query (the ground truth), placed by a row order, then
coalesced like the kernel does (rows at most `gap` apart are one read). A store whose
every call is dear (Firefox's OPFS sync handle, ~20 µs a call: docs/BROWSER.md §11-12)
cannot do better than this floor times its call cost.

    python -m bench.read_call_floor [--gaps 84,128,300] [--k 10,16]

Orders: `none` (rows as given), `cells` (quantann.row_order, the default from 50k rows),
and `cells+chain` (an experiment, not in the product: the same k-means tree with each
split's sibling cells visited nearest-centre first). One JSON line per order.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.datasets import minilm
from quantann import row_order as ro


def ranges_per_query(perm: np.ndarray, rows: np.ndarray, gap: int) -> float:
    """Mean coalesced reads of each query's rows (nq, k) under the order `perm`."""
    pos = np.empty(len(perm), np.int64)
    pos[perm] = np.arange(len(perm))
    p = np.sort(pos[rows], axis=1)
    return float(np.mean(1 + (np.diff(p, axis=1) > gap + 1).sum(axis=1)))


def chained_cell_order(x: np.ndarray, leaf: int = ro.LEAF, fanout: int = ro.FANOUT, seed: int = 0) -> np.ndarray:
    """ro.cell_order with each split's cells in a greedy nearest-centre tour."""
    rng = np.random.default_rng([seed, 0x0D0E])
    out, todo = [], [np.arange(len(x), dtype=np.int64)]
    while todo:
        rows = todo.pop()
        if len(rows) <= leaf:
            out.append(rows)
            continue
        a = ro._kmeans(x[rows], min(fanout, -(-len(rows) // leaf)), rng)
        cells = [c for c in (rows[a == j] for j in range(a.max() + 1)) if len(c)]
        if len(cells) == 1:
            out.append(rows)
            continue
        cen = np.stack([x[c].mean(0) for c in cells])
        cur = int(np.argmax(((cen - cen.mean(0)) ** 2).sum(1)))
        tour, left = [cur], [i for i in range(len(cells)) if i != cur]
        while left:
            cur = left.pop(int(np.argmin(((cen[left] - cen[cur]) ** 2).sum(1))))
            tour.append(cur)
        todo.extend(reversed([cells[i] for i in tour]))
    return np.concatenate(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gaps", default="84,128,300", help="coalescing gaps in rows (Firefox's measured gap: 67-107)")
    ap.add_argument("--k", default="10,16", help="rows reranked per query: 10 is the least an exact top-10 reads; "
                    "16 is what rerank='auto' over sq8 reads on minilm-100k")
    a = ap.parse_args(argv)
    ds = minilm()
    gaps, ks = [int(g) for g in a.gaps.split(",")], [int(k) for k in a.k.split(",")]
    for name, order in (("none", lambda x: np.arange(len(x))), ("cells", ro.cell_order), ("cells+chain", chained_cell_order)):
        t0 = time.perf_counter()
        perm = order(ds.base)
        row = {"order": name, "order_s": round(time.perf_counter() - t0, 1)}
        for k in ks:
            for g in gaps:
                row[f"k{k}_gap{g}"] = round(ranges_per_query(perm, ds.truth[:, :k], g), 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
