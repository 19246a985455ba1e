"""Writes the index half of the conformance corpus: handcrafted bad .qann files, each
with the error it must give, run against the one C reader by pytest
(tests/test_conformance.py) and by node (web/test/conformance.test.js).

    python tests/conformance/make_index_corpus.py [OUT_DIR]   (default: beside this file)

From one small valid index (built deterministically: one thread, fixed seed) every case
changes a few bytes. Cases named `crafted` then repair every checksum the way the writer
does (tensor CRCs with zlib, the header CRC with the writer's own call), so that the check
under test, not a checksum, is what must refuse them. Writes index/*.qann and the
"index" entries of manifest.json: [{"file", "kind", "error"}]; entries of other kinds
(model files) already in the manifest are kept.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import quantann  # noqa: E402
from quantann import _kernel  # noqa: E402

# ---- a small map of a GGUF header (where each key's value and tensor record lies) ---------

_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


class Layout:
    """Byte positions in a well-formed GGUF file (the valid base only)."""

    def __init__(self, data: bytes):
        pos = 24
        n_t, n_kv = struct.unpack_from("<QQ", data, 8)
        self.keys = {}  # key -> (position of its u32 type, position of its value)
        for _ in range(n_kv):
            (n,) = struct.unpack_from("<Q", data, pos)
            key = data[pos + 8:pos + 8 + n].decode()
            pos += 8 + n
            (t,) = struct.unpack_from("<I", data, pos)
            pos += 4
            self.keys[key] = (pos - 4, pos)
            pos = self._skip(data, pos, t)
        self.tensors = {}  # name -> dict(dims_at, type_at, offset_at, ndims)
        for _ in range(n_t):
            (n,) = struct.unpack_from("<Q", data, pos)
            name = data[pos + 8:pos + 8 + n].decode()
            name_at = pos + 8
            pos += 8 + n
            (nd,) = struct.unpack_from("<I", data, pos)
            dims_at = pos + 4
            pos = dims_at + 8 * nd
            self.tensors[name] = dict(name_at=name_at, dims_at=dims_at, type_at=pos, offset_at=pos + 4, ndims=nd)
            pos += 12
        self.data_start = (pos + 31) // 32 * 32
        for name, t in self.tensors.items():
            dims = struct.unpack_from(f"<{t['ndims']}Q", data, t["dims_at"])
            (tt,) = struct.unpack_from("<I", data, t["type_at"])
            (off,) = struct.unpack_from("<Q", data, t["offset_at"])
            size = {0: 4, 24: 1, 26: 4, 27: 8}[tt]
            t.update(dims=dims, type=tt, start=self.data_start + off, nbytes=int(np.prod(dims)) * size)

    @staticmethod
    def _skip(data, pos, t):
        if t == 8:
            return pos + 8 + struct.unpack_from("<Q", data, pos)[0]
        if t == 9:
            it, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for _ in range(n):
                pos = Layout._skip(data, pos, it)
            return pos
        return pos + _SIZES[t]

    def value(self, key):
        return self.keys[key][1]


def repair(buf: bytearray, lay: Layout) -> bytearray:
    """Every tensor CRC and the header CRC recomputed, as the writer computes them."""
    names_at = lay.value("quantann.checksums.tensors")
    n = struct.unpack_from("<Q", buf, names_at + 4)[0]
    pos, names = names_at + 12, []
    for _ in range(n):
        (ln,) = struct.unpack_from("<Q", buf, pos)
        names.append(bytes(buf[pos + 8:pos + 8 + ln]).decode())
        pos += 8 + ln
    crc_at = lay.value("quantann.checksums.crc32") + 12
    for i, name in enumerate(names):
        t = lay.tensors[name]
        struct.pack_into("<I", buf, crc_at + 4 * i, zlib.crc32(buf[t["start"]:t["start"] + t["nbytes"]]) & 0xFFFFFFFF)
    crc, at = _kernel.qann_header_crc(bytes(buf[:lay.data_start]))
    struct.pack_into("<I", buf, at, crc)
    return buf


def base_index(path):
    """48 rows of 8 dims, l2 over sq8 (so norms), user ids, M=4 (so a few upper levels)."""
    rng = np.random.default_rng(42)
    x = rng.standard_normal((48, 8)).astype(np.float32)
    ids = np.arange(48, dtype=np.uint64) * 3 + 5
    quantann.Index.build(x, quant="sq8", metric="l2", M=4, ef_construction=20, ids=ids, threads=1,
                         seed=0).save(path)


def cases(data: bytes, lay: Layout):
    """(name, error substring, bytes) of every bad file."""
    T = lay.tensors

    def patched(at, fmt, value, crafted=True, src=data):
        b = bytearray(src)
        struct.pack_into(fmt, b, at, value)
        return bytes(repair(b, lay) if crafted else b)

    def tensor(name, dtype):
        t = T[name]
        return np.frombuffer(data, dtype, t["nbytes"] // np.dtype(dtype).itemsize, t["start"])

    def in_tensor(name, index, fmt, value):
        t = T[name]
        return patched(t["start"] + index * struct.calcsize(fmt), fmt, value)

    level = tensor("graph.level", np.uint8)
    up_nodes = tensor("graph.up_nodes", np.int32)
    upper = tensor("graph.upper", np.int32)
    M = struct.unpack_from("<I", data, lay.value("quantann.hnsw.M"))[0]
    max_level = struct.unpack_from("<I", data, lay.value("quantann.hnsw.max_level"))[0]
    # an upper-level link (level 1 of some node) pointing at a row that has only level 0
    level0_row = int(np.flatnonzero(level == 0)[0])
    slot = 0  # the first slot of level 1 of up_nodes[0] (its lists start the pool)
    entry = struct.unpack_from("<i", data, lay.value("quantann.hnsw.entry"))[0]

    yield "bad_magic", "not a GGUF file: bad magic", b"GGUX" + data[4:]
    yield "gguf_version_1", "unsupported GGUF version 1", patched(4, "<I", 1, crafted=False)
    yield "too_short", "too short", data[:20]
    yield "tensor_count_huge", "cannot fit in", patched(8, "<Q", 1 << 40, crafted=False)
    yield "key_count_huge", "cannot fit in", patched(16, "<Q", 10**9, crafted=False)
    yield "key_length_huge", "truncated GGUF: key 0 runs past the end", patched(24, "<Q", 1 << 62, crafted=False)
    yield ("string_length_huge", "truncated GGUF: value of key 'general.architecture'",
           patched(lay.value("general.architecture"), "<Q", 1 << 40, crafted=False))
    yield "foreign_architecture", "not a quantann index (GGUF architecture 'quantanx')", \
        data.replace(b"\x08\x00\x00\x00\x00\x00\x00\x00quantann", b"\x08\x00\x00\x00\x00\x00\x00\x00quantanx", 1)
    yield ("format_newer", "written by a newer quantann (format 99)",
           patched(lay.value("quantann.format_version"), "<I", 99))
    yield ("key_missing", "missing key quantann.hnsw.M0",
           patched(lay.keys["quantann.hnsw.M0"][0] - 1, "<B", ord("X")))
    yield ("key_wrong_type", "key quantann.dim is i32, expected u32",
           patched(lay.keys["quantann.dim"][0], "<I", 5))
    yield ("tensor_offset_unaligned", "is not aligned to 32",
           patched(T["codes"]["offset_at"], "<Q", T["codes"]["start"] - lay.data_start + 4, crafted=False))
    yield ("tensor_offset_past_end", "truncated: tensor vectors",
           patched(T["vectors"]["offset_at"], "<Q", 1 << 36, crafted=False))
    yield ("tensor_dimension_huge", "bad dimension",
           patched(T["codes"]["dims_at"], "<Q", 1 << 41, crafted=False))
    yield ("tensors_overlap", "overlap",
           patched(T["quant.scale"]["offset_at"], "<Q", T["quant.vmin"]["start"] - lay.data_start, crafted=False))
    yield ("links0_packed_but_header_says_int32", "tensor graph.links0 is I8[48, 6], expected I32[48, 8]",
           patched(lay.value("quantann.hnsw.link_bits"), "<I", 32))
    # issue 9's crash: a retyped int32 tensor (checksums still valid) must be refused on open
    yield ("tensor_retyped_i32_to_f32", "tensor graph.up_nodes is F32",
           patched(T["graph.up_nodes"]["type_at"], "<I", 0))
    yield ("tensor_wrong_shape", "tensor graph.level is I8[47], expected I8[48]",
           patched(T["graph.level"]["dims_at"], "<Q", 47))
    yield ("tensor_unknown", "unexpected tensor 'normz'",
           patched(T["norms"]["name_at"] + 4, "<B", ord("z")))
    bad = bytearray(data)
    bad[T["codes"]["start"] + 10] ^= 0x5A
    yield "tensor_checksum", "checksum mismatch in tensor codes", bytes(bad)
    yield ("header_changed_without_checksum", "header checksum mismatch",
           patched(lay.value("quantann.hnsw.ef_construction"), "<I", 201, crafted=False))
    yield ("ef_construction_huge", "ef_construction=2147483647",
           patched(lay.value("quantann.hnsw.ef_construction"), "<I", 2**31 - 1))
    yield ("count_zero", "count=0", patched(lay.value("quantann.count"), "<Q", 0))
    yield ("M0_not_2M", "M0=9", patched(lay.value("quantann.hnsw.M0"), "<I", 9))
    yield ("entry_out_of_range", "entry=48", patched(lay.value("quantann.hnsw.entry"), "<i", 48))
    yield ("entry_not_on_top", "entry point is not on the top level",
           patched(lay.value("quantann.hnsw.entry"), "<i", level0_row))
    # level 0 is packed (format 3): 48 rows take 6 bits per link, 50 fits them but is no row
    n = struct.unpack_from("<Q", data, lay.value("quantann.count"))[0]
    bits = struct.unpack_from("<I", data, lay.value("quantann.hnsw.link_bits"))[0]
    assert (n, bits) == (48, 6)
    row_bytes = T["graph.links0"]["nbytes"] // n
    word = struct.unpack_from("<H", data, T["graph.links0"]["start"] + 5 * row_bytes)[0]
    yield ("link_out_of_range", "level-0 link outside the index",
           in_tensor("graph.links0", 5 * row_bytes // 2, "<H", (word & ~0x3F) | 50))
    yield ("link_bits_wrong", "link_bits=7 (32, or 6 for count=48)",
           patched(lay.value("quantann.hnsw.link_bits"), "<I", 7))
    yield ("link_bits_missing", "missing key quantann.hnsw.link_bits",
           patched(lay.keys["quantann.hnsw.link_bits"][0] - 1, "<B", ord("X")))
    yield ("upper_link_out_of_range", "upper-level link outside the index", in_tensor("graph.upper", slot, "<i", -7))
    yield ("link_to_node_lacking_level", f"links at level 1 to row {level0_row}, which has no level 1",
           in_tensor("graph.upper", slot, "<i", level0_row))
    yield ("level_above_top", "above the top level", in_tensor("graph.level", entry, "<B", max_level + 1))
    yield ("up_nodes_mismatch", "upper-level node list does not match the levels",
           in_tensor("graph.up_nodes", 0, "<i", int(up_nodes[0]) + 1 if up_nodes[0] + 1 not in up_nodes else 0))
    yield ("up_off_wrong", "upper-level offsets", in_tensor("graph.up_off", 1, "<q", 1))
    yield ("quantizer_nan", "quantizer parameters are not finite", in_tensor("quant.vmin", 0, "<f", float("nan")))
    # sq8 residuals (format 5): rerank auto's bound trusts them, so each is checked
    yield ("residual_nan", "residual of row 7 is not a finite non-negative number",
           in_tensor("residuals", 7, "<f", float("nan")))
    yield ("residual_negative", "residual of row 0 is not a finite non-negative number",
           in_tensor("residuals", 0, "<f", -0.5))
    yield ("residual_infinite", "residual of row 47 is not a finite non-negative number",
           in_tensor("residuals", 47, "<f", float("inf")))
    yield ("residuals_wrong_length", "tensor residuals is F32[47], expected F32[48]",
           patched(T["residuals"]["dims_at"], "<Q", 47))
    yield ("residuals_in_format_4", "tensor residuals in a format 4 file (it came with format 5)",
           patched(lay.value("quantann.format_version"), "<I", 4))
    ids = tensor("ids", np.uint64)
    yield ("ids_duplicate", f"duplicate id {int(ids[0])}", in_tensor("ids", 1, "<Q", int(ids[0])))
    yield "truncated_header", "truncated", data[:200]
    yield "truncated_in_memory_part", "truncated: tensor", data[:T["graph.links0"]["start"] + 8]
    yield "truncated_vectors", "truncated: tensor vectors", data[:-100]


def main(out=HERE):
    os.makedirs(os.path.join(out, "index"), exist_ok=True)
    base = os.path.join(out, "index", "good.qann")
    base_index(base)
    with open(base, "rb") as f:
        data = f.read()
    lay = Layout(data)
    entries = []
    for name, error, blob in cases(data, lay):
        assert blob != data, name
        with open(os.path.join(out, "index", f"{name}.qann"), "wb") as f:
            f.write(blob)
        entries.append({"file": f"index/{name}.qann", "kind": "index", "error": error})
    manifest = os.path.join(out, "manifest.json")
    old = json.load(open(manifest)) if os.path.exists(manifest) else []
    keep = [e for e in old if e["kind"] != "index"]
    with open(manifest, "w") as f:
        json.dump(entries + keep, f, indent=1)
        f.write("\n")
    return entries


if __name__ == "__main__":
    print(f"{len(main(*sys.argv[1:]))} index cases")
