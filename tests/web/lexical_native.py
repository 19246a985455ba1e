"""Native answers the lexical index in wasm is compared with (web/test/lexical.test.js), as
JSON on stdout. Reads a JSON request on stdin:
  {"op": "make", "dir", "n", "queries", "k"} -> {"texts": path of a text store of the first n
        demo passages (ids 10·row), "search": per query {"ids", "scores"} of its BM25 top k}
  {"op": "fuse", "a", "b", "k", "wb"}        -> {"ids", "scores"}: kernel/text/fuse.c natively
  {"op": "vectors", "n"}                     -> {"vectors"}: the first n demo vectors, float32, flat
  {"op": "hybrid", "dir", "n", "queries": [[row, text]], "k"} -> {"index", "results": per query
        {"ids", "rows", "distances"}}: a text index of the first n demo passages and vectors (user
        ids 7·row + 1) and TextIndex.search_ids(vector of row, text, hybrid=True)
  {"op": "hybrid-sharded", ...the same}      -> the same over 3 shards (the sharded build: ids = rows,
        one text store beside the manifest)
"""
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import numpy as np  # noqa: E402

from quantann import _kernel  # noqa: E402
from quantann.constants import LEXICAL  # noqa: E402
from quantann.demo import BUILTIN  # noqa: E402
from quantann import open as quantann_open  # noqa: E402
from quantann.text import TextStore  # noqa: E402


def hybrid(ti, x, req) -> list:
    out = []
    for row, text in req["queries"]:
        ids, dist = ti.search_ids(x[row], text, k=req["k"], hybrid=True)
        out.append({"ids": [str(i) for i in ids], "rows": ti.rows(ids).tolist(), "distances": dist.tolist()})
    return out


def main():
    req = json.load(sys.stdin)
    if req["op"] == "make":
        with gzip.open(BUILTIN / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
            texts = [json.loads(next(f))["text"] for _ in range(req["n"])]
        path = os.path.join(req["dir"], "lex.texts")
        TextStore.write(path, {10 * i: t for i, t in enumerate(texts)}, None)
        st = TextStore(path)
        out = []
        for q in req["queries"]:
            ids, sc = st.lexical_search(q, req["k"])
            out.append({"ids": [str(i) for i in ids], "scores": sc.tolist()})
        print(json.dumps({"texts": path, "search": out}))
    elif req["op"] == "hybrid":
        from quantann.text import TextIndex
        with gzip.open(BUILTIN / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
            texts = [json.loads(next(f))["text"] for _ in range(req["n"])]
        x = np.load(BUILTIN / "vectors.npy")[:req["n"]].astype(np.float32)
        ti = TextIndex.create(None, M=8, ef_construction=64)
        ti.add_texts(texts, vectors=x, ids=7 * np.arange(req["n"], dtype=np.uint64) + 1)
        path = os.path.join(req["dir"], "hybrid.qann")
        ti.save(path)
        ti = TextIndex(None, quantann_open(path), TextStore(path + ".texts"))
        print(json.dumps({"index": path, "results": hybrid(ti, x, req)}))
    elif req["op"] == "hybrid-sharded":
        from quantann.shard.build import build_sharded
        from quantann.shard.runner import LocalRunner
        from quantann.text import TextIndex
        with gzip.open(BUILTIN / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
            texts = [json.loads(next(f))["text"] for _ in range(req["n"])]
        x = np.load(BUILTIN / "vectors.npy")[:req["n"]].astype(np.float32)
        path = os.path.join(req["dir"], "hybrid.json")
        build_sharded(path, x, 3, LocalRunner(1), M=8, ef_construction=64, seed=1, progress=False)
        TextStore.write(path + ".texts", dict(enumerate(texts)), None)
        ti = TextIndex(None, quantann_open(path), TextStore(path + ".texts"))
        print(json.dumps({"index": path, "results": hybrid(ti, x, req)}))
    elif req["op"] == "vectors":
        print(json.dumps({"vectors": np.load(BUILTIN / "vectors.npy")[:req["n"]].astype(np.float32).ravel().tolist()}))
    elif req["op"] == "fuse":
        ids, sc = _kernel.rrf_fuse(np.array(req["a"], np.uint64), np.array(req["b"], np.uint64), 1.0,
                                   float(req["wb"]), float(LEXICAL["rrf_k"]), req["k"])
        print(json.dumps({"ids": [str(i) for i in np.frombuffer(ids, np.uint64)],
                          "scores": np.frombuffer(sc, np.float64).tolist()}))


if __name__ == "__main__":
    main()
