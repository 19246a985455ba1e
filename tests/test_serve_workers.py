"""`quantann serve --workers 2`: two processes answer like the library, spread the
connections, sum their metrics, survive a killed worker, and stop cleanly. Speed figures
live in scripts/loadtest.py, not here."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import quantann

pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def index_path(real, tmp_path_factory):
    x, _ = real
    path = tmp_path_factory.mktemp("workers") / "w.qann"
    quantann.Index.build(x[:1500], quant="sq8", threads=1).save(path)
    return path


class Workers:
    """`quantann serve --workers N` in a subprocess, its temporary files under `tmp`."""

    def __init__(self, path, tmp, n=2):
        env = dict(os.environ, TMPDIR=str(tmp))
        self.proc = subprocess.Popen([sys.executable, "-m", "quantann", "serve", str(path), "--port", "0",
                                      "--workers", str(n), "--threads", "1", "--llm", "none"],
                                     cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stderr.readline()
        m = re.search(r"127\.0\.0\.1:(\d+) with (\d+) workers", line)
        assert m, line + self.proc.stderr.read()
        self.port = int(m.group(1))

    def children(self):
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return [int(p) for p in f.read().split()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


@pytest.fixture
def workers(index_path, tmp_path):
    w = Workers(index_path, tmp_path)
    yield w
    w.stop()


def post(conn, body):
    conn.request("POST", "/search", json.dumps(body).encode(), {"content-type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return text


def search_count(text):
    return float(re.search(r'^quantann_http_requests_total\{endpoint="/search",status="200"\} (\S+)$', text,
                           re.M).group(1))


def per_worker(text):
    return {int(p): float(v) for p, v in re.findall(r'^quantann_worker_requests\{pid="(\d+)"\} (\S+)$', text, re.M)}


def test_two_workers_answer_like_the_index(workers, index_path, real):
    _, q = real
    idx = quantann.open(index_path)
    assert len(workers.children()) == 2
    conns = [http.client.HTTPConnection("127.0.0.1", workers.port, timeout=30) for _ in range(6)]
    for i in range(24):
        code, out = post(conns[i % 6], {"vector": q[i].tolist(), "k": 5, "ef": 40, "rerank": 2})
        assert code == 200
        assert out["ids"] == idx.search(q[i], k=5, ef=40, rerank=2)[0].tolist()
    code, out = post(conns[0], {"vectors": q[:30].tolist(), "k": 7})
    assert code == 200 and out["ids"] == idx.search(q[:30], k=7, ef=64, rerank=4)[0].tolist()
    for c in conns:
        c.close()


def test_metrics_sum_both_workers(workers, real):
    _, q = real
    conns = [http.client.HTTPConnection("127.0.0.1", workers.port, timeout=30) for _ in range(8)]
    for c in conns:
        c.connect()  # all open before the first request: the workers share them out
    time.sleep(0.2)
    for rnd in range(5):
        for i, c in enumerate(conns):
            assert post(c, {"vector": q[i].tolist()})[0] == 200
    text = metrics(workers.port)
    assert search_count(text) == 40
    counts = per_worker(text)
    assert sorted(counts) == sorted(workers.children())
    assert all(v > 0 for v in counts.values()) and sum(counts.values()) == 40  # /metrics counts after answering
    assert len(re.findall(r'^quantann_worker_proportional_memory_bytes\{pid="\d+"\} [1-9]', text, re.M)) == 2
    for c in conns:
        c.close()


def test_killed_worker_is_replaced_and_serving_goes_on(workers, real):
    _, q = real
    c = http.client.HTTPConnection("127.0.0.1", workers.port, timeout=30)
    for i in range(10):
        assert post(c, {"vector": q[i].tolist()})[0] == 200
    c.close()
    first = workers.children()
    os.kill(first[0], signal.SIGKILL)
    for i in range(20):  # new connections: the survivor answers while the other restarts
        c = http.client.HTTPConnection("127.0.0.1", workers.port, timeout=30)
        assert post(c, {"vector": q[i].tolist()})[0] == 200
        c.close()
    deadline = time.time() + 30
    while time.time() < deadline:
        now = workers.children()
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no worker replaced the killed one: {workers.children()}")
    assert first[1] in now
    text = metrics(workers.port)
    assert search_count(text) == 30  # the dead worker's requests are still in the sum
    assert re.search(r"^quantann_worker_restarts_total 1\.0$", text, re.M)
    assert first[0] not in per_worker(text)  # its live gauges are gone


def test_sigterm_finishes_in_flight_stops_every_worker_and_removes_the_metric_files(workers, tmp_path, real):
    """A request is half-sent when SIGTERM arrives: no worker accepts any more, the
    request is answered in full, then every process is gone with its metric files."""
    _, q = real
    kids = workers.children()
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.glob("quantann-metrics-*")).name]
    body = json.dumps({"vectors": q[:32].tolist()}).encode()
    c = socket.create_connection(("127.0.0.1", workers.port), timeout=30)
    c.sendall(b"POST /search HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(body) + body[:1000])
    time.sleep(0.3)
    workers.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 10
    while time.time() < deadline:  # until no process listens
        try:
            socket.create_connection(("127.0.0.1", workers.port), timeout=1).close()
            time.sleep(0.1)
        except OSError:
            break
    else:
        pytest.fail("still listening after SIGTERM")
    assert workers.proc.poll() is None  # a request is in flight
    c.sendall(body[1000:])
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"content-length: (\d+)", answer, re.I).group(1)):
        more = c.recv(1 << 16)
        assert more, answer
        answer += more
    assert answer.startswith(b"HTTP/1.1 200")
    assert len(json.loads(answer.partition(b"\r\n\r\n")[2])["ids"]) == 32
    c.close()
    assert workers.proc.wait(60) == 0
    assert "stopped" in workers.proc.stderr.read()
    for pid in kids:
        assert not os.path.exists(f"/proc/{pid}")
    assert list(tmp_path.iterdir()) == []


def test_bad_worker_counts_are_user_errors(index_path):
    r = subprocess.run([sys.executable, "-m", "quantann", "serve", str(index_path), "--workers", "0"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "error: --workers must be at least 1" in r.stderr


def test_workers_that_keep_dying_stop_the_server(workers, tmp_path):
    """Five deaths within 10 s: a fault that kills every worker, not bad luck; the
    server stops with an error, leaving no process and no metric files."""
    killed = set()
    deadline = time.time() + 8
    while workers.proc.poll() is None and time.time() < deadline:
        for pid in workers.children():
            if pid not in killed:
                killed.add(pid)
                os.kill(pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    assert workers.proc.wait(60) == 1
    assert "workers died within 10 s" in workers.proc.stderr.read()
    assert len(killed) >= 5 and not any(os.path.exists(f"/proc/{pid}") for pid in killed)
    assert list(tmp_path.iterdir()) == []


def test_metric_files_of_killed_servers_are_removed_at_start(index_path, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"quantann-metrics-{dead.pid}-abcd1234"
    live = tmp_path / f"quantann-metrics-{os.getpid()}-abcd1234"  # a running server's: kept
    for d in (stale, live):
        d.mkdir()
        (d / "counter_1.db").write_bytes(b"x")
    w = Workers(index_path, tmp_path)
    try:
        assert not stale.exists() and (live / "counter_1.db").exists()
    finally:
        w.stop()
