"""Precision report: quantized GGUF encoders against the float (F32) reference.

Per layer (hidden states after the embeddings and after each transformer layer, all tokens
of a fixed set of texts): mean per-token cosine, relative L2 error, max abs error.
Final embeddings of the minilm-100k queries: cosine to the float reference.
Retrieval overlap: recall@10 of brute-force search over the 100k base vectors with the
quantized query embeddings, against the top-10 found with the float reference embeddings.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .embedder import Embedder
from ..jsonl import read_texts


def default_dataset() -> Path | None:
    """The minilm-100k folder: $QUANTANN_MINILM, or shared/datasets/minilm-100k beside the repo."""
    env = os.environ.get("QUANTANN_MINILM")
    cands = [Path(env)] if env else []
    here = Path(__file__).resolve()
    cands += [p / "shared" / "datasets" / "minilm-100k" for p in here.parents]
    for c in cands:
        if (c / "queries.jsonl").exists():
            return c
    return None


def hidden_stats(ref: np.ndarray, q: np.ndarray) -> dict:
    """ref, q: (T, d) hidden states of the same tokens."""
    num = (ref * q).sum(1)
    den = np.linalg.norm(ref, axis=1) * np.linalg.norm(q, axis=1)
    cos = num / np.maximum(den, 1e-30)
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()),
            "rel_l2": float(np.linalg.norm(q - ref) / np.linalg.norm(ref)),
            "max_abs": float(np.abs(q - ref).max())}


def topk_ip(queries: np.ndarray, base: np.ndarray, k: int = 10, chunk: int = 20000) -> np.ndarray:
    """Exact top-k by inner product (unit vectors: cosine), best first."""
    nq = len(queries)
    best_s = np.full((nq, k), -np.inf, dtype=np.float32)
    best_i = np.zeros((nq, k), dtype=np.int64)
    for s in range(0, len(base), chunk):
        b = np.asarray(base[s:s + chunk], dtype=np.float32)
        sc = queries @ b.T
        kk = min(k, sc.shape[1])
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        ps = np.take_along_axis(sc, part, 1)
        alls = np.concatenate([best_s, ps], 1)
        alli = np.concatenate([best_i, part + s], 1)
        o = np.argsort(-alls, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(alls, o, 1), np.take_along_axis(alli, o, 1)
    return best_i


def overlap_at_k(a: np.ndarray, b: np.ndarray) -> float:
    k = a.shape[1]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


def run(models, reference=None, dataset=None, n_layer_texts: int = 100, n_queries: int = 1000,
        max_tokens: int = 128, threads: int | None = None, base_limit: int | None = None,
        progress=print) -> dict:
    """Builds the report as a dict (see format_markdown)."""
    tmp = None
    if reference is None:
        from .convert import convert
        tmp = tempfile.TemporaryDirectory(prefix="quantann-ref-")
        reference = Path(tmp.name) / "reference-f32.gguf"
        progress(f"converting the float reference from the installed model package -> {reference}")
        convert(None, reference, "f32")
    ds = Path(dataset) if dataset else default_dataset()
    if ds is None:
        raise FileNotFoundError("minilm-100k dataset not found: pass --dataset or set QUANTANN_MINILM")
    queries = read_texts(ds / "queries.jsonl", limit=n_queries)
    layer_texts = queries[:n_layer_texts]
    try:
        ref = Embedder.open(reference, n_threads=threads, max_tokens=max_tokens)
        rep = {"reference": str(reference), "dataset": str(ds), "max_tokens": max_tokens,
               "n_layer_texts": len(layer_texts), "n_queries": len(queries), "models": []}
        _, ref_hidden, lengths = ref.hidden_states(layer_texts)
        rep["n_layer_tokens"] = int(lengths.sum())
        ref_q = ref.embed(queries)
        ref.close()
        stored = ds / "queries.npy"
        if stored.exists():
            sq = np.load(stored).astype(np.float32)[:len(queries)]
            rep["reference_vs_dataset_cosine"] = float((sq * ref_q).sum(1).mean() /
                                                       np.mean(np.linalg.norm(sq, axis=1)))
        base = np.load(ds / "vectors.npy", mmap_mode="r")
        if base_limit:
            base = base[:base_limit]
        rep["n_base"] = int(len(base))
        progress(f"exact top-10 of {len(queries)} float queries over {len(base)} base vectors")
        ref_top = topk_ip(ref_q, base, 10)
        for path in models:
            progress(f"model {path}")
            m = Embedder.open(path, n_threads=threads, max_tokens=max_tokens)
            _, hid, _ = m.hidden_states(layer_texts)
            layers = []
            for li in range(hid.shape[0]):
                s = hidden_stats(ref_hidden[li], hid[li])
                s["layer"] = "embeddings" if li == 0 else f"blk.{li - 1}"
                layers.append(s)
            q = m.embed(queries)
            cos = (q * ref_q).sum(1)
            top = topk_ip(q, base, 10)
            rep["models"].append({
                "path": str(path), "type": m.weight_type, "file_bytes": os.path.getsize(path),
                "layers": layers,
                "embedding_cosine_mean": float(cos.mean()), "embedding_cosine_min": float(cos.min()),
                "recall_at_10_vs_float": overlap_at_k(top, ref_top),
            })
            m.close()
        return rep
    finally:
        if tmp is not None:
            tmp.cleanup()


def format_markdown(rep: dict) -> str:
    L = [f"reference: {rep['reference']} | dataset: {rep['dataset']} | max_tokens {rep['max_tokens']}",
         f"hidden states: {rep['n_layer_texts']} query texts ({rep['n_layer_tokens']} tokens); "
         f"embeddings and retrieval: {rep['n_queries']} queries over {rep['n_base']} base vectors"]
    if "reference_vs_dataset_cosine" in rep:
        L.append(f"float reference vs the dataset's stored query vectors: mean cosine "
                 f"{rep['reference_vs_dataset_cosine']:.6f}")
    L.append("")
    L.append("| model | type | MB | emb. cosine mean | min | recall@10 vs float |")
    L.append("|---|---|---:|---:|---:|---:|")
    for m in rep["models"]:
        L.append(f"| {Path(m['path']).name} | {m['type']} | {m['file_bytes'] / 1e6:.1f} | "
                 f"{m['embedding_cosine_mean']:.6f} | {m['embedding_cosine_min']:.6f} | "
                 f"{m['recall_at_10_vs_float']:.4f} |")
    for m in rep["models"]:
        L += ["", f"{Path(m['path']).name} ({m['type']}), hidden states vs float:", "",
              "| layer | cosine mean | cosine min | rel. L2 error | max abs error |",
              "|---|---:|---:|---:|---:|"]
        for s in m["layers"]:
            L.append(f"| {s['layer']} | {s['cosine']:.6f} | {s['cosine_min']:.6f} | "
                     f"{s['rel_l2']:.5f} | {s['max_abs']:.4f} |")
    return "\n".join(L)
