"""`python -m bench.run --browser [--browser-name chromium|firefox] [--store opfs|idb|http]`:
the index in a headless browser (wasm kernel, vectors in OPFS by default, or IndexedDB, or
HTTP Range reads) against native Python on the same index and queries, in the same run.

Serves the repository (the page bench/web/bench.html imports ../../web/src/) and the
benchmark's index files from 127.0.0.1, opens the page with Debian's chromium or
firefox-esr (web/tools/run-page.js, npm puppeteer-core), and computes recall and agreement with
native from the ids the page returns. The lazy baseline runs in its own wasm module,
bench/web/dist/lazy.wasm (bench/lazy/build-wasm.sh), built here when missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from quantann.pageserver import Server

from ..datasets import REPO

HERE = os.path.dirname(os.path.abspath(__file__))


def _recall(rows, truth, k):
    rows = np.asarray(rows)[:, :k]
    return float(np.mean([len(np.intersect1d(r, t[:k])) / k for r, t in zip(rows, truth)]))


def timed(idx, queries, k, ef, rerank, pause_s=0.0):
    """One query per call: (latencies in ms, ids (nq, k) int64). pause_s: a sleep between
    queries (not timed), as when queries come one at a time."""
    lat, ids = [], []
    for q in queries:
        t0 = time.perf_counter()
        i, _ = idx.search(q, k=k, ef=ef, rerank=rerank)
        lat.append((time.perf_counter() - t0) * 1e3)
        ids.append(i[0])
        if pause_s:
            time.sleep(pause_s)
    return np.array(lat), np.array(ids, np.int64)


def _native(path, queries, k, ef, rerank, pause_s=0.0):
    import quantann
    idx = quantann.open(path)
    idx.search(queries[:50], k=k, ef=ef, rerank=rerank)  # warm-up (page cache, searcher)
    lat, ids = timed(idx, queries, k, ef, rerank, pause_s)
    return ids, lat


def _summary(reps: list, key: str) -> dict:
    v = sorted(r[key] for r in reps)
    return {"median": v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2,
            "min": v[0], "max": v[-1], "all": [r[key] for r in reps]}


def run(data=None, subset=None, nq=1000, quant="sq8", k=10, ef=64, rerank=4, M=16, efc=200, timeout=1800,
        chunk=None, idb_cache=0, stores=None, reps=1, isolated=True, lazy=True, k100=True,
        store="opfs", browser="chromium", row_order="cells", max_gap=None,
        log=lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    """chunk: rows per IndexedDB record (default: the store's IDB_CHUNK_ROWS); idb_cache: bytes
    of the IndexedDB store's record cache (0: none). stores: e.g. ("indexeddb", "opfs",
    "opfs-async"): the k=10 queries through each, `reps` times, interleaved (out["stores"]:
    per store, the median and min-max over the repeats, ids equal to native). isolated: serve
    with COOP/COEP (cross-origin isolated page: timers at 5 us in Chromium, 20 us in Firefox,
    instead of 100 us / 1 ms; the page reports what it measured, timer_resolution_ms). store:
    where the k=10 / k=100 / lazy runs read the vectors ('opfs', 'idb', 'http'); browser:
    'chromium' or 'firefox'. row_order: the index's rows in a locality order ('cells', the
    same graph relabelled: bench/build.py ordered_file) or as built ('none'); native runs
    both, interleaved, to show what the order does to native speed. max_gap (store opfs):
    rows read across instead of one more read call (default: measured when the store opens)."""
    if store not in ("opfs", "idb", "http"):
        raise ValueError(f"unknown store {store!r}: use opfs, idb or http")
    if browser not in ("chromium", "firefox"):
        raise ValueError(f"unknown browser {browser!r}: use chromium or firefox")
    from ..build import ordered_file, quantann_files
    from ..datasets import MINILM, minilm
    ds = minilm(subset, data or MINILM, queries=nq)
    paths = quantann_files(ds, M, efc, quants=(quant, "none"), log=log)
    built = paths[quant]
    paths[quant] = ordered_file(built, row_order, log=log)
    # the lazy baseline reads the same store: its float index gets the same order (the
    # order is a function of the vectors and the seed, so the same permutation)
    paths["none"] = ordered_file(paths["none"], row_order, log=log) if lazy else paths["none"]
    queries = np.ascontiguousarray(ds.queries, np.float32)
    log(f"[browser] native {quant} on {ds.name} ...")
    # the ordered rows and the rows as built, interleaved, two passes each (latencies pooled)
    native_ids, native_lat = _native(paths[quant], queries, k, ef, rerank)
    asbuilt_ids, asbuilt_lat = _native(built, queries, k, ef, rerank)
    native_lat = np.concatenate([native_lat, _native(paths[quant], queries, k, ef, rerank)[1]])
    asbuilt_lat = np.concatenate([asbuilt_lat, _native(built, queries, k, ef, rerank)[1]])
    # the same calls with a 1 ms sleep between queries (the page's paced pass does the same)
    native_paced = _native(paths[quant], queries, k, ef, rerank, pause_s=0.001)[1] if store == "opfs" else None
    web = os.path.join(REPO, "web")
    if not os.path.exists(os.path.join(web, "dist", "quantann.wasm")):
        subprocess.run([os.path.join(web, "build-wasm.sh")], check=True)
    if lazy and not os.path.exists(os.path.join(HERE, "dist", "lazy.wasm")):
        subprocess.run([os.path.join(REPO, "bench", "lazy", "build-wasm.sh")], check=True)
    tmp = tempfile.mkdtemp(prefix="quantann-browser-")
    try:
        queries.tofile(os.path.join(tmp, "queries.f32"))
        cache = os.path.dirname(paths[quant])
        with Server({"/": REPO, "/queries": tmp, "/cache": cache}, isolated=isolated) as s:
            url = (f"{s.url}/bench/web/bench.html?index=/cache/{os.path.basename(paths[quant])}"
                   + (f"&lazy=/cache/{os.path.basename(paths['none'])}" if lazy else "")
                   + f"&queries=/queries/queries.f32"
                   f"&nq={len(queries)}&ef={ef}&rerank={rerank}&cache={int(idb_cache)}&store={store}"
                   + (f"&chunk={int(chunk)}" if chunk else "")
                   + (f"&stores={','.join(stores)}&reps={int(reps)}" if stores else "")
                   + ("" if k100 else "&k100=0")
                   + (f"&gap={int(max_gap)}" if max_gap is not None else ""))
            log(f"[browser] {browser} {url}")
            p = subprocess.run(["node", os.path.join(web, "tools", "run-page.js"), url, "--timeout", str(timeout),
                                "--browser", browser],
                               cwd=web, capture_output=True, text=True, timeout=timeout + 60)
            if p.returncode:
                raise RuntimeError(f"browser run failed: {p.stderr[-2000:]}")
            page = json.loads(p.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "error" in page:
        raise RuntimeError(f"the benchmark page failed: {page['error']}")
    rows10 = np.array(page["k10"]["rows"])
    rows100 = np.array(page["k100"]["rows"]) if page.get("k100") else None
    out = {
        "dataset": ds.name, "n": ds.n, "dim": ds.dim, "queries": len(queries), "quant": quant, "store": store,
        "browser": browser,
        "k": k, "ef": ef, "rerank": rerank,
        "recall": _recall(rows10, ds.truth, 10), "recall_at_10": _recall(rows10, ds.truth, 10),
        "recall_at_100": _recall(rows100, ds.truth, 100) if rows100 is not None else None,
        "p50_ms": page["k10"]["p50_ms"], "p95_ms": page["k10"]["p95_ms"], "p99_ms": page["k10"]["p99_ms"],
        "kernel_ms": page["k10"]["kernel_ms"], "store_ms": page["k10"]["store_ms"], "rerank_ms": page["k10"]["rerank_ms"],
        # opfs: p50_ms.. are timed inside the Worker that holds the index (as native's
        # Index.search); the page's round trip (page -> Worker -> page) is timed apart
        "timed_in": "worker" if store == "opfs" else "page",
        "page_p50_ms": page["k10"].get("page_p50_ms", page["k10"]["p50_ms"]),
        "page_p95_ms": page["k10"].get("page_p95_ms", page["k10"]["p95_ms"]),
        "page_p99_ms": page["k10"].get("page_p99_ms", page["k10"]["p99_ms"]),
        "kernel_p50_ms": page["k10"].get("kernel_p50_ms"), "kernel_p99_ms": page["k10"].get("kernel_p99_ms"),
        "store_p50_ms": page["k10"].get("store_p50_ms"), "store_p99_ms": page["k10"].get("store_p99_ms"),
        "max_ms": page["k10"].get("max_ms"), "tail": page["k10"].get("tail"), "gap_measure": page.get("gap_measure"),
        "k100_p50_ms": page["k100"]["p50_ms"] if rows100 is not None else None,
        "k100_p99_ms": page["k100"]["p99_ms"] if rows100 is not None else None,
        "native_p50_ms": float(np.percentile(native_lat, 50)), "native_p99_ms": float(np.percentile(native_lat, 99)),
        "p50_over_native": page["k10"]["p50_ms"] / float(np.percentile(native_lat, 50)),
        "p99_over_p50": page["k10"]["p99_ms"] / page["k10"]["p50_ms"],
        # the same tail figure natively, same run: what the machine's load does to a loop of searches
        "native_p99_over_p50": float(np.percentile(native_lat, 99) / np.percentile(native_lat, 50)),
        # paced: 1 ms asleep between queries, in the Worker and natively (a diagnostic of the tail)
        "paced_p50_ms": page["k10"].get("paced_p50_ms"), "paced_p99_ms": page["k10"].get("paced_p99_ms"),
        "native_paced_p50_ms": float(np.percentile(native_paced, 50)) if native_paced is not None else None,
        "native_paced_p99_ms": float(np.percentile(native_paced, 99)) if native_paced is not None else None,
        "native_recall": _recall(native_ids, ds.truth, 10),
        "row_order": row_order, "native_asbuilt_p50_ms": float(np.percentile(asbuilt_lat, 50)),
        "native_asbuilt_recall": _recall(asbuilt_ids, ds.truth, 10),
        "native_ids_match_asbuilt": float(np.mean([np.array_equal(a, b) for a, b in zip(asbuilt_ids, native_ids)])),
        "ranges_per_query": page["k10"].get("ranges_read"), "vectors_per_query": page["k10"].get("vectors_read"),
        "bytes_per_query": page["k10"].get("bytes_read"),
        "max_gap": page["k10"].get("max_gap"), "timer_resolution_ms": page.get("timer_resolution_ms"),
        "ids_match": float(np.mean([np.array_equal(a, b) for a, b in zip(rows10, native_ids)])),
        "wasm_bytes": page["wasm_bytes"], "wasm_memory": page["wasm_memory"], "index_memory": page["index_memory"],
        "user_agent": page["userAgent"], "cross_origin_isolated": page.get("crossOriginIsolated"),
    }
    if "idb_import_s" in page:
        out.update({
            "idb_import_s": page["idb_import_s"], "idb_import_us_per_vector": page["idb_import_us_per_vector"],
            "idb_per_vector_us": page["idb_per_vector_us"],
            "idb_import_speedup": page["idb_per_vector_us"] / page["idb_import_us_per_vector"],
            "idb_import_write_us_per_vector": page["idb_import_write_us_per_vector"],
            "idb_import_fetch_wait_us_per_vector": page["idb_import_fetch_wait_us_per_vector"],
            "idb_write_speedup": page["idb_per_vector_us"] / page["idb_import_write_us_per_vector"],
            "idb_chunk_rows": page["chunk_rows"]})
    if "idb_cache_bytes" in page:
        out.update({"idb_cache_bytes": page["idb_cache_bytes"], "idb_cache_hit_rate": page["idb_cache_hit_rate"]})
    # the import seconds of the chosen store (also under idb_import_s / opfs_import_s)
    out["import_s"] = page.get({"idb": "idb_import_s", "opfs": "opfs_import_s"}.get(store, ""))
    for key in ("opfs_import_s", "opfs_import_us_per_vector", "opfs_import_write_us_per_vector",
                "opfs_import_fetch_wait_us_per_vector"):
        if key in page:
            out[key] = page[key]
    if "opfs_import_us_per_vector" in page and "idb_per_vector_us" in page:
        out["opfs_import_speedup"] = page["idb_per_vector_us"] / page["opfs_import_us_per_vector"]
        out["opfs_write_speedup"] = page["idb_per_vector_us"] / page["opfs_import_write_us_per_vector"]
    if page.get("stores"):
        out["stores"] = {}
        for name, st in page["stores"].items():
            rows = np.array(st["rows"])
            summ = {key: _summary(st["reps"], key) for key in
                    ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "kernel_ms", "kernel_p50_ms", "store_ms",
                     "store_p50_ms", "store_p99_ms", "rerank_ms")}
            if st["reps"][0].get("worker_read_ms") is not None:
                summ["worker_read_ms"] = _summary(st["reps"], "worker_read_ms")
            summ["ids_match"] = float(np.mean([np.array_equal(a, b) for a, b in zip(rows, native_ids)]))
            summ["recall_at_10"] = _recall(rows, ds.truth, 10)
            summ["same_rows_every_rep"] = st["same_rows_as_first_rep"]
            summ["reps"] = len(st["reps"])
            out["stores"][name] = summ
    if "lazy" in page:
        lz = page["lazy"]
        import quantann
        lazy_ids = quantann.open(paths["none"]).ids[np.array(lz["rows"])]  # its rows in the file's order -> ids
        if not np.array_equal(quantann.open(paths["none"]).ids, quantann.open(paths[quant]).ids):
            raise RuntimeError("the lazy baseline's rows are not in the order of the store it reads")
        out.update({"lazy_p50_ms": lz["p50_ms"], "lazy_p95_ms": lz["p95_ms"], "lazy_p99_ms": lz["p99_ms"],
                    "lazy_recall": _recall(lazy_ids, ds.truth[:len(lz["rows"])], 10),
                    "lazy_queries": len(lz["rows"]), "lazy_store_ms": lz["store_ms"],
                    "lazy_memory": page["lazy_memory"], "lazy_cache_vectors": page["lazy_cache_vectors"]})
    return out


def rerank_arg(v):
    """--rerank: 'auto' or a factor (default 4)."""
    if v is None:
        return 4
    if v == "auto":
        return v
    try:
        return int(v)
    except ValueError:
        raise SystemExit(f"error: --rerank must be a number or auto, got {v!r}") from None


def main(args) -> dict:
    """Entry point for `python -m bench.run --browser` (args: .data, .subset, .k, .json, and
    optionally .queries, .quant, .M, .ef_construction)."""
    k = args.k[0] if isinstance(getattr(args, "k", None), (list, tuple)) else (getattr(args, "k", None) or 10)
    r = run(data=getattr(args, "data", None), subset=getattr(args, "subset", None),
            nq=getattr(args, "queries", None) or 1000, quant=getattr(args, "quant", None) or "sq8", k=min(k, 10),
            M=getattr(args, "M", 16) or 16, efc=getattr(args, "ef_construction", 200) or 200,
            store=getattr(args, "store", None) or "opfs", browser=getattr(args, "browser_name", None) or "chromium",
            isolated=not getattr(args, "not_isolated", False), row_order=getattr(args, "row_order", None) or "cells",
            rerank=rerank_arg(getattr(args, "rerank", None)))
    js = getattr(args, "json", None)
    if js:
        text = json.dumps(r)
        print(text)
        if js not in ("-", True) and isinstance(js, str):
            with open(js, "w") as f:
                f.write(text + "\n")
    else:
        lines = [f"browser ({r['browser']}, wasm, store {r['store']}) vs native on {r['dataset']} {r['quant']}:",
                 f"  recall@10 {r['recall_at_10']:.3f}  recall@100 {r['recall_at_100']:.3f}  ids match native {r['ids_match']:.3f}",
                 f"  p50 {r['p50_ms']:.3f} ms  p95 {r['p95_ms']:.3f}  p99 {r['p99_ms']:.3f}, timed in the {r['timed_in']} "
                 f"(page round trip p50 {r['page_p50_ms']:.3f} ms, p99 {r['page_p99_ms']:.3f}); "
                 f"p50 {r['p50_over_native']:.2f}x native, p99 {r['p99_over_p50']:.2f}x p50",
                 f"  (native p50 {r['native_p50_ms']:.3f} ms; "
                 f"timer {r['timer_resolution_ms']} ms, cross-origin isolated {r['cross_origin_isolated']})",
                 f"  rows {r['row_order']}: {r['ranges_per_query']:.1f} reads of {r['vectors_per_query']:.0f} rows per query, "
                 f"{(r['bytes_per_query'] or 0) / 1024:.0f} KiB read with the gaps "
                 f"(max_gap {r['max_gap']}); native p50 rows as built {r['native_asbuilt_p50_ms']:.3f} ms",
                 f"  split: kernel {r['kernel_ms']:.2f} ms, store {r['store_ms']:.2f} ms, rerank {r['rerank_ms']:.3f} ms",
                 f"  wasm {r['wasm_bytes']} bytes, wasm memory {r['wasm_memory'] / 1e6:.1f} MB"]
        if r.get("import_s") is not None:
            lines.append(f"  import into {r['store']}: {r['import_s']:.2f} s")
        if "idb_import_s" in r:
            lines.append(f"  IndexedDB import {r['idb_import_s']:.2f} s ({r['idb_import_us_per_vector']:.1f} us/vector; one record per vector: "
                         f"{r['idb_per_vector_us']:.1f} us/vector, {r['idb_import_speedup']:.1f}x; writes alone "
                         f"{r['idb_import_write_us_per_vector']:.1f} us/vector, {r['idb_write_speedup']:.1f}x)")
        if "lazy_p99_ms" in r:
            lines.append(f"  lazy baseline at 20% memory: recall@10 {r['lazy_recall']:.3f}, p50 {r['lazy_p50_ms']:.2f} ms, p99 {r['lazy_p99_ms']:.2f} ms")
        print("\n".join(lines))
    return r
