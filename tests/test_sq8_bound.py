"""sq8's error bound (kernel/codec/sq8.c): |estimated - exact| distance <= the bound for every
row given its residual |x - x^| (format 5), and without residuals for every vector inside the
trained range, under every metric; rerank="auto" over sq8 codes reads only the candidates the
bound cannot rule out, and gives the same ids and distances as reading them all (its
default where the residuals make that a guarantee)."""
from pathlib import Path

import numpy as np
import pytest

from quantann import Index, _kernel
from quantann.constants import CODECS, METRICS
from quantann.quantize import Quantizer

from test_rabitq import DATA, minilm10k, recall  # noqa: F401 (a fixture)

DATA_DIR = Path(__file__).parent / "data"


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


# ---- residuals (format 5): the bound for every row, clipped coordinates included -------

def test_bound_holds_for_every_row_with_residuals():
    """With each row's |x - x^| the bound holds for every row, the clipped outliers too
    (without them it holds only inside the trained range: some of these rows break it)."""
    x = np.load(DATA / "vectors.npy", mmap_mode="r")[:5000].astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[7, 3] = 0.9  # one coordinate far outside the range
    for metric in sorted(set(METRICS.values())):
        qz = Quantizer.train("sq8", x)
        codes, res = qz.encode_rows(x)
        assert res.shape == (len(x),) and (res >= 0).all() and res[7] > 0.5
        outside = []
        for q in x[:10] + 0.01:
            q = (q / np.linalg.norm(q)).astype(np.float32)
            exact = ((x.astype(np.float64) - q) ** 2).sum(1) if metric == METRICS["l2"] else 1 - x.astype(np.float64) @ q
            est, b_old = dists_and_bounds(qz, metric, q, codes)
            b = np.frombuffer(_kernel.codec_bounds(CODECS["sq8"], metric, qz.d, qz.vmin, qz.scale, q, codes, res),
                              np.float32)
            assert (np.abs(est - exact) <= b).all(), np.max(np.abs(est - exact) / b)
            outside.append((np.abs(est - exact) > b_old).sum())
        assert sum(outside) > 0  # the per-coordinate form is not a guarantee


def outlier_set(metric, seed=0):
    """400 rows of 16 dims and one more, `v`, with a coordinate far outside the range a 1 %
    clip trains; a query whose true nearest row is v while v's code puts it behind others
    by far more than the per-coordinate bound."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    v = np.zeros(16, np.float32)
    q = np.zeros(16, np.float32)
    if metric == "ip":
        v[0], v[1] = 40.0, -2.0
        q[0] = q[1] = 1.0  # q . v = 38, every other row < 7; v's code: q . v^ < 1
    else:
        # |q - v|^2 = 60^2 + 15 * 2.5^2, every other row > 97^2; v's code is clipped to the
        # edge of the range on dimension 0, where the rows clipped with it sit nearer q on the rest
        v[0], v[1:] = 40.0, -1.5
        q[0], q[1:] = 100.0, 1.0
    return x, v, q


def pool_rerank(idx, q, k, ef):
    """The exact top k of auto's candidate pool (its beam, ef >= 4k): the beam searched
    with k = ef, every candidate reranked."""
    ids, d = idx.search(q, k=ef, ef=ef, rerank=1)
    return ids[:, :k], d[:, :k]


def without_residuals(idx):
    """The index as a file without residuals (format < 5) searches it."""
    idx.residuals = None
    idx._reset_searchers()
    return idx


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_auto_finds_an_outlier_in_the_top_k(metric, tmp_path):
    x, v, q = outlier_set(metric)
    xs = np.vstack([x, v])
    idx = Index.build(xs, quant="sq8", metric=metric, M=8, clip=0.01, seed=0, threads=1)
    n, k = len(xs), 2
    pool_ids, pool_d = pool_rerank(idx, q, k, n)
    assert pool_ids[0, 0] == n - 1
    ids, d = idx.search(q, k=k, ef=n, rerank="auto")
    assert np.array_equal(ids, pool_ids) and np.array_equal(d, pool_d)
    assert idx.last_stats[0].vectors_read < n // 4
    idx.save(tmp_path / "o.qann")  # from the file (format 5), the same
    j = Index.open(tmp_path / "o.qann")
    assert j.file.format_version == 5 and np.array_equal(j.residuals, idx.residuals)
    assert np.array_equal(j.search(q, k=k, ef=n, rerank="auto")[0], pool_ids)
    # the per-coordinate bound (files without residuals) drops it
    assert n - 1 not in without_residuals(idx).search(q, k=k, ef=n, rerank="auto")[0]


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_add_keeps_the_guarantee(metric, tmp_path):
    """Rows added after the build (in memory, and to an opened file) get their residuals
    from the same encode: an added outlier is found too."""
    x, v, q = outlier_set(metric, seed=1)
    idx = Index.build(x, quant="sq8", metric=metric, M=8, seed=0, threads=1)  # trained without v
    idx.save(tmp_path / "b.qann")
    for index in (idx, Index.open(tmp_path / "b.qann")):
        index.add(v[None], threads=1)
        n = index.rows
        assert len(index.residuals) == n and index.residuals[-1] > 30
        ids, _ = index.search(q, k=2, ef=n, rerank="auto")
        assert ids[0, 0] == n - 1
        assert np.array_equal(ids, pool_rerank(index, q, 2, n)[0])
    idx.save(tmp_path / "c.qann")
    assert Index.open(tmp_path / "c.qann").search(q, k=2, ef=n, rerank="auto")[0][0, 0] == n - 1


def test_a_file_without_residuals_opens_with_the_old_bound():
    """A format-3 sq8 file (tests/data: the conformance base as main wrote it before format 5)
    opens, has no residuals, and auto searches it with the per-coordinate bound."""
    old = Index.open(DATA_DIR / "sq8-l2-format3.qann")
    assert old.file.format_version == 3 and old.residuals is None
    q = np.concatenate(list(old.vectors()))[:10] + 0.05
    ids, d = old.search(q, k=3, ef=48, rerank="auto")
    full = old.search(q, k=3, ef=48, rerank=16)
    assert np.array_equal(ids, full[0]) and np.array_equal(d, full[1])
    reads = [s.vectors_read for s in old.last_stats]
    assert min(reads) >= 3 and max(reads) < 48


def test_auto_equals_the_pool_rerank_on_embeddings_with_outliers():
    """minilm rows, every 50th with one coordinate 10x the largest value, outside a range
    trained with a clip of 0.2 % per side (the parity case sq8-ip-outliers of
    tests/web/make_vectors.py): auto's ids and distances are the exact
    rerank of its whole pool on every query; the per-coordinate bound misses some."""
    x = np.load(DATA / "vectors.npy", mmap_mode="r")[:3000].astype(np.float32)
    q = np.load(DATA / "queries.npy")[:60].astype(np.float32)
    rows = np.arange(0, len(x), 50)
    x[rows, rows % x.shape[1]] = 10 * np.abs(x).max()
    idx = Index.build(x, quant="sq8", metric="ip", M=12, ef_construction=100, seed=1, threads=1, clip=0.002)
    ids, d = idx.search(q, k=10, ef=64, rerank="auto")
    assert np.mean([s.vectors_read for s in idx.last_stats]) < 30
    pool_ids, pool_d = pool_rerank(idx, q, 10, 64)
    assert np.array_equal(ids, pool_ids) and np.array_equal(d, pool_d)
    assert np.isin(pool_ids, rows).any(1).mean() > 0.3  # outliers are in many top 10s
    old = without_residuals(idx).search(q, k=10, ef=64, rerank="auto")[0]
    assert not np.array_equal(old, pool_ids)


def test_default_rerank_is_auto_where_the_bound_holds(tmp_path):
    """search without rerank: "auto" over sq8 with residuals (its answers are the exact top
    k of a pool at least rerank 4's), else 4: rabitq (a calibrated bound), sq4, none, and
    sq8 from a file before format 5."""
    x, v, q = outlier_set("ip")
    xs = np.vstack([x, v])
    for quant, want in (("sq8", "auto"), ("rabitq2", 4), ("sq4", 4), ("none", 4)):
        idx = Index.build(xs, quant=quant, metric="ip", M=8, seed=0, threads=1, clip=0.01 if quant == "sq8" else None)
        assert idx.default_rerank == want, quant
        plain = idx.search(q, k=2, ef=64)
        reads = idx.last_stats[0].vectors_read
        given = idx.search(q, k=2, ef=64, rerank=want)
        assert np.array_equal(plain[0], given[0]) and reads == idx.last_stats[0].vectors_read, quant
    assert Index.open(DATA_DIR / "sq8-l2-format3.qann").default_rerank == 4


def test_residuals_follow_the_rows(tmp_path):
    """The residuals stay each row's through the cells row order, deletes saved away
    (compaction) and a reopen: always the codec's encode of that row's vector."""
    x = np.load(DATA / "vectors.npy", mmap_mode="r")[:3000].astype(np.float32)
    idx = Index.build(x, quant="sq8", metric="l2", M=8, seed=0, threads=1, row_order="cells")
    idx.delete([5, 700, 2999])
    idx.save(tmp_path / "r.qann")
    j = Index.open(tmp_path / "r.qann")
    stored = np.concatenate(list(j.vectors()))
    assert len(j) == 2997 and not np.array_equal(j.ids, np.arange(2997))  # rows permuted and compacted
    assert np.array_equal(j.residuals, j.quantizer.encode_rows(stored)[1])
