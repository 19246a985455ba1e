"""The worker threads that parse, search and encode, N at a time, without a global lock.

The kernel releases the GIL while it searches, so N workers search N queries at once on
N cores; the event loop keeps accepting and reading meanwhile. Jobs queue in arrival
order; a batch goes back to the queue between chunks (search.py).
"""
from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

# Index.search is not yet safe to call from several threads at once on one Index (one
# search scratch per Index). Until it is, each worker opens its own Index of the same
# file (memory: the in-memory part once per worker). Flip to False once Index.search is
# thread-safe: every worker then searches the one shared index.
_ONE_INDEX_PER_THREAD = False


class SearchPool:
    """`threads` workers over one read-only `index`. `reopen()` gives a fresh Index of
    the same file; it is used only while _ONE_INDEX_PER_THREAD holds."""

    def __init__(self, index, threads: int, reopen=None):
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.index = index  # sizes, memory figures, health; and the searched index
        self.threads = threads
        self._local = threading.local()
        spare = None
        if _ONE_INDEX_PER_THREAD and threads > 1:
            if reopen is None:
                raise ValueError("several search threads need the index's path to open one per thread")
            # opened now, so that a bad file or a memory budget fails at startup
            spare = queue.SimpleQueue()
            spare.put(index)
            for _ in range(threads - 1):
                spare.put(reopen())
        self._spare = spare
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="quantann-search")

    def worker_index(self):
        """The index this worker thread searches."""
        if self._spare is None:
            return self.index
        mine = getattr(self._local, "index", None)
        if mine is None:
            mine = self._local.index = self._spare.get_nowait()
        return mine

    async def run(self, fn, *args):
        """fn(*args) on a worker; the caller awaits its result."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
