"""RaBitQ codes + rerank auto on minilm-100k against hnswlib, FAISS RaBitQ and usearch.

    python -m bench.rabitq --build-only                  # build the cached indexes (both cores)
    taskset -c 1 python -m bench.rabitq [--subset N] [--queries Q] [--repeats R] [--json PATH]

One query per call, one thread, k=10. Each row: recall@10, QPS (median of R passes; the
passes of all rows interleaved), full vectors read per query, and counted memory as a
fraction of the float32 vectors (quantann: index.memory() of the opened file, the
vectors stay on disk; peers: their serialised index, + the float vectors for FAISS
RefineFlat). Indexes are built once and cached in bench/cache/."""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from .build import quantann_files
from .datasets import CACHE, minilm
from .peers import Hnswlib, Usearch, _cached_build, _key

K = 10
# (quant, M, reranks): rabitq2 M=12 is the configuration under 15% of the float bytes
QA = [("rabitq2", 12, ("auto", 2)), ("rabitq3", 8, ("auto",)), ("rabitq4", 16, ("auto", 2)), ("sq4", 16, (2,))]
EFS = (48, 64, 96, 128, 192, 256)


class FaissRaBitQ:
    """FAISS IndexHNSWRaBitQ (L2 on unit vectors ranks as cosine), 4-bit codes, 8-bit queries;
    optionally IndexRefineFlat (float vectors in RAM) rescoring k*2."""

    def __init__(self, bits=4, M=16, efc=200, refine=False):
        self.bits, self.M, self.efc, self.refine = bits, M, efc, refine
        self.name = f"FAISS HNSWRaBitQ {bits}-bit M={M}" + (" + RefineFlat x2" if refine else "")

    def load(self, ds, log=print):
        import faiss
        path = os.path.join(CACHE, f"faiss-rabitq{self.bits}-{_key(ds, self.M, self.efc)}.index")

        def build(p):
            faiss.omp_set_num_threads(2)
            ix = faiss.IndexHNSWRaBitQ(ds.dim, self.M, self.bits)
            ix.hnsw.efConstruction = self.efc
            ix.train(ds.base)
            ix.add(ds.base)
            faiss.write_index(ix, p)
        _cached_build(path, build, log)
        faiss.omp_set_num_threads(1)
        self.base = faiss.read_index(path)
        faiss.downcast_index(self.base.storage).qb = 8
        self.bytes = os.path.getsize(path)
        self.ix = self.base
        if self.refine:
            self.xb = np.ascontiguousarray(ds.base, np.float32)
            self.ix = faiss.IndexRefineFlat(self.base, faiss.swig_ptr(self.xb))
            self.ix.k_factor = 2.0
            self.bytes += self.xb.nbytes

    def set(self, p):
        self.base.hnsw.efSearch = p["ef"]

    def query(self, q, k):
        return self.ix.search(q[None, :], k)[1][0]

    def memory(self):
        return self.bytes


class QA_:
    def __init__(self, quant, M, rerank):
        self.quant, self.M, self.rerank = quant, M, rerank
        self.name = f"quantann {quant} M={M} rerank={rerank}"

    def load(self, ds, log=print):
        import quantann
        path = quantann_files(ds, self.M, 200, quants=(self.quant,), log=log)[self.quant]
        self.idx = quantann.open(path, store="pread")
        self.idx.search(ds.queries[:200], k=K, ef=64, rerank=2)  # the read rows in the page cache

    def set(self, p):
        self.p = p

    def query(self, q, k):
        return self.idx.search(q, k=k, ef=self.p["ef"], rerank=self.rerank)[0][0]

    def reads(self):
        return self.idx.last_stats[0].vectors_read

    def memory(self):
        return self.idx.memory()["total"]


def fmt_reads(r):
    return "-" if r is None else f"{r:.1f}"


def run_pass(m, p, queries, truth):
    m.set(p)
    found, reads = [], []
    t0 = time.perf_counter()
    for q in queries:
        found.append(np.asarray(m.query(q, K), np.int64))
        if hasattr(m, "reads"):
            reads.append(m.reads())
    dt = time.perf_counter() - t0
    rec = np.mean([len(set(f.tolist()) & set(t[:K].tolist())) / K for f, t in zip(found, truth)])
    return rec, len(queries) / dt, (float(np.mean(reads)) if reads else None)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--subset", type=int)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--peers", default="hnswlib,faiss,usearch", help="peers to include (comma-separated)")
    ap.add_argument("--efs", default=",".join(map(str, EFS)), help="ef values (comma-separated)")
    ap.add_argument("--build-only", action="store_true", help="build the cached indexes (both cores) and stop")
    a = ap.parse_args(argv)
    ds = minilm(a.subset, queries=a.queries)
    fb = ds.n * ds.dim * 4
    methods = []
    for quant, M, reranks in QA:
        for rr in reranks:
            methods.append(QA_(quant, M, rr))
    hn = Hnswlib(M=16)
    hn.name = "hnswlib float32 (RAM) M=16"
    peers = set(a.peers.split(","))
    methods += [hn] if "hnswlib" in peers else []
    methods += [FaissRaBitQ(4, 16), FaissRaBitQ(4, 16, refine=True)] if "faiss" in peers else []
    methods += [Usearch(M=16)] if "usearch" in peers else []
    for m in methods:
        m.load(ds, log=print)
    if a.build_only:
        return
    rows = []
    for ef in (int(e) for e in a.efs.split(",")):
        res = {m.name: [] for m in methods}
        for _ in range(a.repeats):  # interleaved: every method once per repeat
            for m in methods:
                res[m.name].append(run_pass(m, {"ef": ef}, ds.queries, ds.truth))
        for m in methods:
            r = res[m.name]
            row = {"method": m.name, "ef": ef, "recall": r[0][0], "qps": float(np.median([x[1] for x in r])),
                   "reads": r[0][2], "memory_fraction": m.memory() / fb}
            rows.append(row)
            print(f"{row['method']:44s} ef={ef:4d} recall@10={row['recall']:.4f} QPS={row['qps']:7.0f} "
                  f"reads={fmt_reads(row['reads']):>6} "
                  f"memory={row['memory_fraction']:.3f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"dataset": ds.name, "n": ds.n, "queries": len(ds.queries), "k": K, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
