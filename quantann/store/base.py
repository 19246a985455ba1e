"""The store interface."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ReadStats:
    ranges: int = 0  # contiguous runs fetched (syscalls, HTTP ranges, records)
    bytes: int = 0  # bytes fetched, gaps included


def coalesce(rows: np.ndarray, max_gap: int = 0) -> list[tuple[int, int]]:
    """Ascending rows -> [(first, last)] runs, merging runs whose gap is <= max_gap rows."""
    if len(rows) == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) > max_gap + 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(rows) - 1]])
    return [(int(rows[s]), int(rows[e])) for s, e in zip(starts, ends)]


class VectorStore:
    """Full-precision vectors addressable by row. Subclasses implement `_read`."""

    dim: int
    count: int

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, ReadStats]:
        """Vectors of `rows` (int32, ascending, unique) as float32 (len(rows), dim), in one
        batched fetch."""
        rows = np.ascontiguousarray(rows, dtype=np.int32)
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.count):
            raise IndexError(f"row {rows[-1] if rows[-1] >= self.count else rows[0]} outside the store's {self.count} rows")
        return self._read(rows)

    def _read(self, rows: np.ndarray) -> tuple[np.ndarray, ReadStats]:
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
