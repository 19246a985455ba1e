"""rerank="auto" over sq8 codes with and without the per-row residuals (format 5): rows
read per query, read calls at a gap, recall@k, and how often auto's ids equal an exact
rerank of the whole candidate pool (the ef beam: k=ef, rerank=1, first k kept), and how
often its distances do (ids up to the order of exact ties: minilm holds duplicate passages).

    OPENBLAS_NUM_THREADS=1 taskset -c 1 python -m bench.sq8_sound_bound [--queries 1000]

"without residuals" is the index as a file before format 5 opens it: the per-coordinate
bound, which a coordinate clipped at training can break. The index (minilm-100k, sq8,
cosine, M=16, cells order) is built once into --workdir. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

import quantann
from bench.datasets import minilm
from quantann.constants import LIMITS


def _run(idx, q, k, ef, rerank):
    ids, dist = idx.search(q, k=k, ef=ef, rerank=rerank)
    st = idx.last_stats
    return ids, dist, np.mean([s.vectors_read for s in st]), np.mean([s.ranges for s in st])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--ef", type=int, default=64)
    p.add_argument("--gap", type=int, default=128, help="max_gap of the pread store (rows)")
    p.add_argument("--workdir", default="/tmp/quantann-bench")
    a = p.parse_args()
    ds = minilm(queries=a.queries)
    os.makedirs(a.workdir, exist_ok=True)
    path = os.path.join(a.workdir, "minilm-100k-sq8-resid.qann")
    if not os.path.exists(path):
        quantann.Index.build(ds.base, quant="sq8", metric="cosine", M=16, seed=0).save(path)
    idx = quantann.open(path)
    idx.store.max_gap = a.gap
    k, ef, q = a.k, a.ef, ds.queries
    pool = max(ef, k * LIMITS["rerank_default"])  # auto's pool over sq8: the beam, at least rerank 4's
    exact, exact_d, _, _ = _run(idx, q, pool, pool, 1)  # the pool reranked exactly (same beam)
    exact, exact_d = exact[:, :k], exact_d[:, :k]
    res = idx.residuals
    out = {"index": path, "queries": len(q), "k": k, "ef": ef, "gap": a.gap,
           "residuals_bytes": 0 if res is None else int(res.nbytes), "codes_bytes": int(idx.codes.nbytes)}
    for name, rerank, resid in [("rerank=4", 4, res), ("auto, without residuals", "auto", None),
                                ("auto, residuals", "auto", res)]:
        idx.residuals = resid
        idx._reset_searchers()
        ids, dist, rows, calls = _run(idx, q, k, ef, rerank)
        hit = np.mean([len(set(ids[i].tolist()) & set(ds.truth[i, :k].tolist())) / k for i in range(len(q))])
        out[name] = {"rows_read": round(float(rows), 3), "read_calls": round(float(calls), 3),
                     f"recall@{k}": round(float(hit), 4),
                     "ids_equal_pool_rerank": round(float(np.mean((ids == exact).all(1))), 4),
                     # the same distances, bit for bit: equal ids up to the order of exact ties
                     "distances_equal_pool_rerank": round(float(np.mean((dist == exact_d).all(1))), 4)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
