"""`serve --workers N`: N processes answering on one listening socket, supervised.

Why processes: a request's HTTP parsing, routing, decoding and encoding hold the GIL
(0.3-0.4 ms for one query, twice the kernel's search), so threads of one process cannot
use a second core for small requests; processes can.

The parent binds the socket and opens the index, then forks. The workers inherit both:
they accept on the one socket (the kernel hands each connection to one of them), and
the index's codes and graph, read-only after open, stay shared copy-on-write (one copy
in RAM, whatever N; PSS per worker shows it). Each worker is the one-process server:
its event loop and its `--threads` search threads.

The parent only supervises: a worker that dies is replaced (a worker that fails before
it is ready stops the start instead: it would fail again), SIGTERM or SIGINT is passed
on as SIGTERM and every worker is waited for (they finish their requests in flight),
and the Prometheus multiprocess directory, where every worker keeps its metrics in
files so that /metrics, answered by any worker, sums all of them, is created empty at
start and removed at exit.
"""
from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback

from ..gguf_file import pid_alive

MP_ENV = "PROMETHEUS_MULTIPROC_DIR"
STOP_SECONDS = 40  # after SIGTERM: the workers' graceful shutdown (30 s) and some margin
RESTARTS = (5, 10.0)  # this many deaths within these seconds: the workers keep dying, stop


def multiprocess_dir() -> str:
    """A fresh, empty directory for the workers' metric files, set in the environment
    before prometheus_client is imported (it picks its value store at import). Those
    left by servers that were killed (their pid in the name is gone) are removed."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        parts = name.split("-")
        if name.startswith("quantann-metrics-") and len(parts) == 4 and parts[2].isdigit() \
                and not pid_alive(int(parts[2])):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    path = tempfile.mkdtemp(prefix=f"quantann-metrics-{os.getpid()}-")
    os.environ[MP_ENV] = path
    return path


class Supervisor:
    """`n` workers forked from this process; `serve(notify, shared)` runs in each (it
    calls notify() once it accepts, and returns when the worker stops; `shared` is the
    (ConnectionTable, slot) its listener balances connections with)."""

    def __init__(self, n: int, serve, sock, mp_dir: str):
        from .listener import ConnectionTable
        self.n, self._serve, self._sock, self._mp_dir = n, serve, sock, mp_dir
        self.table = ConnectionTable(n)
        self.workers: dict[int, int] = {}  # pid -> slot
        self._stop = False
        self._deaths: list[float] = []
        self._ready_r, self._ready_w = os.pipe()
        from prometheus_client import Counter
        self._restarts = Counter("quantann_worker_restarts", "Workers that died and were replaced",
                                 registry=None)

    # ---- the parent --------------------------------------------------------------------

    def run(self, started=None) -> int:
        """Starts the workers, calls `started()` once all accept, supervises until SIGTERM
        or SIGINT, then stops them all. The exit status: 0, or 1 when a worker failed to
        start or the workers kept dying."""
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in range(self.n):
                self._fork(slot)
            rc = self._wait_ready()
            if rc == 0:
                if started is not None:
                    started()
                rc = self._supervise()
            self._stop_all()
            return rc
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            os.close(self._ready_r)
            os.close(self._ready_w)
            self._sock.close()
            shutil.rmtree(self._mp_dir, ignore_errors=True)

    def _on_signal(self, *_):
        self._stop = True

    def _wait_ready(self) -> int:
        ready = set()
        while len(ready) < self.n:
            if self._stop:
                return 0
            for pid, status in self._reap():
                print(f"error: worker {pid} {describe(status)} before it was ready", file=sys.stderr)
                return 1
            r, _, _ = select.select([self._ready_r], [], [], 0.2)
            if r:
                ready.update(int(p) for p in os.read(self._ready_r, 4096).split())
        return 0

    def _supervise(self) -> int:
        while not self._stop:
            for pid, status in self._reap():
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < RESTARTS[1]] + [now]
                if len(self._deaths) >= RESTARTS[0]:
                    print(f"error: {len(self._deaths)} workers died within {RESTARTS[1]:.0f} s (the last: {pid}, "
                          f"{describe(status)}); stopping", file=sys.stderr)
                    return 1
                slot = self.workers.pop(pid)
                self._dead(pid, slot)
                self._restarts.inc()
                print(f"worker {pid} {describe(status)}; starting another", file=sys.stderr, flush=True)
                self._fork(slot)
            # ready notes of replaced workers: read so the pipe never fills
            r, _, _ = select.select([self._ready_r], [], [], 0.2)
            if r:
                os.read(self._ready_r, 4096)
        return 0

    def _reap(self):
        """(pid, status) of the workers that ended."""
        out = []
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.workers:
                out.append((pid, status))
        return out

    def _dead(self, pid: int, slot: int) -> None:
        """Drops a dead worker's live gauges (its counters and histograms stay in the sums)
        and its connections from the balance."""
        from prometheus_client import multiprocess

        from .listener import DEAD
        self.table.set(slot, DEAD)
        multiprocess.mark_process_dead(pid, self._mp_dir)

    def _stop_all(self) -> None:
        self._sock.close()  # the workers stop accepting too; what queues gets refused, not held
        for pid in self.workers:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while self.workers and time.monotonic() < deadline:
            for pid, _ in self._reap():
                del self.workers[pid]
            time.sleep(0.05)
        for pid in self.workers:
            print(f"worker {pid} did not stop within {STOP_SECONDS} s: killed", file=sys.stderr)
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.workers.clear()

    def _fork(self, slot: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.workers[pid] = slot
            return
        # the worker: never returns into the parent's code
        rc = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent only, which stops the workers once
            _die_with(parent)
            os.close(self._ready_r)
            w = self._ready_w

            def notify():
                os.write(w, b"%d\n" % os.getpid())
            self._serve(notify, (self.table, slot))
            rc = 0
        except SystemExit as e:
            if e.code not in (None, 0):
                print(e.code if isinstance(e.code, str) else f"error: exit status {e.code}", file=sys.stderr)
            rc = 0 if e.code in (None, 0) else 1
        except KeyboardInterrupt:
            rc = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(rc)


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _signal(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _die_with(parent: int) -> None:
    """SIGTERM to this worker when the parent dies (even by SIGKILL): no orphan keeps
    serving. Linux only; elsewhere the workers outlive a killed parent."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(0)
