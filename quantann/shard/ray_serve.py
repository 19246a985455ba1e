"""Shard searchers as Ray actors, behind the Index search API (`quantann serve --ray`).

Each shard is opened by one actor (on whichever node Ray places it: the shard paths must
be readable there, a shared folder or an http:// manifest); a search sends the queries to
every actor at once and merges their top k as ShardedIndex does. The service's HTTP app,
limits and metrics are unchanged: it searches this object as it would an Index.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from .index import ShardedIndex, _check_shard, to_global
from .manifest import is_url, read_manifest, shard_location

ACTOR_THREADS = 4  # searches one actor runs at once (Index.search is thread-safe)


class _ShardSearcher:
    """Actor: one opened shard."""

    def __init__(self, path: str, store: str):
        from ..index import Index
        self.index = Index.open(path, store=store)

    def info(self) -> dict:
        s = self.index
        return dict(dim=s.dim, metric=s.metric, quant=s.quant, rows=s.rows, live=len(s), has_user_ids=s.has_user_ids,
                    file=SimpleNamespace(size=s.file.size, vectors_crc32=s.file.vectors_crc32),
                    quantizer=SimpleNamespace(vmin=s.quantizer.vmin, scale=s.quantizer.scale), memory=s.memory(),
                    ids=s.stored_ids)

    def search(self, q, k, ef, rerank):
        ids, dist = self.index.search(q, k=k, ef=ef, rerank=rerank)
        return ids, dist, self.index.last_stats


class RayShardedIndex(ShardedIndex):
    """A ShardedIndex whose shards are searched by Ray actors. Read-only."""

    @classmethod
    def open(cls, path, address="local", store="pread", memory_budget=None) -> "RayShardedIndex":
        import ray
        if not ray.is_initialized():
            ray.init(address=None if address in (None, "local") else address, log_to_driver=False,
                     include_dashboard=False)
        path = path if is_url(path) else os.path.abspath(os.fspath(path))
        m = read_manifest(path)
        actor = ray.remote(num_cpus=0, max_concurrency=ACTOR_THREADS, max_restarts=3)(_ShardSearcher)
        actors = [actor.remote(shard_location(path, e.file), store) for e in m.shards]
        infos = [SimpleNamespace(**i) for i in ray.get([a.info.remote() for a in actors])]
        for i, (e, info) in enumerate(zip(m.shards, infos)):
            _check_shard(path, i, m, e, info, infos[0] if i else None)
        out = cls(m, actors, path)
        out._infos = infos
        if memory_budget is not None:
            from ..budget import human, parse_size
            from ..errors import MemoryBudgetError
            budget, mem = parse_size(memory_budget), out.memory()
            if mem["total"] > budget:
                raise MemoryBudgetError(f"{path}: the shards hold {human(mem['total'])}, over the memory budget of "
                                        f"{human(budget)}", mem, budget)
        return out

    @property
    def rows(self) -> int:
        return sum(i.rows for i in self._infos)

    @property
    def n_deleted(self) -> int:
        return sum(i.rows - i.live for i in self._infos)

    def __len__(self) -> int:
        return sum(i.live for i in self._infos)

    @property
    def ids(self) -> np.ndarray:
        return np.concatenate([to_global(i.ids if i.ids is not None else np.arange(i.rows, dtype=np.uint64),
                                         e.id_offset) for i, e in zip(self._infos, self.manifest.shards)])

    @property
    def quantizer(self):
        return self._infos[0].quantizer

    def memory(self, extra_rows: int = 0) -> dict:
        out: dict = {}
        for info in self._infos:
            for part, v in info.memory.items():
                out[part] = out.get(part, 0) + v
        return out

    def prepare_queries(self, queries):
        raise NotImplementedError("a Ray-served index prepares queries in its actors")

    def _scatter(self, q, k, ef, rerank, threads):
        import ray
        live = [i for i, info in enumerate(self._infos) if info.live]
        refs = [self.shards[i].search.remote(q, min(k, self._infos[i].live), ef, rerank) for i in live]
        return [(to_global(ids, self.manifest.shards[i].id_offset), dist, stats)
                for i, (ids, dist, stats) in zip(live, ray.get(refs))]

    def add(self, *a, **kw):
        raise ValueError("an index served on Ray is read-only: add to it with quantann.open(manifest) and save")

    delete = add

    def save(self, *a, **kw):
        raise ValueError("an index served on Ray is read-only")

    def close(self) -> None:
        import ray
        for a in self.shards:
            ray.kill(a)
        self.shards = []

