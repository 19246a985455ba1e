"""POST /search with a body of float32 vectors (application/octet-stream; k, ef, rerank in
the query string): the same answers as JSON, and every mistake a 4xx JSON error."""
import numpy as np
import pytest

import quantann

pytest.importorskip("uvicorn")
from test_serve import call, index_path, srv  # noqa: E402,F401  (the fixtures: both HTTP parsers)

BIN = {"content-type": "application/octet-stream"}


def test_binary_equals_json_and_the_library(srv, index_path, real):
    _, q = real
    idx = quantann.open(index_path)
    code, out, _ = call(srv.port, "POST", "/search?k=7&ef=48&rerank=3", q[:20].astype("<f4").tobytes(), BIN)
    assert code == 200
    ids, dist = idx.search(q[:20], k=7, ef=48, rerank=3)
    assert out["ids"] == ids.tolist() and len(out["stats"]) == 20
    np.testing.assert_allclose(out["distances"], dist, rtol=1e-6)
    code, js, _ = call(srv.port, "POST", "/search", {"vector": q[3].tolist()})
    code2, one, _ = call(srv.port, "POST", "/search", q[3].astype("<f4").tobytes(),
                         {"content-type": "Application/Octet-Stream; charset=binary"})
    assert code == code2 == 200 and one["ids"] == js["ids"] and one["distances"] == js["distances"]


V = np.full(384, 0.1, "<f4")
BAD = [
    ("", b"", "not a whole number of 384-d float32 vectors"),
    ("", V.tobytes()[:-1], "1535 bytes"),
    ("", np.full((65, 384), 0.1, "<f4").tobytes(), "65 vectors in one request"),
    ("", np.r_[np.float32("nan"), V[1:]].astype("<f4").tobytes(), "NaN or infinity"),
    ("", np.r_[V, np.float32("inf"), V[1:]].astype("<f4").tobytes(), "vector 1 holds NaN"),
    ("?k=0", V.tobytes(), "k=0 is outside"),
    ("?k=abc", V.tobytes(), "k must be an integer"),
    ("?k=2.5", V.tobytes(), "k must be an integer"),
    ("?ef=2147483647", V.tobytes(), "--max-ef"),
    ("?ef=99999999999999999999", V.tobytes(), "--max-ef"),
    ("?rerank=-1", V.tobytes(), "outside"),
    ("?k=100&rerank=41", V.tobytes(), "k*rerank=4100"),
    ("?k=1&k=2", V.tobytes(), "given twice"),
    ("?kk=1", V.tobytes(), "unknown query parameter 'kk'"),
    ("?k=1501", V.tobytes(), "--max-k"),
]


@pytest.mark.parametrize("query,body,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_binary_mistakes_are_4xx_json(srv, query, body, message):
    code, out, headers = call(srv.port, "POST", "/search" + query, body, BIN)
    assert (code, headers["content-type"]) == (400, "application/json")
    assert list(out) == ["error"] and message in out["error"]
