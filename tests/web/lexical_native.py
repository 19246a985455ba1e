"""Native answers the lexical index in wasm is compared with (web/test/lexical.test.js), as
JSON on stdout. Reads a JSON request on stdin:
  {"op": "make", "dir", "n", "queries", "k"} -> {"texts": path of a text store of the first n
        demo passages (ids 10·row), "search": per query {"ids", "scores"} of its BM25 top k}
  {"op": "fuse", "a", "b", "k", "wb"}        -> {"ids", "scores"}: kernel/text/fuse.c natively
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
from quantann.text import TextStore  # noqa: E402


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
    elif req["op"] == "fuse":
        ids, sc = _kernel.rrf_fuse(np.array(req["a"], np.uint64), np.array(req["b"], np.uint64), 1.0,
                                   float(req["wb"]), float(LEXICAL["rrf_k"]), req["k"])
        print(json.dumps({"ids": [str(i) for i in np.frombuffer(ids, np.uint64)],
                          "scores": np.frombuffer(sc, np.float64).tolist()}))


if __name__ == "__main__":
    main()
