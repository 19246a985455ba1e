"""The packed level-0 lists (kernel/links.h): ceil(log2(n + 1)) bits per id, the all-ones
value for an empty slot, whole bytes per row."""
import numpy as np
import pytest

import quantann
from quantann import _kernel


def random_lists(n, M0, rng):
    lists = np.full((n, M0), -1, np.int32)
    for r in range(n):
        m = rng.integers(0, M0 + 1)
        lists[r, :m] = rng.integers(0, n, m)
    return lists


@pytest.mark.parametrize("n", [1, 2, 3, 255, 256, 1000, 2**17 - 1, 2**17])
@pytest.mark.parametrize("M0", [4, 24, 32])
def test_pack_unpack_round_trip(n, M0):
    rng = np.random.default_rng([n, M0])
    lists = np.full((n, M0), -1, np.int32)
    rows = min(n, 300)  # the first rows hold lists of every length, ids up to n - 1
    for r in range(rows):
        m = rng.integers(0, M0 + 1)
        lists[r, :m] = rng.integers(0, n, m)
    lists[0, 0] = n - 1
    lists[rows - 1, 1:3] = [-1, 0]  # after the first -1 nothing is kept
    bits, row_bytes = _kernel.link_bits(n, M0)
    assert bits == max(1, int(np.ceil(np.log2(n + 1))))  # n itself is the empty value
    assert row_bytes == (M0 * bits + 7) // 8
    packed = np.empty((n, row_bytes), np.uint8)
    _kernel.pack_links(lists, n, M0, bits, packed)
    back = np.empty_like(lists)
    _kernel.unpack_links(packed, n, M0, bits, back)
    want = lists.copy()
    for r in range(rows):
        end = np.flatnonzero(want[r] < 0)
        if len(end):
            want[r, end[0]:] = -1
    assert np.array_equal(back, want)


def _pack_big(full, n, M0, bits, row):
    # bit-by-bit reference packing (little-endian bit order, all ones = empty)
    empty = (1 << bits) - 1
    acc, nbits = 0, 0
    ended = False
    for v in full[0]:
        ended = ended or v < 0
        acc |= (empty if ended else int(v)) << nbits
        nbits += bits
    row[0] = np.frombuffer(acc.to_bytes(row.shape[1], "little"), np.uint8)


def test_pack_matches_bit_reference():
    """The C packing against a Python big-integer reference of the layout in FORMAT.md."""
    rng = np.random.default_rng(7)
    n, M0 = 5000, 24
    lists = random_lists(n, M0, rng)
    bits, row_bytes = _kernel.link_bits(n, M0)
    packed = np.empty((n, row_bytes), np.uint8)
    _kernel.pack_links(lists, n, M0, bits, packed)
    for r in range(0, n, 97):
        ref = np.empty((1, row_bytes), np.uint8)
        _pack_big(lists[r:r + 1], n, M0, bits, ref)
        assert np.array_equal(packed[r], ref[0]), r


def test_pack_refuses_out_of_range_ids():
    lists = np.full((10, 4), -1, np.int32)
    lists[3, 1] = 10
    with pytest.raises(ValueError, match="link 10 of row 3 is outside the 10 rows"):
        _kernel.pack_links(lists, 10, 4, 4, np.empty((10, 2), np.uint8))
    with pytest.raises(ValueError, match="out of range"):  # 3 bits cannot hold 0..10
        _kernel.pack_links(np.full((10, 4), -1, np.int32), 10, 4, 3, np.empty((10, 2), np.uint8))


def test_packed_search_equals_int32_search(real):
    """One graph, searched packed and as int32 lists: the same rows and distances; memory
    counts the packed bytes."""
    x, q = real
    idx = quantann.Index.build(x[:3000], quant="rabitq2", M=12)
    assert idx.compact_graph and idx.graph.packed
    packed = idx.search(q, k=10, ef=48, rerank="auto")
    mem_packed = idx.memory()["graph"]
    idx.compact_graph = False
    assert idx.graph.links0.dtype == np.int32
    plain = idx.search(q, k=10, ef=48, rerank="auto")
    assert np.array_equal(packed[0], plain[0]) and np.array_equal(packed[1], plain[1])
    mem_plain = idx.memory()["graph"]
    assert mem_plain - mem_packed == 3000 * 24 * 4 - 3000 * ((24 * 12 + 7) // 8)  # 12 bits for 3000 rows


def test_add_after_packed_load(real, tmp_path):
    """add unpacks, inserts and packs again (the width grows with n)."""
    x, q = real
    idx = quantann.Index.build(x[:250], quant="sq8")
    assert idx.graph.link_bits == 8
    idx.save(tmp_path / "a.qann")
    j = quantann.open(tmp_path / "a.qann")
    j.add(x[250:600])
    assert j.graph.packed and j.graph.link_bits == 10 and j.rows == 600
    found = j.search(x[250:260], k=1, ef=64, rerank=2)[0][:, 0]
    assert (found == np.arange(250, 260)).all()


@pytest.mark.parametrize("quant,metric", [("rabitq3", "cosine"), ("sq8", "l2"), ("sq4", "ip")])
def test_linked_level0_search_equals_packed(real, quant, metric):
    """The linked level-0 experiment (each node's packed list and its code in one record)
    returns the same rows, distances and reads as the two arrays."""
    x, q = real
    idx = quantann.Index.build(x[:3000], quant=quant, metric=metric, M=12)
    rerank = "auto" if quant.startswith("rabitq") else 2
    two = idx.search(q, k=10, ef=48, rerank=rerank)
    reads = [s.vectors_read for s in idx.last_stats]
    idx._linked0 = True
    idx._reset_searchers()
    one = idx.search(q, k=10, ef=48, rerank=rerank)
    assert np.array_equal(two[0], one[0]) and np.array_equal(two[1], one[1])
    assert reads == [s.vectors_read for s in idx.last_stats]
    kix = quantann.Index.build(x[:300], quant="none", M=12)._kernel_index()
    with pytest.raises(ValueError, match="a linked level 0 needs packed links and codes"):
        kix.link_level0(True)
