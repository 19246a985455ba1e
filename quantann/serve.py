"""`quantann serve`: the index over HTTP, with Prometheus metrics.

    POST /search   {"vector": [...]} | {"vectors": [[...], ...]} | {"text": "..."}
                   optional "k", "ef", "rerank"  ->  {"ids", "distances", "stats"[, "texts"]}
    GET  /healthz  {"status": "ok", "vectors": n, "dim": d}
    GET  /metrics  Prometheus text format

Searches (and text embeddings) are serialised by a lock: one index, one search scratch;
a device serves one user, and each query is one short kernel call.
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .errors import QuantannError

MAX_BODY = 64 << 20
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self, index):
        r = self.registry = CollectorRegistry()
        self.queries = Counter("quantann_queries", "Queries answered", registry=r)
        self.errors = Counter("quantann_request_errors", "Requests refused", ["reason"], registry=r)
        self.latency = Histogram("quantann_query_seconds", "Time per query by stage", ["stage"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.vectors_read = Counter("quantann_vectors_read", "Full vectors read from the store", registry=r)
        self.bytes_read = Counter("quantann_store_bytes_read", "Bytes read from the store", registry=r)
        self.memory = Gauge("quantann_index_memory_bytes", "Bytes the index holds in memory", ["part"], registry=r)
        self.size = Gauge("quantann_index_vectors", "Live vectors in the index", registry=r)
        self.update_index(index)

    def update_index(self, index):
        for part, v in index.memory().items():
            self.memory.labels(part).set(v)
        self.size.set(len(index))

    def observe(self, stats):
        for st in stats:
            self.queries.inc()
            self.latency.labels("graph").observe(st.graph_ms / 1e3)
            self.latency.labels("read").observe(st.read_ms / 1e3)
            self.latency.labels("rerank").observe(st.rerank_ms / 1e3)
            self.latency.labels("total").observe((st.graph_ms + st.read_ms + st.rerank_ms) / 1e3)
            self.vectors_read.inc(st.vectors_read)
            self.bytes_read.inc(st.bytes_read)


class BadRequest(Exception):
    pass


class Service:
    def __init__(self, index, text_index=None, max_k: int = 1000, defaults=None):
        self.index = index
        self.defaults = {"k": 10, "ef": 64, "rerank": 4, **(defaults or {})}
        self.text_index = text_index
        self.max_k = max_k
        self.metrics = Metrics(index)
        self.lock = threading.Lock()

    def search(self, body: dict) -> dict:
        k, ef, rerank = (body.get(n, self.defaults[n]) for n in ("k", "ef", "rerank"))
        for name, v in (("k", k), ("ef", ef), ("rerank", rerank)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise BadRequest(f"{name} must be an integer")
        if k > self.max_k:
            raise BadRequest(f"k={k} is over this server's limit of {self.max_k}")
        if "text" in body:
            if self.text_index is None or self.text_index.embedder is None:
                raise BadRequest("this server has no embedding model: send vectors, or start it with --model")
            if not isinstance(body["text"], str):
                raise BadRequest("text must be a string")
            with self.lock:  # the model's scratch is shared too
                q = self.text_index.embedder.embed([body["text"]])
        elif "vector" in body or "vectors" in body:
            raw = [body["vector"]] if "vector" in body else body["vectors"]
            try:
                q = np.asarray(raw, dtype=np.float32)
            except (TypeError, ValueError):
                raise BadRequest("vectors must be numbers") from None
        else:
            raise BadRequest('send {"vector": [...]}, {"vectors": [[...]]} or {"text": "..."}')
        with self.lock:
            try:
                ids, dist = self.index.search(q, k=k, ef=ef, rerank=rerank)
            except (ValueError, TypeError) as e:
                raise BadRequest(str(e)) from None
            stats = self.index.last_stats
        self.metrics.observe(stats)
        out = {"ids": ids.tolist(), "distances": dist.tolist(), "stats": [asdict(s) for s in stats]}
        if self.text_index is not None and self.text_index.has_stored_texts:
            out["texts"] = [self.text_index.texts(row) for row in ids]
        return out


def make_handler(service: Service):
    class Handler(BaseHTTPRequestHandler):
        server_version = "quantann"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet; metrics tell the story
            pass

        def _send(self, code, payload, ctype="application/json"):
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code, reason, msg):
            service.metrics.errors.labels(reason).inc()
            self._send(code, {"error": msg})

        def do_GET(self):
            if self.path == "/metrics":
                service.metrics.update_index(service.index)
                self._send(200, generate_latest(service.metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._send(200, {"status": "ok", "vectors": len(service.index), "dim": service.index.dim})
            else:
                self._error(404, "not_found", f"no such path {self.path}: use POST /search, GET /healthz, GET /metrics")

        def do_POST(self):
            if self.path != "/search":
                return self._error(404, "not_found", f"no such path {self.path}")
            try:
                n = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                n = -1
            if n < 0 or n > MAX_BODY:
                return self._error(413, "too_large", f"body must be 0..{MAX_BODY} bytes")
            try:
                body = json.loads(self.rfile.read(n) or b"{}")
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object")
                self._send(200, service.search(body))
            except json.JSONDecodeError as e:
                self._error(400, "bad_json", f"body is not JSON: {e}")
            except BadRequest as e:
                self._error(400, "bad_request", str(e))
            except QuantannError as e:
                self._error(500, "index", str(e))

    return Handler


def serve(index, host="127.0.0.1", port=8080, text_index=None, ready=None, defaults=None):
    """Runs until interrupted. `ready(server)` is called once listening (for tests);
    `defaults` holds k, ef, rerank for requests that leave them out."""
    service = Service(index, text_index, defaults=defaults)
    server = ThreadingHTTPServer((host, port), make_handler(service))
    server.daemon_threads = True
    if ready:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.server_close()
