"""The HTTP service on uvicorn: answers equal the library's, from several threads at once;
every user mistake is a 4xx JSON error; bodies over the limit are refused unread; slow
and idle clients do not hold the others; the token guards a network bind; SIGTERM
finishes what is in flight. Speed figures live in scripts/loadtest.py, not here."""
import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import quantann
from quantann.service.limits import Limits, json_depth

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
from quantann.service.app import Service  # noqa: E402
from quantann.service.pool import SearchPool  # noqa: E402
from quantann.service.server import listen, run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {"k": 10, "ef": 64, "rerank": None}  # as `quantann serve` gives them: rerank the index's default
TOKEN = "a-long-enough-test-token"


class Running:
    """The service in a thread of this process, on a free loopback port."""

    def __init__(self, path, threads=2, limits=Limits(), token=None, embedder=None, texts=None, parser=None,
                 llm=None):
        index = quantann.open(path)
        pool = SearchPool(index, threads, reopen=lambda: quantann.open(path))
        self.service = Service(pool, limits, DEFAULTS, token, embedder, texts, llm)
        sock = listen("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        box, started = [], threading.Event()

        def ready(server):
            box.append(server)
            started.set()
        self.thread = threading.Thread(target=run, args=(self.service, sock, ready, parser), daemon=True)
        self.thread.start()
        assert started.wait(20)
        self.server = box[0]

    def stop(self):
        self.server.should_exit = True
        self.thread.join(20)


def call(port, method, path, body=None, headers=None, conn=None):
    """(status, parsed JSON or text, headers) over a new or given keep-alive connection."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    c.request(method, path, data, headers or {})
    r = c.getresponse()
    raw = r.read()
    if conn is None:
        c.close()
    out = json.loads(raw) if r.getheader("content-type", "").startswith("application/json") else raw.decode()
    return r.status, out, dict(r.getheaders())


def read_answer(sock) -> bytes:
    """Head and body of one HTTP answer from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    n = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < n:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body


def rss_mb(pid="self"):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


@pytest.fixture(scope="module")
def index_path(real, tmp_path_factory):
    x, _ = real
    path = tmp_path_factory.mktemp("srv") / "s.qann"
    quantann.Index.build(x[:1500], quant="sq8", threads=1).save(path)
    return path


PARSERS = ["h11"] + (["httptools"] if importlib.util.find_spec("httptools") else [])


@pytest.fixture(scope="module", params=PARSERS)
def srv(index_path, request):
    """The service with each of uvicorn's HTTP parsers."""
    s = Running(index_path, threads=2, limits=Limits(max_body=1 << 20, max_batch=64), parser=request.param)
    yield s
    s.stop()


# ---- answers ---------------------------------------------------------------------------

def test_search_matches_library(srv, index_path, real):
    _, q = real
    idx = quantann.open(index_path)
    code, out, _ = call(srv.port, "POST", "/search", {"vectors": q[:40].tolist(), "k": 7, "ef": 48, "rerank": 3})
    assert code == 200
    ids, dist = idx.search(q[:40], k=7, ef=48, rerank=3)
    assert out["ids"] == ids.tolist()  # 40 queries: three chunks of the pool, in order
    np.testing.assert_allclose(out["distances"], dist, rtol=1e-6)
    assert len(out["stats"]) == 40 and out["stats"][0]["store_reads"] == 1
    code, one, _ = call(srv.port, "POST", "/search", {"vector": q[0].tolist()})
    assert code == 200 and one["ids"] == idx.search(q[0], **DEFAULTS)[0].tolist()
    # sq8: the default is rerank "auto", which a request may name too
    code, auto, _ = call(srv.port, "POST", "/search", {"vector": q[0].tolist(), "rerank": "auto"})
    assert code == 200 and idx.default_rerank == "auto"
    assert (auto["ids"], auto["distances"]) == (one["ids"], one["distances"])
    assert auto["stats"][0]["vectors_read"] == one["stats"][0]["vectors_read"] < 40


def test_parallel_clients_get_their_own_answers(srv, index_path, real):
    """8 clients at once over keep-alive connections, 2 search threads, batches of 1 to
    3 queries: every answer (ids and per-query stats) is the library's answer to that
    client's queries."""
    _, q = real
    idx = quantann.open(index_path)
    want = idx.search(q, k=10, ef=64, rerank=4)[0].tolist()
    bad = []

    def client(c):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        b = 1 + c % 3
        for i in range(c, len(q) - b, 8):
            code, out, _ = call(srv.port, "POST", "/search", {"vectors": q[i:i + b].tolist()}, conn=conn)
            if code != 200 or out["ids"] != want[i:i + b] or len(out["stats"]) != b:
                bad.append((i, code))
        conn.close()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


def test_text_queries(index_path, real, tmp_path):
    """A text index: the query is embedded by the model, texts come back with the ids."""
    from quantann.text import TextStore, sidecar
    x, _ = real
    path = tmp_path / "t.qann"
    quantann.Index.build(x[:300], quant="sq8", threads=1).save(path)
    TextStore.write(sidecar(path), {i: f"passage {i}" for i in range(300)}, None)

    class RowEmbedder:  # stands in for the GGUF model: "row N" embeds as vector N
        dim = 384

        def embed(self, texts):
            return x[[int(t.split()[1]) for t in texts]]
    s = Running(path, threads=1, embedder=RowEmbedder(), texts=TextStore(sidecar(path)))
    try:
        code, out, _ = call(s.port, "POST", "/search", {"text": "row 42", "k": 3})
        assert code == 200
        ids = quantann.open(path).search(x[42], k=3)[0][0].tolist()
        assert out["ids"] == [ids] and out["texts"] == [[f"passage {i}" for i in ids]]
        assert call(s.port, "POST", "/search", {"text": "   "})[0] == 400
    finally:
        s.stop()


def test_health_and_metrics(srv, real):
    _, q = real
    code, health, _ = call(srv.port, "GET", "/healthz")
    assert code == 200 and health == {"status": "ok", "vectors": 1500, "dim": 384}
    call(srv.port, "POST", "/search", {"vectors": q[:3].tolist()})
    call(srv.port, "POST", "/search", {"vector": [1.0, 2.0]})
    code, text, headers = call(srv.port, "GET", "/metrics")
    assert code == 200 and headers["content-type"].startswith("text/plain")

    def value(prefix):
        return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(prefix)))
    assert value("quantann_queries_total") >= 3
    assert value('quantann_http_requests_total{endpoint="/search",status="200"}') >= 1
    assert value('quantann_http_requests_total{endpoint="/search",status="400"}') >= 1
    assert value('quantann_request_errors_total{kind="wrong_dimension"}') >= 1
    assert value('quantann_http_request_seconds_count{endpoint="/search"}') >= 2
    assert value('quantann_index_memory_bytes{part="codes"}') == 1500 * 384
    assert 'quantann_query_seconds_bucket{le="0.001",stage="graph"}' in text
    assert value("process_resident_memory_bytes") > 0


# ---- user mistakes: 4xx JSON errors -----------------------------------------------------

V = [0.1] * 384
BAD = [
    (b"{not json", 400, "not JSON"),
    (b"\xff\xfe", 400, "not JSON"),
    (b"[" * 1000 + b"]" * 1000, 400, "nests deeper"),
    (b'{"vector": [[[[[[[[[[1]]]]]]]]]]}', 400, "nests deeper"),
    (b"[1, 2]", 400, "JSON object"),
    (b"", 400, "exactly one of"),
    ({"vector": [1.0, 2.0]}, 400, "dimension 2, the index has 384"),
    ({"vectors": [V, [0.1] * 383]}, 400, "same number"),
    ({"vector": ["a"] * 384}, 400, "numbers"),
    ({"vector": [None] * 384}, 400, "numbers"),
    (b'{"vector": [NaN' + b", 0.1" * 383 + b"]}", 400, "NaN or infinity"),
    (b'{"vector": [Infinity' + b", 0.1" * 383 + b"]}", 400, "NaN or infinity"),
    (b'{"vector": [1e999' + b", 0.1" * 383 + b"]}", 400, "NaN or infinity"),
    ({"vector": [1e39] + V[1:]}, 400, "beyond float32"),
    ({"vector": V, "k": 10 ** 12}, 400, "k=1000000000000 is outside 1..1000"),
    ({"vector": V, "k": -1}, 400, "outside"),
    ({"vector": V, "k": 0}, 400, "outside"),
    ({"vector": V, "k": 2.5}, 400, "k must be an integer"),
    ({"vector": V, "k": True}, 400, "k must be an integer"),
    ({"vector": V, "k": 1001}, 400, "--max-k"),
    ({"vector": V, "ef": 2 ** 31 - 1}, 400, "--max-ef"),
    ({"vector": V, "ef": 10 ** 12}, 400, "--max-ef"),
    ({"vector": V, "ef": 0}, 400, "outside"),
    ({"vector": V, "rerank": 10000}, 400, "--max-ef"),
    ({"vector": V, "rerank": -1}, 400, "outside"),
    ({"vector": V, "k": 100, "rerank": 41}, 400, "k*rerank=4100"),
    ({"vector": V, "rerank": "all"}, 400, "rerank must be an integer"),
    ({"vectors": [V] * 65}, 400, "65 vectors in one request"),
    ({"vectors": []}, 400, "non-empty"),
    ({"vectors": [0.1, 0.2]}, 400, "numbers"),
    ({"vector": V, "vecotr": V}, 400, "unknown field 'vecotr'"),
    ({"vector": V, "vectors": [V]}, 400, "exactly one"),
    ({"k": 3}, 400, "exactly one"),
    ({"text": "hello"}, 400, "no embedding model"),
]


@pytest.mark.parametrize("body,status,message", BAD, ids=[f"{i}" for i in range(len(BAD))])
def test_user_mistakes_are_4xx_json(srv, body, status, message):
    code, out, headers = call(srv.port, "POST", "/search", body)
    assert (code, headers["content-type"]) == (status, "application/json")
    assert list(out) == ["error"] and message in out["error"]


def test_k_over_the_live_vectors(index_path, real, tmp_path):
    x, _ = real
    path = tmp_path / "small.qann"
    quantann.Index.build(x[:20], quant="sq8", threads=1).save(path)
    s = Running(path, threads=1)
    try:
        code, out, _ = call(s.port, "POST", "/search", {"vector": V, "k": 21})
        assert code == 400 and "larger than the 20 vectors" in out["error"]
    finally:
        s.stop()


def test_paths_and_methods_are_json(srv):
    code, out, _ = call(srv.port, "GET", "/nowhere")
    assert code == 404 and "no such path /nowhere" in out["error"]
    code, out, headers = call(srv.port, "GET", "/search")
    assert code == 405 and "GET is not allowed" in out["error"] and "POST" in headers["allow"]


def test_not_http_is_a_json_400(srv):
    for junk in (b"HELLO THERE\r\n\r\n", b"GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(junk)
        answer = read_answer(s)
        s.close()
        assert answer.startswith(b"HTTP/1.1 400") and b'{"error": "not a valid HTTP/1.1 request' in answer


def test_body_over_the_limit_is_refused_by_its_length(srv):
    """Content-Length over --max-body: 413 at once, and the connection closed."""
    code, out, headers = call(srv.port, "POST", "/search", b"x" * ((1 << 20) + 1))
    assert code == 413 and "over this server's limit" in out["error"] and headers["connection"] == "close"


def test_chunked_body_is_cut_at_the_limit(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /search HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
    chunk = b"0" * 65536
    try:
        for _ in range(40):  # 2.5 MB offered against a 1 MiB limit
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_answer(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 413") and b"over this server's limit" in answer


def test_100mb_body_refused_without_reading(srv):
    """The head announces 100 MB and the client keeps sending: the 413 comes quickly and
    the server (this process) does not grow by the body."""
    rss0 = rss_mb()
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /search HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (100 << 20))
    stop = threading.Event()

    def push():
        chunk = b"0.5," * 65536
        try:
            while not stop.is_set():
                s.sendall(chunk)
        except OSError:
            pass
    pusher = threading.Thread(target=push)
    pusher.start()
    answer = read_answer(s)
    took = time.perf_counter() - t0
    stop.set()
    s.close()
    pusher.join()
    assert answer.startswith(b"HTTP/1.1 413")
    assert took < 5  # lenient: the figure is in the load test
    assert rss_mb() - rss0 < 50  # the body would be 100 MB


# ---- slow, stalled and idle clients -----------------------------------------------------

@pytest.mark.parametrize("parser", PARSERS)
def test_stalled_and_idle_clients_do_not_hold_others(index_path, real, parser):
    """100 idle connections, a client stalled mid-headers and one mid-body, and one
    stalled in its second request: another client is answered as usual; the stalled
    ones get 408 after --read-timeout."""
    _, q = real
    s = Running(index_path, threads=1, limits=Limits(read_timeout=1.5), parser=parser)
    try:
        idle = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(100)]
        head = socket.create_connection(("127.0.0.1", s.port))
        head.sendall(b"POST /search HTTP/1.1\r\nhost: x\r\ncontent-le")
        body = socket.create_connection(("127.0.0.1", s.port))
        body.sendall(b"POST /search HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n{\"vector\": [")
        second = socket.create_connection(("127.0.0.1", s.port))
        second.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        assert read_answer(second).startswith(b"HTTP/1.1 200")
        second.sendall(b"GET /heal")
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        worst = 0.0
        for i in range(20):
            t0 = time.perf_counter()
            assert call(s.port, "POST", "/search", {"vector": q[i].tolist()}, conn=conn)[0] == 200
            worst = max(worst, time.perf_counter() - t0)
        assert worst < 1.0  # lenient; the load test prints the figure
        for stalled in (head, body, second, idle[0]):  # idle: no request within the timeout either
            stalled.settimeout(5)
            assert read_answer(stalled).startswith(b"HTTP/1.1 408")
        for c in idle + [head, body, second]:
            c.close()
        assert call(s.port, "POST", "/search", {"vector": q[0].tolist()}, conn=conn)[0] == 200
    finally:
        s.stop()


def test_short_load_without_errors(srv, real):
    """8 clients for 2 seconds (the 15-second run is in the load test)."""
    _, q = real
    errors, done = [], [0]
    stop_at = time.perf_counter() + 2

    def client(c):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        i = c
        while time.perf_counter() < stop_at:
            code, _, _ = call(srv.port, "POST", "/search", {"vector": q[i % len(q)].tolist()}, conn=conn)
            if code != 200:
                errors.append(code)
            done[0] += 1
            i += 8
        conn.close()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and done[0] > 8


def test_memory_bounded_across_requests(index_path, real):
    """Requests at the limits (ef and k*rerank at --max-ef) many times: the search
    scratch stops growing once it has its largest size."""
    _, q = real
    s = Running(index_path, threads=2)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        at_limit = {"vectors": q[:16].tolist(), "k": 10, "ef": 4096, "rerank": 409}
        for _ in range(3):
            assert call(s.port, "POST", "/search", at_limit, conn=conn)[0] == 200
        rss0 = rss_mb()
        for i in range(15):
            assert call(s.port, "POST", "/search", at_limit, conn=conn)[0] == 200
            assert call(s.port, "POST", "/search", {"vectors": q[:64].tolist()}, conn=conn)[0] == 200
        assert rss_mb() - rss0 < 20
    finally:
        s.stop()


# ---- the token --------------------------------------------------------------------------

def test_token_checked_on_every_endpoint_but_health(index_path, real):
    _, q = real
    s = Running(index_path, threads=1, token=TOKEN)
    try:
        body = {"vector": q[0].tolist()}
        assert call(s.port, "GET", "/healthz")[0] == 200
        code, out, headers = call(s.port, "POST", "/search", body)
        assert code == 401 and "token" in out["error"] and headers["www-authenticate"] == "Bearer"
        assert call(s.port, "POST", "/search", body, {"Authorization": "Bearer wrong"})[0] == 401
        assert call(s.port, "POST", "/search", body, {"Authorization": TOKEN})[0] == 401
        assert call(s.port, "GET", "/metrics")[0] == 401
        assert call(s.port, "POST", "/search", body, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert call(s.port, "GET", "/metrics", None, {"Authorization": f"bearer {TOKEN}"})[0] == 200
    finally:
        s.stop()


def cli(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "quantann", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "QUANTANN_TOKEN": "", **(env or {})})


def test_network_bind_needs_a_token(index_path):
    env = {k: v for k, v in os.environ.items() if k != "QUANTANN_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "quantann", "serve", str(index_path), "--host", "0.0.0.0",
                        "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "error: binding to 0.0.0.0 exposes the index to the network: give --token" in r.stderr
    r = cli("serve", str(index_path), "--host", "0.0.0.0", "--port", "0", "--token", "short")
    assert r.returncode == 1 and "at least 16 characters" in r.stderr


def test_network_bind_with_token_from_environment(index_path, real):
    _, q = real
    p = subprocess.Popen([sys.executable, "-m", "quantann", "serve", str(index_path), "--host", "0.0.0.0",
                          "--port", "0", "--threads", "1"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "QUANTANN_TOKEN": TOKEN})
    try:
        line = p.stderr.readline()
        assert "token required" in line, line
        port = int(re.search(r":(\d+) with", line).group(1))
        body = {"vector": q[0].tolist()}
        assert call(port, "POST", "/search", body)[0] == 401
        assert call(port, "POST", "/search", body, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    finally:
        p.terminate()
        assert p.wait(30) == 0
        p.stderr.close()


def test_cli_errors(index_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = cli("serve", str(index_path), "--port", str(port))
    assert r.returncode == 1 and r.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: the port is in use")
    r = cli("serve", str(index_path), "--port", "0", "--max-k", "0")
    assert r.returncode == 1 and "error: max-k must be at least 1" in r.stderr and "Traceback" not in r.stderr
    r = cli("serve", str(index_path), "--port", "0", "--ef", "5000")
    assert r.returncode == 1 and "error: -k 10 --ef 5000 --rerank (the index's default) are outside this server's limits" in r.stderr
    r = cli("serve", str(index_path), "--port", "0", "--max-body", "lots")
    assert r.returncode == 1 and "error: cannot read" in r.stderr


def test_missing_extra_names_the_install_command(index_path):
    code = ("import sys; sys.modules['uvicorn'] = None\n"
            "from quantann.cli import main\n"
            f"sys.exit(main(['serve', {str(index_path)!r}, '--port', '0']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "error: quantann serve needs uvicorn" in r.stderr and "pip install 'quantann[serve]'" in r.stderr


def test_sigterm_finishes_requests_in_flight(index_path, real):
    """A request is half-sent when SIGTERM arrives: the server stops listening, waits
    for the rest, answers it in full, then exits 0."""
    _, q = real
    p = subprocess.Popen([sys.executable, "-m", "quantann", "serve", str(index_path), "--port", "0",
                          "--threads", "1"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+) with", p.stderr.readline()).group(1))
        body = json.dumps({"vectors": q[:32].tolist()}).encode()
        c = socket.create_connection(("127.0.0.1", port), timeout=30)
        c.sendall(b"POST /search HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(body) + body[:1000])
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline:  # until the listening socket is closed
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(0.1)
            except OSError:
                break
        else:
            pytest.fail("the server kept listening after SIGTERM")
        assert p.poll() is None  # still there: a request is in flight
        c.sendall(body[1000:])
        answer = read_answer(c)
        assert answer.startswith(b"HTTP/1.1 200")
        assert len(json.loads(answer.split(b"\r\n\r\n", 1)[1])["ids"]) == 32
        assert p.wait(30) == 0
        c.close()
    finally:
        if p.poll() is None:
            p.kill()
        p.stderr.close()


# ---- the nesting scan -------------------------------------------------------------------

def test_json_depth_matches_the_parsed_structure():
    def depth(v):
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0
    rng = np.random.default_rng(0)

    def make(d):
        if d == 0:
            return rng.choice(["x", 'q"[{', "\\[", 1.5, None, "]]}}"])
        kids = [make(int(rng.integers(0, d))) for _ in range(int(rng.integers(1, 4)))]
        return kids if rng.random() < 0.5 else {f"k{i}[": v for i, v in enumerate(kids)}
    for _ in range(300):
        v = make(int(rng.integers(0, 9)))
        text = json.dumps(v).encode()
        assert json_depth(text) == depth(v), text
        assert json_depth(text * 300) == depth(v)  # the numpy path (many marks)
