"""Re-runs the 20%-memory p99 duel (quantann sq4 M=12 vs the lazy baseline at 20%) with
Python's garbage collector frozen and disabled during the timed passes, to separate GC
pauses (the suite process holds large result lists) from the methods' own tails.
Quantann gets a full untimed pass first (warm: its vector pages in the page cache, as
the lazy baseline's warm-up pass gives it). Writes bench/results/p99-gc-check.json."""
import gc
import json
import sys

import numpy as np

from bench.datasets import minilm
from bench.peers import Lazy, Quantann
from bench.runner import compare, head_to_head, load_method, save, single_thread

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
ds = minilm()
single_thread()
out = {}
for cold in (False,):
    q = Quantann("sq4", 12, 200, cold=cold)
    lz = Lazy(memory_fraction=0.20, cold=cold)
    for m in (q, lz):
        load_method(m, ds, print)
    if cold:
        ds.queries, ds.truth = ds.queries[:300], ds.truth[:300]
    gc.collect()
    gc.freeze()
    gc.disable()
    res = head_to_head([(q, {"ef": 128, "rerank": 2}), (lz, {"ef": 64})], ds, 10, rounds)
    gc.enable()
    c = compare(res["lat"][0], res["lat"][1], res["qps"][0], res["qps"][1])
    c.update({"a": q.name + " (ef=128, rerank=2)", "b": lz.name + " (ef=64)", "rounds": rounds,
              "queries": len(ds.queries), "gc": "frozen + disabled during timed passes",
              "a_p50_ms": float(np.percentile(res["lat"][0], 50) * 1e3),
              "b_p50_ms": float(np.percentile(res["lat"][1], 50) * 1e3)})
    out["cold" if cold else "warm"] = c
    print(json.dumps(c, indent=1))
save("bench/results/p99-gc-check.json", out)
