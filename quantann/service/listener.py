"""The listening socket that worker processes share, with connections spread evenly.

Every worker waits on the one socket; a new connection wakes them all and the first to
call accept() gets it, and keeps it for its keep-alive life. Left alone, the worker that
happens to wake first takes a whole burst (asyncio accepts up to its backlog per
wake-up): in a test, 4 clients connecting at once all went to one of 2 workers, which
then did all the work.

So each worker publishes how many connections it holds in a small shared table (an
anonymous shared memory map made before the fork, one slot per worker), accepts one
connection per wake-up, and declines (accept() says "nothing there") while it holds
more than the least-loaded live worker, which then takes it. Each decline first
sleeps DECLINE_PAUSE (the event loop would otherwise wake again at once and spin on a
core the other worker may need), and a worker declines for at most DECLINE_SECONDS in a
row: a least-loaded worker that is busy, stuck or dying does not leave a connection
waiting longer than that. Only bursts of new connections pay this; keep-alive traffic
never calls accept().
"""
from __future__ import annotations

import mmap
import socket
import time

DECLINE_SECONDS = 0.005
DECLINE_PAUSE = 0.0001
DEAD = 1 << 40  # the count of a slot with no live worker: never the least loaded


class ConnectionTable:
    """Open connections per worker slot, in memory shared by the processes forked after it."""

    def __init__(self, slots: int):
        self.slots = slots
        self._map = mmap.mmap(-1, 8 * slots)
        self.view = memoryview(self._map).cast("q")
        for i in range(slots):
            self.view[i] = DEAD

    def set(self, slot: int, n: int) -> None:
        self.view[slot] = n

    def least_other(self, slot: int) -> int:
        return min((self.view[i] for i in range(self.slots) if i != slot), default=DEAD)


class SharedListener(socket.socket):
    """A worker's handle on the shared listening socket (see the module's docstring).
    listen() keeps the parent's backlog: asyncio calls it with the accept batch."""

    def setup(self, table: ConnectionTable, slot: int) -> "SharedListener":
        self.table, self.slot, self.open = table, slot, 0
        self._declining_since = None
        table.set(slot, 0)
        return self

    def listen(self, *_):
        pass

    def accept(self):
        if self.open > self.table.least_other(self.slot):
            now = time.monotonic()
            if self._declining_since is None:
                self._declining_since = now
            if now - self._declining_since < DECLINE_SECONDS:
                time.sleep(DECLINE_PAUSE)
                raise BlockingIOError("another worker holds fewer connections")
        self._declining_since = None
        fd, addr = self._accept()
        conn = _Counted(self.family, self.type, self.proto, fileno=fd)
        conn.listener = self
        self._count(+1)
        return conn, addr

    def _count(self, d: int) -> None:
        self.open += d
        self.table.set(self.slot, self.open)


class _Counted(socket.socket):
    """An accepted connection that tells its listener when it closes."""

    listener = None

    def close(self):
        if self.listener is not None:
            self.listener._count(-1)
            self.listener = None
        super().close()
