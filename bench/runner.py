"""Timed passes: one query per call, one thread, every config repeated, medians and
spreads; the headline comparisons re-run interleaved (round robin) so that machine noise
hits every contender alike, with a rank test and bootstrap intervals."""
from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import time

import numpy as np

from .datasets import REPO, Dataset


def rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def single_thread():
    """Pins BLAS/OpenMP pools to one thread for the timed part (threadpoolctl, FAISS)."""
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import faiss
        faiss.omp_set_num_threads(1)
    except ImportError:
        pass


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cores": os.cpu_count(), "loadavg": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_total"] = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    vers = {}
    for mod in ("numpy", "hnswlib", "faiss", "usearch", "scipy"):
        try:
            m = __import__(mod)
            vers[mod] = getattr(m, "__version__", "?")
        except ImportError:
            vers[mod] = None
    info["versions"] = vers
    try:
        from quantann import _kernel
        info["simd"] = _kernel.cpu()
    except Exception:
        pass
    try:
        info["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return info


def recall_per_query(found: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    t = truth[:, :k]
    return np.array([len(np.intersect1d(f[:k], tt)) / k for f, tt in zip(found.astype(np.int64), t)])


def timed_pass(m, queries, k, found=None, splits=None):
    """One pass over the queries; per-query latency (s). Untimed per-query hooks (cache
    drops) run before each query."""
    clock = time.perf_counter
    before = getattr(m, "before_query", None)
    lat = np.empty(len(queries))
    # no cyclic-GC pauses inside a timed pass: the suite's own result lists would
    # otherwise charge multi-ms collections to whichever method allocates most
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        _pass(m, queries, k, found, splits, before, lat, clock)
    finally:
        if enabled:
            gc.enable()
    return lat


def _pass(m, queries, k, found, splits, before, lat, clock):
    for i, q in enumerate(queries):
        if before:
            before()
        t0 = clock()
        ids = m.query(q, m.k)
        lat[i] = clock() - t0
        if found is not None:
            found[i, :len(ids)] = ids[:k]
        if splits is not None:
            splits.append(m.split())


def measure_config(m, ds: Dataset, k: int, p: dict, repeats: int, warmup: int = 20) -> dict:
    m.k = k
    m.set(p)
    nq = getattr(m, "max_queries", None) or len(ds.queries)
    q = ds.queries[:nq]
    for i in range(min(warmup, len(q))):
        if hasattr(m, "before_query"):
            m.before_query()
        m.query(q[i], k)
    found = np.full((len(q), k), -1, np.int64)
    splits = []
    passes = [timed_pass(m, q, k, found, splits)]
    for _ in range(repeats - 1):
        passes.append(timed_pass(m, q, k))
    rec = recall_per_query(found, ds.truth[:nq], k)
    rec10 = recall_per_query(found, ds.truth[:nq], 10) if k > 10 else rec
    qps = np.array([len(q) / p_.sum() for p_ in passes])
    pct = {f"p{x}": np.array([np.percentile(p_, x) * 1e3 for p_ in passes]) for x in (50, 95, 99)}
    med = int(np.argsort(qps)[len(qps) // 2])
    row = {
        "method": m.name, "family": m.family, "params": p, "k": k, "queries": len(q),
        "repeats": repeats,
        "recall": float(rec.mean()), "recall_min": float(rec.min()), "recall_std": float(rec.std()),
        "recall10": float(rec10.mean()),
        "qps": float(np.median(qps)), "qps_min": float(qps.min()), "qps_max": float(qps.max()),
        "qps_iqr": [float(np.percentile(qps, 25)), float(np.percentile(qps, 75))],
        "memory_bytes": int(m.memory()), "float_bytes": int(ds.n * ds.dim * 4),
        "build_s": m.build_s, "rss_bytes": rss_bytes(), "loadavg_1m": os.getloadavg()[0], "rss_load_delta": getattr(m, "rss_delta", None),
        "latencies_ms": [round(float(x) * 1e3, 4) for x in passes[med]],
    }
    row["memory_fraction"] = row["memory_bytes"] / row["float_bytes"]
    for name, v in pct.items():
        row[f"{name}_ms"] = float(np.median(v))
        row[f"{name}_ms_range"] = [float(v.min()), float(v.max())]
    if hasattr(m, "memory_breakdown"):
        row["memory_breakdown"] = {a: int(b) for a, b in m.memory_breakdown().items()}
    sp = [s for s in splits if s is not None]
    if sp:
        for attr in ("graph_ms", "read_ms", "rerank_ms", "vectors_read", "bytes_read", "store_reads",
                     "ranges", "distances", "candidates"):
            row[attr] = float(np.mean([getattr(s, attr) for s in sp]))
    else:  # a peer: all its time is the search (graph walk, and refine when it has one)
        row["graph_ms"] = float(np.mean(passes[0]) * 1e3)
        row["read_ms"] = row["rerank_ms"] = 0.0
        row["vectors_read"] = row["bytes_read"] = 0.0
    return row


def load_method(m, ds, log):
    r0 = rss_bytes()
    t0 = time.perf_counter()
    m.load(ds, log=log)
    m.load_s = time.perf_counter() - t0
    m.rss_delta = rss_bytes() - r0


def run_sweep(methods, ds: Dataset, ks, repeats: int, log=print, quick=False) -> list[dict]:
    rows = []
    for m in methods:
        load_method(m, ds, log)
        for k in ks:
            confs = m.sweep(k)
            if quick:
                confs = _thin(confs)
            for p in confs:
                t0 = time.perf_counter()
                row = measure_config(m, ds, k, p, repeats)
                row["dataset"] = ds.name
                rows.append(row)
                log(f"  {m.name:44s} k={k:<3d} {m.label(p):22s} recall {row['recall']:.4f}  "
                    f"QPS {row['qps']:8.0f}  p99 {row['p99_ms']:7.3f} ms  mem {row['memory_fraction']:6.1%}"
                    f"  ({time.perf_counter() - t0:.1f} s)")
    return rows


def _thin(confs):
    keep = [c for c in confs if c.get("ef", 64) in (32, 64, 128, 200, 256) and c.get("rerank", 2) in (0, 1, 2, 4)]
    return keep or confs[:2]


# ---- headline comparisons -------------------------------------------------------------

def best_at(rows, family_or_name, k, min_recall, key="qps"):
    """The fastest row of a method (by name or family) at recall >= min_recall."""
    c = [r for r in rows if r["k"] == k and (r["method"] == family_or_name) and r["recall"] >= min_recall]
    if not c:
        return None
    return max(c, key=lambda r: r[key]) if key == "qps" else min(c, key=lambda r: r[key])


def head_to_head(entries, ds: Dataset, k: int, rounds: int, log=print, seed: int = 0) -> dict:
    """entries: [(method object, params)]. Runs `rounds` round-robin passes; returns per
    entry pooled latencies and per-round QPS."""
    lat = {i: [] for i in range(len(entries))}
    qps = {i: [] for i in range(len(entries))}
    for i, (m, p) in enumerate(entries):
        m.k = k
    for r in range(rounds):
        for i, (m, p) in enumerate(entries):
            m.set(p)
            for j in range(min(20, len(ds.queries))):
                if hasattr(m, "before_query"):
                    m.before_query()
                m.query(ds.queries[j], k)
            l_ = timed_pass(m, ds.queries, k)
            lat[i].append(l_)
            qps[i].append(len(l_) / l_.sum())
    return {"lat": {i: np.concatenate(v) for i, v in lat.items()}, "qps": qps}


def compare(a_lat, b_lat, a_qps, b_qps, seed=0, n_boot=2000) -> dict:
    """a vs b: QPS ratio a/b per round (median, min, max, 95% bootstrap CI over rounds),
    p99 ratio b/a with a bootstrap CI over queries, and a one-sided Mann-Whitney U test
    that a's latencies are smaller."""
    rng = np.random.default_rng(seed)
    ratios = np.array(a_qps) / np.array(b_qps)
    boot = [np.median(rng.choice(ratios, len(ratios))) for _ in range(n_boot)]
    out = {"qps_ratio": float(np.median(ratios)), "qps_ratio_min": float(ratios.min()),
           "qps_ratio_max": float(ratios.max()),
           "qps_ratio_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}
    pa, pb = np.percentile(a_lat, 99), np.percentile(b_lat, 99)
    bp = []
    for _ in range(400):
        bp.append(np.percentile(rng.choice(b_lat, len(b_lat)), 99) / np.percentile(rng.choice(a_lat, len(a_lat)), 99))
    out.update({"p99_a_ms": float(pa * 1e3), "p99_b_ms": float(pb * 1e3), "p99_ratio_b_over_a": float(pb / pa),
                "p99_ratio_ci95": [float(np.percentile(bp, 2.5)), float(np.percentile(bp, 97.5))]})
    try:
        from scipy.stats import mannwhitneyu
        u = mannwhitneyu(a_lat, b_lat, alternative="less")
        out["mannwhitney_p_a_faster"] = float(u.pvalue)
        out["prob_a_faster"] = float(1.0 - u.statistic / (len(a_lat) * len(b_lat)))  # U counts pairs with a > b
    except ImportError:
        pass
    return out


def save(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, path)
