"""Sharded against single index on minilm-100k: recall@10 and QPS at the same ef and rerank.

    python bench/shards.py --shards 4                     # builds both (cached), then measures
    taskset -c 1 python bench/shards.py --modes single,sequential   # one core: the work per query
    python bench/shards.py --modes single,parallel        # shards searched in parallel threads

The single index is built with 2 threads, the shards as tasks on a local pool of 2
processes (1 thread each; the quantizer trained once on all rows, shared). Queries one at
a time (evaluate.measure); modes interleaved per setting, repeated, QPS = median.
Writes bench/results/shards-minilm-100k.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import quantann  # noqa: E402
from bench.datasets import CACHE, REPO, minilm  # noqa: E402
from quantann.evaluate import measure  # noqa: E402
from quantann.shard.build import build_sharded  # noqa: E402
from quantann.shard.runner import LocalRunner  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--quant", default="sq8")
    p.add_argument("--workdir", default=os.path.join(CACHE, "shards"))
    p.add_argument("--efs", default="32,64,128")
    p.add_argument("--reranks", default="2,4")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--modes", default="single,sequential,parallel")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "shards-minilm-100k.json"))
    a = p.parse_args()
    ds = minilm(queries=a.queries)
    os.makedirs(a.workdir, exist_ok=True)
    single_path = os.path.join(a.workdir, f"single-{a.quant}.qann")
    sharded_path = os.path.join(a.workdir, f"sharded{a.shards}-{a.quant}.json")
    builds = {}
    if not os.path.exists(single_path):
        t = time.perf_counter()
        quantann.Index.build(ds.base, quant=a.quant, metric="cosine", threads=2).save(single_path)
        builds["single_s"] = time.perf_counter() - t
    if not os.path.exists(sharded_path):
        t = time.perf_counter()
        build_sharded(sharded_path, ds.base, a.shards, LocalRunner(2), quant=a.quant, metric="cosine", threads=1,
                      progress=False)
        builds["sharded_s"] = time.perf_counter() - t
    if builds:
        print("build seconds:", {k: round(v, 1) for k, v in builds.items()}, file=sys.stderr)
    single = quantann.open(single_path)
    sharded = quantann.open(sharded_path)
    modes = a.modes.split(",")
    rows = []
    for ef in map(int, a.efs.split(",")):
        for rr in map(int, a.reranks.split(",")):
            runs = {m: [] for m in modes}
            for _ in range(a.rounds):
                for m in modes:  # interleaved
                    idx = single if m == "single" else sharded
                    if m != "single":
                        sharded.parallel = m == "parallel"
                    runs[m].append(measure(idx, ds.queries, ds.truth, k=10, ef=ef, rerank=rr))
            row = {"ef": ef, "rerank": rr}
            for m, rs in runs.items():
                row[m] = {"recall": rs[0]["recall"], "qps": float(np.median([r["qps"] for r in rs])),
                          "p50_ms": float(np.median([r["p50_ms"] for r in rs])),
                          "p99_ms": float(np.median([r["p99_ms"] for r in rs])),
                          "vectors_read": rs[0]["vectors_read_per_query"], "memory_bytes": rs[0]["memory_bytes"]}
            rows.append(row)
            print(f"ef {ef:4d} rerank {rr}: " + "  ".join(
                f"{m} recall {row[m]['recall']:.4f} qps {row[m]['qps']:.0f}" for m in modes), flush=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    old = json.load(open(a.out)) if os.path.exists(a.out) else {}
    old.update({"shards": a.shards, "quant": a.quant, "n": ds.n, "queries": len(ds.queries),
                "cpus": os.sched_getaffinity(0).__len__(), **({"build": builds} if builds else {}),
                f"results_{'_'.join(modes)}": rows})
    with open(a.out, "w") as f:
        json.dump(old, f, indent=1)


if __name__ == "__main__":
    main()
