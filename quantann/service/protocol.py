"""uvicorn's HTTP/1.1 protocols with what a real network needs and uvicorn lacks:

- a deadline for receiving each request: it starts when a connection opens or a
  request's first bytes arrive and ends when the whole request (head and body) is in.
  A client that stalls mid-request gets 408 and is closed, so it holds a connection for
  the read timeout at most (uvicorn closes idle keep-alive connections, but waits forever
  for a request that stops half-way, or for a first request that never comes);
- a lingering close: closing while the client is still sending the body (a 413 refusing
  it, a 408) half-closes and discards what arrives for LINGER_SECONDS: closing at once
  makes the kernel reset the connection, and a client busy sending may lose the answer;
- an answer's head and body leave in one write (uvicorn writes them separately: two
  sends, each a hand-off of the GIL to a worker thread and back).

For both of uvicorn's parsers: httptools (C, used when installed: a fraction of the event
loop's time per request) and h11 (pure Python).
"""
from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LINGER_SECONDS = 2.0


def _answer(status: bytes, message: str) -> bytes:
    """A whole JSON error answer that closes the connection, for refusals made before
    there is a request to answer through the app."""
    body = json.dumps({"error": message}).encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class _Transport:
    """The connection's transport, with writes coalesced per loop iteration and the
    lingering close."""

    def __init__(self, transport, protocol):
        self._t, self._p = transport, protocol
        self.lingering = False
        self._pending: list[bytes] = []

    def __getattr__(self, name):
        return getattr(self._t, name)

    def write(self, data: bytes) -> None:
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
        if self._t.is_closing() or not self._p.body_incomplete() or not self._t.can_write_eof():
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


class _Deadline:
    """The read deadline, shared by both protocols; `read_timeout` and `on_timeout` are
    set on the classes that http_protocol() makes."""
    read_timeout = 15.0
    on_timeout = None
    _deadline = None

    def connection_made(self, transport):
        super().connection_made(_Transport(transport, self))
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.on_timeout:
            self.on_timeout()
        cycle = self.cycle  # the previous request's, on a keep-alive connection
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_answer(b"408 Request Timeout",
                                         "the request did not arrive in time (--read-timeout)"))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Bytes that are not an HTTP/1.1 request (or a head over 16 KB): JSON like every
        other refusal."""
        self.transport.write(_answer(b"400 Bad Request", f"not a valid HTTP/1.1 request ({msg.rstrip('.')})"))
        self.transport.close()


class TimedH11Protocol(_Deadline, H11Protocol):
    def body_incomplete(self) -> bool:
        return self.conn.their_state is h11.SEND_BODY

    def data_received(self, data: bytes) -> None:
        if self.transport.lingering:
            return  # the rest of a refused body: dropped unread
        super().data_received(data)
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self._arm()
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # idle from here: uvicorn's keep-alive timeout takes over
        super().on_response_complete()
        if self.conn.their_state is h11.SEND_BODY:
            self._arm()  # a pipelined request, already begun


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed
    HttpToolsProtocol = None

if HttpToolsProtocol is not None:
    class TimedHttpToolsProtocol(_Deadline, HttpToolsProtocol):
        _receiving = False  # from a request's first byte to its end
        _head_done = False

        def body_incomplete(self) -> bool:
            return self._receiving and self._head_done

        def data_received(self, data: bytes) -> None:
            if self.transport.lingering:
                return  # the rest of a refused body: dropped unread
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._receiving, self._head_done = True, False
            self._arm()

        def on_headers_complete(self) -> None:
            self._head_done = True
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._receiving = False
            self._disarm()
            super().on_message_complete()


def http_protocol(read_timeout: float, on_timeout=None, parser: str | None = None):
    """The protocol class for uvicorn's `http=`: "httptools", "h11", or None for
    httptools when it is installed."""
    if parser is None:
        parser = "httptools" if HttpToolsProtocol is not None else "h11"
    if parser == "httptools" and HttpToolsProtocol is None:
        raise ValueError("the httptools parser is not installed: pip install httptools")
    base = {"h11": TimedH11Protocol, "httptools": HttpToolsProtocol and TimedHttpToolsProtocol}[parser]
    return type(base.__name__, (base,), {"read_timeout": read_timeout,
                                         "on_timeout": staticmethod(on_timeout) if on_timeout else None})
