"""Vectors in a file on an HTTP server, read with Range requests.

The rows of one query come coalesced into runs of neighbouring rows (by the kernel's begin,
within max_gap rows), and all runs go out
in ONE request (`Range: bytes=a-b,c-d,...`, answered as multipart/byteranges). Servers
that ignore multi-range requests (they answer 200 with the whole file) are detected on
the first read and then served one single-range request per run. mode="span" fetches the
span from the first to the last row instead (one range, gaps included): better only when
the rows are close together. One persistent connection (HTTP/1.1 keep-alive) per store.
"""
from __future__ import annotations

import http.client
import re
import threading
from urllib.parse import urlsplit

import numpy as np

from ..errors import FormatError
from .base import ReadStats, VectorStore

_CRANGE = re.compile(rb"content-range:\s*bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)


class HttpError(OSError):
    pass


class HttpClient:
    """Range reads over one keep-alive connection (reconnects once on a dropped one)."""

    def __init__(self, url: str, timeout: float = 30.0):
        u = urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"{url}: not an http(s) URL")
        self.url, self.host, self.timeout = url, u.netloc, timeout
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        self.conn = None
        self.lock = threading.Lock()
        self.requests = 0

    def get(self, range_header: str):
        """-> (status, headers, body) for a GET with this Range header."""
        with self.lock:
            for attempt in (0, 1):
                if self.conn is None:
                    self.conn = self.cls(self.host, timeout=self.timeout)
                try:
                    self.conn.request("GET", self.path, headers={"Range": range_header})
                    r = self.conn.getresponse()
                    body = r.read()
                    self.requests += 1
                    return r.status, r.headers, body
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        http.client.CannotSendRequest):
                    self.conn.close()
                    self.conn = None
                    if attempt:
                        raise

    def read(self, start: int, length: int) -> tuple[bytes, int]:
        """Bytes [start, start+length) and the file's size (from Content-Range)."""
        status, headers, body = self.get(f"bytes={start}-{start + length - 1}")
        if status == 200:
            return body[start:start + length], len(body)
        if status == 416:
            raise FormatError(f"{self.url}: truncated: bytes from {start} are past the end of the file")
        if status != 206:
            raise HttpError(f"{self.url}: HTTP {status}")
        m = _CRANGE.search(b"content-range: " + (headers.get("Content-Range") or "").encode())
        if not m or int(m.group(1)) != start:
            raise HttpError(f"{self.url}: unexpected Content-Range {headers.get('Content-Range')!r}")
        size = int(m.group(3)) if m.group(3) != b"*" else -1
        return body, size

    def close(self):
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


def parse_multipart(body: bytes, boundary: bytes) -> list[tuple[int, bytes]]:
    """multipart/byteranges body -> [(byte start, data)]."""
    parts = []
    delim = b"--" + boundary
    pos = body.find(delim)
    while pos >= 0:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            break
        hend = body.find(b"\r\n\r\n", pos)
        m = _CRANGE.search(body, pos, hend) if hend >= 0 else None
        if not m:
            raise HttpError("malformed multipart/byteranges response")
        start, end = int(m.group(1)), int(m.group(2))
        data = body[hend + 4:hend + 4 + end - start + 1]
        if len(data) != end - start + 1:
            raise HttpError("truncated multipart/byteranges response")
        parts.append((start, data))
        pos = body.find(delim, hend + 4 + len(data))
    return parts


class HttpStore(VectorStore):
    def __init__(self, url: str, offset: int, count: int, dim: int, mode: str = "multipart",
                 max_gap: int = 0, max_ranges: int = 256, client: HttpClient | None = None):
        if mode not in ("multipart", "span", "single"):
            raise ValueError(f"unknown mode {mode!r}: multipart, span or single")
        self.url, self.offset, self.count, self.dim = url, int(offset), int(count), int(dim)
        self.mode, self.max_gap, self.max_ranges = mode, max_gap, max_ranges
        self.row_bytes = self.dim * 4
        self.client = client or HttpClient(url)
        # the file must hold every row: one byte at the end tells
        if count:
            end = self.offset + self.count * self.row_bytes
            _, size = self.client.read(end - 1, 1)
            if size >= 0 and size < end:
                raise FormatError(f"{url}: truncated: vectors need {end} bytes, the file has {size}")

    def _read(self, rows, ranges):
        out = np.empty((len(rows), self.dim), np.float32)
        if not len(rows):
            return out, ReadStats()
        runs = [(int(a), int(b)) for a, b in ranges]
        if self.mode == "span":
            runs = [(runs[0][0], runs[-1][1])]
        rb = self.row_bytes
        before = self.client.requests
        byte_ranges = [(self.offset + a * rb, self.offset + (b + 1) * rb - 1) for a, b in runs]
        if len(runs) == 1 or self.mode == "single" or len(runs) > self.max_ranges:
            parts = [(a, self.client.read(a, b - a + 1)[0]) for a, b in byte_ranges]
        else:
            parts = self._multi(byte_ranges)
            if parts is None:  # the server does not do multi-range: single ranges from now on
                self.mode = "single"
                return self._read(rows, ranges)
        self._gather(rows, parts, out)
        span = sum(b - a + 1 for a, b in runs)
        st = ReadStats(ranges=len(runs), bytes=span * rb)
        st.requests = self.client.requests - before
        return out, st

    def _multi(self, byte_ranges):
        status, headers, body = self.client.get("bytes=" + ",".join(f"{a}-{b}" for a, b in byte_ranges))
        if status == 200:
            return None
        if status != 206:
            raise HttpError(f"{self.url}: HTTP {status} reading vectors")
        ctype = headers.get("Content-Type", "")
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if "multipart/byteranges" in ctype and m:
            return parse_multipart(body, m.group(1).encode())
        m = _CRANGE.search(b"content-range: " + (headers.get("Content-Range") or "").encode())
        if not m:
            raise HttpError(f"{self.url}: 206 without Content-Range")
        return [(int(m.group(1)), body)]  # the server merged the ranges into one

    def _gather(self, rows, parts, out):
        rb = self.row_bytes
        blocks = []
        for start, data in parts:
            rel = start - self.offset
            skip = -rel % rb
            first = (rel + skip) // rb
            nrows = (len(data) - skip) // rb
            blocks.append((first, np.frombuffer(data, np.float32, nrows * self.dim, skip).reshape(nrows, self.dim)))
        blocks.sort(key=lambda b: b[0])
        firsts = np.array([b[0] for b in blocks])
        which = np.searchsorted(firsts, rows, side="right") - 1
        for i, (r, w) in enumerate(zip(rows, which)):
            first, blk = blocks[w]
            if w < 0 or r - first >= len(blk):
                raise HttpError(f"{self.url}: row {r} missing from the response")
            out[i] = blk[r - first]

    def close(self):
        self.client.close()
