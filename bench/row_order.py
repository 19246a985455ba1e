"""What the build-time row order (quantann/row_order.py) does, natively, on minilm-100k sq8:
read calls per query after coalescing at several max_gap values, and search speed with
the rows as built and in cells order (the same graph relabelled), interleaved.

    taskset -c 1 python -m bench.row_order [--queries 1000] [--reps 5]

Prints one JSON object: ranges and rows read per query by gap, recall@10 and native p50/p99
(median of the repeats, min-max) for each order, the ids equal between the two.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "bench"

from bench.build import ordered_file, quantann_files  # noqa: E402
from bench.datasets import MINILM, minilm  # noqa: E402
from bench.web.browser import timed  # noqa: E402


def _coalescing(idx, queries, gaps, k, ef, rerank):
    """Mean (ranges, rows read including gap rows) per query for each gap, from begin."""
    s, _, _ = idx._borrow()
    out = {}
    for gap in gaps:
        nr, nrows = [], []
        for q in queries:
            _, ranges = s.begin(q, k, ef, rerank, gap)
            r = np.frombuffer(ranges, np.int32).reshape(-1, 2)
            nr.append(len(r))
            nrows.append(int((r[:, 1] - r[:, 0] + 1).sum()))
        out[str(gap)] = {"ranges": float(np.mean(nr)), "rows_read": float(np.mean(nrows))}
    return out


def interleaved(idx: dict, q, k, ef, rerank, reps):
    """Each index timed `reps` times, in alternating order: {name: [(p50, p99) per rep]}, and
    each one's ids from its last pass."""
    runs = {name: [] for name in idx}
    ids = {}
    for r in range(reps):
        for name in (list(idx) if r % 2 == 0 else list(idx)[::-1]):
            lat, ids[name] = timed(idx[name], q, k, ef, rerank)
            runs[name].append((np.percentile(lat, 50), np.percentile(lat, 99)))
    return runs, ids


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    import quantann
    ds = minilm(None, MINILM, queries=a.queries)
    built = quantann_files(ds, 16, 200, quants=("sq8",))["sq8"]
    files = {"none": built, "cells": ordered_file(built, "cells")}
    q = np.ascontiguousarray(ds.queries, np.float32)
    k, ef, rerank = 10, 64, 4
    idx = {name: quantann.open(path) for name, path in files.items()}
    for i in idx.values():
        i.search(q[:50], k=k, ef=ef, rerank=rerank)  # warm-up: page cache, searchers
    out = {"dataset": ds.name, "queries": len(q), "k": k, "ef": ef, "rerank": rerank, "orders": {}}
    runs, ids = interleaved(idx, q, k, ef, rerank, a.reps)
    for name, i in idx.items():
        p50s, p99s = sorted(x[0] for x in runs[name]), sorted(x[1] for x in runs[name])
        out["orders"][name] = {
            "recall_at_10": float(np.mean([len(np.intersect1d(a_, t[:10])) / 10 for a_, t in zip(ids[name], ds.truth)])),
            "p50_ms": float(np.median(p50s)), "p50_min_max": [float(p50s[0]), float(p50s[-1])],
            "p99_ms": float(np.median(p99s)), "p99_min_max": [float(p99s[0]), float(p99s[-1])],
            "coalescing": _coalescing(i, q, (0, 2, 8, 16, 32), k, ef, rerank)}
    out["ids_equal"] = float(np.mean([np.array_equal(x, y) for x, y in zip(ids["none"], ids["cells"])]))
    out["load_average"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
