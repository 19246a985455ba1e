"""What a request may ask of the service, and the checks that run before any parsing.

Every bound here keeps one request's cost (time and memory) finite: the body is refused
by its Content-Length before it is read, JSON nesting is measured by a cheap scan before
the parser runs, and k, ef and k*rerank bound the search scratch (which otherwise grows
to the largest request ever seen and stays there).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..constants import LIMITS


class ApiError(Exception):
    """A request the service refuses: HTTP `status`, a metrics `kind`, a message for the
    client. `close` ends the connection after the answer (used when the body was left
    unread, so the next bytes on the connection are not a request)."""

    def __init__(self, status: int, kind: str, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.kind, self.message, self.close = status, kind, message, close


@dataclass(frozen=True)
class Limits:
    max_body: int = 16 << 20  # bytes of one request body
    max_batch: int = 256  # query vectors in one request
    max_k: int = 1000
    max_ef: int = 4096  # bounds ef and the candidate pool k*rerank alike
    max_depth: int = 8  # JSON nesting; a search needs 3
    max_text: int = 10_000  # characters of a text query or an /ask question
    max_prompt: int = 32_000  # characters of a /generate prompt (all messages together)
    max_messages: int = 64  # messages of a /generate chat
    max_tokens: int = 512  # tokens one /generate or /ask request may ask for
    read_timeout: float = 15.0  # seconds to receive a whole request (head and body)
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    max_connections: int = 512  # open connections and requests; beyond: 503
    body_memory: int = 0  # bytes of bodies held at once (0: 8 * max_body)

    def __post_init__(self):
        for name in ("max_body", "max_batch", "max_k", "max_ef", "max_depth", "max_text", "max_prompt",
                     "max_messages", "max_tokens", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_k > LIMITS["max_k"] or self.max_ef > LIMITS["max_ef"]:
            raise ValueError(f"max-k and max-ef cannot exceed the kernel's limits "
                             f"({LIMITS['max_k']}, {LIMITS['max_ef']})")
        if self.max_depth < 3:
            raise ValueError("max-depth must be at least 3: a batch of vectors nests 3 deep")
        if self.read_timeout <= 0 or self.keep_alive <= 0:
            raise ValueError("timeouts must be positive")
        if self.body_memory and self.body_memory < self.max_body:
            raise ValueError("body-memory must hold at least one body of max-body bytes")

    def check_defaults(self, k: int, ef: int, rerank) -> None:
        """The server's own -k/--ef/--rerank must be requests it would accept (rerank None:
        the index's default; it and "auto" read at most max(ef, k * rerank_default) rows)."""
        per_k = LIMITS["rerank_default"] if rerank in (None, "auto") else rerank
        if not (1 <= k <= self.max_k and 1 <= ef <= self.max_ef and 0 <= per_k and k * per_k <= self.max_ef):
            given = "(the index's default)" if rerank is None else rerank
            raise ValueError(f"-k {k} --ef {ef} --rerank {given} are outside this server's limits "
                             f"(k 1..{self.max_k}, ef and k*rerank up to {self.max_ef})")

    @property
    def body_budget(self) -> int:
        return self.body_memory or 8 * self.max_body


# ---- JSON nesting, measured before parsing ---------------------------------------------

_MARKS = b'[]{}"\\'
_NOT_MARKS = bytes(b for b in range(256) if b not in _MARKS)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BLOCK = 1 << 20
_STEP = np.zeros(256, np.int32)  # +1 opens, -1 closes a level
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def json_depth(body: bytes, stop: int | None = None) -> int:
    """The deepest nesting of [ and { outside strings (0 for a scalar). One C pass keeps
    only brackets, quotes and backslashes; numpy counts them in blocks. Stops early once
    the depth passes `stop`. Bodies with backslashes have their strings removed first, so
    that an escaped quote cannot flip the in-string state."""
    marks = body.translate(None, _NOT_MARKS)
    if b"\\" in marks:
        marks = _STRING.sub(b"", body).translate(None, _NOT_MARKS)
    if len(marks) <= 256:  # a single query: a few marks, counted in Python
        return _depth_small(marks)
    m = np.frombuffer(marks, np.uint8)
    depth = top = 0
    inside = 0  # parity of the quotes seen so far: 1 inside a string
    for lo in range(0, len(m), _BLOCK):
        blk = m[lo:lo + _BLOCK]
        in_str = (np.cumsum(blk == 34, dtype=np.uint8) + inside) & 1  # 34 = '"'; parity survives the wrap
        step = _STEP[blk]
        step[in_str == 1] = 0
        level = np.cumsum(step, out=step)
        level += depth
        top = max(top, int(level.max()))
        depth = int(level[-1])
        inside = int(in_str[-1])
        if stop is not None and top > stop:
            break
    return top


def _depth_small(marks: bytes) -> int:
    depth = top = 0
    inside = False
    for c in marks:
        if c == 34:  # '"'
            inside = not inside
        elif not inside:
            depth += 1 if c in (91, 123) else -1
            top = max(top, depth)
    return top
