"""The ASGI app: routes, the bearer token, body limits, JSON errors, request metrics.

Every refusal is a JSON object {"error": "..."} with a 4xx status (5xx only for the
service's own failures), counted in quantann_request_errors_total by kind.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import sys
import time
import traceback
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .limits import ApiError, Limits
from .metrics import Metrics
from .pool import SearchPool
from .search import Searcher

def json_response(status: int, payload, headers=None) -> Response:
    return Response(json.dumps(payload).encode(), status, headers, media_type="application/json")


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
                 embedder=None, texts=None):
        self.pool, self.limits, self.token = pool, limits, token
        self.metrics = Metrics(pool.index)
        self.searcher = Searcher(pool, self.metrics, limits, defaults, embedder, texts)
        self.budget = BodyBudget(limits.body_budget)

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
            job = await self.pool.run(self.searcher.start, body)
            del body
        while job.body is None:  # a batch: one chunk per pool job
            job = await self.pool.run(self.searcher.step, job)
        return Response(job.body, media_type="application/json")

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
        msg = {404: f"no such path {request.url.path}: use POST /search, GET /healthz, GET /metrics",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return json_response(exc.status_code, {"error": msg}, exc.headers)


def make_app(service: Service) -> Starlette:
    s = service
    return Starlette(routes=[s.route("/search", s.search, ["POST"]),
                             s.route("/healthz", s.healthz, ["GET"], auth=False),
                             s.route("/metrics", s.metrics_text, ["GET"])],
                     exception_handlers={HTTPException: s.http_error})
