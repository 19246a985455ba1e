"""uvicorn, configured for a service on a real network: the listening socket (backlog
2048), keep-alive and read timeouts, a connection limit, the token rule for a
non-loopback bind, and graceful shutdown (SIGTERM or SIGINT: stop accepting, finish the
requests in flight, then stop the workers).
"""
from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import threading

import uvicorn

from .app import Service, make_app
from .limits import Limits
from .listener import SharedListener
from .protocol import http_protocol

BACKLOG = 2048
GRACEFUL_SECONDS = 30  # in-flight requests get this long after SIGTERM
MIN_TOKEN = 16  # characters: a short token over a network is guessable


class ServeError(Exception):
    """A reason the server cannot start, for the CLI to print as `error: ...`."""


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
            raise ServeError(f"cannot listen on {host}:{port}: the port is in use (another server there? pick another --port, or --port 0 for a free one)") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ServeError(f"no permission to listen on port {port} (ports below 1024 need privileges)") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise ServeError(f"{host} is not an address of this machine") from None
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.setblocking(False)
    return sock


def make_server(service: Service, sock: socket.socket, parser: str | None = None,
                accept_batch: int = BACKLOG) -> uvicorn.Server:
    limits: Limits = service.limits

    def timed_out():
        service.metrics.errors.labels("read_timeout").inc()

    config = uvicorn.Config(
        make_app(service), http=http_protocol(limits.read_timeout, timed_out, parser),
        lifespan="off", log_level="warning", access_log=False, server_header=False,
        backlog=accept_batch, timeout_keep_alive=limits.keep_alive, limit_concurrency=limits.max_connections,
        timeout_graceful_shutdown=GRACEFUL_SECONDS)
    return uvicorn.Server(config)


def run(service: Service, sock: socket.socket, ready=None, parser: str | None = None,
        shared=None) -> None:
    """Serves on `sock` until SIGTERM/SIGINT (or `server.should_exit`); in-flight requests
    finish first. `ready(server)` is called once the server accepts. `parser`: "httptools"
    or "h11" (default: httptools when installed). `shared`: (ConnectionTable, slot) when
    other worker processes accept on `sock` too (listener.py)."""
    if shared is not None:
        # takes the fd over: closing it on shutdown then stops this worker listening
        sock = SharedListener(fileno=sock.detach()).setup(*shared)
    server = make_server(service, sock, parser, accept_batch=1 if shared is not None else BACKLOG)
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
        service.close()
        sock.close()


def _call_when_started(server: uvicorn.Server, ready) -> None:
    startup = server.startup

    async def started(*args, **kwargs):
        await startup(*args, **kwargs)
        ready(server)
    server.startup = started
