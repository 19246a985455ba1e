"""sq8's error bound (kernel/codec/sq8.c): |estimated - exact| distance <= the bound for every
vector inside the trained range, under every metric; rerank="auto" over sq8 codes reads only
the candidates the bound cannot rule out, and gives the same ids and distances as reading
them all."""
import numpy as np
import pytest

from quantann import Index, _kernel
from quantann.constants import CODECS, METRICS
from quantann.quantize import Quantizer

from test_rabitq import DATA, minilm10k, recall  # noqa: F401 (a fixture)


def dists_and_bounds(qz, metric, q, codes):
    norms = None
    if metric == METRICS["l2"]:
        norms = np.empty(len(codes), np.float32)
        _kernel.code_norms(CODECS["sq8"], qz.d, qz.vmin, qz.scale, codes, norms)
    est = np.frombuffer(_kernel.codec_distances(CODECS["sq8"], "ref", metric, qz.d, qz.vmin, qz.scale, q, codes,
                                                norms, True), np.float32)
    b = np.frombuffer(_kernel.codec_bounds(CODECS["sq8"], metric, qz.d, qz.vmin, qz.scale, q, codes), np.float32)
    return est, b


@pytest.mark.parametrize("metric", sorted(set(METRICS.values())))
@pytest.mark.parametrize("d", [7, 96, 384])
def test_bound_holds_inside_the_range(metric, d):
    rng = np.random.default_rng(d + metric)
    x = (rng.normal(size=(3000, d)) * rng.uniform(0.1, 3, size=d) + rng.normal(size=d)).astype(np.float32)
    qz = Quantizer.train("sq8", x, clip=0.0)  # every row inside the range
    codes = qz.encode(x)
    x64 = x.astype(np.float64)
    for q in rng.normal(size=(8, d)).astype(np.float32):
        est, b = dists_and_bounds(qz, metric, q, codes)
        exact = ((x64 - q) ** 2).sum(1) if metric == METRICS["l2"] else 1 - x64 @ q
        assert (np.abs(est - exact) <= b).all(), np.max(np.abs(est - exact) / b)


def test_bound_is_tight_enough_on_embeddings():
    x = np.load(DATA / "vectors.npy", mmap_mode="r")[:5000].astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    qz = Quantizer.train("sq8", x)
    codes = qz.encode(x)
    inside = []
    for q in x[:20] + 0.01:
        q = (q / np.linalg.norm(q)).astype(np.float32)
        est, b = dists_and_bounds(qz, METRICS["ip"], q, codes)
        exact = 1 - x.astype(np.float64) @ q
        inside.append(np.abs(est - exact) <= b)
        assert b.max() < 0.02  # under 1 % of the cosine distance's range [0, 2]
    assert np.mean(inside) > 0.99  # the clipped outliers (0.05% per side) are the exceptions


def test_rerank_auto_same_answers_fewer_reads(minilm10k, tmp_path):  # noqa: F811
    x, q, truth = minilm10k
    idx = Index.build(x, quant="sq8", M=16, seed=0)
    ids4, d4 = idx.search(q, k=10, ef=64, rerank=4)
    reads4 = [s.vectors_read for s in idx.last_stats]
    ids, d = idx.search(q, k=10, ef=64, rerank="auto")
    reads = [s.vectors_read for s in idx.last_stats]
    assert np.array_equal(ids, ids4) and np.array_equal(d, d4)
    assert recall(ids, truth) >= 0.95
    assert min(reads) >= 10 and np.mean(reads) < 0.6 * np.mean(reads4)
    # k=100: the pool is at least rerank 4's (4k, over ef=64), so the answers are its answers
    i100, d100 = idx.search(q[:30], k=100, ef=64, rerank=4)
    a100, e100 = idx.search(q[:30], k=100, ef=64, rerank="auto")
    assert np.array_equal(a100, i100) and np.array_equal(e100, d100)
    idx.save(tmp_path / "a.qann")  # and from the file
    ids2, d2 = Index.open(tmp_path / "a.qann").search(q, k=10, ef=64, rerank="auto")
    assert np.array_equal(ids, ids2) and np.array_equal(d, d2)
