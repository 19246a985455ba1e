"""`quantann build ... --shards N [--ray [ADDRESS]]`: the sharded build from the command line."""
from __future__ import annotations

import sys
import time

import numpy as np


def add_arguments(b) -> None:
    """The sharded build's options of `quantann build`."""
    g = b.add_argument_group("sharded build (OUTPUT is then a manifest, .json, beside one .qann per shard)")
    g.add_argument("--shards", type=int, default=None,
                   help="build N shard indexes with one shared quantizer, searched together by quantann.open(OUTPUT)")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the embedding and shard-build tasks on Ray: a local Ray instance, or the cluster at "
                        "ADDRESS (e.g. ray://head:10001); without it, a local pool of processes")
    g.add_argument("--workers", type=int, default=None, help="processes of the local pool (default: the cores)")
    g.add_argument("--block", type=int, default=512, help="texts per embedding task (default %(default)s)")


def wants_shards(a) -> bool:
    if a.ray is not None and a.shards is None:
        raise SystemExit("error: --ray runs a sharded build: give --shards N too")
    return a.shards is not None


def run(a, load_npy, read_records) -> None:
    from .build import build_sharded, embed_texts, write_texts
    from .runner import make_runner
    if a.shards < 1:
        raise SystemExit(f"error: --shards must be at least 1, got {a.shards}")
    if a.block < 1:
        raise SystemExit(f"error: --block must be at least 1, got {a.block}")
    if a.ids:
        raise SystemExit("error: --ids is not supported with --shards (the global ids are the rows)")
    if not a.output.endswith(".json"):
        raise SystemExit(f"error: a sharded index's output is its manifest: name it .json, not {a.output}")
    is_text = a.vectors.endswith((".jsonl", ".jsonl.gz"))
    texts, fields = read_records(a.texts or a.vectors) if (a.texts or is_text) else (None, None)
    if is_text and not a.model:
        raise SystemExit("error: building from texts needs --model MODEL.gguf to embed them")
    runner = make_runner(None if a.ray == "local" else a.ray, use_ray=a.ray is not None, workers=a.workers)
    threads = a.threads or 1
    say = (lambda m: None) if a.quiet else (lambda m: print(m, file=sys.stderr))
    t0 = time.perf_counter()
    if is_text:
        say(f"embedding {len(texts)} texts with {a.model} in blocks of {a.block} on {runner.name} workers")
        x = embed_texts(texts, a.model, runner, a.block, a.max_tokens, threads, not a.quiet)
        say(f"embedded {len(texts)} texts in {time.perf_counter() - t0:.1f} s "
            f"({len(texts) / (time.perf_counter() - t0):.0f} texts/s)")
    else:
        x = load_npy(a.vectors, "vectors")
        if texts is not None and len(texts) != len(x):
            raise SystemExit(f"error: {a.vectors} has {len(x)} rows but {a.texts} has {len(texts)} texts")
    t1 = time.perf_counter()
    say(f"building {a.shards} {a.quant} {a.metric} shards of {x.shape[0]} x {x.shape[1]} "
        f"(M={a.M}, ef_construction={a.ef_construction}) on {runner.name} workers")
    m = build_sharded(a.output, x if isinstance(x, np.ndarray) else np.asarray(x), a.shards, runner, quant=a.quant,
                      metric=a.metric, M=a.M, ef_construction=a.ef_construction, threads=threads,
                      progress=not a.quiet, row_order=a.row_order)
    if texts is not None:
        write_texts(a.output, texts, a.model, fields)
    say(f"wrote {a.output} and {len(m.shards)} shard files ({', '.join(e.file for e in m.shards)}); "
        f"build {time.perf_counter() - t1:.1f} s")


def info(a, index) -> int:
    """`quantann info MANIFEST`: the manifest and each shard's rows, ids and memory."""
    from ..budget import human
    from ..fileformat import verify_vectors
    m = index.manifest
    mem = index.memory()
    print(f"manifest    {a.index}: {len(m.shards)} shards, next id {m.next_id}")
    print(f"vectors     {len(index)} x {index.dim}, metric {index.metric}, quantizer {index.quant} (one, shared)")
    print(f"memory      {human(mem['total'])} = {mem['total'] / index.float_bytes():.1%} of float32 "
          f"({human(index.float_bytes())})")
    bad = []
    for e, s in zip(m.shards, index.shards):
        ok = verify_vectors(s.file) if a.verify else None
        if ok is False:
            bad.append(e.file)
        ids = f"ids {e.id_offset}..{e.id_offset + e.count - 1}" if e.ids == "rows" else "ids stored"
        print(f"  {e.file:<28} {e.count:>10} rows  {ids:<22} {human(s.memory()['total']):>10}"
              + ("" if ok is None else "  vectors " + ("ok" if ok else "MISMATCH")))
    if bad:
        print(f"error: {', '.join(bad)}: the full vectors do not match their checksum: the file is corrupt",
              file=sys.stderr)
        return 1
    return 0
