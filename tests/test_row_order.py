"""The build-time locality order of rows (quantann/row_order.py, Graph.permute,
Index.order_rows): the same graph relabelled, the caller's ids or the index's own numbering
kept (quantann.ids.next), fewer read ranges."""
import struct

import numpy as np
import pytest

import quantann
from quantann import _kernel, row_order
from quantann.constants import FORMAT_VERSION, KEYS
from quantann.fileformat import _patch_header_crc
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
    assert not a.has_user_ids and not b.has_user_ids  # the numbering is the index's, stored
    assert a.stored_ids is None and b.next_id == a.next_id == len(x)
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
    assert c.file.format_version == FORMAT_VERSION and not c.has_user_ids and c.next_id == len(x)
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
    assert b.has_user_ids and b.next_id is None
    with pytest.raises(ValueError, match="has user ids: pass ids="):
        b.add(x[:1])
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
    assert not c.has_user_ids and c.next_id == len(x) and not np.array_equal(c.ids, np.arange(len(x)))
    c.order_rows()  # ordered twice: the numbering still follows the vectors
    ic2, dc2 = c.search(q, k=10)
    assert np.array_equal(ic2, ia) and np.array_equal(dc2, da)
    u = quantann.open(tmp_path / "a.qann")
    u.add(x[:2] * 1.01, ids=[10**12, 10**12 + 1])  # user ids from here on
    u.order_rows()
    assert u.has_user_ids and sorted(u.ids.tolist())[-2:] == [10**12, 10**12 + 1]


def test_add_after_a_reorder_continues_the_numbering(tmp_path):
    x, q = clustered()
    n = len(x)
    b = quantann.Index.build(x[:-100], quant="sq8", metric="l2", M=8, ef_construction=64, row_order="cells")
    new = b.add(x[-100:-50])  # appended rows: storage order = id order
    assert np.array_equal(new, np.arange(n - 100, n - 50)) and np.array_equal(b.ids[-50:], new)
    b.save(tmp_path / "b.qann")
    c = quantann.open(tmp_path / "b.qann")
    assert not c.has_user_ids and c.next_id == n - 50
    assert np.array_equal(c.add(x[-50:]), np.arange(n - 50, n))
    a = quantann.Index.build(x, quant="sq8", metric="l2", M=8, ef_construction=64, row_order="none")
    ids, _ = c.search(x[-100:], k=1, rerank=4)  # each vector's own id, wherever its row is
    assert (ids[:, 0] == np.arange(n - 100, n)).mean() >= 0.98
    ida, _ = a.search(x[-100:], k=1, rerank=4)
    assert (ids[:, 0] == ida[:, 0]).mean() >= 0.98
    # deleted, saved: survivors keep their ids, and add does not reuse the deleted ones
    assert c.delete([n - 1, 5]) == 2
    c.save(tmp_path / "c.qann")
    d = quantann.open(tmp_path / "c.qann")
    assert len(d) == n - 2 and not d.has_user_ids and d.next_id == n
    assert set(d.ids.tolist()) == set(range(n)) - {n - 1, 5}
    assert d.add(x[:1]).tolist() == [n]
    # ids given to a numbered index: accepted when new, and the index then has user ids
    with pytest.raises(ValueError, match="already in the index"):
        d.add(x[:1], ids=[7])
    d.add(x[:1], ids=[10**9])
    assert d.has_user_ids and d.next_id is None
    with pytest.raises(ValueError, match="has user ids"):
        d.add(x[:1])
    d.save(tmp_path / "d.qann")
    e = quantann.open(tmp_path / "d.qann")
    assert e.has_user_ids and 10**9 in e.ids
    assert e.file.format_version == 5  # sq8's residuals; user ids: no ids.next


def test_a_plain_index_keeps_numbering_after_deletes_are_saved(tmp_path):
    x, _ = clustered(n=600)
    a = quantann.Index.build(x, M=8, ef_construction=32, row_order="none")
    a.delete([599, 10])
    a.save(tmp_path / "a.qann")
    b = quantann.open(tmp_path / "a.qann")
    assert not b.has_user_ids and b.next_id == 600 and b.add(x[:2]).tolist() == [600, 601]
    assert b.rows_of([10, 599, 11, 600]).tolist() == [-1, -1, 10, 598]


def test_auto_orders_from_the_size_rule(monkeypatch):
    x, q = clustered(n=1200)
    assert quantann.Index.build(x, M=8, ef_construction=32).stored_ids is None  # below AUTO_MIN_ROWS
    monkeypatch.setattr(row_order, "AUTO_MIN_ROWS", 1000)
    b = quantann.Index.build(x, M=8, ef_construction=32)
    assert b.stored_ids is not None and not b.has_user_ids
    assert quantann.Index.build(x, M=8, ef_construction=32, row_order="none").stored_ids is None
    assert quantann.Index.build(x[:999], M=8, ef_construction=32).stored_ids is None
    assert row_order.resolve("auto", 1000) == "cells" and row_order.resolve("none", 10**6) == "none"


def _patched(data: bytes, key: str, fmt: str, value, path):
    """The file with one header value changed and its header checksum repaired (crafted)."""
    k = key.encode()
    at = data.index(k) + len(k) + 4  # past the u32 value type
    bad = bytearray(data)
    struct.pack_into(fmt, bad, at, value)
    path.write_bytes(bytes(bad))
    _patch_header_crc(path)
    return path


def test_reader_checks_the_numbering(tmp_path):
    x, _ = clustered(n=500)
    b = quantann.Index.build(x, M=8, ef_construction=32, row_order="cells")
    b.save(tmp_path / "b.qann")
    data = (tmp_path / "b.qann").read_bytes()
    cases = [(KEYS["ids_next"], "<Q", 499, "ids.next=499"),  # below the count
             (KEYS["ids_next"], "<Q", 2**64 - 1, "ids.next="),
             (KEYS["format_version"], "<I", 3, "came with format 4")]
    for key, fmt, value, err in cases:
        p = _patched(data, key, fmt, value, tmp_path / "bad.qann")
        with pytest.raises(quantann.FormatError, match=err):
            quantann.open(p)
    b.delete([0])  # 499 rows holding ids 1..499: ids.next 499 is not above them all
    b.save(tmp_path / "c.qann")
    data = (tmp_path / "c.qann").read_bytes()
    assert quantann.open(_patched(data, KEYS["ids_next"], "<Q", 501, tmp_path / "ok.qann")).next_id == 501
    with pytest.raises(quantann.FormatError, match="id 499 .* is not below ids.next=499"):
        quantann.open(_patched(data, KEYS["ids_next"], "<Q", 499, tmp_path / "bad2.qann"))


def test_text_index_rows_stay_aligned_to_their_passages(tmp_path):
    """Text i of a build is id i and line i, whatever order the index stores its rows in:
    after the reorder, a save and an open, each passage's own vector finds it (and its
    fields), by vectors and by words, and rows() gives its line."""
    from quantann.text import TextIndex, TextStore, sidecar
    x, _ = clustered(n=800, d=32)
    texts = [f"passage number{i} about cell{i % 60}" for i in range(len(x))]
    fields = [{"line": i} for i in range(len(x))]
    ti = TextIndex.create(None, M=8, ef_construction=64, row_order="cells")
    ids = ti.add_texts(texts, vectors=x, fields=fields)
    assert ids.tolist() == list(range(len(x))) and not np.array_equal(ti.index.ids, ids)
    assert ti.add_texts(["one more"], vectors=x[:1] + 0.5).tolist() == [len(x)]
    ti.save(tmp_path / "t.qann")
    store = TextStore(sidecar(tmp_path / "t.qann"))
    assert store.ids.tolist() == list(range(len(x) + 1))
    assert store.get([0, 417, len(x)]) == [texts[0], texts[417], "one more"]
    again = TextIndex.open(tmp_path / "t.qann", model=_Fixed(x))
    assert not again.index.has_user_ids and again.index.stored_ids is not None
    found, _ = again.index.search(x, k=1, rerank=4)
    hit = found[:, 0].astype(np.int64) == np.arange(len(x))
    assert hit.mean() >= 0.98
    assert again.texts(found[hit, 0][:50]) == [texts[i] for i in np.flatnonzero(hit)[:50]]
    assert again.fields([3, 700]) == [{"line": 3}, {"line": 700}]
    assert again.rows([3, 700, 10**6]).tolist() == [3, 700, -1]  # the passage's line
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    for i in (5, 333, 799):  # hybrid: a passage found by its words alone gets its own vector's distance
        got, dist = again.search_ids(x[0], f"number{i}", k=5, hybrid=True)
        assert i in got.tolist()
        j = got.tolist().index(i)
        assert abs(dist[j] - (1 - unit[0] @ unit[i])) < 1e-5


class _Fixed:
    """An embedder stand-in: the index was built from given vectors."""
    dim, path = 32, None

    def __init__(self, x):
        self.x = x

    def embed(self, texts):
        return self.x[:len(texts)]


def test_sharded_build_in_cells_order_answers_as_in_input_order(tmp_path):
    from quantann.shard.build import build_sharded
    from quantann.shard.runner import LocalRunner
    x, q = clustered(n=2400)
    build_sharded(str(tmp_path / "a.json"), x, 3, LocalRunner(1), metric="l2", M=8, ef_construction=64,
                  progress=False, row_order="none")
    build_sharded(str(tmp_path / "b.json"), x, 3, LocalRunner(1), metric="l2", M=8, ef_construction=64,
                  progress=False, row_order="cells")
    a, b = quantann.open(tmp_path / "a.json"), quantann.open(tmp_path / "b.json")
    assert all(s.stored_ids is not None and not s.has_user_ids for s in b.shards)
    assert [e.ids for e in b.manifest.shards] == ["rows"] * 3
    ia, da = a.search(q, k=10)
    ib, db = b.search(q, k=10)
    assert np.array_equal(ia, ib) and np.array_equal(da, db)
    b.delete([5, 2000])
    assert b.add(x[:2] + 0.01).tolist() == [2400, 2401]
    b.save()
    c = quantann.open(tmp_path / "b.json")
    assert len(c) == 2400 and c.search(x[:1] + 0.01, k=1)[0][0, 0] == 2400
    assert 5 not in c.ids and c.search(x[2000:2001], k=3)[0][0, 0] != 2000


@pytest.mark.parametrize("store", ["pread", "mmap", "memory", "http"])
def test_a_numbered_file_answers_alike_from_every_store(tmp_path, store):
    """Opened lazily (the vectors left in the file or behind HTTP Range) or whole, a file in
    cells order returns the numbering and reads the rows the numbering maps to."""
    from quantann.pageserver import Server
    x, q = clustered(n=1500)
    a = quantann.Index.build(x, quant="sq8", metric="cosine", M=8, ef_construction=64, threads=1, row_order="none")
    b = quantann.Index.build(x, quant="sq8", metric="cosine", M=8, ef_construction=64, threads=1, row_order="cells")
    b.save(tmp_path / "b.qann")
    want_ids, want_d = a.search(q, k=10, rerank=4)
    if store == "http":
        with Server({"/": str(tmp_path)}) as s:
            c = quantann.open(f"{s.url}/b.qann")
            got_ids, got_d = c.search(q, k=10, rerank=4)
    else:
        c = quantann.open(tmp_path / "b.qann", store=store)
        got_ids, got_d = c.search(q, k=10, rerank=4)
    assert not c.has_user_ids and c.next_id == len(x)
    assert np.array_equal(got_ids, want_ids) and np.array_equal(got_d, want_d)


def test_a_session_4_cells_file_still_opens_as_one_with_user_ids(tmp_path):
    """Before quantann.ids.next a reordered index was written as format 3 with its row
    numbers as user ids: such a file opens as it did (the same answers; add needs ids)."""
    x, q = clustered(n=800)
    b = quantann.Index.build(x, M=8, ef_construction=32, row_order="cells")
    old = quantann.Index(b.quantizer, b.metric, b.graph, b.codes, b.norms, b.stored_ids, b.store)
    old.save(tmp_path / "old.qann")
    c = quantann.open(tmp_path / "old.qann")
    assert c.file.format_version == 3 and c.has_user_ids and c.next_id is None
    assert np.array_equal(c.search(q, k=10)[0], b.search(q, k=10)[0])
    with pytest.raises(ValueError, match="has user ids"):
        c.add(x[:1])
