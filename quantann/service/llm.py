"""The decoder LLM's slots: who generates now, who waits, who is turned away.

A Generator holds one sequence's KV cache, so it serves one request at a time from its
prompt to its last token. The service opens `slots` Generators of the one GGUF (the
weights are memory-mapped once and shared by the page cache; each slot adds its own KV
cache and scratch) and runs each generation on a thread of its own pool, apart from the
search workers: a long answer never holds a search. One slot per request rather than a
lock around one Generator: a lock would give the same one-at-a-time answer with no way
to say "busy", and more slots trade memory (a KV cache each) for concurrent answers.

Requests beyond the slots wait in arrival order, at most `waiting` of them; beyond that
they get 503 at once (kind `busy`), so a crowd cannot queue unbounded work. A request
whose client goes away, waiting or generating, gives its slot back: its generation
stops before the next token.

The job (a function of the Generator yielding events) runs on the slot's thread; its
events reach the event loop through an asyncio queue.

Slots given an opener start empty and open their Generator on their first job (`serve
--llm auto`: a server that only searches never allocates the LLM's KV cache and scratch).
Each slot's Generator keeps its last prompt's KV: the next /ask on that slot reuses the
chat template's system block (Generator's prefix cache).
"""
from __future__ import annotations

import asyncio
import collections
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .limits import ApiError


class Events:
    """The events of one job, read by the event loop; `cancel` stops the job's thread
    before its next event."""

    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancel = threading.Event()

    async def next(self):
        """(kind, value); ("error", exception) when the job failed, ("end", None) after
        its last event."""
        return await self.queue.get()


class LLMSlots:
    def __init__(self, generators: list, waiting: int, model_path: str, opener=None):
        """generators: one per slot; None entries are opened by opener() on their slot's first job."""
        if not generators:
            raise ValueError("need at least one generator")
        if opener is None and None in generators:
            raise ValueError("a slot without a generator needs an opener")
        self.generators = list(generators)
        self.model_path = model_path
        self.weights_bytes = os.path.getsize(model_path)
        self.waiting = waiting
        self._opener = opener
        self._free = list(range(len(self.generators)))  # slot numbers
        self._waiters: collections.deque = collections.deque()
        self._executor = ThreadPoolExecutor(len(generators), thread_name_prefix="quantann-llm")
        self._running: set = set()  # the Events of jobs on a slot now (stopped by close())

    @property
    def opened(self) -> list:
        return [g for g in self.generators if g is not None]

    @property
    def n_ctx(self):
        """The context of the opened slots (None before the first job of lazy ones)."""
        return self.opened[0].n_ctx if self.opened else None

    @property
    def busy(self) -> int:
        return len(self.generators) - len(self._free)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    # ---- admission (event loop only: no lock needed) ------------------------------------

    async def _acquire(self):
        if self._free:
            return self._free.pop()
        if len(self._waiters) >= self.waiting:
            raise ApiError(503, "busy", f"busy: {len(self.generators)} generation(s) running and "
                                        f"{len(self._waiters)} waiting (this server's limit, --llm-queue); "
                                        f"retry later")
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release(fut.result())  # handed over just as the wait was cancelled
            else:
                self._waiters.remove(fut)
            raise

    def _release(self, slot: int) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(slot)
                return
        self._free.append(slot)

    # ---- running a job ------------------------------------------------------------------

    async def start(self, job) -> Events:
        """Waits for a slot (503 when too many wait) and starts job(generator) on it;
        job is a function returning an iterator of (kind, value) events."""
        slot = await self._acquire()
        loop = asyncio.get_running_loop()
        ev = Events()

        def put(item):
            try:
                loop.call_soon_threadsafe(ev.queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: the server stopped
                pass

        def run():
            self._running.add(ev)
            try:
                if self.generators[slot] is None:  # only this slot's thread opens it
                    self.generators[slot] = self._opener()
                it = job(self.generators[slot])
                try:
                    for item in it:
                        put(item)
                        if ev.cancel.is_set():
                            break
                finally:
                    close = getattr(it, "close", None)
                    if close:
                        close()  # a generator stopped early gives back what it holds
            except BaseException as e:  # reported to the request, never lost
                put(("error", e))
            else:
                put(("end", None))
            finally:
                self._running.discard(ev)
                try:
                    loop.call_soon_threadsafe(self._release, slot)
                except RuntimeError:
                    pass
        try:
            self._executor.submit(run)
        except RuntimeError:  # shutting down
            self._release(slot)
            raise ApiError(503, "busy", "the server is stopping") from None
        return ev

    def close(self) -> None:
        """Stops the generations still running (each before its next token) and the threads."""
        for ev in list(self._running):
            ev.cancel.set()
        self._executor.shutdown(wait=True)
