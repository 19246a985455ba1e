"""Vectors in a local file at `offset + row * dim * 4`.

PreadStore (default) reads each run of neighbouring rows with one pread, in C, without
the GIL; MmapStore lets the page cache and numpy do it.
"""
from __future__ import annotations

import os

import numpy as np

from .. import _kernel
from ..errors import FormatError
from .base import ReadStats, VectorStore


def _check_length(path, offset, count, dim):
    size = os.path.getsize(path)
    need = offset + count * dim * 4
    if size < need:
        raise FormatError(f"{path}: truncated: vectors need {need} bytes, file has {size}")


class PreadStore(VectorStore):
    def __init__(self, path, offset: int, count: int, dim: int, max_gap: int = 0):
        _check_length(path, offset, count, dim)
        self.path, self.offset, self.count, self.dim = str(path), int(offset), int(count), int(dim)
        self.max_gap = max_gap
        self.row_bytes = dim * 4
        self.fd = os.open(self.path, os.O_RDONLY)

    def _read(self, rows, ranges):
        out = np.empty((len(rows), self.dim), np.float32)
        _kernel.pread_rows(self.fd, self.offset, self.row_bytes, rows, ranges, out)
        span = int((ranges[:, 1] - ranges[:, 0] + 1).sum())
        return out, ReadStats(ranges=len(ranges), bytes=span * self.row_bytes)

    def native_source(self):
        return ("fd", self.fd, self.offset, self.max_gap) if self.fd >= 0 else None

    def drop_cache(self) -> bool:
        """Asks the OS to drop this file's cached pages (for cold-read benchmarks)."""
        if not hasattr(os, "posix_fadvise"):
            return False
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self):
        self.close()


class MmapStore(VectorStore):
    def __init__(self, path, offset: int, count: int, dim: int):
        _check_length(path, offset, count, dim)
        self.path, self.offset, self.count, self.dim = str(path), int(offset), int(count), int(dim)
        self.array = (np.memmap(self.path, np.float32, "r", offset, (count, dim))
                      if count else np.empty((0, dim), np.float32))

    def native_source(self):
        return ("buffer", self.array) if self.count else None

    def _read(self, rows, ranges):
        out = np.asarray(self.array[rows], dtype=np.float32)
        return out, ReadStats(ranges=len(ranges), bytes=out.nbytes)

    def all(self, chunk: int = 65536):
        for s in range(0, self.count, chunk):
            yield np.asarray(self.array[s:s + chunk])

    def close(self):
        self.array = None
