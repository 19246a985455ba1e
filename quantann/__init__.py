"""quantann: on-device vector search.

Quantized codes and the HNSW graph stay in memory; the graph search runs on the codes;
the full vectors of the few best candidates are read from external storage in one batch
and reranked exactly.

    import quantann
    index = quantann.Index.build(vectors, quant="sq8", metric="cosine")
    index.save("passages.qann")
    index = quantann.open("passages.qann", memory_budget="300MB")
    ids, distances = index.search(queries, k=10, ef=64, rerank=4)
"""
from .errors import FormatError, MemoryBudgetError, PromptTooLongError, QuantannError
from .index import NO_ID, Index, QueryStats
from .store import MemoryStore, MmapStore, PreadStore, VectorStore
from .text import TextIndex

__version__ = "0.1.0"


def open(path, store="pread", memory_budget=None, verify: bool = True, ray=None):
    """Opens an index file (or http:// URL) without reading its full vectors; a sharded
    index's manifest (JSON) gives a ShardedIndex with the same search API.

    store: "pread" (default), "mmap", "memory", or a VectorStore. memory_budget: bytes or
    a string like "300MB"; refuses (MemoryBudgetError) when the in-memory part would not
    fit. The kernel checks the header, the checksums and the graph of every file it opens
    (`verify` is kept for compatibility and changes nothing). ray: for a manifest, search
    its shards as Ray actors ("local" starts a Ray instance, else a cluster address)."""
    from .shard.manifest import looks_like_manifest
    if looks_like_manifest(path):
        if ray is not None:
            from .shard.ray_serve import RayShardedIndex
            return RayShardedIndex.open(path, ray, store=store, memory_budget=memory_budget)
        from .shard import ShardedIndex
        return ShardedIndex.open(path, store=store, memory_budget=memory_budget)
    if ray is not None:
        raise ValueError(f"{path} is a single index file: searching on Ray needs a sharded index's manifest "
                         "(quantann build ... --shards N)")
    return Index.open(path, store=store, memory_budget=memory_budget)


def build(vectors, path=None, **kwargs) -> Index:
    """Index.build(vectors, **kwargs), saved to `path` when given."""
    index = Index.build(vectors, **kwargs)
    if path is not None:
        index.save(path)
    return index


def __getattr__(name):
    if name == "Embedder":  # the model kernel is loaded only when asked for
        from .model.embedder import Embedder
        return Embedder
    if name == "Generator":  # the decoder kernel likewise
        from .generate import Generator
        return Generator
    raise AttributeError(f"module 'quantann' has no attribute {name!r}")


__all__ = ["open", "build", "Index", "TextIndex", "Embedder", "Generator", "QueryStats", "NO_ID", "FormatError", "MemoryBudgetError", "PromptTooLongError",
           "QuantannError", "VectorStore", "MemoryStore", "MmapStore", "PreadStore"]
