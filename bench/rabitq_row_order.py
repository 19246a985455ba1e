"""rabitq codes on the 480K x 768 synthetic set: rows as built against rows in the cells
locality order (quantann/row_order.py), rerank auto and 2, beside hnswlib (float32 in RAM).
One core, k=10, 200 queries, each query one call; 3 interleaved passes, median QPS.

The cells order is the same graph relabelled (Index.order_rows): the same recall and reads,
codes and links of near vectors on near rows. Uses the cached indexes of bench.rabitq
(build them with `python -m bench.rabitq --dataset synthetic-480k --build-only`).

    OPENBLAS_NUM_THREADS=1 taskset -c 1 python -m bench.rabitq_row_order [--quant rabitq3]
"""
import argparse
import os
import time

import numpy as np

import quantann
from bench.peers import CACHE, Hnswlib
from bench.rabitq import K, QA_, Graph_, load_dataset, run_pass

EFS = (96, 128, 160, 192)


class Q(QA_):
    """bench.rabitq's quantann method over an index already opened."""

    def __init__(self, idx, name, rerank):
        self.idx, self.name, self.rerank = idx, name, rerank


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quant", default="rabitq3")
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    ds = load_dataset("synthetic-480k", 200)
    src = os.path.join(CACHE, f"qa-synthetic-480k-768d-273f0e1057df-M16-efc128-{a.quant}.qann")
    dst = src.replace(".qann", "-cells.qann")
    built = quantann.open(src, store="pread")
    if not built.quantizer.scale[0]:
        built.calibrate_bound()  # a file cached before builds calibrated rerank auto
    if not os.path.exists(dst):
        t0 = time.perf_counter()
        built.order_rows("cells")
        built.save(dst)
        print(f"rows in cells order in {time.perf_counter() - t0:.0f} s: {dst}", flush=True)
        built = quantann.open(src, store="pread")
        built.calibrate_bound()
    cells = quantann.open(dst, store="pread")
    f32 = ds.n * ds.dim * 4
    print(f"memory: as built {built.memory()['total'] / f32:.2%}, cells {cells.memory()['total'] / f32:.2%} "
          f"of the float32 vectors (cells adds the ids tensor)")
    ms = [Q(built, "as built, auto", "auto"), Q(cells, "cells, auto", "auto"),
          Q(built, "as built, rerank 2", 2), Q(cells, "cells, rerank 2", 2)]
    for m in ms:
        m.idx.search(ds.queries, k=K, ef=64, rerank=2)  # the rows read into the page cache
    hn = Hnswlib(M=16, efc=128)
    hn.load(ds)
    h = Graph_(hn, EFS)
    h.name = "hnswlib float32 (RAM) M=16"
    ms.append(h)
    res = {}
    for _ in range(a.passes):
        for ef in EFS:
            for m in ms:
                res.setdefault((m.name, ef), []).append(run_pass(m, {"ef": ef}, ds.queries, ds.truth))
    print("| method | ef | recall@10 | QPS | vectors read / query |\n|---|---|---|---|---|")
    for m in ms:
        for ef in EFS:
            rs = res[(m.name, ef)]
            reads = rs[0][2]
            print(f"| {m.name} | {ef} | {rs[0][0]:.4f} | {np.median([r[1] for r in rs]):.0f} | "
                  f"{'-' if reads is None else f'{reads:.1f}'} |")


if __name__ == "__main__":
    main()
