"""Builds (once) and caches the indexes a benchmark needs, under bench/cache/.

quantann: the graph is built once from the float vectors (Index.build always builds in
float space, whatever the quantizer), then shared by the sq8, sq4 and none indexes, so
the three differ only in their codes. Each is saved to its own .qann file (in-memory part
+ full vectors) and benchmarked from that file through the pread store.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from .datasets import CACHE, Dataset, fingerprint


def _meta_path(path: str) -> str:
    return path + ".json"


def load_meta(path: str) -> dict:
    try:
        with open(_meta_path(path)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_meta(path: str, meta: dict) -> None:
    with open(_meta_path(path), "w") as f:
        json.dump(meta, f, indent=1)


def key(ds: Dataset, M: int, efc: int) -> str:
    return f"{ds.name}-{fingerprint(ds.base)}-M{M}-efc{efc}"


def quantann_files(ds: Dataset, M: int = 16, efc: int = 200, quants=("sq8", "sq4", "none"),
                   threads: int | None = None, log=print) -> dict:
    """{quant: path of a saved .qann} for the dataset, building what is missing."""
    from quantann import Index
    from quantann.quantize import Quantizer
    from quantann.store import MemoryStore
    os.makedirs(CACHE, exist_ok=True)
    k = key(ds, M, efc)
    paths = {q: os.path.join(CACHE, f"qa-{k}-{q}.qann") for q in quants}
    missing = [q for q in quants if not os.path.exists(paths[q])]
    if not missing:
        return paths
    x = np.ascontiguousarray(ds.base, dtype=np.float32)
    log(f"[build] quantann graph {ds.name} {x.shape} M={M} efc={efc} ...")
    t0 = time.perf_counter()
    # rows as built: the quantized copies below share this graph over codes in input order
    idx = Index.build(x, quant="none", metric=ds.metric, M=M, ef_construction=efc, threads=threads, row_order="none")
    graph_s = time.perf_counter() - t0
    log(f"[build] graph done in {graph_s:.1f} s")
    for q in missing:
        t1 = time.perf_counter()
        if q == "none":
            qi = idx
        else:
            qz = Quantizer.train(q, x)
            codes, res = qz.encode_rows(x)  # sq8: its residuals, as a build writes them (format 5)
            qi = Index(qz, ds.metric, idx.graph, codes, None, None, MemoryStore(x), residuals=res)
        enc_s = time.perf_counter() - t1
        qi.save(paths[q])
        save_meta(paths[q], {"graph_build_s": graph_s, "encode_s": enc_s, "build_s": graph_s + enc_s,
                             "threads": threads or os.cpu_count(), "M": M, "efc": efc,
                             "note": "graph shared by sq8/sq4/none (built once from float vectors)"})
        log(f"[build] {q}: saved {paths[q]}")
    return paths


def ordered_file(path: str, how: str = "cells", log=print) -> str:
    """The cached index at `path` with its rows in a locality order (Index.order_rows: the
    same graph relabelled, so the same answers), saved once beside it as PATH-<how>.qann."""
    if how == "none":
        return path
    out = path[:-len(".qann")] + f"-{how}.qann"
    if os.path.exists(out):
        return out
    from quantann import open as open_index
    t0 = time.perf_counter()
    idx = open_index(path)
    idx.order_rows(how)
    order_s = time.perf_counter() - t0
    idx.save(out)
    save_meta(out, {**load_meta(path), "row_order": how, "row_order_s": order_s})
    log(f"[build] rows of {os.path.basename(path)} in {how} order ({order_s:.1f} s): {out}")
    return out
