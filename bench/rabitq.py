"""RaBitQ codes + rerank auto against hnswlib, FAISS's RaBitQ indexes and usearch, on
minilm-100k and the 480K x 768 synthetic set (bench/datasets.py: clustered).

    python -m bench.rabitq --dataset D --build-only          # build the cached indexes (both cores)
    taskset -c 1 python -m bench.rabitq --dataset D [--queries Q] [--repeats R] [--json PATH]
    taskset -c 1 python -m bench.rabitq --dataset D --graph-layout   # packed vs int32 level 0

D: minilm-100k or synthetic-480k. One query per call, one thread, k=10. Each row:
recall@10, QPS (median of R passes; every method's passes interleaved, repeat by repeat),
full vectors read per query, counted memory as a fraction of the float32 vectors
(quantann: index.memory() of the opened file, the vectors stay on disk; peers: their
serialised index, + the float vectors for FAISS RefineFlat). Indexes are built once and
cached in bench/cache/. The summary lines check the issue's must-show at recall@10 0.99."""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from .build import quantann_files
from .datasets import CACHE, minilm, synthetic
from .peers import Hnswlib, Usearch, _cached_build, _key

K = 10
TARGET_RECALL, TARGET_MEMORY, TARGET_SPEEDUP = 0.99, 0.15, 1.3

# per data set: the quantann graph (M, ef_construction; built once in float space, shared by
# the codes), the codes and reranks, the peers' graph parameters, the ef and nprobe grids.
# Memory under 15% of the float bytes: at d=384, rabitq3 (160 B) + M=12 packed links (51 B);
# at d=768, rabitq3 (304 B) + M=16 packed links (76 B).
DATASETS = {
    "minilm-100k": dict(M=12, efc=200, quants=(("rabitq2", ("auto", 1, 2)), ("rabitq3", ("auto", 1, 2))),
                        peer_M=16, peer_efc=200, nlist=512, flat_queries=None,
                        efs=(32, 48, 64, 96, 128, 192), nprobes=(8, 16, 32, 64, 128)),
    "synthetic-480k": dict(M=16, efc=128, quants=(("rabitq2", ("auto", 1, 2)), ("rabitq3", ("auto", 1, 2))),
                           peer_M=16, peer_efc=128, nlist=1024, flat_queries=100,
                           efs=(48, 64, 96, 128, 192, 256), nprobes=(8, 16, 32, 64, 128)),
}


def load_dataset(name, queries):
    if name == "minilm-100k":
        return minilm(queries=queries)
    return synthetic(480_000, 768, nq=queries)


class QA_:
    """quantann over a cached .qann (pread store), rerank auto or a fixed factor."""

    def __init__(self, quant, M, efc, rerank, efs, layout="packed", quants=None):
        """layout: level 0 "packed" (the default), "int32" lists, or "linked" records (each
        node's packed list and its code together: kernel/index/index.h, an experiment)."""
        self.quant, self.M, self.efc, self.rerank, self.layout = quant, M, efc, rerank, layout
        self.quants = quants or (quant,)  # built together: one graph for all of them
        self.name = f"quantann {quant} M={M} rerank={rerank}" + ("" if layout == "packed" else f" {layout} level 0")
        self.grid = [{"ef": ef} for ef in efs]

    def load(self, ds, log=print):
        import quantann
        path = quantann_files(ds, self.M, self.efc, quants=self.quants, threads=2, log=log)[self.quant]
        self.idx = quantann.open(path, store="pread")
        self.idx.compact_graph = self.layout != "int32"
        self.idx._linked0 = self.layout == "linked"
        if self.quant.startswith("rabitq") and self.rerank == "auto" and not self.idx.quantizer.scale[0]:
            # a file cached before the build calibrated rerank auto's bound: calibrate now
            log(f"[calibrate] {self.name}: bound multiplier {self.idx.calibrate_bound():.3f}")
        self.idx.search(ds.queries[:200], k=K, ef=64, rerank=2)  # the read rows in the page cache

    def set(self, p):
        self.p = p

    def query(self, q, k):
        return self.idx.search(q, k=k, ef=self.p["ef"], rerank=self.rerank)[0][0]

    def reads(self):
        return self.idx.last_stats[0].vectors_read

    def memory(self):
        return self.idx.memory()["total"]


class Graph_:
    """An ef grid over hnswlib / usearch (bench.peers)."""

    def __init__(self, inner, efs):
        self.inner, self.name, self.grid = inner, inner.name, [{"ef": ef} for ef in efs]

    def load(self, ds, log=print):
        self.inner.load(ds, log=log)

    def set(self, p):
        self.inner.set(p)

    def query(self, q, k):
        return self.inner.query(q, k)

    def memory(self):
        return self.inner.memory()


class FaissRaBitQ:
    """FAISS's RaBitQ indexes, `bits` per dimension, 8-bit queries (qb), L2 on unit vectors
    (ranks as cosine): kind "hnsw" (IndexHNSWRaBitQ), "ivf" (IndexIVFRaBitQ over a flat
    coarse quantizer, nlist lists, nprobe swept) or "flat" (IndexRaBitQ, a scan of every
    code). refine: IndexRefineFlat (the float vectors in RAM) rescoring k*2."""

    def __init__(self, kind, bits=4, M=16, efc=200, nlist=1024, refine=False, grid=(), max_queries=None):
        self.kind, self.bits, self.M, self.efc, self.nlist, self.refine = kind, bits, M, efc, nlist, refine
        label = {"hnsw": f"HNSWRaBitQ M={M}", "ivf": f"IVFRaBitQ nlist={nlist}", "flat": "RaBitQ (flat scan)"}[kind]
        self.name = f"FAISS {label} {bits}-bit" + (" + RefineFlat x2" if refine else "")
        self.grid = list(grid) or [{}]
        self.max_queries = max_queries

    def _path(self, ds):
        tag = {"hnsw": f"hnsw-{_key(ds, self.M, self.efc)}", "ivf": f"ivf{self.nlist}-{_key(ds, 0, 0)}",
               "flat": f"flat-{_key(ds, 0, 0)}"}[self.kind]
        return os.path.join(CACHE, f"faiss-rabitq{self.bits}-{tag}.index")

    def load(self, ds, log=print):
        import faiss
        path = self._path(ds)

        def build(p):
            faiss.omp_set_num_threads(2)
            if self.kind == "hnsw":
                ix = faiss.IndexHNSWRaBitQ(ds.dim, self.M, self.bits)
                ix.hnsw.efConstruction = self.efc
            elif self.kind == "ivf":
                ix = faiss.IndexIVFRaBitQ(faiss.IndexFlatL2(ds.dim), ds.dim, self.nlist, faiss.METRIC_L2, True,
                                          self.bits)
            else:
                ix = faiss.IndexRaBitQ(ds.dim, faiss.METRIC_L2, self.bits)
            ix.train(ds.base)
            ix.add(ds.base)
            faiss.write_index(ix, p)
        _cached_build(path, build, log)
        faiss.omp_set_num_threads(1)
        self.base = faiss.read_index(path)
        if self.kind == "hnsw":
            faiss.downcast_index(self.base.storage).qb = 8
        else:
            self.base.qb = 8
        self.bytes = os.path.getsize(path)
        self.ix = self.base
        if self.refine:
            self.xb = np.ascontiguousarray(ds.base, np.float32)
            self.ix = faiss.IndexRefineFlat(self.base, faiss.swig_ptr(self.xb))
            self.ix.k_factor = 2.0
            self.bytes += self.xb.nbytes

    def set(self, p):
        if "ef" in p:
            self.base.hnsw.efSearch = p["ef"]
        if "nprobe" in p:
            self.base.nprobe = p["nprobe"]

    def query(self, q, k):
        return self.ix.search(q[None, :], k)[1][0]

    def memory(self):
        return self.bytes


def run_pass(m, p, queries, truth):
    m.set(p)
    n = min(len(queries), getattr(m, "max_queries", None) or len(queries))
    found, reads = [], []
    t0 = time.perf_counter()
    for q in queries[:n]:
        found.append(np.asarray(m.query(q, K), np.int64))
        if hasattr(m, "reads"):
            reads.append(m.reads())
    dt = time.perf_counter() - t0
    rec = np.mean([len(set(f.tolist()) & set(t[:K].tolist())) / K for f, t in zip(found, truth)])
    return rec, n / dt, (float(np.mean(reads)) if reads else None)


def methods_for(name, cfg, peers, graph_layout):
    out = []
    quants = tuple(q for q, _ in cfg["quants"])
    if graph_layout:  # the same graph and codes, the level-0 layouts, one rerank
        return [QA_(quants[-1], cfg["M"], cfg["efc"], "auto", cfg["efs"], layout=lay, quants=quants)
                for lay in ("packed", "linked", "int32")]
    if "quantann" in peers:
        for quant, reranks in cfg["quants"]:
            out += [QA_(quant, cfg["M"], cfg["efc"], rr, cfg["efs"], quants=quants) for rr in reranks]
    M, efc = cfg["peer_M"], cfg["peer_efc"]
    if "hnswlib" in peers:
        hn = Hnswlib(M=M, efc=efc)
        hn.name = f"hnswlib float32 (RAM) M={M}"
        out.append(Graph_(hn, cfg["efs"]))
    if "faiss" in peers:
        probes = [{"nprobe": p} for p in cfg["nprobes"]]
        out += [FaissRaBitQ("ivf", 4, nlist=cfg["nlist"], grid=probes),
                FaissRaBitQ("ivf", 4, nlist=cfg["nlist"], grid=probes, refine=True),
                FaissRaBitQ("flat", 4, max_queries=cfg["flat_queries"])]
    if "faiss-hnsw" in peers:  # a long build: at 480K over two shared cores, hours
        out.append(FaissRaBitQ("hnsw", 4, M, efc, grid=[{"ef": ef} for ef in cfg["efs"]]))
    if "usearch" in peers:
        us = Usearch(M=M, efc=efc)
        us.name = f"usearch i8 M={M}"
        out.append(Graph_(us, cfg["efs"]))
    return out


def summary(rows):
    """The must-show, from one run's rows."""
    def best(pred):
        ok = [r for r in rows if pred(r)]
        return max(ok, key=lambda r: r["qps"]) if ok else None
    lines = []
    qa = best(lambda r: r["method"].startswith("quantann") and r["recall"] >= TARGET_RECALL
              and r["memory_fraction"] <= TARGET_MEMORY)
    hn = best(lambda r: r["method"].startswith("hnswlib") and r["recall"] >= TARGET_RECALL)
    if qa and hn:
        lines.append(f"recall>={TARGET_RECALL} & memory<={TARGET_MEMORY:.0%}: {qa['method']} {qa['params']} "
                     f"recall {qa['recall']:.4f} memory {qa['memory_fraction']:.1%} QPS {qa['qps']:.0f}; "
                     f"hnswlib {hn['params']} recall {hn['recall']:.4f} QPS {hn['qps']:.0f}: "
                     f"{qa['qps'] / hn['qps']:.2f}x (target {TARGET_SPEEDUP}x)")
    else:
        lines.append(f"no quantann row with recall>={TARGET_RECALL} and memory<={TARGET_MEMORY:.0%}" if not qa
                     else "hnswlib never reaches the recall")
    for r2 in (r for r in rows if r["method"].endswith("rerank=2") and r["recall"] >= TARGET_RECALL):
        auto = [r for r in rows if r["method"] == r2["method"].replace("rerank=2", "rerank=auto")
                and r["recall"] >= r2["recall"]]
        if auto:
            a = min(auto, key=lambda r: r["reads"])
            lines.append(f"{r2['method']} {r2['params']}: recall {r2['recall']:.4f} reading {r2['reads']:.0f}; "
                         f"auto {a['params']} recall {a['recall']:.4f} reading {a['reads']:.1f} per query")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="minilm-100k")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--peers", default="quantann,hnswlib,faiss,usearch",
                    help="methods to include (comma-separated; also faiss-hnsw: IndexHNSWRaBitQ)")
    ap.add_argument("--quants", help="only these of the configured codes (comma-separated)")
    ap.add_argument("--graph-layout", action="store_true",
                    help="quantann alone: level 0 packed, linked records, int32 lists")
    ap.add_argument("--build-only", action="store_true", help="build the cached indexes (both cores) and stop")
    ap.add_argument("--efs", help="only this ef grid (comma-separated), for a short run")
    a = ap.parse_args(argv)
    cfg = dict(DATASETS[a.dataset])
    if a.efs:
        cfg["efs"] = tuple(int(e) for e in a.efs.split(","))
    if a.quants:  # a subset of the configured codes (the others not built yet)
        cfg["quants"] = tuple(q for q in cfg["quants"] if q[0] in a.quants.split(","))
    ds = load_dataset(a.dataset, a.queries)
    fb = ds.n * ds.dim * 4
    methods = methods_for(a.dataset, cfg, set(a.peers.split(",")), a.graph_layout)
    for m in methods:
        t = time.time()
        m.load(ds, log=print)
        print(f"[load] {m.name} {time.time() - t:.0f} s", flush=True)
    if a.build_only:
        return
    res = {(m.name, i): [] for m in methods for i in range(len(m.grid))}
    for rep in range(a.repeats):  # interleaved: every method's grid once per repeat
        for m in methods:
            for i, p in enumerate(m.grid):
                res[m.name, i].append(run_pass(m, p, ds.queries, ds.truth))
        print(f"[repeat {rep + 1}/{a.repeats} done]", flush=True)
    rows = []
    for m in methods:
        for i, p in enumerate(m.grid):
            r = res[m.name, i]
            row = {"method": m.name, "params": p, "recall": r[0][0],
                   "queries": min(len(ds.queries), getattr(m, "max_queries", None) or len(ds.queries)),
                   "qps": float(np.median([x[1] for x in r])), "qps_all": [x[1] for x in r],
                   "reads": r[0][2], "memory_fraction": m.memory() / fb}
            rows.append(row)
            reads = "-" if row["reads"] is None else f"{row['reads']:.1f}"
            print(f"{row['method']:44s} {json.dumps(p):16s} recall@10={row['recall']:.4f} QPS={row['qps']:7.0f} "
                  f"reads={reads:>6} memory={row['memory_fraction']:.3f}", flush=True)
    lines = summary(rows)
    for line in lines:
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"dataset": ds.name, "n": ds.n, "dim": ds.dim, "queries": len(ds.queries), "k": K,
                       "repeats": a.repeats, "loadavg": os.getloadavg(), "rows": rows, "summary": lines}, f, indent=1)


if __name__ == "__main__":
    main()
