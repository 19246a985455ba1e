"""`quantann demo`: real passages, a quantized index next to a float32 one."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .budget import human
from .jsonl import read_texts

BUILTIN = Path(__file__).parent / "data" / "demo-10k"


def _texts(folder: Path, name: str) -> list[str]:
    for fn in (f"{name}.jsonl", f"{name}.jsonl.gz"):
        if (folder / fn).exists():
            return read_texts(folder / fn)
    return []


def _index(path: Path, vectors, quant: str, log):
    import quantann
    if path.exists():
        try:
            idx = quantann.open(path)
            if len(idx) == len(vectors):
                log(f"reusing {path}")
                return idx
        except quantann.QuantannError:
            pass
    log(f"building {quant} index of {len(vectors)} passages -> {path}")
    quantann.Index.build(vectors, quant=quant, metric="cosine", progress=sys.stderr.isatty()).save(path)
    return quantann.open(path)


def run_demo(data=None, workdir=None, quant="sq8", queries=200, show=3, out=print):
    from .evaluate import ground_truth, measure
    folder = Path(data) if data else BUILTIN
    if not (folder / "vectors.npy").exists():
        raise FileNotFoundError(f"{folder}: no vectors.npy (expected a folder like shared/datasets/minilm-100k)")
    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    q = np.load(folder / "queries.npy")[:queries].astype(np.float32)
    work = Path(workdir or os.environ.get("QUANTANN_CACHE", Path.home() / ".cache" / "quantann" / "demo"))
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{folder.resolve().name}-{len(vectors)}"

    def log(msg):
        print(msg, file=sys.stderr)

    x = np.asarray(vectors, np.float32)
    idx = _index(work / f"{tag}-{quant}.qann", x, quant, log)
    ref = _index(work / f"{tag}-none.qann", x, "none", log)
    truth = ground_truth(idx, q, 10)
    rows = [("float32 HNSW, all in RAM", measure(ref, q, truth, 10, 64, 0)),
            (f"{quant} codes + rerank x4 from disk", measure(idx, q, truth, 10, 64, 4)),
            (f"{quant} codes, no rerank", measure(idx, q, truth, 10, 64, 0))]
    ref_mem = ref.memory()["total"]  # its codes are the float32 vectors themselves
    out(f"\n{len(vectors)} passages x {idx.dim}-d ({folder}), {len(q)} queries, k=10, ef=64, one thread\n")
    out(f"{'index':<36} {'recall@10':>9} {'p50 ms':>8} {'p99 ms':>8} {'QPS':>7} {'memory':>10} {'of f32':>7} {'reads/q':>8}")
    for name, r in rows:
        out(f"{name:<36} {r['recall']:>9.4f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['qps']:>7.0f} "
            f"{human(r['memory_bytes']):>10} {r['memory_fraction']:>7.1%} {r['vectors_read_per_query']:>8.1f}")
    out(f"\n(float32 vectors: {human(idx.float_bytes())}; the float index holds {human(ref_mem)} in memory)")
    texts = _texts(folder, "passages")
    qtexts = _texts(folder, "queries")
    if texts and qtexts and show:
        ids, dist = idx.search(q[:show], k=3, ef=64, rerank=4)
        for i in range(min(show, len(q))):
            out(f"\nquery: {qtexts[i][:150]}")
            for rank, (j, d) in enumerate(zip(ids[i], dist[i])):
                out(f"  {rank + 1}. [{1 - d:.3f}] {texts[int(j)][:150]}")
