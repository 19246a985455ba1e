"""The benchmark suite from the command line (from the repository root):

    python -m bench.run --quick --subset 10000           # a minute: iterate on a change
    python -m bench.run --k 10 100                       # minilm-100k, the full sweep
    python -m bench.run --scenario 480k                  # generated 480K x 768 at scale
    python -m bench.run report                           # tables + plots from bench/results
    python -m bench.run --browser                        # headless Chromium (bench/web/browser.py)
    python -m bench.run --browser --browser-name firefox --store idb   # or Firefox; opfs (default) | idb | http
    python -m bench.run --browser --generate             # SmolLM2 + MiniLM in the page vs native and wllama

`python bench/run.py ...` works too. The lazy-loading baseline needs its extension:
`python bench/setup_lazy.py` (bench/_lazy*.so).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "bench"

from bench.datasets import MINILM, REPO  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run",
                                description="benchmark quantann against its peers (see BENCHMARKS.md)")
    p.add_argument("action", nargs="?", default="run", choices=("run", "report"),
                   help="run the suite (default) or rebuild tables and plots from saved JSON")
    p.add_argument("--data", default=MINILM if os.path.isdir(MINILM) else None,
                   help="dataset directory with vectors.npy and queries.npy (default minilm-100k)")
    p.add_argument("--subset", type=int, help="use the first N base vectors")
    p.add_argument("--scenario", choices=("480k", "200k", "100k-768"),
                   help="the generated on-device scenario instead of --data")
    p.add_argument("--k", type=int, nargs="+", default=[10, 100])
    p.add_argument("--repeats", type=int, default=5, help="timed passes per config (>= 5 for reports)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the headline comparisons")
    p.add_argument("--queries", type=int, help="use the first N queries")
    p.add_argument("--cold-queries", type=int, default=300,
                   help="queries for the cold-cache rows (each query drops the page cache)")
    p.add_argument("--methods", nargs="+", help="only methods whose name contains one of these")
    p.add_argument("--no-cold", action="store_true", help="skip the cold (page cache dropped) rows")
    p.add_argument("--fetch-latency-ms", type=float, default=0.0,
                   help="add rows with this simulated latency per batched store read (labelled)")
    p.add_argument("-M", type=int, default=16)
    p.add_argument("--small-M", type=int, default=12,
                   help="also run quantann sq4 with this M (to fit 20%% memory); 0 to skip")
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--lean", action="store_true",
                   help="shorter sweeps (ef 16-256 / 128-512, rerank 1,2,4), cold rows at k=10 only")
    p.add_argument("--quick", action="store_true", help="fewer configs, 2 repeats, 200 queries")
    p.add_argument("--json", nargs="?", const="-",
                   help="write the raw results to this file (default bench/results/<dataset>.json); "
                        "--json alone also prints them as one JSON object on stdout")
    p.add_argument("--out", default=RESULTS, help="results directory (JSON, tables, plots)")
    p.add_argument("--browser", action="store_true", help="run the browser benchmark (bench/web/browser.py)")
    p.add_argument("--browser-name", choices=("chromium", "firefox"), default="chromium",
                   help="with --browser: Debian's chromium or firefox-esr")
    p.add_argument("--store", choices=("opfs", "idb", "http"), default="opfs",
                   help="with --browser: where the page reads the vectors (default OPFS)")
    p.add_argument("--row-order", choices=("cells", "none"), default="cells",
                   help="with --browser: the index's rows in a locality order (default) or as built")
    p.add_argument("--rerank", default="4",
                   help="with --browser: candidates per result read from the store: a factor, or auto "
                        "(sq8: only those the codes' error bound cannot rule out) (default %(default)s)")
    p.add_argument("--generate", action="store_true",
                   help="with --browser: the models instead of search (web/tools/model-bench.js): SmolLM2 "
                        "generation and a MiniLM query embedding in the page against native and wllama, one JSON object")
    p.add_argument("--tokens", type=int, default=32, help="with --browser --generate: tokens generated per prompt")
    p.add_argument("--not-isolated", action="store_true",
                   help="with --browser: serve without COOP/COEP (coarser page timers)")
    return p


def main(argv=None) -> None:
    a = make_parser().parse_args(argv)
    if a.browser and a.generate:
        sys.exit(generate_in_browser(a))
    if a.browser:
        from .web import browser
        return browser.main(a)
    if a.action == "report":
        from .report import write_report
        write_report(a.out)
        return
    run(a)


def generate_in_browser(a) -> int:
    """Runs the page-side model benchmark with node (it drives the browser and native itself)."""
    import shutil
    import subprocess
    if not shutil.which("node"):
        sys.exit("error: --browser --generate needs node (and `npm ci` in web/): see web/README.md")
    env = dict(os.environ, PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    cmd = ["node", "tools/model-bench.js", "--browser-name", a.browser_name, "--tokens", str(a.tokens)]
    return subprocess.call(cmd, cwd=os.path.join(REPO, "web"), env=env)


def suite(a, ds):
    from .peers import BruteForce, Faiss, Hnswlib, Lazy, Quantann, Usearch
    M, efc = a.M, a.ef_construction
    big = ds.n > 200_000
    cold_q = min(a.cold_queries, len(ds.queries))
    methods = [Quantann("sq8", M, efc), Quantann("sq4", M, efc)]
    if not big:
        methods.append(Quantann("none", M, efc))
    cold_efs = {10: (32, 64, 128), 100: () if a.lean else (128, 256)}
    if not a.no_cold:
        for q in ("sq8", "sq4"):
            m = Quantann(q, M, efc, cold=True, reranks=(2, 4), efs=cold_efs)
            m.max_queries = cold_q
            methods.append(m)
    if not big:
        methods += [Hnswlib(M, efc), Faiss("flat", False, M, efc), Faiss("sq8", False, M, efc),
                    Faiss("sq8", True, M, efc), Faiss("sq4", False, M, efc), Faiss("sq4", True, M, efc),
                    Usearch(M, efc), BruteForce()]
        for f in (1.0, 0.5, 0.2, 0.1):
            methods.append(Lazy(cache_fraction=f, M=M, efc=efc))
        # at 20% memory: quantann sq4 needs a smaller graph (M=12, labelled) to fit
        if a.small_M:
            methods.append(Quantann("sq4", a.small_M, efc, reranks=(2, 4)))
            if not a.no_cold:
                m = Quantann("sq4", a.small_M, efc, cold=True, reranks=(2, 4), efs=cold_efs)
                m.max_queries = cold_q
                methods.append(m)
        methods.append(Lazy(memory_fraction=0.20, M=M, efc=efc, efs=(32, 64, 128)))
        if not a.no_cold:
            m = Lazy(memory_fraction=0.20, M=M, efc=efc, cold=True, efs={10: (64,)})
            m.max_queries = cold_q
            methods.append(m)
    # the lazy baseline at quantann's own memory fractions (filled in once sq4/sq8 are loaded)
    for q in ("sq4", "sq8"):
        methods.append(("lazy-matched", q, False))
        if not a.no_cold:
            methods.append(("lazy-matched", q, True))
    if a.fetch_latency_ms:
        methods.append(Quantann("sq4", M, efc, fetch_latency_ms=a.fetch_latency_ms, reranks=(2, 4)))
        methods.append(("lazy-matched-lat", "sq4", False))
    return methods


def run(a) -> None:
    from . import datasets
    from .peers import Lazy
    from .runner import machine, run_sweep, save, single_thread
    t_start = time.time()
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if a.scenario:
        n = {"480k": 480_000, "200k": 200_000, "100k-768": 100_000}[a.scenario]
        if a.subset:
            n = a.subset
        ds = datasets.synthetic(n, 768, nq=a.queries or 1000)
    else:
        if not a.data:
            raise SystemExit("error: no dataset: pass --data DIR or --scenario 480k")
        ds = datasets.minilm(a.subset, a.data, a.queries)
    if a.quick:
        a.repeats = min(a.repeats, 2)
        a.rounds = min(a.rounds, 2)
        a.cold_queries = min(a.cold_queries, 100)
        if len(ds.queries) > 200:
            ds.queries, ds.truth = ds.queries[:200], ds.truth[:200]
    if a.lean:
        from . import peers
        peers.LEAN["on"] = True
    single_thread()
    from .runner import machine as _machine
    machine_start = _machine()
    log(f"[bench] {ds.name}: {ds.n} x {ds.dim}, {len(ds.queries)} queries, k={a.k}, repeats={a.repeats}")
    methods = suite(a, ds)
    if a.methods:
        methods = [m for m in methods if any(s in (m.name if not isinstance(m, tuple) else "lazy") for s in a.methods)]
    rows = []
    loaded = {}
    path = (a.json if a.json not in (None, "-")
            else os.path.join(a.out, f"{ds.name}{'-quick' if a.quick else ''}.json"))
    for m in methods:
        if isinstance(m, tuple):  # lazy at quantann's memory fraction
            _, q, cold = m[:3]
            ref = loaded.get(f"quantann {q}")
            if ref is None:
                continue
            frac = ref.memory() / (ds.n * ds.dim * 4)
            lat = a.fetch_latency_ms if m[0] == "lazy-matched-lat" else 0.0
            m = Lazy(memory_fraction=frac, M=a.M, efc=a.ef_construction, cold=cold, fetch_latency_ms=lat,
                     efs={10: (64,)} if cold or lat or ds.n > 200_000 else None)
            m.name = f"lazy float HNSW, memory = quantann {q} ({frac:.1%})" + (" cold" if cold else "")
            if lat:
                m.name += f" +{lat:g}ms/fetch (simulated)"
            if cold:
                m.max_queries = min(a.cold_queries, len(ds.queries))
        rows += run_sweep([m], ds, a.k, a.repeats, log=log, quick=a.quick)
        loaded[m.name] = m
        save(path + ".partial", {"dataset": ds.name, "rows": rows})  # a checkpoint of a long run
    headline = {}
    if 10 in a.k and a.rounds:
        headline = headlines(rows, loaded, ds, a, log)
    payload = {"dataset": {"name": ds.name, "n": ds.n, "dim": ds.dim, "queries": len(ds.queries),
                           "metric": ds.metric, "note": ds.note},
               "command": "python -m bench.run " + " ".join(sys.argv[1:]),
               "machine": machine(), "machine_at_start": machine_start, "M": a.M, "ef_construction": a.ef_construction,
               "repeats": a.repeats, "rounds": a.rounds, "quick": a.quick,
               "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t_start)),
               "elapsed_s": time.time() - t_start, "rows": rows, "headline": headline}
    save(path, payload)
    if os.path.exists(path + ".partial"):
        os.remove(path + ".partial")
    log(f"[bench] wrote {path} ({len(rows)} rows) in {time.time() - t_start:.0f} s")
    if a.json == "-":
        print(json.dumps(payload))


def headlines(rows, loaded, ds, a, log) -> dict:
    """The comparisons the targets are about, re-run interleaved for `rounds` rounds."""
    from .runner import best_at, compare, head_to_head
    out = {}
    qa_names = [n for n in loaded if n in ("quantann sq8", "quantann sq4", "quantann none")]

    def best_quantann(thr):
        c = [best_at(rows, n, 10, thr) for n in qa_names]
        c = [r for r in c if r]
        return max(c, key=lambda r: r["qps"]) if c else None

    def duel(tag, ra, rb, note=""):
        if not ra or not rb:
            out[tag] = {"missing": True, "a": ra and ra["method"], "b": rb and rb["method"]}
            log(f"[headline] {tag}: a contender has no config at this recall")
            return
        ma, mb = loaded[ra["method"]], loaded[rb["method"]]
        res = head_to_head([(ma, ra["params"]), (mb, rb["params"])], ds, 10, a.rounds, log)
        c = compare(res["lat"][0], res["lat"][1], res["qps"][0], res["qps"][1])
        c.update({"a": ra["method"], "a_params": ra["params"], "a_recall": ra["recall"],
                  "a_memory_fraction": ra["memory_fraction"], "a_memory_bytes": ra["memory_bytes"],
                  "b": rb["method"], "b_params": rb["params"], "b_recall": rb["recall"],
                  "b_memory_fraction": rb["memory_fraction"], "b_memory_bytes": rb["memory_bytes"],
                  "memory_ratio_a_over_b": ra["memory_bytes"] / rb["memory_bytes"],
                  "a_qps_rounds": res["qps"][0], "b_qps_rounds": res["qps"][1], "note": note,
                  "queries": int(len(res["lat"][0]) / a.rounds), "rounds": a.rounds})
        out[tag] = c
        log(f"[headline] {tag}: {ra['method']} {ra['params']} vs {rb['method']} {rb['params']}: "
            f"QPS ratio {c['qps_ratio']:.2f} [{c['qps_ratio_ci95'][0]:.2f}, {c['qps_ratio_ci95'][1]:.2f}], "
            f"p99 ratio {c['p99_ratio_b_over_a']:.1f}")

    duel("recall95_vs_hnswlib", best_quantann(0.95), best_at(rows, "hnswlib float32 (RAM)", 10, 0.95))
    duel("recall99_vs_faiss_sq8_refine", best_quantann(0.99),
         best_at(rows, "FAISS HNSWSQ8 + RefineFlat", 10, 0.99))
    for cold in (False, True):
        sfx = " cold" if cold else ""
        lz = [r for r in rows if r["method"] == "lazy float HNSW, memory 20%" + sfx and r["k"] == 10
              and r["params"].get("ef") == 64]
        qn = f"quantann sq4{sfx} M={a.small_M}"
        if lz and qn in loaded:
            lrow = lz[0]
            c = [r for r in rows if r["method"] == qn and r["k"] == 10 and r["recall"] >= lrow["recall"] - 1e-9]
            qrow = min(c, key=lambda r: r["p99_ms"]) if c else None
            with _queries(ds, a.cold_queries if cold else None):
                duel("at20pct_vs_lazy" + sfx.replace(" ", "_"), qrow, lrow,
                     note=f"quantann sq4 M={a.small_M} (fits 20%) vs the lazy baseline at 20% memory; "
                          "quantann's lowest-p99 config at recall >= the lazy baseline's")
    for cold in (False, True):
        sfx = " cold" if cold else ""
        lazy_name = next((n for n in loaded if n.startswith("lazy float HNSW, memory = quantann sq4")
                          and n.endswith(sfx) and (cold or not n.endswith("cold"))), None)
        if not lazy_name:
            continue
        lz = [r for r in rows if r["method"] == lazy_name and r["k"] == 10 and r["params"].get("ef") == 64]
        if not lz:
            continue
        lrow = lz[0]
        qrow = best_at(rows, "quantann sq4" + sfx, 10, lrow["recall"] - 1e-9, key="p99_ms")
        with _queries(ds, a.cold_queries if cold else None):
            duel("memory_matched_vs_lazy" + sfx.replace(" ", "_"), qrow, lrow,
                 note="same memory fraction; quantann's fastest config at recall >= the lazy baseline's")
    return out


class _queries:
    """Temporarily limits the dataset to its first n queries (the cold rows' subset)."""

    def __init__(self, ds, n):
        self.ds, self.n = ds, n

    def __enter__(self):
        self.saved = self.ds.queries, self.ds.truth
        if self.n:
            self.ds.queries, self.ds.truth = self.ds.queries[:self.n], self.ds.truth[:self.n]

    def __exit__(self, *exc):
        self.ds.queries, self.ds.truth = self.saved


if __name__ == "__main__":
    main()
