"""Benchmark data: the real minilm-100k set, its prefixes, and a deterministic generator
of clustered, embedding-like vectors for the on-device reference scenario (480K x 768).

Every dataset is unit-norm float32 with the cosine metric, the queries are held apart
from the base set, and the ground truth is exact brute force on exactly the float32
vectors the indexes are given (cached next to the data).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the default data set: ../shared beside the repository (override with --data)
MINILM = os.path.normpath(os.path.join(REPO, "..", "shared", "datasets", "minilm-100k"))
CACHE = os.path.join(REPO, "bench", "cache")


@dataclass
class Dataset:
    name: str
    base: np.ndarray  # float32 (n, d), unit norm
    queries: np.ndarray  # float32 (nq, d), unit norm
    truth: np.ndarray  # int64 (nq, >= 100) exact nearest base rows, best first
    metric: str = "cosine"
    note: str = ""

    @property
    def n(self) -> int:
        return self.base.shape[0]

    @property
    def dim(self) -> int:
        return self.base.shape[1]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    """Exact top-k rows by inner product (unit vectors: cosine), best first (BLAS)."""
    from quantann.evaluate import exact_knn
    chunks = (base[s:s + chunk] for s in range(0, len(base), chunk))
    return exact_knn(chunks, np.ascontiguousarray(queries, np.float32), k, "ip")


def _cached_truth(key: str, base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"truth-{key}-k{k}.npy")
    if os.path.exists(path):
        return np.load(path)
    t = exact_topk(base, queries, k)
    np.save(path, t)
    return t


def minilm(subset: int | None = None, data_dir: str = MINILM, queries: int | None = None) -> Dataset:
    """minilm-100k (real all-MiniLM-L6-v2 embeddings, 384-d), or its first `subset` rows."""
    base = np.load(os.path.join(data_dir, "vectors.npy"), mmap_mode="r")
    q = np.load(os.path.join(data_dir, "queries.npy"))
    n = base.shape[0] if subset is None else min(subset, base.shape[0])
    x = _unit(base[:n])
    qq = _unit(q[:queries] if queries else q)
    key = f"{os.path.basename(os.path.normpath(data_dir))}-{n}-{len(qq)}"
    truth = _cached_truth(key, x, qq, 100)
    name = "minilm-100k" if n == base.shape[0] else f"minilm-{n // 1000}k"
    return Dataset(name, x, qq, truth, note=f"{data_dir}, rows [0, {n})")


# ---- the generator ------------------------------------------------------------------

GEN_VERSION = 1


def _structure(d: int, seed: int, n_topics: int, n_clusters: int, rank: int):
    """The fixed part of the generator: a shared offset (sentence embeddings are
    anisotropic: they share a mean direction), a low-rank subspace with a decaying
    spectrum, topics, clusters within topics, and Zipf-like cluster sizes."""
    rank = min(rank, d)
    rng = np.random.default_rng([seed, GEN_VERSION, 0])
    mean = rng.standard_normal(d).astype(np.float32)
    mean *= 1.0 / np.linalg.norm(mean)
    basis, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    basis = basis.T.astype(np.float32)  # (rank, d), orthonormal rows
    spectrum = (1.0 / (1.0 + np.arange(rank)) ** 0.4).astype(np.float32)
    topics = rng.standard_normal((n_topics, rank)).astype(np.float32) * spectrum
    parent = rng.integers(0, n_topics, n_clusters)
    centres = topics[parent] + 0.55 * rng.standard_normal((n_clusters, rank)).astype(np.float32) * spectrum
    weights = 1.0 / (1.0 + np.arange(n_clusters)) ** 0.7
    weights = rng.permutation(weights / weights.sum())
    return mean, basis, spectrum, centres, weights


def clustered(n: int, d: int = 768, seed: int = 0, n_topics: int = 100, n_clusters: int = 4000,
              rank: int = 128, chunk: int = 32768, stream: int = 1) -> np.ndarray:
    """n unit-norm float32 vectors of dimension d with clustered, embedding-like structure:
    topics > clusters (Zipf-sized) > points, concentrated in a low-rank subspace around a
    shared mean direction, plus isotropic noise. Deterministic in (n, d, seed): row i
    depends only on (seed, stream, i // chunk), so a smaller n is a prefix of a larger
    one. stream=1 is the base set, stream=2 the queries."""
    mean, basis, spectrum, centres, weights = _structure(d, seed, n_topics, n_clusters, rank)
    out = np.empty((n, d), np.float32)
    for c0 in range(0, n, chunk):
        m = min(chunk, n - c0)
        rng = np.random.default_rng([seed, GEN_VERSION, stream, c0 // chunk])
        cl = rng.choice(len(centres), size=chunk, p=weights)
        local = 1.0 * rng.standard_normal((chunk, len(spectrum))).astype(np.float32) * spectrum
        # the whole chunk through the matmul, then the prefix: BLAS picks its kernel by shape,
        # so an m-row product may round a row differently from the chunk-row one
        x = ((centres[cl] + local) @ basis + mean)[:m]
        x += 0.055 * rng.standard_normal((chunk, d)).astype(np.float32)[:m]
        out[c0:c0 + m] = x
    return _unit(out)


def synthetic(n: int, d: int = 768, nq: int = 1000, seed: int = 0, cache: bool = True) -> Dataset:
    """The generated scenario: n base vectors, nq queries from the same distribution (a
    separate random stream), exact top-100 truth. Cached under bench/cache/."""
    tag = f"gen-v{GEN_VERSION}-s{seed}-{n}x{d}"
    path = os.path.join(CACHE, tag + ".npy")
    if cache and os.path.exists(path):
        base = np.load(path, mmap_mode="r")
    else:
        base = clustered(n, d, seed)
        if cache:
            os.makedirs(CACHE, exist_ok=True)
            np.save(path + ".tmp.npy", base)
            os.replace(path + ".tmp.npy", path)
    q = clustered(nq, d, seed, stream=2)
    truth = _cached_truth(f"{tag}-q{nq}", np.asarray(base), q, 100)
    name = f"synthetic-{n // 1000}k-{d}d"
    return Dataset(name, np.asarray(base), q, truth,
                   note=f"bench.datasets.clustered(n={n}, d={d}, seed={seed}), generator v{GEN_VERSION}")


def fingerprint(x: np.ndarray) -> str:
    """A short digest of an array (to tie cached indexes to their data)."""
    h = hashlib.sha1()
    h.update(str(x.shape).encode())
    step = max(1, x.shape[0] // 64)
    h.update(np.ascontiguousarray(x[::step]).tobytes())
    return h.hexdigest()[:12]
