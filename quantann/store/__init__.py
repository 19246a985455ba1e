"""Stores: where the full-precision vectors live, read one batch per query.

A store serves `read(rows, ranges)` for ascending rows and the ranges the C kernel coalesced
them into, with one batched call, and reports what it cost (ranges, bytes). Kinds: "pread" (local file, default), "mmap", "memory", and "http"
(HTTP Range requests).
"""
from .base import ReadStats, VectorStore
from .file import MmapStore, PreadStore
from .memory import MemoryStore

__all__ = ["ReadStats", "VectorStore", "PreadStore", "MmapStore", "MemoryStore", "open_store"]

KINDS = ("pread", "mmap", "memory", "http")


def open_store(kind, path, offset, count, dim):
    """The store `kind` over `count` float32 rows of `dim` at byte `offset` of `path`."""
    if kind == "pread":
        return PreadStore(path, offset, count, dim)
    if kind == "mmap":
        return MmapStore(path, offset, count, dim)
    if kind == "memory":
        with MmapStore(path, offset, count, dim) as m:
            return MemoryStore(m.array.copy())
    if kind == "http":
        from .http import HttpStore
        return HttpStore(path, offset, count, dim)
    raise ValueError(f"unknown store {kind!r}: choose one of {', '.join(KINDS)} or pass a VectorStore")
