"""The service's Prometheus metrics, in one registry per app.

Requests and their latency per endpoint, errors by kind, per-query stage times (graph,
read, rerank, total; embed and search for text queries and /ask questions), what the
store read, the index's memory by part, and the process's own (RSS, CPU, fds). With an
LLM: generation stage times (prefill, first token, each decoded token), prompt and
generated tokens, generations by how they ended, the slots, and the models' bytes
(weights, KV cache).

With `serve --workers N` (PROMETHEUS_MULTIPROC_DIR set before prometheus_client is
imported) every worker writes its values to files there and /metrics, answered by any
worker, reads them all: counters and histograms are summed, gauges summed over the live
workers or their maximum (each gauge says which). The process collector sees one
process only, so each worker's memory (RSS and PSS), CPU and requests are gauges with a
`pid` label instead. Gauges a worker sets when it answers /metrics (the slots, the
index's size and memory) it also refreshes every few seconds, so that the sums over the
workers are at most that old.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               ProcessCollector, generate_latest)

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 10.0)
GENERATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ENDPOINTS = ("/search", "/generate", "/ask", "/healthz", "/metrics")  # anything else is counted as "other"
WORKER_REFRESH = 2.0  # seconds between a worker's own memory and CPU gauges


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, index):
        r = self.registry = CollectorRegistry()
        self.multiprocess = multiprocess()
        if not self.multiprocess:
            ProcessCollector(registry=r)
        self.requests = Counter("quantann_http_requests", "HTTP requests answered", ["endpoint", "status"],
                                registry=r)
        self.request_seconds = Histogram("quantann_http_request_seconds", "Time from request to answer",
                                         ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("quantann_http_requests_in_flight", "Requests being answered", registry=r,
                               multiprocess_mode="livesum")
        self.errors = Counter("quantann_request_errors", "Requests refused or failed, by kind", ["kind"],
                              registry=r)
        self.queries = Counter("quantann_queries", "Queries answered", registry=r)
        self.stage_seconds = Histogram("quantann_query_seconds", "Time per query by stage", ["stage"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.vectors_read = Counter("quantann_vectors_read", "Full vectors read from the store", registry=r)
        self.bytes_read = Counter("quantann_store_bytes_read", "Bytes read from the store", registry=r)
        self.memory = Gauge("quantann_index_memory_bytes", "Bytes the index holds in memory (shared by the workers)",
                            ["part"], registry=r, multiprocess_mode="max")
        self.size = Gauge("quantann_index_vectors", "Live vectors in the index", registry=r, multiprocess_mode="max")
        self.generation_seconds = Histogram("quantann_generation_seconds",
                                            "LLM time by stage: prefill (the prompt), first_token (from the "
                                            "request's start), decode_token (each generated token)", ["stage"],
                                            buckets=GENERATION_BUCKETS, registry=r)
        self.prompt_tokens = Counter("quantann_prompt_tokens", "Prompt tokens prefilled", ["endpoint"],
                                     registry=r)
        self.generated_tokens = Counter("quantann_generated_tokens", "Tokens generated", ["endpoint"],
                                        registry=r)
        self.generations = Counter("quantann_generations", "Generations finished, by how they ended "
                                   "(eos, length, stop, cancelled)", ["endpoint", "stop"], registry=r)
        self.model_bytes = Gauge("quantann_model_bytes", "Bytes of the models' weights (memory-mapped)", ["model"],
                                 registry=r, multiprocess_mode="max")
        self.kv_cache_bytes = Gauge("quantann_kv_cache_bytes", "Bytes of the LLM's KV caches (one per slot)",
                                    registry=r, multiprocess_mode="livesum")
        self.llm_slots = Gauge("quantann_llm_slots", "LLM slots by state; requests waiting for one", ["state"],
                               registry=r, multiprocess_mode="livesum")
        self._decode = self.generation_seconds.labels("decode_token")
        self._index = index
        self._llm = None
        self._stages = [self.stage_seconds.labels(s) for s in ("graph", "read", "rerank", "total")]
        for status in ("200", "400", "401", "404", "413"):  # so that rates start at 0, not absent
            self.requests.labels("/search", status)
        self._worker_requests = None
        if self.multiprocess:
            self._worker_requests = Gauge("quantann_worker_requests", "HTTP requests answered by each worker",
                                          registry=r, multiprocess_mode="liveall")
            self._worker = {k: Gauge(f"quantann_worker_{k}", doc, registry=r, multiprocess_mode="liveall")
                            for k, doc in (("resident_memory_bytes", "Each worker's RSS"),
                                           ("proportional_memory_bytes", "Each worker's PSS: its RSS with the "
                                            "pages it shares (the index) divided among their sharers"),
                                           ("cpu_seconds", "Each worker's CPU time"))}
            self._refresh_worker()
            threading.Thread(target=self._refresh_loop, name="quantann-metrics", daemon=True).start()

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        endpoint = endpoint if endpoint in ENDPOINTS else "other"
        self.requests.labels(endpoint, str(status)).inc()
        self.request_seconds.labels(endpoint).observe(seconds)
        if self._worker_requests is not None:
            self._worker_requests.inc()

    def observe_queries(self, stats) -> None:
        graph, read, rerank, total = self._stages
        for st in stats:
            graph.observe(st.graph_ms / 1e3)
            read.observe(st.read_ms / 1e3)
            rerank.observe(st.rerank_ms / 1e3)
            total.observe((st.graph_ms + st.read_ms + st.rerank_ms) / 1e3)
        self.queries.inc(len(stats))
        self.vectors_read.inc(sum(st.vectors_read for st in stats))
        self.bytes_read.inc(sum(st.bytes_read for st in stats))

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(name).observe(time.perf_counter() - t0)

    def observe_stage(self, name: str, seconds: float) -> None:
        self.stage_seconds.labels(name).observe(seconds)

    def decode_tokens(self, seconds: float, n: int) -> None:
        """n tokens decoded in `seconds`: n observations of their mean."""
        for _ in range(n):
            self._decode.observe(seconds / n)

    def generation(self, endpoint: str, prompt_tokens: int, stop: str, prefill_s=None,
                   first_token_s=None) -> None:
        """A generation that ended (its tokens were counted as they came)."""
        self.prompt_tokens.labels(endpoint).inc(prompt_tokens)
        self.generations.labels(endpoint, stop or "cancelled").inc()
        if prefill_s is not None:
            self.generation_seconds.labels("prefill").observe(prefill_s)
        if first_token_s is not None:
            self.generation_seconds.labels("first_token").observe(first_token_s)

    def models(self, llm=None, embedder_bytes: int = 0) -> None:
        """The models served: the LLM's slots (llm.LLMSlots) and the embedder's file size."""
        self._llm = llm
        if embedder_bytes:
            self.model_bytes.labels("embedder").set(embedder_bytes)
        if llm is not None:
            self.model_bytes.labels("llm").set(llm.weights_bytes)
            for stage in ("prefill", "first_token", "decode_token"):
                self.generation_seconds.labels(stage)
            self._set_gauges()

    def _set_gauges(self) -> None:
        if self._llm is not None:
            self.llm_slots.labels("busy").set(self._llm.busy)
            self.llm_slots.labels("free").set(len(self._llm.generators) - self._llm.busy)
            self.llm_slots.labels("waiting").set(self._llm.queued)
            self.kv_cache_bytes.set(sum(g.kv_bytes for g in self._llm.opened))  # lazy slots open on first use
        for part, v in self._index.memory().items():
            self.memory.labels(part).set(v)
        self.size.set(len(self._index))

    def render(self) -> bytes:
        self._set_gauges()
        if self.multiprocess:
            from prometheus_client import multiprocess
            r = CollectorRegistry()
            multiprocess.MultiProcessCollector(r)
            return generate_latest(r)
        return generate_latest(self.registry)

    def _refresh_loop(self) -> None:
        while True:
            time.sleep(WORKER_REFRESH)
            self._refresh_worker()

    def _refresh_worker(self) -> None:
        """This worker's gauges, for a /metrics that another worker answers."""
        self._set_gauges()
        mem = process_memory()
        self._worker["resident_memory_bytes"].set(mem.get("Rss", 0))
        self._worker["proportional_memory_bytes"].set(mem.get("Pss", 0))
        t = os.times()
        self._worker["cpu_seconds"].set(t.user + t.system)


def process_memory(pid="self") -> dict:
    """Bytes of a process's memory by kind (Rss, Pss, Private_Clean, ...), from
    /proc/PID/smaps_rollup; {} where there is none."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out
