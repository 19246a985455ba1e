"""The benchmark suite (bench/, outside the package): the generator and an end-to-end quick run."""
import json
import os

import numpy as np
import pytest

from bench.datasets import MINILM, clustered, exact_topk


def test_generator_is_deterministic_and_prefix_stable():
    a = clustered(5000, 96, seed=7)
    b = clustered(5000, 96, seed=7)
    assert a.dtype == np.float32 and a.shape == (5000, 96)
    assert np.array_equal(a, b)
    assert np.array_equal(clustered(1000, 96, seed=7), a[:1000])
    assert not np.array_equal(clustered(1000, 96, seed=8), a[:1000])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_generator_is_clustered_not_iid():
    x = clustered(8000, 128, seed=1)
    q = clustered(100, 128, seed=1, stream=2)
    nn = exact_topk(x, q, 10)
    near = (q[:, None, :] * x[nn]).sum(-1)
    rand = q @ x[:2000].T
    # neighbours are far closer than random pairs (iid Gaussian: both ~0 at this d)
    assert near[:, 0].mean() > rand.mean() + 3 * rand.std()
    g = np.random.default_rng(0).standard_normal((8000, 128)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    gq = g[:100]
    gn = np.sort(gq @ g[100:].T, axis=1)[:, -1]
    assert near[:, 0].mean() > gn.mean() + 0.2
    # a few dominant directions (low-rank, anisotropic), unlike an iid cloud
    s = np.linalg.svd(x[:2000] - x[:2000].mean(0), compute_uv=False)
    assert (s[:10] ** 2).sum() / (s ** 2).sum() > 0.2


@pytest.mark.skipif(not os.path.isdir(MINILM), reason=f"minilm-100k not present at {MINILM}")
def test_bench_quick_end_to_end(tmp_path):
    pytest.importorskip("bench._lazy", reason="bench._lazy is not built: run `python bench/setup_lazy.py`")
    from bench import run
    out = tmp_path / "r.json"
    run.main(["--quick", "--subset", "2000", "--k", "10", "--queries", "20", "--lean",
              "--cold-queries", "5", "--rounds", "1", "--json", str(out), "--out", str(tmp_path)])
    res = json.loads(out.read_text())
    names = {r["method"] for r in res["rows"]}
    for want in ("quantann sq8", "quantann sq4", "quantann none", "hnswlib float32 (RAM)",
                 "FAISS HNSWSQ8 + RefineFlat", "usearch i8", "exact brute force (numpy/BLAS, RAM)",
                 "lazy float HNSW, cache 10% of vectors"):
        assert want in names
    for r in res["rows"]:
        assert 0 <= r["recall"] <= 1 and r["qps"] > 0 and r["memory_bytes"] > 0
        assert r["repeats"] == 2 and len(r["latencies_ms"]) == r["queries"]
    exact = [r for r in res["rows"] if r["family"] == "exact"][0]
    assert exact["recall"] == 1.0
    lazy = [r for r in res["rows"] if r["method"] == "lazy float HNSW, cache 10% of vectors"]
    assert all(r["vectors_read"] > 0 and r["store_reads"] >= 1 for r in lazy)
    q = [r for r in res["rows"] if r["method"] == "quantann sq4"]
    assert all(r["store_reads"] == 1 for r in q if r["params"]["rerank"] > 0)
    assert "recall95_vs_hnswlib" in res["headline"]
