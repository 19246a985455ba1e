"""One /search request: parsed and checked, searched chunk by chunk, encoded.

A job runs as a few pool jobs: `start` parses, checks and searches the first chunk, and
each `step` the next; the event loop hands the pool back between chunks, so a batch of
hundreds of queries shares the workers with single queries that arrive meanwhile.
"""
from __future__ import annotations

import json
import re
import threading

import numpy as np

from ..constants import LIMITS
from ..errors import QuantannError
from . import jsonio
from .limits import ApiError, Limits, json_depth

CHUNK = 16  # queries per pool job
FIELDS = {"vector", "vectors", "text", "k", "ef", "rerank", "hybrid"}
BINARY = "application/octet-stream"  # a body of float32 vectors
BINARY_PARAMS = ("k", "ef", "rerank")
_INT = re.compile(r"-?[0-9]{1,20}")


def search_with_stats(index, q, k, ef, rerank):
    """(ids, distances, per-query stats) of one search on `index` from this thread
    (`Index.last_stats` is per thread, so parallel searches keep their own)."""
    ids, dist = index.search(q, k=k, ef=ef, rerank=rerank)
    return ids, dist, index.last_stats


class SearchJob:
    """A parsed, checked /search request and its results so far."""

    def __init__(self, queries, text, k, ef, rerank, hybrid=False):
        self.queries, self.text, self.hybrid = queries, text, hybrid
        self.k, self.ef, self.rerank = k, ef, rerank
        self.parts: list = []  # (ids, distances, stats) per chunk
        self.done = 0  # queries searched
        self.body: bytes | None = None  # the encoded answer, once complete

    @property
    def total(self) -> int:
        return 1 if self.queries is None else len(self.queries)


def _integer(body: dict, name: str, default: int, lo: int, hi: int, flag: str) -> int:
    v = body.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {json.dumps(v)[:40]}")
    if not lo <= v <= hi:
        raise ApiError(400, "out_of_range", f"{name}={v} is outside {lo}..{hi}"
                       + (f" (this server's limit, {flag})" if v > hi else ""))
    return v


def _counts(req: dict, limits: Limits, defaults: dict, live: int) -> tuple[int, int, int]:
    """k, ef and rerank of a request, checked against the limits and the index. rerank
    "auto", or None (the index's default), reads at most max(ef, k * rerank_default) rows."""
    k = _integer(req, "k", defaults["k"], 1, limits.max_k, "--max-k")
    ef = _integer(req, "ef", defaults["ef"], 1, limits.max_ef, "--max-ef")
    rerank = req.get("rerank", defaults["rerank"])
    if rerank not in (None, "auto"):
        rerank = _integer(req, "rerank", defaults["rerank"], 0, limits.max_ef, "--max-ef")
    per_k = LIMITS["rerank_default"] if rerank in (None, "auto") else rerank
    if k * per_k > limits.max_ef:
        raise ApiError(400, "out_of_range", f"k*rerank={k * per_k} candidates is over this server's limit "
                                            f"of {limits.max_ef} (--max-ef)")
    if k > live:
        raise ApiError(400, "out_of_range", f"k={k} is larger than the {live} vectors in the index")
    return k, ef, rerank


def _finite(q: np.ndarray) -> np.ndarray:
    finite = np.isfinite(q).all(axis=1)
    if not finite.all():
        raise ApiError(400, "bad_vector", f"vector {int(np.argmin(finite))} holds NaN or infinity "
                                          f"(or a number beyond float32)")
    return q


def parse_binary(body: bytes, params: list, limits: Limits, defaults: dict, dim: int, live: int) -> SearchJob:
    """A body of float32 vectors (little-endian, row after row; content-type
    application/octet-stream) with k, ef and rerank in the query string: no JSON to
    parse, so the least GIL-held work per query."""
    names = [n for n, _ in params]
    for n in names:
        if n not in BINARY_PARAMS:
            raise ApiError(400, "bad_request", f"unknown query parameter {n!r}: use {', '.join(BINARY_PARAMS)}")
        if names.count(n) > 1:
            raise ApiError(400, "bad_request", f"query parameter {n!r} given twice")
    req = {}
    for n, v in params:
        if n == "rerank" and v == "auto":
            req[n] = v
            continue
        if not _INT.fullmatch(v):
            raise ApiError(400, "bad_parameter", f"{n} must be an integer, got {v[:40]!r}")
        req[n] = int(v)
    k, ef, rerank = _counts(req, limits, defaults, live)
    row = 4 * dim
    if not body or len(body) % row:
        raise ApiError(400, "wrong_dimension", f"the body has {len(body)} bytes: not a whole number of {dim}-d "
                                               f"float32 vectors ({row} bytes each)")
    if len(body) // row > limits.max_batch:
        raise ApiError(400, "too_large", f"{len(body) // row} vectors in one request is over this server's "
                                         f"limit of {limits.max_batch} (--max-batch)")
    q = np.frombuffer(body, "<f4").reshape(-1, dim).astype(np.float32)
    return SearchJob(_finite(q), None, k, ef, rerank)


def parse(body: bytes, limits: Limits, defaults: dict, dim: int, live: int, has_model: bool) -> SearchJob:
    """The request in `body`, checked against the limits and the index; ApiError otherwise."""
    if json_depth(body, stop=limits.max_depth) > limits.max_depth:
        raise ApiError(400, "too_deep", f"the JSON nests deeper than {limits.max_depth} levels")
    try:
        req = jsonio.loads(body or b"{}")
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "bad_json", f"the body is not JSON: {e}") from None
    if not isinstance(req, dict):
        raise ApiError(400, "bad_request", 'the body must be a JSON object like {"vector": [...]}')
    unknown = sorted(set(req) - FIELDS)
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field {unknown[0]!r}: use {', '.join(sorted(FIELDS))}")
    given = [n for n in ("vector", "vectors", "text") if n in req]
    if len(given) != 1:
        raise ApiError(400, "bad_request", 'send exactly one of {"vector": [...]}, {"vectors": [[...], ...]} '
                                           'or {"text": "..."}')
    k, ef, rerank = _counts(req, limits, defaults, live)
    hybrid = req.get("hybrid", False)
    if not isinstance(hybrid, bool):
        raise ApiError(400, "bad_parameter", f"hybrid must be true or false, got {json.dumps(hybrid)[:40]}")
    if hybrid and given[0] != "text":
        raise ApiError(400, "bad_request", "hybrid search (vectors and words) needs a text query: send {\"text\": ...}")
    if given[0] == "text":
        text = req["text"]
        if not has_model:
            raise ApiError(400, "no_model", "this server has no embedding model: send vectors, or start it "
                                            "on a text index with its model (--model)")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "bad_request", "text must be a non-empty string")
        if len(text) > limits.max_text:
            raise ApiError(400, "too_large", f"the text has {len(text)} characters, over this server's limit "
                                             f"of {limits.max_text}")
        return SearchJob(None, text, k, ef, rerank, hybrid)
    raw = req[given[0]]
    if given[0] == "vector":
        raw = [raw]
    elif not isinstance(raw, list) or not raw:
        raise ApiError(400, "bad_request", "vectors must be a non-empty list of vectors")
    if len(raw) > limits.max_batch:
        raise ApiError(400, "too_large", f"{len(raw)} vectors in one request is over this server's limit of "
                                         f"{limits.max_batch} (--max-batch)")
    try:
        q = np.asarray(raw)
    except ValueError:  # ragged rows
        raise ApiError(400, "bad_vector", "every vector must be a list of the same number of numbers") from None
    if q.dtype.kind not in "iuf" or q.ndim != 2:
        raise ApiError(400, "bad_vector", "vectors must be lists of numbers")
    if q.shape[1] != dim:
        raise ApiError(400, "wrong_dimension", f"the vectors have dimension {q.shape[1]}, the index has {dim}")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
        q = q.astype(np.float32)
    return SearchJob(_finite(q), None, k, ef, rerank)


class Searcher:
    """Runs jobs on the index a worker thread is given; observes metrics; encodes."""

    def __init__(self, pool, metrics, limits: Limits, defaults: dict, embedder=None, texts=None):
        self.pool, self.metrics, self.limits = pool, metrics, limits
        self.defaults = defaults
        self.embedder, self.texts = embedder, texts
        self.embed_lock = threading.Lock()  # the model has one scratch

    def start(self, body: bytes, params: list | None = None) -> SearchJob:
        """Pool job: parse, check, embed a text query, and search the first chunk. params:
        the query string's (name, value) pairs of a binary body; None for JSON."""
        index = self.pool.index
        if params is not None:
            job = parse_binary(body, params, self.limits, self.defaults, index.dim, len(index))
        else:
            job = parse(body, self.limits, self.defaults, index.dim, len(index), self.embedder is not None)
        if job.text is not None:
            with self.embed_lock, self.metrics.stage("embed"):
                job.queries = np.asarray(self.embedder.embed([job.text]), np.float32)
        self.step(job)
        return job

    def step(self, job: SearchJob) -> SearchJob:
        """Pool job: search the next chunk; encode the answer after the last."""
        lo, hi = job.done, min(job.done + CHUNK, job.total)
        try:
            if job.hybrid:
                ids, dist, stats = self._hybrid(job)
            else:
                ids, dist, stats = search_with_stats(self.pool.worker_index(), job.queries[lo:hi],
                                                     job.k, job.ef, job.rerank)
        except QuantannError as e:
            raise ApiError(500, "index", f"the index failed: {e}") from None
        except (ValueError, TypeError) as e:
            raise ApiError(400, "bad_request", str(e)) from None
        self.metrics.observe_queries(stats)
        job.parts.append((ids, dist, stats))
        job.done = hi
        if job.done == job.total:
            job.body = self._encode(job)
            job.parts = []
        return job

    def _hybrid(self, job: SearchJob):
        """A text query by vectors and words fused (TextIndex.search_ids): stats of its vector search."""
        from ..text import TextIndex
        if self.texts is None or getattr(self.texts, "lexical", None) is None:
            raise ApiError(400, "no_lexical", "this server's index has no lexical index for hybrid search: "
                                              "build it with --texts (without --no-lexical)")
        index = self.pool.worker_index()
        ids, dist = TextIndex(None, index, self.texts).search_ids(job.queries[0], job.text, k=job.k, ef=job.ef,
                                                                  rerank=job.rerank, hybrid=True)
        return ids[None], dist[None], index.last_stats

    def _encode(self, job: SearchJob) -> bytes:
        parts = job.parts
        ids = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
        out = {"ids": ids,
               "distances": parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts]),
               "stats": [s for p in parts for s in p[2]]}
        if self.texts is not None:
            out["texts"] = [self.texts.get(row) for row in ids]
        return jsonio.dumps(out)
