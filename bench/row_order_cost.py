"""What the cells row order costs at build: the k-means cell tree (quantann/row_order.py)
and the relabelling of an index (Index.order_rows), timed at 100k (minilm-100k, 384-d)
and 480K (the synthetic 768-d set), beside the graph build time the bench cache recorded
for the same indexes. Prints one JSON line per size.

    OPENBLAS_NUM_THREADS=1 taskset -c 1 python -m bench.row_order_cost [--sizes 100k,480k]
"""
import argparse
import json
import os
import time

import numpy as np

import quantann
from bench.datasets import CACHE
from quantann.row_order import cell_order

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "datasets")
SETS = {  # vectors (None: in the cache), a cached index of them (its .json holds the build time)
    "100k": (os.path.join(DATA, "minilm-100k", "vectors.npy"),
             "qa-minilm-100k-10c73a9dad78-M16-efc200-sq8.qann"),
    "480k": ("gen-v1-s0-480000x768.npy",
             "qa-synthetic-480k-768d-273f0e1057df-M16-efc128-rabitq3.qann"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100k,480k")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", default=CACHE, help="where the cached indexes are (only read)")
    a = ap.parse_args()
    for size in a.sizes.split(","):
        vec_path, cached = SETS[size]
        x = np.load(os.path.join(a.cache, vec_path), mmap_mode="r")
        x = quantann.index.normalize(np.asarray(x, np.float32)) if size == "100k" else np.asarray(x, np.float32)
        tree = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            cell_order(x)
            tree.append(time.perf_counter() - t0)
        out = {"size": size, "n": len(x), "d": x.shape[1], "tree_s": sorted(tree)[len(tree) // 2],
               "tree_s_all": [round(t, 2) for t in tree]}
        path = os.path.join(a.cache, cached)
        if os.path.exists(path):
            idx = quantann.open(path, store="pread")
            t0 = time.perf_counter()
            idx.order_rows("cells")  # reads every vector, builds the tree, relabels
            out["order_rows_s"] = time.perf_counter() - t0
            meta = path + ".json"
            if os.path.exists(meta):
                with open(meta) as f:
                    out["cached_build_s"] = json.load(f)["build_s"]
                out["order_share_of_build"] = out["order_rows_s"] / out["cached_build_s"]
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
