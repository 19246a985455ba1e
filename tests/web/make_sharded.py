"""A sharded index of the shared test vectors for the browser runtime, and the native
results on it (web/test/sharded.test.js holds the JS ShardedIndex to them).

    python tests/web/make_sharded.py [OUT_DIR]     (default web/dist/testdata)

Writes OUT_DIR/sharded/s.json + s.shard{0,1,2}.qann and OUT_DIR/sharded/expected.json:
{k, ef, rerank, nq, ids: [[...]], distances: [[...]]}.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import quantann  # noqa: E402
from make_vectors import EF, K, RERANK, data  # noqa: E402
from quantann.shard.build import build_sharded  # noqa: E402
from quantann.shard.runner import LocalRunner  # noqa: E402


def main(out="web/dist/testdata"):
    d = os.path.join(out, "sharded")
    os.makedirs(d, exist_ok=True)
    x, q = data()
    # shards in cells row order: their ids are their own numbering, stored (ids.next), + id_offset
    build_sharded(os.path.join(d, "s.json"), x, 3, LocalRunner(2), M=12, ef_construction=100, seed=1, progress=False,
                  row_order="cells")
    index = quantann.open(os.path.join(d, "s.json"))
    ids, dist = index.search(q, k=K, ef=EF, rerank=RERANK)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(dict(k=K, ef=EF, rerank=RERANK, nq=int(len(q)), dim=int(x.shape[1]), ids=ids.astype(str).tolist(),
                       distances=dist.tolist()), f)


if __name__ == "__main__":
    main(*sys.argv[1:])
