"""The .qann file: a GGUF container holding the in-memory part (quantizer, codes, graph,
ids) followed by the full vectors, so that opening reads only the former. FORMAT.md
documents every key and tensor."""
from __future__ import annotations

import zlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType, GGUFWriter

from .budget import format_breakdown, human, parse_size
from .errors import FormatError, MemoryBudgetError
from .gguf_file import GGUFFile, atomic_write
from .graph import MAX_LEVEL, Graph
from .index import ARCH, FORMAT_VERSION, METRICS, Index
from .progress import Progress
from .quantize import KINDS, Quantizer, code_size, pad_dims
from .store import VectorStore, open_store

ALIGN = 32
# tensors of the in-memory part, in file order; the vectors come last
TENSORS = ("quant.vmin", "quant.scale", "codes", "norms", "graph.level", "graph.links0",
           "graph.up_nodes", "graph.up_off", "graph.upper", "ids")
_RAW = {np.dtype(np.float32): T.F32, np.dtype(np.int8): T.I8, np.dtype(np.int32): T.I32,
        np.dtype(np.int64): T.I64}


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B")) & 0xFFFFFFFF


# ---- writing -------------------------------------------------------------------------

def _compacted(index: Index):
    """The index's arrays with deleted rows dropped: (keep rows, arrays dict, graph)."""
    n = index.rows
    g = index.graph
    if index._deleted is None or index.n_deleted == 0:
        keep = None
        arrays = dict(codes=index.codes, norms=index.norms, ids=index._ids)
        return keep, arrays, g
    dead = np.unpackbits(index._deleted, bitorder="little")[:n].astype(bool)
    keep = np.flatnonzero(~dead)
    if len(keep) == 0:
        raise ValueError("nothing to save: every vector is deleted")
    newrow = np.full(n + 1, -1, np.int32)  # index n maps the -1 sentinel
    newrow[keep] = np.arange(len(keep), dtype=np.int32)
    # level 0: drop links to deleted rows, then refill from the deleted neighbours' own
    # lists so the graph stays connected around the hole.
    old = g.links0[keep]
    mapped = newrow[np.where(old < 0, n, old)]
    lost = (old >= 0) & dead[np.maximum(old, 0)]
    links0 = np.full((len(keep), g.M0), -1, np.int32)
    decoded = None
    for i in range(len(keep)):
        cur = mapped[i][mapped[i] >= 0]
        if lost[i].any() and len(cur) < g.M0:
            via = np.unique(g.links0[old[i][lost[i]]].ravel())
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
    ids = index._ids[keep] if index._ids is not None else keep.astype(np.uint64)
    arrays = dict(codes=index.codes[keep], norms=None if index.norms is None else index.norms[keep], ids=ids)
    return keep, arrays, ng


def write_index(index: Index, path, progress: bool = False) -> None:
    keep, arrays, g = _compacted(index)
    qz = index.quantizer
    n = g.n
    tensors = {
        "quant.vmin": qz.vmin, "quant.scale": qz.scale,
        "codes": arrays["codes"].view(np.int8),
        "norms": arrays["norms"],
        "graph.level": g.level.view(np.int8), "graph.links0": g.links0,
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
        w.add_uint32(f"{ARCH}.format_version", FORMAT_VERSION)
        w.add_uint32(f"{ARCH}.dim", qz.d)
        w.add_string(f"{ARCH}.metric", index.metric)
        w.add_string(f"{ARCH}.quant", qz.kind)
        w.add_uint64(f"{ARCH}.count", n)
        w.add_uint32(f"{ARCH}.hnsw.M", g.M)
        w.add_uint32(f"{ARCH}.hnsw.M0", g.M0)
        w.add_int32(f"{ARCH}.hnsw.entry", g.entry)
        w.add_uint32(f"{ARCH}.hnsw.max_level", g.max_level)
        w.add_uint32(f"{ARCH}.hnsw.ef_construction", g.ef_construction)
        w.add_string(f"{ARCH}.vectors.dtype", "f32")
        w.add_uint32(f"{ARCH}.vectors.crc32", vcrc & 0xFFFFFFFF)
        w.add_array(f"{ARCH}.checksums.tensors", list(tensors))
        w.add_key_value(f"{ARCH}.checksums.crc32", [_crc(a) for a in tensors.values()],
                        GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)
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

    atomic_write(path, write)


def _pad(f):
    f.write(b"\0" * (-f.tell() % ALIGN))


# ---- reading -------------------------------------------------------------------------

def read_index(path, store="pread", memory_budget=None, verify: bool = True) -> Index:
    budget = parse_size(memory_budget)
    if str(path).startswith(("http://", "https://")):
        f = _fetch_url(str(path), budget)
        return _read(f, path, "http" if store == "pread" else store, budget, verify)
    f = GGUFFile(path)
    try:
        return _read(f, path, store, budget, verify)
    except BaseException:
        f.close()
        raise


def _fetch_url(url: str, budget) -> GGUFFile:
    """The in-memory part of an index on an HTTP server: the header first (a prefix that
    grows until it holds it), the memory budget checked on its sizes, then everything up
    to the vectors in one Range request."""
    from .store.http import HttpClient
    client = HttpClient(url)
    try:
        buf, size = client.read(0, 1 << 16)
        while True:
            try:
                f = GGUFFile.from_bytes(buf, size, url)
                break
            except FormatError:
                if len(buf) >= size:
                    raise
                buf = buf + client.read(len(buf), min(size, 4 * len(buf)) - len(buf))[0]
        _check_budget(f, url, budget, f.require(f"{ARCH}.count", int))
        end = f.tensor("vectors").offset
        if len(buf) < end:
            buf = buf + client.read(len(buf), end - len(buf))[0]
            f = GGUFFile.from_bytes(buf, size, url)
        return f
    finally:
        client.close()


def _check_budget(f: GGUFFile, path, budget, n: int) -> None:
    """Refuses (MemoryBudgetError) an index whose in-memory part is over the budget,
    from the sizes in the header."""
    def size(name):
        return f.tensors[name].nbytes if name in f.tensors else 0
    breakdown = {"codes": size("codes"),
                 "graph": sum(size(x) for x in ("graph.level", "graph.links0", "graph.up_nodes", "graph.up_off", "graph.upper")),
                 "ids": size("ids"),
                 "other": size("quant.vmin") + size("quant.scale") + size("norms") + 2 * n}
    breakdown["total"] = sum(breakdown.values())
    if budget is not None and breakdown["total"] > budget:
        raise MemoryBudgetError(
            f"{path}: the index needs {human(breakdown['total'])} in memory, over the budget of "
            f"{human(budget)} ({format_breakdown(breakdown)})", breakdown, budget)


def _read(f: GGUFFile, path, store, budget, verify) -> Index:
    arch = f.get("general.architecture")
    if arch != ARCH:
        raise FormatError(f"{path}: not a quantann index (GGUF architecture {arch!r})")
    version = f.require(f"{ARCH}.format_version", int)
    if version > FORMAT_VERSION:
        raise FormatError(f"{path}: written by a newer quantann (format {version}); this version "
                          f"reads format {FORMAT_VERSION} and older: upgrade quantann")
    d = f.require(f"{ARCH}.dim", int)
    metric = f.require(f"{ARCH}.metric", str)
    kind = f.require(f"{ARCH}.quant", str)
    n = f.require(f"{ARCH}.count", int)
    M = f.require(f"{ARCH}.hnsw.M", int)
    M0 = f.require(f"{ARCH}.hnsw.M0", int)
    entry = f.require(f"{ARCH}.hnsw.entry", int)
    max_level = f.require(f"{ARCH}.hnsw.max_level", int)
    efc = f.get(f"{ARCH}.hnsw.ef_construction", 200)
    if metric not in METRICS or kind not in KINDS:
        raise FormatError(f"{path}: unknown metric {metric!r} or quantizer {kind!r}")
    if not (1 <= d <= 65536 and 0 < n < 2**31 - 1 and 2 <= M <= 127 and M0 == 2 * M
            and 0 <= entry < n and 0 <= max_level <= MAX_LEVEL):
        raise FormatError(f"{path}: header values out of range (dim={d}, count={n}, M={M}, "
                          f"M0={M0}, entry={entry}, max_level={max_level})")
    if f.get(f"{ARCH}.vectors.dtype", "f32") != "f32":
        raise FormatError(f"{path}: vectors stored as {f.get(f'{ARCH}.vectors.dtype')!r}, expected f32")

    dpad = pad_dims(d)
    expect = {"quant.vmin": ("F32", (dpad,)), "quant.scale": ("F32", (dpad,)),
              "codes": ("I8", (n, code_size(kind, d))), "graph.level": ("I8", (n,)),
              "graph.links0": ("I32", (n, M0)), "vectors": ("F32", (n, d))}
    if metric == "l2" and kind != "none":
        expect["norms"] = ("F32", (n,))
    for name, (tname, shape) in expect.items():
        t = f.tensor(name)
        if t.type_name != tname or t.shape != shape:
            raise FormatError(f"{path}: tensor {name} is {t.type_name}{list(t.shape)}, expected {tname}{list(shape)}")
    for name in ("graph.up_nodes", "graph.up_off", "graph.upper", "ids"):
        if name in f.tensors and len(f.tensors[name].shape) != 1:
            raise FormatError(f"{path}: tensor {name} must be 1-D")

    # the budget is checked on sizes from the header, before anything is mapped
    _check_budget(f, path, budget, n)

    if verify:
        names = f.get(f"{ARCH}.checksums.tensors")
        crcs = f.get(f"{ARCH}.checksums.crc32")
        if names is None or crcs is None or len(names) != len(crcs):
            raise FormatError(f"{path}: checksums missing")
        for name, crc in zip(names, crcs):
            if zlib.crc32(f.raw(name)) & 0xFFFFFFFF != int(crc):
                raise FormatError(f"{path}: checksum mismatch in tensor {name}: the file is corrupt")

    def arr(name, dtype=None, empty=None):
        if name not in f.tensors:
            return empty
        return f.array(name, dtype)

    qz = Quantizer(kind, d, np.array(arr("quant.vmin")), np.array(arr("quant.scale")))
    codes = arr("codes", np.uint8).reshape(n, qz.code_size)
    level = arr("graph.level", np.uint8)
    links0 = arr("graph.links0")
    up_nodes = arr("graph.up_nodes", empty=np.empty(0, np.int32))
    up_off = arr("graph.up_off", empty=np.empty(0, np.int64))
    upper = arr("graph.upper", empty=np.empty(0, np.int32))
    ids = arr("ids", np.uint64)
    norms = arr("norms")
    _check_graph(path, n, M, level, links0, up_nodes, up_off, upper, entry, max_level)
    if ids is not None and (ids.shape != (n,) or len(np.unique(ids)) != n):
        raise FormatError(f"{path}: ids tensor has the wrong length or duplicate ids")
    if not (np.isfinite(qz.vmin).all() and np.isfinite(qz.scale).all()):
        raise FormatError(f"{path}: quantizer parameters are not finite")
    if qz.kind == "none" and not np.isfinite(codes.view(np.float32)).all():
        raise FormatError(f"{path}: float codes are not finite")

    graph = Graph(M, M0, links0, level, up_nodes, up_off, upper, entry, max_level, efc)
    vt = f.tensor("vectors")
    if isinstance(store, VectorStore):
        if store.count != n or store.dim != d:
            raise ValueError(f"store holds {store.count} x {store.dim}, index has {n} x {d}")
        st = store
    else:
        st = open_store(store, path, vt.offset, n, d)
    idx = Index(qz, metric, graph, codes, norms, ids, st, path=str(path), memory_budget=budget)
    idx._file = f  # keeps the memory map alive
    return idx


def _check_graph(path, n, M, level, links0, up_nodes, up_off, upper, entry, max_level):
    """Every value the C search will follow is checked, so a bad file cannot make it
    read out of bounds."""
    def bad(what):
        raise FormatError(f"{path}: corrupt graph: {what}")
    if level.max(initial=0) > MAX_LEVEL:
        bad("level above the maximum")
    if int(level[entry]) != max_level:
        bad("entry point is not on the top level")
    if links0.min(initial=0) < -1 or links0.max(initial=-1) >= n:
        bad("level-0 link outside the index")
    up_expected = np.flatnonzero(level > 0)
    if len(up_nodes) != len(up_expected) or not np.array_equal(up_nodes, up_expected):
        bad("upper-level node list does not match the levels")
    if len(up_off) != len(up_nodes):
        bad("upper-level offsets do not match the nodes")
    lens = level[up_expected].astype(np.int64) * M
    if len(lens) and (not np.array_equal(up_off, np.concatenate([[0], np.cumsum(lens)[:-1]]))
                      or upper.size != lens.sum()):
        bad("upper-level offsets or pool size")
    if upper.size and (upper.min() < -1 or upper.max() >= n):
        bad("upper-level link outside the index")


def verify_vectors(index: Index) -> bool:
    """Full read of the vectors against the stored checksum."""
    f = index._file
    want = f.get(f"{ARCH}.vectors.crc32")
    if want is None:
        return True
    return zlib.crc32(f.raw("vectors")) & 0xFFFFFFFF == int(want)
