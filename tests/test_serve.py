"""The HTTP service: answers equal the library's, errors are 400s, metrics count."""
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

import quantann
from quantann.serve import serve


@pytest.fixture(scope="module")
def server(real, tmp_path_factory):
    x, _ = real
    path = tmp_path_factory.mktemp("srv") / "s.qann"
    quantann.Index.build(x[:1500], quant="sq8", threads=1).save(path)
    idx = quantann.open(path)
    box = {}
    started = threading.Event()

    def ready(s):
        box["server"] = s
        started.set()
    t = threading.Thread(target=serve, args=(idx, "127.0.0.1", 0), kwargs={"ready": ready}, daemon=True)
    t.start()
    assert started.wait(10)
    host, port = box["server"].server_address[:2]
    yield f"http://{host}:{port}", quantann.open(path)
    box["server"].shutdown()


def post(url, body):
    req = urllib.request.Request(url + "/search", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_search_matches_library(server, real):
    url, idx = server
    _, q = real
    code, out = post(url, {"vectors": q[:5].tolist(), "k": 7, "ef": 48, "rerank": 3})
    assert code == 200
    ids, dist = idx.search(q[:5], k=7, ef=48, rerank=3)
    assert out["ids"] == ids.tolist()
    np.testing.assert_allclose(out["distances"], dist, rtol=1e-6)
    assert out["stats"][0]["store_reads"] == 1
    code, one = post(url, {"vector": q[0].tolist()})
    assert code == 200 and len(one["ids"][0]) == 10


def test_errors_are_400(server):
    url, _ = server
    assert post(url, {"vector": [1.0, 2.0]}) [0] == 400
    code, out = post(url, {"vector": [0.1] * 384, "k": 5000})
    assert code == 400 and "limit" in out["error"]
    code, out = post(url, {"text": "hello"})
    assert code == 400 and "no embedding model" in out["error"]
    code, out = post(url, {"vector": ["a"] * 384})
    assert code == 400
    assert post(url, {"nothing": 1})[0] == 400
    req = urllib.request.Request(url + "/search", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400


def test_health_and_metrics(server, real):
    url, _ = server
    _, q = real
    with urllib.request.urlopen(url + "/healthz", timeout=10) as r:
        assert json.loads(r.read()) == {"status": "ok", "vectors": 1500, "dim": 384}
    post(url, {"vectors": q[:3].tolist()})
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    count = float(next(l.split()[-1] for l in text.splitlines() if l.startswith("quantann_queries_total")))
    assert count >= 3
    assert 'quantann_index_memory_bytes{part="codes"} 576000.0' in text
    assert 'quantann_query_seconds_bucket{le="0.001",stage="graph"}' in text
    assert 'quantann_request_errors_total{reason="bad_request"}' in text
