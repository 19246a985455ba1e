"""Vectors held in RAM: the reference store, and the store of a freshly built index."""
from __future__ import annotations

import numpy as np

from .base import ReadStats, VectorStore


class MemoryStore(VectorStore):
    def __init__(self, vectors: np.ndarray):
        self.array = np.ascontiguousarray(vectors, dtype=np.float32)
        self.count, self.dim = self.array.shape

    def _read(self, rows, ranges):
        out = self.array[rows]
        return out, ReadStats(ranges=1 if len(rows) else 0, bytes=out.nbytes)

    def native_source(self):
        return ("buffer", self.array)

    def all(self, chunk: int = 65536):
        for s in range(0, self.count, chunk):
            yield self.array[s:s + chunk]

    def nbytes(self) -> int:
        return self.array.nbytes
