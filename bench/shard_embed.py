"""Embedding throughput: one process against the sharded build's tasks (local pool, Ray).

    python bench/shard_embed.py --texts 1000 --rounds 2 --model minilm-q8_0.gguf

single: one Embedder with 2 threads over all texts (what `quantann build passages.jsonl
--model M` does); local: embed_texts on a pool of 2 processes, 1 thread each; ray: the same
tasks on a local Ray cluster of 2 CPUs (started before timing; its start is reported
apart). Modes interleaved per round; texts/s = median. Writes
bench/results/shard-embed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.datasets import MINILM, REPO  # noqa: E402
from quantann.jsonl import read_texts  # noqa: E402
from quantann.model.embedder import Embedder  # noqa: E402
from quantann.shard.build import embed_texts  # noqa: E402
from quantann.shard.runner import LocalRunner, RayRunner  # noqa: E402


def _ping(x):
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="GGUF encoder (quantann convert-model --type q8_0 -o ...)")
    p.add_argument("--texts", type=int, default=1000)
    p.add_argument("--start", type=int, default=0, help="first passage of minilm-100k")
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--modes", default="single,local,ray")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "shard-embed.json"))
    a = p.parse_args()
    texts = read_texts(os.path.join(MINILM, "passages.jsonl"), start=a.start, limit=a.texts)
    modes = a.modes.split(",")
    runners = {"local": LocalRunner(2)}
    ray_start = None
    if "ray" in modes:
        import ray
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        runners["ray"] = RayRunner()
        runners["ray"].map(_ping, [(1,)] * 2, progress=False)  # workers up before timing
        ray_start = time.perf_counter() - t
    rates = {m: [] for m in modes}
    ref = None
    for _ in range(a.rounds):
        for m in modes:
            t = time.perf_counter()
            if m == "single":
                with Embedder.open(a.model, n_threads=2) as emb:
                    out = np.concatenate([v for _, v in emb.embed_iter(texts)])
            else:
                out = embed_texts(texts, a.model, runners[m], block=a.block, threads=1, progress=False)
            rates[m].append(len(texts) / (time.perf_counter() - t))
            ref = out if ref is None else ref
            assert np.allclose(out, ref, atol=1e-5), m  # every mode embeds the same
            print(f"{m:7s} {rates[m][-1]:.1f} texts/s", flush=True)
    res = {"texts": len(texts), "block": a.block, "rounds": a.rounds, "ray_start_s": ray_start,
           "texts_per_s": {m: float(np.median(v)) for m, v in rates.items()}, "all": rates}
    print(json.dumps(res["texts_per_s"]), f"ray start {ray_start}")
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
