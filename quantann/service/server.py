"""uvicorn, configured for a service on a real network: the listening socket (backlog
2048), keep-alive and read timeouts, a connection limit, the token rule for a
non-loopback bind, and graceful shutdown (SIGTERM or SIGINT: stop accepting, finish the
requests in flight, then stop the workers).
"""
from __future__ import annotations

import errno
import ipaddress
import json
import signal
import socket
import threading

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import Service, make_app
from .limits import Limits

BACKLOG = 2048
GRACEFUL_SECONDS = 30  # in-flight requests get this long after SIGTERM
MIN_TOKEN = 16  # characters: a short token over a network is guessable
LINGER_SECONDS = 2.0  # after refusing a body mid-upload, what arrives is discarded this long


class ServeError(Exception):
    """A reason the server cannot start, for the CLI to print as `error: ...`."""


def _timeout_answer() -> bytes:
    body = json.dumps({"error": "the request did not arrive in time (--read-timeout)"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class _LingeringTransport:
    """The connection's transport, except that closing it while the client is still
    sending the request body (a 413 refusing it, a 408) half-closes and discards what
    arrives for LINGER_SECONDS before closing: closing at once makes the kernel reset
    the connection, and the client, busy sending, may lose the answer unread."""

    def __init__(self, transport, protocol):
        self._t, self._p = transport, protocol
        self.lingering = False
        self._pending: list[bytes] = []

    def __getattr__(self, name):
        return getattr(self._t, name)

    def write(self, data: bytes) -> None:
        """Writes of one loop iteration (an answer's head, then its body) go out as one."""
        if not self._pending:
            self._p.loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._t.is_closing():
                self._t.write(data)

    def is_closing(self) -> bool:
        return self.lingering or self._t.is_closing()

    def close(self) -> None:
        if self.lingering:
            return
        self._flush()
        if (self._t.is_closing() or self._p.conn.their_state is not h11.SEND_BODY
                or not self._t.can_write_eof()):
            self._t.close()
            return
        try:
            self._t.write_eof()  # sent after the answer still buffered
        except OSError:  # the client is gone already
            self._t.close()
            return
        self.lingering = True
        self._t.resume_reading()
        self._p.loop.call_later(LINGER_SECONDS, self._t.close)


def protocol_with_read_timeout(seconds: float, on_timeout=None):
    """uvicorn's h11 protocol plus a deadline for receiving each request: it starts when a
    connection opens or a new request's first bytes arrive and ends when the whole
    request (head and body) is in. A client that stalls mid-request gets 408 and is
    closed, so it holds a connection for `seconds` at most. (uvicorn alone closes idle
    keep-alive connections but waits forever for a request that stops half-way.)"""

    class TimedH11Protocol(H11Protocol):
        _deadline = None

        def connection_made(self, transport):
            super().connection_made(_LingeringTransport(transport, self))
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self.transport.lingering:
                return  # the rest of a refused body: dropped unread
            super().data_received(data)
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                if self._deadline is None:
                    self._arm()
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            self._disarm()  # idle from here: uvicorn's keep-alive timeout takes over
            super().on_response_complete()
            if self.conn.their_state is h11.SEND_BODY and self._deadline is None:
                self._arm()  # a pipelined request, already begun

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if on_timeout:
                on_timeout()
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(_timeout_answer())
            self.transport.close()

    return TimedH11Protocol


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        raise ServeError(f"cannot resolve host {host!r}: {e.strerror}") from None
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_token(host: str, token: str | None) -> None:
    if token is not None and len(token) < MIN_TOKEN:
        raise ServeError(f"the token must have at least {MIN_TOKEN} characters "
                         f"(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if token is None and not is_loopback(host):
        raise ServeError(f"binding to {host} exposes the index to the network: give --token TOKEN or set "
                         f"QUANTANN_TOKEN (clients then send Authorization: Bearer TOKEN), or bind 127.0.0.1")


def listen(host: str, port: int) -> socket.socket:
    """The bound, listening socket, or ServeError naming the problem."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ServeError(f"cannot resolve host {host!r}: {e.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(BACKLOG)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} is in use") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ServeError(f"no permission to listen on port {port} (ports below 1024 need privileges)") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise ServeError(f"{host} is not an address of this machine") from None
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.setblocking(False)
    return sock


def make_server(service: Service, sock: socket.socket) -> uvicorn.Server:
    limits: Limits = service.limits

    def timed_out():
        service.metrics.errors.labels("read_timeout").inc()

    config = uvicorn.Config(
        make_app(service), http=protocol_with_read_timeout(limits.read_timeout, timed_out),
        lifespan="off", log_level="warning", access_log=False, server_header=False,
        backlog=BACKLOG, timeout_keep_alive=limits.keep_alive, limit_concurrency=limits.max_connections,
        timeout_graceful_shutdown=GRACEFUL_SECONDS)
    return uvicorn.Server(config)


def run(service: Service, sock: socket.socket, ready=None) -> None:
    """Serves on `sock` until SIGTERM/SIGINT (or `server.should_exit`); in-flight requests
    finish first. `ready(server)` is called once the server accepts."""
    server = make_server(service, sock)
    if ready is not None:
        _call_when_started(server, ready)
    # uvicorn re-raises the signal it stopped on once it is done; a no-op handler for
    # SIGTERM makes that a normal return (SIGINT's default raises KeyboardInterrupt)
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, lambda *_: None) if main else None
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, old)
        service.pool.close()
        sock.close()


def _call_when_started(server: uvicorn.Server, ready) -> None:
    startup = server.startup

    async def started(*args, **kwargs):
        await startup(*args, **kwargs)
        ready(server)
    server.startup = started
