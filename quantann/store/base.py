"""The store interface."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np


@dataclass
class ReadStats:
    ranges: int = 0  # contiguous runs fetched (syscalls, HTTP ranges, records)
    bytes: int = 0  # bytes fetched, gaps included


def _takes_ranges(fn) -> bool:
    """True when a read method accepts (rows, ranges)."""
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]  # past self
    except (TypeError, ValueError):
        return True
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class VectorStore:
    """Full-precision vectors addressable by row. Subclasses implement `_read(rows, ranges)`.

    The rows of a query come with their ranges: (first, last) row pairs, int32 (n, 2), that
    the C kernel coalesced (runs closer than `max_gap` rows merged), the one coalescing. A
    store reads those ranges as they are. Stores written for `read(rows)` / `_read(rows)`
    alone keep working: the ranges are dropped for them."""

    dim: int
    count: int
    max_gap: int = 0  # rows: the gap the kernel merges when coalescing this store's reads

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        # a custom store with a one-argument read or _read gets the ranges dropped
        if "read" in cls.__dict__ and not _takes_ranges(cls.__dict__["read"]):
            rows_only = cls.__dict__["read"]
            cls.read = lambda self, rows, ranges=None: rows_only(self, rows)
        if "_read" in cls.__dict__ and not _takes_ranges(cls.__dict__["_read"]):
            rows_only_ = cls.__dict__["_read"]
            cls._read = lambda self, rows, ranges: rows_only_(self, rows)

    def read(self, rows: np.ndarray, ranges: np.ndarray | None = None) -> tuple[np.ndarray, ReadStats]:
        """Vectors of `rows` (int32, ascending, unique) as float32 (len(rows), dim), in one
        batched fetch of `ranges` (from the kernel's begin; None: coalesced here, in C)."""
        rows = np.ascontiguousarray(rows, dtype=np.int32)
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.count):
            raise IndexError(f"row {rows[-1] if rows[-1] >= self.count else rows[0]} outside the store's {self.count} rows")
        if ranges is None:
            from .. import _kernel
            ranges = _kernel.coalesce_rows(rows, int(self.max_gap))
        ranges = np.frombuffer(ranges, np.int32) if isinstance(ranges, bytes) else np.ascontiguousarray(ranges, np.int32)
        return self._read(rows, ranges.reshape(-1, 2))

    def _read(self, rows: np.ndarray, ranges: np.ndarray) -> tuple[np.ndarray, ReadStats]:
        raise NotImplementedError

    def all(self, chunk: int = 65536):
        """Yields the rows in order, in chunks (for saving and ground truth)."""
        for s in range(0, self.count, chunk):
            rows = np.arange(s, min(self.count, s + chunk), dtype=np.int32)
            yield self.read(rows)[0]

    def native_source(self):
        """How the C kernel can read rows itself, in the same call as the search:
        ("fd", fd, offset, max_gap), ("buffer", array), or None (go through `read`)."""
        return None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
