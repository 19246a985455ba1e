"""Where the cells row order starts to pay: native search on the first N passages of
minilm-100k (sq8, cosine, M=16, ef_construction=200), the rows as built against the same
index with its rows in cells order (Index.order_rows: the same graph relabelled), one
query per call, the two interleaved. Decides row_order.AUTO_MIN_ROWS.

    OPENBLAS_NUM_THREADS=1 taskset -c 1 python -m bench.row_order_gain [--sizes 5000,10000,20000,50000]

Prints one JSON line per size: p50/p99 of each order (median of the repeats, min-max),
the p50 ratio, read calls per query at max_gap 0 and 8, the ids equal between the two.
Indexes are built once into --workdir (about a minute at these sizes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import quantann
from bench.datasets import MINILM
from bench.row_order import _coalescing, interleaved


def _files(x, n, workdir):
    base = os.path.join(workdir, f"minilm-{n}-sq8.qann")
    cells = base[:-5] + "-cells.qann"
    if not os.path.exists(cells):
        t0 = time.perf_counter()
        idx = quantann.Index.build(x[:n], quant="sq8", metric="cosine", M=16, ef_construction=200, row_order="none")
        build_s = time.perf_counter() - t0
        idx.save(base)
        t0 = time.perf_counter()
        idx.order_rows("cells")
        order_s = time.perf_counter() - t0
        idx.save(cells)
        with open(base + ".json", "w") as f:
            json.dump({"build_s": build_s, "order_rows_s": order_s}, f)
    with open(base + ".json") as f:
        return base, cells, json.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="5000,10000,20000,50000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workdir", default="/tmp/quantann-row-order-gain")
    a = ap.parse_args(argv)
    os.makedirs(a.workdir, exist_ok=True)
    x = np.load(os.path.join(MINILM, "vectors.npy"), mmap_mode="r")
    q = np.ascontiguousarray(np.load(os.path.join(MINILM, "queries.npy"))[:a.queries], np.float32)
    k, ef, rerank = 10, 64, 4
    for n in map(int, a.sizes.split(",")):
        base, cells, meta = _files(x, n, a.workdir)
        idx = {"none": quantann.open(base), "cells": quantann.open(cells)}
        for i in idx.values():
            i.search(q[:50], k=k, ef=ef, rerank=rerank)  # page cache, searchers
        runs, ids = interleaved(idx, q, k, ef, rerank, a.reps)
        out = {"n": n, "load_average": os.getloadavg()[0], **meta}
        for name in idx:
            p50s, p99s = sorted(v[0] for v in runs[name]), sorted(v[1] for v in runs[name])
            out[name] = {"p50_ms": float(np.median(p50s)), "p50_min_max": [float(p50s[0]), float(p50s[-1])],
                         "p99_ms": float(np.median(p99s)),
                         "ranges": {g: c["ranges"] for g, c in _coalescing(idx[name], q, (0, 8), k, ef, rerank).items()}}
        # per repeat, the two orders measured back to back: the ratio's spread
        ratios = sorted(a_[0] / b_[0] for a_, b_ in zip(runs["none"], runs["cells"]))
        out["p50_speedup"] = float(np.median(ratios))
        out["p50_speedup_min_max"] = [float(ratios[0]), float(ratios[-1])]
        out["ids_equal"] = float(np.mean([np.array_equal(u, v) for u, v in zip(ids["none"], ids["cells"])]))
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
