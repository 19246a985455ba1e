"""Past one machine: a sharded index and its distributed build.

    manifest.py  the manifest: one JSON file naming the shard .qann files, their id
                 offsets, sizes and checksums
    index.py     ShardedIndex: the Index search API by scatter-gather over the shards
                 (searched in parallel threads, top k merged), add to the smallest shard, save
    build.py     the sharded build: embedding blocks and shard builds as tasks, the
                 quantizer trained once on a sample and shared by every shard
    runner.py    where tasks run: Ray tasks (retried when a worker dies) or a local
                 process pool, with progress
    ray_serve.py shard searchers as Ray actors behind the same API (quantann serve --ray)

`quantann.open(MANIFEST)` returns a ShardedIndex; Ray is imported only when asked for.
"""
from .index import ShardedIndex
from .manifest import Manifest, looks_like_manifest, read_manifest

__all__ = ["ShardedIndex", "Manifest", "looks_like_manifest", "read_manifest"]
