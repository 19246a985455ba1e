"""The OPFS search target in both browsers, as ratios taken run by run: each run is native
(the same index and queries, just before) then the page (`bench.web.browser.run`, store
opfs, the index in a Worker, each search call timed there), the browsers alternating and
their order swapped every round, so that each ratio compares two measurements under the
same machine load. Prints one line per run and the medians (min-max); --json FILE keeps
every run.

    python -m bench.web.opfs_ratio [--rounds 3] [--queries 1000] [--json FILE]   # ~3-4 min
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .browser import rerank_arg, run

KEYS = ("p50_ms", "p99_ms", "native_p50_ms", "native_p99_ms", "p50_over_native", "p99_over_p50", "native_p99_over_p50", "page_p50_ms",
        "page_p99_ms", "kernel_p50_ms", "store_p50_ms", "store_p99_ms", "ranges_per_query", "bytes_per_query", "max_gap", "recall_at_10",
        "ids_match", "timer_resolution_ms", "paced_p50_ms", "paced_p99_ms", "native_paced_p50_ms", "native_paced_p99_ms")


def _med(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--browsers", default="chromium,firefox")
    ap.add_argument("--json")
    ap.add_argument("--rerank", default="4", help="a factor, or auto (sq8: only the candidates the bound keeps)")
    a = ap.parse_args(argv)
    browsers = a.browsers.split(",")
    runs = []
    for r in range(a.rounds):
        for b in browsers[r % len(browsers):] + browsers[:r % len(browsers)]:
            out = run(nq=a.queries, rerank=rerank_arg(a.rerank), store="opfs", browser=b, lazy=False, k100=False, log=lambda m: None)
            row = {"round": r, "browser": b, "load": os.getloadavg()[0], **{k: out.get(k) for k in KEYS}}
            runs.append(row)
            print(f"round {r} {b:8s} p50 {row['p50_ms']:.3f} ms = {row['p50_over_native']:.2f}x native "
                  f"({row['native_p50_ms']:.3f}), p99 {row['p99_ms']:.3f} = {row['p99_over_p50']:.2f}x p50 (native "
                  f"{row['native_p99_over_p50']:.1f}x); page "
                  f"{row['page_p50_ms']:.3f} / {row['page_p99_ms']:.3f}; kernel p50 {row['kernel_p50_ms']:.3f}, store p50 "
                  f"{row['store_p50_ms']:.3f} ({row['ranges_per_query']:.1f} reads, {(row['bytes_per_query'] or 0) / 1024:.0f} KiB, gap {row['max_gap']}); recall "
                  f"{row['recall_at_10']:.3f}, ids {row['ids_match']:.3f}; paced (1 ms asleep between queries) p50 / p99 "
                  f"{row['paced_p50_ms']:.3f} / {row['paced_p99_ms']:.3f}, native {row['native_paced_p50_ms']:.3f} / "
                  f"{row['native_paced_p99_ms']:.3f}; load {row['load']:.1f}", flush=True)
    summary = {}
    for b in browsers:
        rs = [x for x in runs if x["browser"] == b]
        summary[b] = {k: {"median": _med([x[k] for x in rs]), "min": min(x[k] for x in rs), "max": max(x[k] for x in rs)}
                      for k in ("p50_over_native", "p99_over_p50", "native_p99_over_p50", "p50_ms", "p99_ms", "native_p50_ms", "page_p50_ms", "page_p99_ms")}
        s = summary[b]
        print(f"{b}: p50 / native {s['p50_over_native']['median']:.2f}x ({s['p50_over_native']['min']:.2f}-"
              f"{s['p50_over_native']['max']:.2f}), p99 / p50 {s['p99_over_p50']['median']:.2f}x "
              f"({s['p99_over_p50']['min']:.2f}-{s['p99_over_p50']['max']:.2f}) over {len(rs)} runs")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": runs, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
