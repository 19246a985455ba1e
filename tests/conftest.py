import numpy as np
import pytest

from quantann.demo import BUILTIN


@pytest.fixture(scope="session")
def real():
    """4,000 real passage embeddings (384-d, unit norm) and 100 held-apart queries."""
    x = np.load(BUILTIN / "vectors.npy")[:4000].astype(np.float32)
    q = np.load(BUILTIN / "queries.npy")[:100].astype(np.float32)
    return x, q


def clustered(n, d, seed, centers=20):
    """Clustered synthetic data with uneven scales per dimension (not unit norm)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d)).astype(np.float32) * 3
    scale = rng.uniform(0.2, 2.0, size=d).astype(np.float32)
    x = c[rng.integers(0, centers, n)] + rng.normal(size=(n, d)).astype(np.float32)
    return (x * scale).astype(np.float32)


@pytest.fixture(scope="session")
def synth():
    x = clustered(3000, 72, seed=1)
    q = clustered(60, 72, seed=2)
    return x, q


def brute(x, q, k, metric):
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "l2":
        d = (q ** 2).sum(1)[:, None] + (x ** 2).sum(1)[None, :] - 2 * q @ x.T
    else:
        d = -(q @ x.T)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def recall(found, truth):
    k = truth.shape[1]
    return np.mean([len(set(map(int, f[:k])) & set(map(int, t))) / k for f, t in zip(found, truth)])
