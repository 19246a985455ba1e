"""The page server: a static file server for the browser runtime's pages, JS module and
index files, with HTTP/1.1 keep-alive, byte ranges (one range -> 206; several -> 206
multipart/byteranges) and correct types for .js and .wasm.

    python -m quantann.pageserver [--port 8000] [--isolated] [DIR] [/prefix=DIR ...]

Symbolic links are followed when they resolve inside their mount's directory; any other
path outside it gets 403.

--isolated sends COOP/COEP (same-origin / require-corp), so that pages are cross-origin
isolated: SharedArrayBuffer, and performance.now() at 5 us instead of 100 us resolution.

Pre-compressed files: a GET of FILE without Range, from a client that accepts br, is
answered with FILE.br when that exists (Content-Encoding: br; docs/BROWSER.md §7 measures
what it saves on model files). Range requests always get the identity bytes.

Python's http.server ignores Range, which is exactly what a vector store needs, hence this.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".html": "text/html; charset=utf-8", ".qann": "application/octet-stream",
         ".jsonl": "application/x-ndjson", ".css": "text/css"}
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")
BOUNDARY = "QUANTANN-BYTERANGES"
FORBIDDEN = object()  # translate_path: the path resolves outside its mount


def parse_ranges(header: str, size: int):
    """'bytes=a-b,c-,-n' -> [(start, end inclusive)] clipped to the file, None when the
    header is not a byte range set, [] when none of it is satisfiable."""
    if not header.startswith("bytes="):
        return None
    out = []
    for spec in header[6:].split(","):
        m = _RANGE.match(spec)
        if not m or (not m.group(1) and not m.group(2)):
            return None
        a, b = m.group(1), m.group(2)
        if a:
            start, end = int(a), min(int(b), size - 1) if b else size - 1
        else:
            start, end = max(0, size - int(b)), size - 1
        if start <= end and start < size:
            out.append((start, end))
    return out


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mounts: dict = {}  # url prefix -> directory, longest prefix first
    isolated = False  # send COOP/COEP: the pages are cross-origin isolated

    def log_message(self, *args):
        pass

    def translate_path(self, path):
        """The file a URL path names, FORBIDDEN when it resolves outside its mount (a
        symlink out, or ..), or None when no mount serves it."""
        path = unquote(urlsplit(path).path)
        for prefix, root in self.mounts.items():
            if path == prefix.rstrip("/") or path.startswith(prefix):
                rel = path[len(prefix):].lstrip("/")
                if "\0" in rel:
                    return FORBIDDEN
                full = os.path.realpath(os.path.join(root, rel))
                if full == root or full.startswith(root + os.sep):
                    return full
                return FORBIDDEN
        return None

    def _file(self):
        """The requested file's path, or None after sending 403 / 404."""
        path = self.translate_path(self.path)
        if path is FORBIDDEN:
            self.send_error(403, "outside the served directory")
            return None
        if path is not None and os.path.isdir(path):
            path = os.path.join(path, "index.html")
        if path is None or not os.path.isfile(path):
            self.send_error(404, "not found")
            return None
        return path

    def guess_type(self, path):
        return TYPES.get(os.path.splitext(path)[1], None) or super().guess_type(path)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        self.send_header("Accept-Ranges", "bytes")
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def do_GET(self):
        path = self._file()
        if path is None:
            return
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(404, "not found")
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            ranges = parse_ranges(self.headers.get("Range", ""), size) if self.headers.get("Range") else None
            ctype = self.guess_type(path)
            br = self._precompressed(path) if ranges is None else None
            if br is not None:
                with open(br, "rb") as g:
                    n = os.fstat(g.fileno()).st_size
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Encoding", "br")
                    self.send_header("Vary", "Accept-Encoding")
                    self.send_header("Content-Length", str(n))
                    self.end_headers()
                    self._copy(g, 0, n)
            elif ranges is None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self._copy(f, 0, size)
            elif not ranges:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif len(ranges) == 1:
                a, b = ranges[0]
                self.send_response(206)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
                self.send_header("Content-Length", str(b - a + 1))
                self.end_headers()
                self._copy(f, a, b - a + 1)
            else:
                heads = [(f"\r\n--{BOUNDARY}\r\nContent-Type: {ctype}\r\n"
                          f"Content-Range: bytes {a}-{b}/{size}\r\n\r\n").encode() for a, b in ranges]
                tail = f"\r\n--{BOUNDARY}--\r\n".encode()
                length = sum(len(h) for h in heads) + sum(b - a + 1 for a, b in ranges) + len(tail)
                self.send_response(206)
                self.send_header("Content-Type", f"multipart/byteranges; boundary={BOUNDARY}")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                for h, (a, b) in zip(heads, ranges):
                    self.wfile.write(h)
                    self._copy(f, a, b - a + 1)
                self.wfile.write(tail)

    def _precompressed(self, path):
        """FILE.br beside `path` when the client accepts br and it exists, else None."""
        accept = self.headers.get("Accept-Encoding", "")
        if not any(e.split(";")[0].strip() == "br" for e in accept.split(",")):
            return None
        return path + ".br" if os.path.isfile(path + ".br") else None

    def do_HEAD(self):
        path = self._file()
        if path is None:
            return
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()

    def _copy(self, f, start, n):
        end = start + n
        while start < end:
            chunk = os.pread(f.fileno(), min(1 << 22, end - start), start)
            if not chunk:
                break
            self.wfile.write(chunk)
            start += len(chunk)


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that went away mid-response (a cancelled stream, a closed tab) is normal."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class Server:
    """A server on 127.0.0.1 in a background thread: `with Server({"/": web_dir}) as s: s.url`."""

    def __init__(self, mounts: dict, host: str = "127.0.0.1", port: int = 0, isolated: bool = False):
        ordered = sorted(((p if p.endswith("/") else p + "/", os.path.realpath(d)) for p, d in mounts.items()),
                         key=lambda x: -len(x[0]))
        handler = type("MountedHandler", (Handler,), {"mounts": dict(ordered), "isolated": isolated})
        self.httpd = _HTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def web_dir() -> str:
    """The repository's web/ folder (pages, JS module, built wasm)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--isolated", action="store_true", help="send COOP/COEP headers (cross-origin isolation)")
    ap.add_argument("dirs", nargs="*", help="DIR (served at /) or /prefix=DIR")
    a = ap.parse_args(argv)
    mounts = {}
    for spec in a.dirs or [web_dir()]:
        prefix, _, d = spec.partition("=") if spec.startswith("/") else ("/", "", spec)
        mounts[prefix] = d
    if "/" not in mounts:
        mounts["/"] = web_dir()
    s = Server(mounts, a.host, a.port, a.isolated)
    print(f"serving {', '.join(f'{p} -> {d}' for p, d in mounts.items())} at {s.url}", flush=True)
    try:
        s.thread.join()
    except KeyboardInterrupt:
        s.close()


if __name__ == "__main__":
    main()
