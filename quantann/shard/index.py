"""A sharded index: N .qann shards with one shared quantizer, searched by scatter-gather.

    query ──► every shard: graph search over its codes, one batched read, exact rerank
          ──► merge the shards' top k by distance (exact after rerank; the codes' distances
              are comparable too without rerank, as every shard's codes mean the same)

Each shard is an ordinary `Index` (its own searcher pool, one store read per query). The
shards are searched in parallel threads (the kernel releases the GIL). Global id = the
shard's id + its `id_offset` (manifest.py).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..budget import format_breakdown, human
from ..errors import FormatError, MemoryBudgetError
from ..index import NO_ID, Index, QueryStats, _ReadersWriter, as_matrix
from ..constants import LIMITS
from .manifest import Manifest, ShardEntry, is_url, read_manifest, shard_location


def merge(results, k: int):
    """Merges per-shard (ids (nq, k_s) global, distances (nq, k_s), stats) into the top k:
    (ids (nq, k), distances (nq, k), [QueryStats] with the shards' costs summed)."""
    ids = np.concatenate([r[0] for r in results], axis=1)
    dist = np.concatenate([r[1] for r in results], axis=1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # ties: the lower shard first
    out_ids = np.take_along_axis(ids, order, 1)
    out_d = np.take_along_axis(dist, order, 1)
    stats = []
    for per_query in zip(*(r[2] for r in results)):
        s = QueryStats()
        for st in per_query:
            for f in vars(s):
                setattr(s, f, getattr(s, f) + getattr(st, f))
        stats.append(s)
    return out_ids, out_d, stats


def to_global(ids: np.ndarray, offset: int) -> np.ndarray:
    if not offset:
        return ids
    out = ids + np.uint64(offset)
    out[ids == NO_ID] = NO_ID
    return out


def check_k(k, live: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    k = int(k)
    if not 1 <= k <= min(LIMITS["max_k"], live):
        raise ValueError(f"k={k} is out of range: it must be 1..{min(LIMITS['max_k'], live)} "
                         f"(the live vectors of the index, at most {LIMITS['max_k']})")
    return k


class ShardedIndex:
    """The Index search API over the shards of a manifest. Open with `quantann.open(manifest)`."""

    def __init__(self, manifest: Manifest, shards: list[Index], path: str | None = None,
                 memory_budget: int | None = None):
        self.manifest = manifest
        self.shards = shards
        self.path = path
        self.memory_budget = memory_budget  # bytes, checked by add as by Index.add
        self.parallel = True  # search the shards in parallel threads
        self._pool = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        self._dirty: set[int] = set()  # shards changed since open/save
        self._rw = _ReadersWriter()  # searches, or one add/delete (ids and offsets change together)

    # ---- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path, store="pread", memory_budget=None) -> "ShardedIndex":
        from ..budget import parse_size
        path = path if is_url(path) else os.fspath(path)
        m = read_manifest(path)
        budget = None if memory_budget is None else parse_size(memory_budget)
        shards, used = [], 0
        for i, e in enumerate(m.shards):
            left = None if budget is None else budget - used
            if left is not None and left <= 0:
                raise MemoryBudgetError(f"{path}: the first {i} shards already hold {human(used)}, the memory "
                                        f"budget is {human(budget)}", {"total": used}, budget)
            s = Index.open(shard_location(path, e.file), store=store, memory_budget=left)
            _check_shard(path, i, m, e, s, shards[0] if shards else None)
            used += s.memory()["total"]
            shards.append(s)
        _check_id_ranges(path, m, shards)
        if any(e.ids == "stored" for e in m.shards):
            _check_unique_ids(path, m, shards)
        return cls(m, shards, path, budget)

    # ---- what it holds -------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def metric(self) -> str:
        return self.manifest.metric

    @property
    def quant(self) -> str:
        return self.manifest.quant

    @property
    def quantizer(self):
        return self.shards[0].quantizer

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def n_deleted(self) -> int:
        return sum(s.n_deleted for s in self.shards)

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    @property
    def has_user_ids(self) -> bool:
        return True

    @property
    def ids(self) -> np.ndarray:
        return np.concatenate([to_global(s.ids, e.id_offset) for s, e in zip(self.shards, self.manifest.shards)])

    def rows_of(self, ids) -> np.ndarray:
        """The global rows (shard after shard, the order of `ids` and of `_read`) that hold these
        ids; -1 for an id in no shard."""
        ids = np.atleast_1d(np.asarray(ids)).astype(np.uint64).ravel()
        out = np.full(len(ids), -1, np.int64)
        start = 0
        for s, e in zip(self.shards, self.manifest.shards):
            mine = (out < 0) & (ids >= np.uint64(e.id_offset)) & (ids != NO_ID)
            if mine.any():
                r = s.rows_of(ids[mine] - np.uint64(e.id_offset))
                out[np.flatnonzero(mine)[r >= 0]] = start + r[r >= 0]
            start += s.rows
        return out

    def deleted_mask(self) -> np.ndarray | None:
        """bool per row (shard after shard, the order of `ids`), True for deleted rows."""
        masks = [s.deleted_mask() for s in self.shards]
        if all(m is None for m in masks):
            return None
        return np.concatenate([np.zeros(s.rows, bool) if m is None else m for s, m in zip(self.shards, masks)])

    def vectors(self, chunk: int = 65536):
        """Yields all full vectors, shard after shard (the order of `ids`), in chunks."""
        for s in self.shards:
            yield from s.vectors(chunk)

    def memory(self, extra_rows: int = 0) -> dict:
        """Bytes held in memory by part, summed over the shards; with extra_rows, as it
        would be after `add` put that many rows into the shard it picks."""
        out: dict = {}
        target = self._add_target()
        for i, s in enumerate(self.shards):
            for part, v in s.memory(extra_rows=extra_rows if i == target else 0).items():
                out[part] = out.get(part, 0) + v
        return out

    def float_bytes(self) -> int:
        return self.rows * self.dim * 4

    def __repr__(self):
        return (f"<quantann.ShardedIndex {len(self)} x {self.dim} {self.quant} {self.metric} in "
                f"{len(self.shards)} shards, memory={human(self.memory()['total'])}>")

    # ---- search --------------------------------------------------------------------------

    @property
    def last_stats(self) -> list[QueryStats]:
        """Per-query costs of this thread's last `search`, summed over the shards."""
        return getattr(self._local, "stats", [])

    def prepare_queries(self, queries) -> np.ndarray:
        return self.shards[0].prepare_queries(queries)

    @property
    def default_rerank(self):
        """As Index.default_rerank, of the shards (one quantizer: the same for each)."""
        return self.shards[0].default_rerank

    def search(self, queries, k: int = 10, ef: int = 64, rerank=None, threads: int = 1):
        """As Index.search: (ids (nq, k) uint64, distances (nq, k) float32), best first,
        over all shards; each shard returns its own top k (reranked in one batch read;
        rerank None: each shard's default_rerank)."""
        q = as_matrix(queries, self.dim, "queries")
        k = check_k(k, len(self))
        self._rw.acquire_read()
        try:
            parts = self._scatter(q, k, ef, rerank, threads)
        finally:
            self._rw.release_read()
        ids, dist, stats = merge(parts, k)
        self._local.stats = stats
        return ids, dist

    def _scatter(self, q, k, ef, rerank, threads):
        """Each live shard's (global ids, distances, stats) for its own top min(k, live)."""
        def one(i):
            s = self.shards[i]
            ids, dist = s.search(q, k=min(k, len(s)), ef=ef, rerank=rerank, threads=threads)
            return to_global(ids, self.manifest.shards[i].id_offset), dist, s.last_stats
        live = [i for i, s in enumerate(self.shards) if len(s)]
        if not self.parallel or len(live) == 1:
            return [one(i) for i in live]
        return list(self._executor().map(one, live))

    def _read(self, rows: np.ndarray, ranges=None):
        """Full vectors of ascending global rows (shard after shard, the order of `ids`): one
        batched read per shard that holds some, its ranges coalesced over its own rows (those
        given, coalesced over global rows, could span two shards). For the exact distance of a
        text that only the lexical search found (TextIndex's hybrid search)."""
        from .. import _kernel
        rows = np.asarray(rows, np.int64)
        starts = np.cumsum([0] + [s.rows for s in self.shards])
        out = np.empty((len(rows), self.dim), np.float32)
        for i, s in enumerate(self.shards):
            lo, hi = np.searchsorted(rows, [starts[i], starts[i + 1]])
            if lo < hi:
                local = (rows[lo:hi] - starts[i]).astype(np.int32)
                rng = np.frombuffer(_kernel.coalesce_rows(local, 0), np.int32).reshape(-1, 2)
                out[lo:hi] = s._read(local, rng)[0]
        return out, None

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self.shards), thread_name_prefix="quantann-shard")
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    # ---- changes -------------------------------------------------------------------------

    def add(self, vectors, ids=None, threads: int | None = None, progress: bool = False) -> np.ndarray:
        """Adds vectors to the shard with the fewest live vectors (encoded with the shared
        quantizer). ids: new global ids, or None for the next free ones. Returns the ids."""
        x = as_matrix(vectors, self.dim)
        m = x.shape[0]
        if ids is None:
            new = np.arange(self.manifest.next_id, self.manifest.next_id + m, dtype=np.uint64)
        else:
            new = np.asarray(ids)
            if new.shape != (m,) or new.dtype.kind not in "iu" or (new.dtype.kind == "i" and (new < 0).any()):
                raise ValueError(f"ids must be ({m},) non-negative integers, got {new.dtype}{list(new.shape)}")
            new = new.astype(np.uint64)
            present = np.isin(new, self.ids)
            if present.any():
                raise ValueError(f"id {new[present][0]} is already in the index")
        if self.memory_budget is not None:
            after = self.memory(extra_rows=m)
            if after["total"] > self.memory_budget:
                raise MemoryBudgetError(
                    f"adding {m} vectors would need {human(after['total'])}, over the memory budget of "
                    f"{human(self.memory_budget)} ({format_breakdown(after)})", after, self.memory_budget)
        i = self._add_target()
        s, e = self.shards[i], self.manifest.shards[i]
        with self._rw.write():  # no search sees a shard's ids and offset half changed
            if e.ids == "rows":  # the shard now holds ids of its own: its global ids, stored
                s._ids, s._next_id = s.ids + np.uint64(e.id_offset), None
                e.ids, e.id_offset = "stored", 0
            s.add(x, ids=new - np.uint64(e.id_offset), threads=threads, progress=progress)
            self.manifest.next_id = max(self.manifest.next_id, int(new.max()) + 1)
            self._dirty.add(i)
        return new

    def _add_target(self) -> int:
        """The shard `add` fills: the one with the fewest live vectors."""
        return min(range(len(self.shards)), key=lambda j: len(self.shards[j]))

    def delete(self, ids) -> int:
        """Marks these global ids deleted in their shards; unknown ids raise KeyError."""
        ids = np.atleast_1d(np.asarray(ids)).astype(np.uint64)
        found = np.zeros(len(ids), bool)
        n = 0
        for i, (s, e) in enumerate(zip(self.shards, self.manifest.shards)):
            local = ids.astype(np.int64) - e.id_offset
            mine = (local >= 0) & np.isin(local.astype(np.uint64), s.ids) & ~found
            if mine.any():
                n += s.delete(local[mine].astype(np.uint64))
                found |= mine
                self._dirty.add(i)
        if not found.all():
            raise KeyError(f"id {ids[~found][0]} is not in the index")
        return n

    def save(self, path=None, progress: bool = False) -> None:
        """Writes the changed shards (all of them to a new path) and then the manifest,
        atomically: a changed shard goes to a file the old manifest does not name, so a
        crash leaves the old manifest with its files, or the new one with its files."""
        path = os.fspath(path or self.path)
        if path is None or is_url(path):
            raise ValueError("save needs a local path for the manifest")
        same = self.path is not None and not is_url(self.path) and os.path.abspath(path) == os.path.abspath(self.path)
        old = _existing_files(path)
        stem = _stem(path)
        entries = []
        for i, (s, e) in enumerate(zip(self.shards, self.manifest.shards)):
            if same and i not in self._dirty:
                entries.append(e)
                continue
            name = next(n for n in (f"{stem}.shard{i}.qann", f"{stem}.shard{i}.b.qann") if n not in old)
            s.save(shard_location(path, name), progress=progress)
            entries.append(_entry(path, name, e))
        m = Manifest(self.dim, self.metric, self.quant, 0, self.manifest.next_id, entries)
        m.count = sum(e.count for e in entries)
        write_file(path, m.to_json().encode())
        for name in old - {e.file for e in entries}:
            try:
                os.unlink(shard_location(path, name))
            except OSError:
                pass
        reopened = ShardedIndex.open(path, store=_store_kind(self.shards[0]))
        self.close()
        self.manifest, self.shards, self.path, self._dirty = reopened.manifest, reopened.shards, path, set()


def write_file(path: str, data: bytes) -> None:
    """`data` written to `path` atomically."""
    from ..gguf_file import atomic_write

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_write(path, write)


def _stem(path: str) -> str:
    base = os.path.basename(path)
    return base[:-5] if base.endswith(".json") else base


def _existing_files(path: str) -> set[str]:
    """Shard files named by the manifest now at `path` (none when there is none)."""
    try:
        return {e.file for e in read_manifest(path).shards}
    except (OSError, FormatError):
        return set()


def _entry(manifest_path: str, name: str, e: ShardEntry) -> ShardEntry:
    """The manifest entry of a shard file just written (count, size, checksum read back)."""
    idx = Index.open(shard_location(manifest_path, name))
    return ShardEntry(name, idx.rows, e.ids, e.id_offset, idx.file.size, idx.file.vectors_crc32)


def _store_kind(index: Index):
    from ..store import MemoryStore, MmapStore
    return "mmap" if isinstance(index.store, MmapStore) else "memory" if isinstance(index.store, MemoryStore) else "pread"


def _check_shard(path, i, m: Manifest, e: ShardEntry, s: Index, first: Index | None) -> None:
    def bad(msg):
        return FormatError(f"{path}: shard {i} ({e.file}): {msg}")
    if (s.dim, s.metric, s.quant) != (m.dim, m.metric, m.quant):
        raise bad(f"holds {s.dim}-d {s.quant} {s.metric}, the manifest says {m.dim}-d {m.quant} {m.metric}")
    if s.rows != e.count or s.file.size != e.size or s.file.vectors_crc32 != e.vectors_crc32:
        raise bad("the file is not the one the manifest was written with (rows, size or checksum differ)")
    if (e.ids == "stored") != s.has_user_ids:
        raise bad(f"the manifest says its ids are {e.ids!r}, the file {'holds' if s.has_user_ids else 'has no'} ids")
    if first is not None and not (np.array_equal(s.quantizer.vmin, first.quantizer.vmin)
                                  and np.array_equal(s.quantizer.scale, first.quantizer.scale)):
        raise bad("its quantizer differs from shard 0's: the shards' codes would not mean the same")


def _check_id_ranges(path, m: Manifest, shards) -> None:
    """The shards numbered by their rows hold disjoint id ranges: each one's ids run from
    id_offset up to its next id (its count, or past it for a numbered file after saved
    deletes: the ids of deleted rows stay taken)."""
    spans = sorted((e.id_offset, e.id_offset + s.next_id, i)
                   for i, (s, e) in enumerate(zip(shards, m.shards)) if e.ids == "rows")
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise FormatError(f"{path}: the id ranges of shards {a} and {b} overlap (at id {start}; "
                              f"shard {a}'s ids run to {end - 1})")


def _check_unique_ids(path, m: Manifest, shards) -> None:
    ids = np.concatenate([to_global(s.ids, e.id_offset) for s, e in zip(shards, m.shards)])
    if len(np.unique(ids)) != len(ids):
        raise FormatError(f"{path}: two shards hold the same id")
