"""The sharded build: embed blocks of texts, train the quantizer once, build N shards.

    texts ──► blocks ──► tasks: Embedder (quantized encoder) ──► vectors, in order
    vectors ──► a sample ──► the quantizer (ranges trained ONCE, shared by every shard)
            ──► N contiguous row ranges ──► tasks: Index.build with that quantizer
            ──► N .qann files + the manifest (+ the texts, for a text index)

Tasks run on a Runner (runner.py): Ray tasks or a local process pool, the same functions.
Each task is deterministic (fixed blocks, one thread per task unless told, seeded level
draws), so a task retried after its worker died gives the same bytes as a clean run.
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from ..index import Index, as_matrix, normalize
from ..quantize import Quantizer
from .manifest import Manifest, ShardEntry
from .runner import fault_point

BLOCK = 512  # texts per embedding task
SAMPLE = 200_000  # rows the quantizer is trained on (Quantizer.train's own sample size)


def embed_block(model: str, texts: list, max_tokens, threads: int, i: int) -> np.ndarray:
    """Task: the (len(texts), dim) float32 embeddings of one block."""
    from ..model.embedder import Embedder
    fault_point("embed", i)
    with Embedder.open(model, n_threads=threads, max_tokens=max_tokens) as emb:
        return emb.embed(texts)


def build_shard(x: np.ndarray, quantizer: tuple, metric: str, M: int, ef_construction: int, seed: int,
                threads: int, i: int, row_order: str = "auto") -> bytes:
    """Task: the bytes of shard i's .qann file, built over rows `x` with the shared quantizer
    (row i of x is the shard's id i, whatever order its rows are stored in)."""
    fault_point("build", i)
    qz = Quantizer(*quantizer)
    idx = Index.build(x, quant=qz.kind, metric=metric, M=M, ef_construction=ef_construction, threads=threads,
                      seed=seed, quantizer=qz, row_order=row_order)
    with tempfile.TemporaryDirectory(prefix="quantann-shard-") as d:
        path = os.path.join(d, f"shard{i}.qann")
        idx.save(path)
        with open(path, "rb") as f:
            return f.read()


def embed_texts(texts: list, model: str, runner, block: int = BLOCK, max_tokens=None, threads: int = 1,
                progress: bool = True) -> np.ndarray:
    """(n, dim) float32 embeddings of `texts`, one task per block of `block` texts."""
    model = os.path.abspath(model)
    args = [(model, texts[s:s + block], max_tokens, threads, j) for j, s in enumerate(range(0, len(texts), block))]
    parts = runner.map(embed_block, args, "embed", [len(a[1]) for a in args], "text", progress, cpus=threads)
    return np.concatenate(parts)


def train_shared(x, quant: str, metric: str, seed: int = 0, clip=None) -> Quantizer:
    """The one quantizer of all shards, trained on a sample of every row (all rows up to
    SAMPLE: then it equals the quantizer a single index of `x` would train)."""
    n = x.shape[0]
    rows = np.arange(n) if n <= SAMPLE else np.sort(np.random.default_rng(seed).choice(n, SAMPLE, replace=False))
    xs = as_matrix(x[rows])
    if metric == "cosine":
        xs = normalize(xs)
    return Quantizer.train(quant, xs, clip=clip, seed=seed)


def shard_bounds(n: int, shards: int) -> np.ndarray:
    """Row boundaries of `shards` contiguous ranges of near-equal size."""
    return np.linspace(0, n, shards + 1).astype(np.int64)


def build_sharded(output: str, vectors, shards: int, runner, quant: str = "sq8", metric: str = "cosine",
                  M: int = 16, ef_construction: int = 200, seed: int = 0, threads: int = 1, clip=None,
                  progress: bool = True, row_order: str = "auto") -> Manifest:
    """Builds `shards` shard files beside `output` and writes the manifest `output`."""
    from .index import _entry, _stem, write_file
    n = vectors.shape[0]
    if not isinstance(shards, int) or not 1 <= shards <= n:
        raise ValueError(f"shards={shards} is out of range: it must be 1..{n} (the rows)")
    if vectors.ndim != 2 or vectors.shape[1] == 0:
        raise ValueError(f"vectors must be a 2-D array (n, d), got shape {vectors.shape}")
    qz = train_shared(vectors, quant, metric, seed, clip)
    bounds = shard_bounds(n, shards)
    params = (qz.kind, qz.d, qz.vmin, qz.scale)
    args = [(np.ascontiguousarray(vectors[lo:hi], np.float32), params, metric, M, ef_construction, seed, threads, i,
             row_order) for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]
    files = runner.map(build_shard, args, "build shards", [len(a[0]) for a in args], "vec", progress, cpus=threads)
    stem = _stem(output)
    entries = []
    for i, data in enumerate(files):
        name = f"{stem}.shard{i}.qann"
        write_file(os.path.join(os.path.dirname(os.path.abspath(output)), name), data)
        entries.append(_entry(output, name, ShardEntry(name, 0, "rows", int(bounds[i]), 0, 0)))
    m = Manifest(qz.d, metric, quant, n, n, entries)
    write_file(output, m.to_json().encode())
    return m


def write_texts(output: str, texts: list, model: str, fields: list | None = None) -> None:
    """The texts (and their other JSONL fields) beside the manifest (OUTPUT.texts), ids =
    rows, with the model's path relative to it: `search --text` and `serve` find both as
    for a single text index."""
    from ..text import TextStore, sidecar
    rel = os.path.relpath(os.path.abspath(model), os.path.dirname(os.path.abspath(output)))
    TextStore.write(sidecar(output), dict(enumerate(texts)), rel,
                    dict(enumerate(fields)) if fields else None)


def log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, file=sys.stderr)
