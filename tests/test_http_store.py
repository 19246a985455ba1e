"""The HTTP Range store and quantann.open(url): same answers as the local file."""
import os

import numpy as np
import pytest

import quantann
from quantann.errors import FormatError, MemoryBudgetError
from quantann.store.http import HttpStore
from quantann.pageserver import Handler, Server, parse_ranges


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("http")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1500, 40)).astype(np.float32)
    path = str(d / "x.qann")
    quantann.Index.build(x, quant="sq8", metric="cosine", M=8, ef_construction=64, threads=1).save(path)
    data = open(path, "rb").read()
    with open(d / "cut.qann", "wb") as f:
        f.write(data[:-500])
    with Server({"/": str(d)}) as s:
        yield s.url, path, x


def test_parse_ranges():
    assert parse_ranges("bytes=0-9,20-", 100) == [(0, 9), (20, 99)]
    assert parse_ranges("bytes=-10", 100) == [(90, 99)]
    assert parse_ranges("bytes=200-300", 100) == []
    assert parse_ranges("lines=1-2", 100) is None


def test_open_url_matches_local(served):
    url, path, x = served
    local = quantann.open(path)
    remote = quantann.open(f"{url}/x.qann")
    assert isinstance(remote.store, HttpStore)
    q = x[:25] + 0.01
    a_ids, a_d = local.search(q, k=10, ef=64, rerank=4)
    b_ids, b_d = remote.search(q, k=10, ef=64, rerank=4)
    assert np.array_equal(a_ids, b_ids)
    assert np.array_equal(a_d, b_d)
    st = remote.last_stats[0]
    assert st.store_reads == 1 and st.vectors_read == 40


@pytest.mark.parametrize("mode", ["multipart", "span", "single"])
def test_modes_read_the_same_rows(served, mode):
    url, path, x = served
    local = quantann.open(path)
    vt_offset = local.file.vectors_offset
    store = HttpStore(f"{url}/x.qann", vt_offset, 1500, 40, mode=mode)
    rows = np.array([0, 1, 2, 17, 400, 401, 1499], np.int32)
    got, st = store.read(rows)
    want, _ = local.store.read(rows)
    assert np.array_equal(got, want)
    assert st.requests == {"multipart": 1, "span": 1, "single": 4}[mode]
    store.close()


def test_server_without_multirange_falls_back(served, monkeypatch):
    url, path, x = served

    class NoMulti(Handler):  # answers multi-range requests with the whole file, like some servers
        def do_GET(self):
            if "," in self.headers.get("Range", ""):
                del self.headers["Range"]
            super().do_GET()

    with Server({"/": os.path.dirname(path)}) as s:
        s.httpd.RequestHandlerClass = type("H", (NoMulti,), {"mounts": s.httpd.RequestHandlerClass.mounts})
        local = quantann.open(path)
        vt_offset = local.file.vectors_offset
        store = HttpStore(f"{s.url}/x.qann", vt_offset, 1500, 40)
        rows = np.array([3, 900, 1200], np.int32)
        got, st = store.read(rows)
        assert np.array_equal(got, local.store.read(rows)[0])
        assert store.mode == "single"


def test_truncated_and_budget(served):
    url, path, x = served
    with pytest.raises(FormatError, match="truncated"):
        quantann.open(f"{url}/cut.qann")
    with pytest.raises(MemoryBudgetError):
        quantann.open(f"{url}/x.qann", memory_budget="10KB")
    with pytest.raises((FormatError, OSError)):
        quantann.open(f"{url}/missing.qann")
