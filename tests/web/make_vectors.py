"""Shared test vectors for the browser runtime: small indexes built by native quantann,
the queries, and the native results, checked by web/test (Node) and tests/web (Chromium).

    python tests/web/make_vectors.py [OUT_DIR]     (default web/dist/testdata)

Writes <name>.qann, queries.f32 (raw float32, nq x d) and expected.json:
{name: {file, dim, metric, quant, k, ef, rerank, nq, ids: [[...]], distances: [[...]]}}.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

import quantann

DATA = os.environ.get("QUANTANN_DATA", "/work/shared/datasets/minilm-100k")
CASES = [  # name, quant, metric, user ids, compact graph (level 0 packed, the default)[, row order]
    ("sq8-cosine", "sq8", "cosine", False, True),
    ("sq4-l2-ids", "sq4", "l2", True, True),
    ("none-ip", "none", "ip", False, True),
    ("rabitq4-cosine", "rabitq4", "cosine", False, True),  # searched with rerank="auto"
    ("rabitq2-l2", "rabitq2", "l2", False, True),
    ("rabitq2-cosine-int32-links", "rabitq2", "cosine", False, False),
    ("sq8-cosine-cells", "sq8", "cosine", False, True, "cells"),  # rows in locality order: ids from the file
    # the same, then rows deleted and added before the save: numbering with a gap (ids.next > count)
    ("sq8-cosine-cells-edited", "sq8", "cosine", False, True, "cells"),
    # rows with a coordinate far outside the trained range: rerank="auto" reads them through
    # their residuals (format 5)
    ("sq8-ip-outliers", "sq8", "ip", False, True),
]
N, NQ, K, EF, RERANK = 3000, 60, 10, 64, 4


def data():
    try:
        x = np.load(os.path.join(DATA, "vectors.npy"), mmap_mode="r")[:N].astype(np.float32)
        q = np.load(os.path.join(DATA, "queries.npy"))[:NQ].astype(np.float32)
    except FileNotFoundError:  # a deterministic stand-in with some cluster structure
        rng = np.random.default_rng(7)
        centres = rng.standard_normal((40, 96)).astype(np.float32)
        x = (centres[rng.integers(0, 40, N)] + 0.4 * rng.standard_normal((N, 96))).astype(np.float32)
        q = (centres[rng.integers(0, 40, NQ)] + 0.4 * rng.standard_normal((NQ, 96))).astype(np.float32)
    return x, q


def outliers(x):
    """A copy of x in which every 50th row has one coordinate 10x the largest |value|: far
    outside the range sq8 trains with a clip of 0.2 % per side."""
    y = x.copy()
    rows = np.arange(0, len(y), 50)
    y[rows, rows % y.shape[1]] = 10 * np.abs(x).max()
    return y


def main(out="web/dist/testdata"):
    os.makedirs(out, exist_ok=True)
    x, q = data()
    q.tofile(os.path.join(out, "queries.f32"))
    expected = {}
    for name, quant, metric, with_ids, compact, *order in CASES:
        ids = (np.arange(len(x), dtype=np.uint64) * 7 + 1000) if with_ids else None
        path = os.path.join(out, f"{name}.qann")
        odd = name.endswith("-outliers")  # a clip no single outlier per dimension moves
        built = quantann.Index.build(outliers(x) if odd else x, quant=quant, metric=metric, M=12, ef_construction=100,
                                     ids=ids, threads=2, seed=1, row_order=order[0] if order else "none",
                                     clip=0.002 if odd else None)
        built.compact_graph = compact
        if name.endswith("-edited"):
            built.delete([3, 1000, len(x) - 1])
            built.add(x[:5] * 0.5 + x[5:10] * 0.5)
        built.save(path)
        index = quantann.open(path)
        rerank = "auto" if quant.startswith("rabitq") else RERANK
        got_ids, got_d = index.search(q, k=K, ef=EF, rerank=rerank)
        graph_ids, graph_d = index.search(q, k=K, ef=EF, rerank=0)
        expected[name] = dict(file=f"{name}.qann", dim=int(x.shape[1]), metric=metric, quant=quant, k=K, ef=EF,
                              rerank=rerank, nq=int(len(q)), ids=got_ids.astype(str).tolist(),
                              distances=got_d.tolist(), graph_ids=graph_ids.astype(str).tolist(),
                              graph_distances=graph_d.tolist(), has_user_ids=index.has_user_ids,
                              next_id=index.next_id, default_rerank=index.default_rerank)
        if quant == "sq8":  # rerank="auto": only the candidates sq8's error bound keeps
            auto_ids, auto_d = index.search(q, k=K, ef=EF, rerank="auto")
            expected[name].update(auto_ids=auto_ids.astype(str).tolist(), auto_distances=auto_d.tolist(),
                                  auto_reads=[st.vectors_read for st in index.last_stats])
    huge_header(os.path.join(out, "huge.qann.header"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    return out



def huge_header(path, n=200_000_000, d=384):
    """The header alone of an sq8 index too big for wasm32 (n x d codes), to test that
    the browser refuses it from the header, before fetching anything."""
    from gguf import GGMLQuantizationType as T
    from gguf import GGUFValueType, GGUFWriter

    from quantann.quantize import pad_dims
    w = GGUFWriter(path, "quantann")
    for key, val in (("format_version", 1), ("dim", d), ("hnsw.M", 16), ("hnsw.M0", 32),
                     ("hnsw.max_level", 0), ("hnsw.ef_construction", 200)):
        w.add_uint32(f"quantann.{key}", val)
    w.add_int32("quantann.hnsw.entry", 0)
    w.add_uint64("quantann.count", n)
    w.add_string("quantann.metric", "cosine")
    w.add_string("quantann.quant", "sq8")
    w.add_string("quantann.vectors.dtype", "f32")
    w.add_uint32("quantann.vectors.crc32", 0)
    names = ["quant.vmin", "quant.scale", "codes", "graph.level", "graph.links0"]
    w.add_array("quantann.checksums.tensors", names)  # the header alone is read: CRCs unused
    w.add_key_value("quantann.checksums.crc32", [0] * len(names), GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)
    dp = pad_dims(d)
    for name, shape, dt, raw in (("quant.vmin", (dp,), np.float32, T.F32), ("quant.scale", (dp,), np.float32, T.F32),
                                 ("codes", (n, dp), np.int8, T.I8), ("graph.level", (n,), np.int8, T.I8),
                                 ("graph.links0", (n, 32), np.int32, T.I32), ("vectors", (n, d), np.float32, T.F32)):
        w.add_tensor_info(name, shape, np.dtype(dt), int(np.prod(shape)) * np.dtype(dt).itemsize, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
