"""Stores read the ranges the kernel's begin coalesced (the one coalescing, in C); stores
written for read(rows) alone keep working."""
import numpy as np
import pytest

import quantann
from quantann import _kernel
from quantann.store import MemoryStore, PreadStore, VectorStore


def runs(rows, gap):
    """Reference: (first, last) runs of ascending rows, split where the gap exceeds `gap` rows."""
    out = []
    for r in rows.tolist():
        if out and r - out[-1][1] <= gap + 1:
            out[-1][1] = r
        else:
            out.append([r, r])
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    path = tmp_path_factory.mktemp("ranges") / "x.qann"
    quantann.Index.build(x, quant="sq8", metric="l2", M=8, ef_construction=64, threads=1).save(path)
    return path, x, rng.standard_normal((12, 32)).astype(np.float32)


@pytest.mark.parametrize("gap", [0, 1, 5, 40])
def test_coalesce_rows_matches_reference(gap):
    rng = np.random.default_rng(gap)
    rows = np.unique(rng.integers(0, 3000, 300)).astype(np.int32)
    got = np.frombuffer(_kernel.coalesce_rows(rows, gap), np.int32).reshape(-1, 2).tolist()
    assert got == runs(rows, gap)
    assert _kernel.coalesce_rows(np.empty(0, np.int32), gap) == b""


class Recording(VectorStore):
    """A custom store that reads what it is given and records the ranges."""

    def __init__(self, x, max_gap):
        self.array, self.max_gap = x, max_gap
        self.count, self.dim = x.shape
        self.seen = []

    def _read(self, rows, ranges):
        self.seen.append((rows.copy(), ranges.copy()))
        return self.array[rows], quantann.store.ReadStats(len(ranges), 0)


@pytest.mark.parametrize("gap", [0, 3, 30])
def test_search_hands_the_store_its_coalesced_ranges(saved, gap):
    path, x, q = saved
    want = quantann.open(path, store="memory").search(q, k=5, ef=40, rerank=4)
    idx = quantann.open(path, store=Recording(x, gap))
    got = idx.search(q, k=5, ef=40, rerank=4)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    assert len(idx.store.seen) == len(q)
    for (rows, ranges), st in zip(idx.store.seen, idx.last_stats):
        assert ranges.tolist() == runs(rows, gap)
        assert st.ranges == len(ranges)


@pytest.mark.parametrize("gap", [0, 4])
def test_pread_store_reads_the_ranges(saved, gap):
    path, x, _ = saved
    off = quantann.open(path).file.vectors_offset
    rows = np.array([0, 1, 2, 7, 9, 400, 401, 1999], np.int32)
    with PreadStore(path, off, len(x), x.shape[1], max_gap=gap) as s:
        got, st = s.read(rows)
        assert np.array_equal(got, x[rows])
        want = runs(rows, gap)
        assert st.ranges == len(want)
        assert st.bytes == sum(b - a + 1 for a, b in want) * x.shape[1] * 4
        with pytest.raises(ValueError, match="ranges do not cover"):
            s.read(rows, np.array([[0, 2], [9, 401]], np.int32))  # 7 and 1999 left out
        with pytest.raises(ValueError, match="ranges do not cover"):
            s.read(rows, np.array([[0, 1999]] * 2, np.int32))


class RowsOnly(VectorStore):
    """A store written for the older interface: _read(rows)."""

    def __init__(self, x):
        self.array = x
        self.count, self.dim = x.shape

    def _read(self, rows):
        return self.array[rows], quantann.store.ReadStats(1, 0)


class ReadOnly(VectorStore):
    """A store that overrides read(rows) itself."""

    def __init__(self, x):
        self.array = x
        self.count, self.dim = x.shape

    def read(self, rows):
        return self.array[rows], quantann.store.ReadStats(1, 0)


@pytest.mark.parametrize("kind", [RowsOnly, ReadOnly])
def test_rows_only_stores_still_work(saved, kind):
    path, x, q = saved
    want = quantann.open(path, store=MemoryStore(x)).search(q, k=5, ef=40, rerank=3)
    got = quantann.open(path, store=kind(x)).search(q, k=5, ef=40, rerank=3)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
