"""The .qann file: a GGUF container holding the in-memory part (quantizer, codes, graph,
ids) followed by the full vectors, so that opening reads only the former. FORMAT.md
documents every key and tensor.

Written here with the `gguf` package; read and checked by the kernel (kernel/index/qann.c,
the same C in every runtime): this module maps the file, hands the bytes to the kernel and
makes numpy views of the arrays at the offsets it returns."""
from __future__ import annotations

import zlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType, GGUFWriter

from dataclasses import dataclass

from . import _kernel
from .budget import format_breakdown, human, parse_size
from .constants import ARCH, CODECS, FORMAT_VERSION, KEYS
from .errors import FormatError, MemoryBudgetError
from .gguf_file import atomic_write, map_file, remove_stale_temps
from .graph import Graph
from .progress import Progress
from .quantize import Quantizer
from .store import VectorStore, open_store

ALIGN = 32
# tensors of the in-memory part, in file order; the vectors come last
TENSORS = ("quant.vmin", "quant.scale", "codes", "norms", "residuals", "graph.level", "graph.links0",
           "graph.up_nodes", "graph.up_off", "graph.upper", "ids")
_RAW = {np.dtype(np.float32): T.F32, np.dtype(np.int8): T.I8, np.dtype(np.int32): T.I32,
        np.dtype(np.int64): T.I64}


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B")) & 0xFFFFFFFF


# ---- writing -------------------------------------------------------------------------

def _compacted(index):
    """The index's arrays with deleted rows dropped: (keep rows, arrays dict, graph)."""
    n = index.rows
    g = index.graph
    stored = index.stored_ids
    dead = index.deleted_mask()
    if dead is None or index.n_deleted == 0:
        keep = None
        arrays = dict(codes=index.codes, norms=index.norms, residuals=index.residuals, ids=stored)
        return keep, arrays, g
    keep = np.flatnonzero(~dead)
    if len(keep) == 0:
        raise ValueError("nothing to save: every vector is deleted")
    newrow = np.full(n + 1, -1, np.int32)  # index n maps the -1 sentinel
    newrow[keep] = np.arange(len(keep), dtype=np.int32)
    # level 0: drop links to deleted rows, then refill from the deleted neighbours' own
    # lists so the graph stays connected around the hole.
    lists0 = g.lists0()
    old = lists0[keep]
    mapped = newrow[np.where(old < 0, n, old)]
    lost = (old >= 0) & dead[np.maximum(old, 0)]
    links0 = np.full((len(keep), g.M0), -1, np.int32)
    decoded = None
    for i in range(len(keep)):
        cur = mapped[i][mapped[i] >= 0]
        if lost[i].any() and len(cur) < g.M0:
            via = np.unique(lists0[old[i][lost[i]]].ravel())
            via = via[(via >= 0)]
            via = newrow[via[~dead[via]]]
            via = via[(via != i) & ~np.isin(via, cur)]
            if len(via):
                if decoded is None:
                    decoded = index.quantizer.decode(index.codes[keep])
                dv = ((decoded[via] - decoded[i]) ** 2).sum(axis=1)
                cur = np.concatenate([cur, via[np.argsort(dv)][:g.M0 - len(cur)]])
        links0[i, :len(cur)] = cur
    level = g.level[keep]
    is_up = np.isin(g.up_nodes, keep)
    up_old = g.up_nodes[is_up]
    up_nodes = newrow[up_old]
    lens = level[up_nodes].astype(np.int64) * g.M
    up_off = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    upper = np.full(int(lens.sum()), -1, np.int32)
    for k, (o_old, o_new, ln) in enumerate(zip(g.up_off[is_up], up_off, lens)):
        for lev in range(ln // g.M):
            lst = g.upper[o_old + lev * g.M:o_old + (lev + 1) * g.M]
            lst = newrow[np.where(lst < 0, n, lst)]
            lst = lst[lst >= 0]
            upper[o_new + lev * g.M:o_new + lev * g.M + len(lst)] = lst
    entry = int(newrow[g.entry])
    max_level = g.max_level
    if entry < 0:
        entry = int(np.argmax(level))
        max_level = int(level[entry])
    ng = Graph(g.M, g.M0, links0, level, up_nodes.astype(np.int32), up_off, upper, entry, max_level,
               g.ef_construction)
    if g.packed:
        ng.pack()
    # ids kept: the survivors' (their row numbers when the ids were the rows: the file then
    # holds them with quantann.ids.next, so `add` keeps numbering after the gap)
    ids = stored[keep] if stored is not None else keep.astype(np.uint64)
    arrays = {k: None if v is None else v[keep] for k, v in
              dict(codes=index.codes, norms=index.norms, residuals=index.residuals).items()}
    arrays["ids"] = ids
    return keep, arrays, ng


def write_index(index, path, progress: bool = False) -> None:
    """Writes an Index (its public arrays) to `path`, atomically."""
    keep, arrays, g = _compacted(index)
    qz = index.quantizer
    n = g.n
    # the lowest version that holds the file, which the most readers read: 5 for residuals
    # (sq8), 4 for ids the index numbers in a stored order, else 3
    next_id = None if index.has_user_ids or arrays["ids"] is None else index.next_id
    version = FORMAT_VERSION if arrays["residuals"] is not None else 4 if next_id is not None else 3
    tensors = {
        "quant.vmin": qz.vmin, "quant.scale": qz.scale,
        "codes": arrays["codes"].view(np.int8),
        "norms": arrays["norms"],
        "residuals": arrays["residuals"],
        "graph.level": g.level.view(np.int8),
        "graph.links0": g.packed0.view(np.int8) if g.packed else g.links0,
        "graph.up_nodes": g.up_nodes, "graph.up_off": g.up_off, "graph.upper": g.upper,
        "ids": None if arrays["ids"] is None else arrays["ids"].view(np.int64),
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items() if v is not None and v.size}

    def vector_chunks():
        row = 0
        for chunk in index.vectors():
            if keep is not None:
                sel = keep[(keep >= row) & (keep < row + len(chunk))] - row
                out = chunk[sel]
            else:
                out = chunk
            row += len(chunk)
            yield np.ascontiguousarray(out, dtype=np.float32)

    vcrc = 0
    for c in vector_chunks():
        vcrc = zlib.crc32(memoryview(c).cast("B"), vcrc)

    def write(tmp):
        w = GGUFWriter(tmp, ARCH)
        w.add_uint32(f"{ARCH}.format_version", version)
        w.add_uint32(f"{ARCH}.dim", qz.d)
        w.add_string(f"{ARCH}.metric", index.metric)
        w.add_string(f"{ARCH}.quant", qz.kind)
        w.add_uint64(f"{ARCH}.count", n)
        w.add_uint32(f"{ARCH}.hnsw.M", g.M)
        w.add_uint32(f"{ARCH}.hnsw.M0", g.M0)
        w.add_uint32(KEYS["hnsw_link_bits"], g.link_bits)
        w.add_int32(f"{ARCH}.hnsw.entry", g.entry)
        w.add_uint32(f"{ARCH}.hnsw.max_level", g.max_level)
        w.add_uint32(f"{ARCH}.hnsw.ef_construction", g.ef_construction)
        w.add_string(f"{ARCH}.vectors.dtype", "f32")
        w.add_uint32(f"{ARCH}.vectors.crc32", vcrc & 0xFFFFFFFF)
        w.add_array(f"{ARCH}.checksums.tensors", list(tensors))
        w.add_key_value(f"{ARCH}.checksums.crc32", [_crc(a) for a in tensors.values()],
                        GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)
        if next_id is not None:
            w.add_uint64(KEYS["ids_next"], next_id)
        w.add_uint32(KEYS["checksum_header"], 0)  # patched below, once the header is written
        for name, a in tensors.items():
            w.add_tensor_info(name, a.shape, a.dtype, a.nbytes, raw_dtype=_RAW[a.dtype])
        w.add_tensor_info("vectors", (n, qz.d), np.dtype(np.float32), n * qz.d * 4, raw_dtype=T.F32)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        f = w.fout[0]
        _pad(f)
        for a in tensors.values():
            f.write(memoryview(a).cast("B"))
            _pad(f)
        bar = Progress(n, "write vectors", enabled=progress)
        for c in vector_chunks():
            f.write(memoryview(c).cast("B"))
            bar.update(len(c))
        bar.close()
        _pad(f)
        w.close()
        _patch_header_crc(tmp)

    atomic_write(path, write)


def _patch_header_crc(path) -> None:
    """Fills quantann.checksums.header: the kernel computes it over the header as written
    (FORMAT.md), so the rule lives in one place."""
    with open(path, "r+b") as f:
        head = f.read(1 << 20)  # an index header is ~1.5 KB; at most 64 keys and 16 tensors
        crc, at = _kernel.qann_header_crc(head)
        f.seek(at)
        f.write(crc.to_bytes(4, "little"))


def _pad(f):
    f.write(b"\0" * (-f.tell() % ALIGN))


# ---- reading -------------------------------------------------------------------------

@dataclass
class IndexFile:
    """What an index file says besides its arrays."""
    path: str
    size: int
    gguf_version: int
    format_version: int
    vectors_offset: int  # byte offset of row 0 of the vectors
    vectors_bytes: int
    vectors_crc32: int


@dataclass
class IndexParts:
    """An opened index file: everything an Index is made of."""
    quantizer: Quantizer
    metric: str
    graph: Graph
    codes: np.ndarray
    norms: np.ndarray | None
    ids: np.ndarray | None
    store: VectorStore
    file: IndexFile
    memory_budget: int | None
    next_id: int | None = None  # ids the index numbers itself (quantann.ids.next); None: rows or user ids
    residuals: np.ndarray | None = None  # sq8, format 5: |x - x^| per row (rerank auto's sound bound)


_METRIC_NAMES = {(0, False): "l2", (1, False): "ip", (1, True): "cosine"}
_CODEC_NAMES = {v: k for k, v in CODECS.items()}


def read_index(path, store="pread", memory_budget=None) -> IndexParts:
    """Opens an index file (or http(s) URL): the kernel checks the header, the memory
    budget is checked on the sizes it reports, then the kernel checks the in-memory part
    and the arrays become numpy views of it (a memory map for local files)."""
    budget = parse_size(memory_budget)
    name = str(path)
    if name.startswith(("http://", "https://")):
        buf, size = _fetch_url(name, budget)
        kind = "http" if store == "pread" else store
    else:
        remove_stale_temps(path)
        buf, size = map_file(path)
        _check_budget(_info(buf, size, name), name, budget)
        kind = store
    r = _checked(_kernel.qann_read, buf, size, name)
    return _parts(buf, r, name, size, kind, store, budget)


def _checked(fn, buf, size, name):
    try:
        return fn(buf, size)
    except ValueError as e:
        raise FormatError(f"{name}: {e}") from None


def _info(prefix, size, name):
    """The header's sizes, or the prefix length needed (int) to read them."""
    return _checked(_kernel.qann_info, prefix, size, name)


def _fetch_url(url: str, budget):
    """The in-memory part of an index on an HTTP server: a first 64 KiB, then exactly
    the header's length if the kernel says it needs more, the budget checked on the
    header's sizes, then the rest of the in-memory part in one Range request."""
    from .store.http import HttpClient
    client = HttpClient(url)
    try:
        buf, size = client.read(0, 1 << 16)
        info = _info(buf, size, url)
        while isinstance(info, int):
            buf += client.read(len(buf), info - len(buf))[0]
            info = _info(buf, size, url)
        _check_budget(info, url, budget)
        end = info["part_bytes"]
        if len(buf) < end:
            buf += client.read(len(buf), end - len(buf))[0]
        part = np.empty(len(buf), np.uint8)  # 8-byte aligned, as the kernel wants
        part[:] = np.frombuffer(buf, np.uint8)
        return part, size
    finally:
        client.close()


def _check_budget(info, path, budget) -> None:
    """Refuses (MemoryBudgetError) an index whose in-memory part is over the budget,
    from the sizes in the header."""
    breakdown = {k: info[k] for k in ("codes", "graph", "ids", "other")}
    breakdown["total"] = sum(breakdown.values())
    if budget is not None and breakdown["total"] > budget:
        raise MemoryBudgetError(
            f"{path}: the index needs {human(breakdown['total'])} in memory, over the budget of "
            f"{human(budget)} ({format_breakdown(breakdown)})", breakdown, budget)


def _parts(buf, r, path, size, kind, store, budget) -> IndexParts:
    n, d = r["n"], r["d"]
    spans = r["arrays"]

    def arr(name, dtype, shape=None, empty=None):
        if spans[name] is None:
            return empty
        off, count = spans[name]
        a = np.frombuffer(buf, dtype, count * (1 if shape is None else shape), off)
        return a if shape is None else a.reshape(count, shape)

    kind_name = _CODEC_NAMES[r["codec"]]
    qz = Quantizer(kind_name, d, np.array(arr("quant.vmin", np.float32)), np.array(arr("quant.scale", np.float32)))
    bits = r["link_bits"]
    packed = bits < 32
    row_bytes = _kernel.link_bits(n, r["M0"])[1] if packed else 0
    graph = Graph(r["M"], r["M0"], None if packed else arr("graph.links0", np.int32, r["M0"]),
                  arr("graph.level", np.uint8),
                  arr("graph.up_nodes", np.int32, empty=np.empty(0, np.int32)),
                  arr("graph.up_off", np.int64, empty=np.empty(0, np.int64)),
                  arr("graph.upper", np.int32, empty=np.empty(0, np.int32)), r["entry"], r["max_level"],
                  r["ef_construction"], packed0=arr("graph.links0", np.uint8, row_bytes) if packed else None,
                  link_bits=bits)
    info = r["info"]
    f = IndexFile(path, size, info["gguf_version"], info["format_version"], r["vectors_offset"],
                  n * d * 4, r["vectors_crc32"])
    if isinstance(store, VectorStore):
        if store.count != n or store.dim != d:
            raise ValueError(f"store holds {store.count} x {store.dim}, index has {n} x {d}")
        st = store
    else:
        st = open_store(kind, path, f.vectors_offset, n, d)
    return IndexParts(qz, _METRIC_NAMES[r["metric"], r["cosine"]], graph, arr("codes", np.uint8, qz.code_size),
                      arr("norms", np.float32), arr("ids", np.uint64), st, f, budget, info["next_id"] or None,
                      arr("residuals", np.float32))


def verify_vectors(f: IndexFile) -> bool:
    """Full read of the vectors of a local index file against the stored checksum."""
    mm, _ = map_file(f.path)
    with mm:
        view = memoryview(mm)
        crc, end = 0, f.vectors_offset + f.vectors_bytes
        step = 1 << 24
        for at in range(f.vectors_offset, end, step):
            crc = zlib.crc32(view[at:min(end, at + step)], crc)
        view.release()
    return crc & 0xFFFFFFFF == f.vectors_crc32
