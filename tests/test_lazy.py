"""The lazy-loading baseline (a benchmark peer, bench/lazy/): a resumable float HNSW
search over an LRU vector cache. Its extension bench._lazy is built by
`python bench/setup_lazy.py` (`make test` does)."""
import numpy as np
import pytest

import quantann
from bench.datasets import clustered, exact_topk
from bench.lazy import LazyIndex

_lazy = pytest.importorskip("bench._lazy", reason="bench._lazy is not built: run `python bench/setup_lazy.py`")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    x = clustered(3000, 64, seed=3)
    q = clustered(60, 64, seed=3, stream=2)
    idx = quantann.Index.build(x, quant="none", metric="cosine", M=8, ef_construction=100, threads=2)
    path = str(tmp_path_factory.mktemp("lazy") / "none.qann")
    idx.save(path)
    return x, q, path


def test_full_cache_matches_in_memory_float_search(small):
    x, q, path = small
    mem = quantann.open(path, store="memory")
    want, wd = mem.search(q, k=10, ef=48, rerank=0)
    lz = LazyIndex.open(path, cache_fraction=1.0)
    got, gd = lz.search(q, k=10, ef=48)
    assert np.array_equal(got.astype(np.uint64), want)
    np.testing.assert_allclose(gd, wd, rtol=0, atol=1e-6)
    # every vector read at most once: the cache never evicts
    st = lz.cache_stats()
    assert st["evictions"] == 0 and st["misses"] == st["used"] <= len(x)
    # warm: a second pass reads nothing
    lz.search(q, k=10, ef=48)
    assert sum(s.vectors_read for s in lz.last_stats) == 0


@pytest.mark.parametrize("frac", [0.1, 0.02])
def test_small_cache_same_results_and_recall(small, frac):
    x, q, path = small
    truth = exact_topk(x, q, 10)
    lz = LazyIndex.open(path, cache_fraction=1.0)
    full, _ = lz.search(q, k=10, ef=64)
    small_lz = LazyIndex.open(path, cache_fraction=frac)
    got, _ = small_lz.search(q, k=10, ef=64)
    # the search is the same walk whatever the cache holds: only the reads differ
    assert np.array_equal(got, full)
    rec = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(got, truth)])
    assert rec > 0.9
    st = small_lz.cache_stats()
    assert st["used"] == small_lz.cap and st["evictions"] > 0
    assert sum(s.store_reads for s in small_lz.last_stats) > len(q)  # several fetch rounds per query
    assert all(s.vectors_read > 0 for s in small_lz.last_stats)


def test_memory_fraction_sizing(small):
    x, q, path = small
    lz = LazyIndex.open(path, memory_fraction=0.5)
    frac = lz.memory()["total"] / lz.float_bytes()
    assert 0.45 < frac <= 0.501


def test_cache_too_small_rejected(small):
    x, q, path = small
    g = quantann.open(path).graph
    with pytest.raises(ValueError):
        _lazy.LazySearcher(g.as_tuple(None), 1, 64, 3, np.zeros(10**6, np.uint8), np.zeros(64, np.int32))
