"""The build-time locality order of rows (quantann/row_order.py, Graph.permute,
Index.order_rows): the same graph relabelled, the caller's ids kept, fewer read ranges."""
import numpy as np
import pytest

import quantann
from quantann import _kernel
from quantann.row_order import cell_order


def clustered(n=3000, d=32, cells=60, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((cells, d)).astype(np.float32) * 3
    x = centres[rng.integers(0, cells, n)] + rng.standard_normal((n, d)).astype(np.float32)
    q = centres[rng.integers(0, cells, 40)] + rng.standard_normal((40, d)).astype(np.float32)
    return x.astype(np.float32), q.astype(np.float32)


def test_cell_order_is_a_deterministic_permutation_that_puts_near_rows_together():
    x, _ = clustered()
    o = cell_order(x)
    assert np.array_equal(np.sort(o), np.arange(len(x)))
    assert np.array_equal(o, cell_order(x))
    step = lambda rows: np.linalg.norm(np.diff(x[rows], axis=0), axis=1).mean()
    assert step(o) < 0.6 * step(np.arange(len(x)))  # neighbours in the order are near in space


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_ordered_build_answers_exactly_as_the_unordered_one(metric, tmp_path):
    x, q = clustered()
    a = quantann.Index.build(x, quant="sq8", metric=metric, M=8, ef_construction=64, threads=1)
    b = quantann.Index.build(x, quant="sq8", metric=metric, M=8, ef_construction=64, threads=1, row_order="cells")
    assert not a.has_user_ids and b.has_user_ids
    perm = b.ids.astype(np.int64)
    assert not np.array_equal(perm, np.arange(len(x)))
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    for u in range(0, len(x), 7):  # the same graph, relabelled, at every level
        for lev in range(int(a.graph.level[u]) + 1):
            assert np.array_equal(rank[a.graph.neighbours(u, lev)], b.graph.neighbours(int(rank[u]), lev))
    assert b.graph.entry == rank[a.graph.entry]
    for rerank in (0, 4):
        ia, da = a.search(q, k=10, rerank=rerank)
        ib, db = b.search(q, k=10, rerank=rerank)
        assert np.array_equal(ia, ib) and np.array_equal(da, db)
    b.save(tmp_path / "b.qann")
    c = quantann.open(tmp_path / "b.qann")
    ic, dc = c.search(q, k=10)
    assert np.array_equal(ic, ia) and np.array_equal(dc, da)
    assert np.array_equal(np.concatenate(list(c.vectors())), np.concatenate(list(a.vectors()))[perm])


def test_user_ids_stay_the_callers():
    x, q = clustered()
    ids = np.arange(len(x), dtype=np.uint64) * 5 + 77
    a = quantann.Index.build(x, quant="sq8", metric="l2", M=8, ef_construction=64, ids=ids, threads=1)
    b = quantann.Index.build(x, quant="sq8", metric="l2", M=8, ef_construction=64, ids=ids, threads=1,
                             row_order="cells")
    assert np.array_equal(a.search(q, k=10)[0], b.search(q, k=10)[0])
    assert set(b.ids.tolist()) == set(ids.tolist())
    b.add(x[:3] + 0.01, ids=[1, 2, 3])  # adding after a reorder: new rows at the end, ids as given
    assert b.search(x[:1] + 0.01, k=1)[0][0, 0] == 1


def test_ordered_rows_coalesce_into_fewer_ranges():
    x, q = clustered(n=4000)
    a = quantann.Index.build(x, quant="sq8", metric="l2", M=8, ef_construction=64)
    b = quantann.Index.build(x, quant="sq8", metric="l2", M=8, ef_construction=64, row_order="cells")

    def ranges(idx, gap):
        s, _, _ = idx._borrow()
        return np.mean([len(s.begin(v, 10, 64, 4, gap)[1]) // 8 for v in q])
    for gap in (0, 8):
        assert ranges(b, gap) < 0.8 * ranges(a, gap)


def test_bad_row_order_and_deleted_rows_are_refused():
    x, _ = clustered(n=500)
    with pytest.raises(ValueError, match="unknown row order 'zorder'"):
        quantann.Index.build(x, row_order="zorder")
    idx = quantann.Index.build(x, M=8, ef_construction=32)
    idx.delete([3])
    with pytest.raises(ValueError, match="without deleted rows"):
        idx.order_rows()
    with pytest.raises(ValueError, match="permutation"):
        idx.graph.permute(np.zeros(len(x), np.int64))


def test_order_rows_of_an_opened_index(tmp_path):
    x, q = clustered()
    a = quantann.Index.build(x, quant="sq8", metric="cosine", M=8, ef_construction=64)
    a.save(tmp_path / "a.qann")
    b = quantann.open(tmp_path / "a.qann")  # vectors in the file (pread), codes and graph mapped
    b.order_rows()
    b.save(tmp_path / "b.qann")
    c = quantann.open(tmp_path / "b.qann")
    ia, da = a.search(q, k=10)
    ic, dc = c.search(q, k=10)
    assert np.array_equal(ia, ic) and np.array_equal(da, dc)
    assert c.has_user_ids and not np.array_equal(c.ids, np.arange(len(x)))
