"""Native side of web/tools/search-cpu-bench.js: CPU time (this process's: other load on a
shared machine counts less than in wall time) of the graph search alone (rerank 0) and of
the whole query (rerank from the vectors in memory), one thread, the default SIMD build,
each a batch of queries in one kernel call so Python costs nothing per query.

Reads one JSON request on stdin, prints one JSON object:
  {"prepare": true, "quant", "row_order", "nq", "queries_out"}: resolves (building once,
      bench/build.py) the minilm-100k index, writes the benchmark's queries as float32 to
      queries_out; prints {"index", "nq", "dim"}.
  {"index", "queries", "nq", "k", "ef", "rerank", "passes"}: prints {"graph_cpu_ms",
      "whole_cpu_ms" (per query, median over passes), "graph_ms" (median per-query wall time
      of the kernel's graph search), "graph_ids", "ids"}.
"""
import json
import statistics
import sys
import time

import numpy as np


def prepare(req):
    from ..build import ordered_file, quantann_files
    from ..datasets import minilm
    ds = minilm(queries=req["nq"])
    paths = quantann_files(ds, quants=(req["quant"],), log=lambda m: print(m, file=sys.stderr))
    path = ordered_file(paths[req["quant"]], req["row_order"], log=lambda m: print(m, file=sys.stderr))
    q = np.ascontiguousarray(ds.queries, np.float32)
    q.tofile(req["queries_out"])
    return {"index": path, "nq": int(q.shape[0]), "dim": int(q.shape[1])}


def measure(req):
    import quantann
    idx = quantann.open(req["index"], store="memory")
    q = np.fromfile(req["queries"], np.float32).reshape(req["nq"], -1)
    k, ef, rerank = req["k"], req["ef"], req["rerank"]
    cpu = time.process_time
    out = {}
    for name, r in (("graph", 0), ("whole", rerank)):
        idx.search(q[:100], k=k, ef=ef, rerank=r)  # warm-up: searcher, caches
        per_query = []
        for _ in range(req["passes"]):
            c0 = cpu()
            ids, _ = idx.search(q, k=k, ef=ef, rerank=r)
            per_query.append((cpu() - c0) * 1000 / len(q))
        out[f"{name}_cpu_ms"] = statistics.median(per_query)
        if r == 0:
            out["graph_ms"] = statistics.median(s.graph_ms for s in idx.last_stats)
            out["graph_ids"] = ids.tolist()
        else:
            out["ids"] = ids.tolist()
    return out


def main():
    req = json.load(sys.stdin)
    print(json.dumps(prepare(req) if req.get("prepare") else measure(req)))


if __name__ == "__main__":
    main()
