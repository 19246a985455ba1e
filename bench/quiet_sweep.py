"""A warm k=10 sweep of the main contenders on a quiet machine (the full suite ran under
load 5-8, which made its sweep rows incomparable across methods). Same cached indexes,
same runner, 3 repeats; writes bench/results/minilm-100k-quiet-k10.json and the plot
bench/plots/minilm-100k-recall-qps-k10-quiet.png.
    python -m bench.quiet_sweep"""
import os

from bench import peers
from bench.datasets import minilm
from bench.peers import Faiss, Hnswlib, Quantann, Usearch
from bench.report import plot_recall_qps
from bench.runner import machine, run_sweep, save, single_thread

peers.LEAN["on"] = True
single_thread()
ds = minilm()
for path in os.listdir("bench/cache"):  # warm: every cached quantann file in the page cache
    if path.startswith("qa-minilm-100k") and path.endswith(".qann"):
        with open(os.path.join("bench/cache", path), "rb") as f:
            while f.read(1 << 24):
                pass
methods = [Quantann("sq8", reranks=(2,)), Quantann("sq4", reranks=(2,)), Hnswlib(),
           Faiss("sq8", refine=True), Faiss("flat"), Usearch()]
rows = run_sweep(methods, ds, [10], repeats=3)
save("bench/results/minilm-100k-quiet-k10.json", {"dataset": ds.name, "machine": machine(), "rows": rows})
plot_recall_qps(rows, 10, "bench/plots/minilm-100k-recall-qps-k10-quiet.png",
                "minilm-100k: recall@10 vs QPS, one thread, quiet machine (warm)")
