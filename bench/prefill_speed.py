"""Prefill speed of the decoder kernel, checkout against checkout: the time to evaluate an
ask-sized prompt (default 215 and 260 tokens: `quantann ask -k 5` evaluates ~215 with the
system block cached, ~260 cold) at 1 and 2 threads, SmolLM2-135M-Instruct Q4_1.

Each (checkout, threads) runs in its own process, pinned as bench/generate_speed.py pins
(1 thread: core 1; 2 threads: cores 0-1); checkouts alternate within each round; a child
times --reps prefills after a warm-up and reports medians of wall and CPU time (CPU time
moves less than wall time on a shared machine). Medians over rounds.

    python bench/prefill_speed.py --against /work/main [--rounds 5] [--tokens 215 260]

A checkout is a directory holding a built `quantann` package (python setup.py
build_ext --inplace); the first is this one.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, os, sys, time
import numpy as np
sys.path.insert(0, os.getcwd())
from quantann.generate import Generator
threads, reps, sizes = int(sys.argv[1]), int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")]
os.sched_setaffinity(0, {1} if threads == 1 else {0, 1})
dec = Generator.open(threads=threads)._dec
ids = np.random.default_rng(0).integers(100, 40000, max(sizes)).astype(np.int32)
dec.eval(ids[:64]); dec.rewind(0)  # weights paged in
out = {}
for n in sizes:
    wall, cpu = [], []
    for _ in range(reps):
        dec.rewind(0)
        t0, c0 = time.perf_counter(), time.process_time()
        dec.eval(ids[:n])
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out[n] = {"wall_ms": 1000 * sorted(wall)[reps // 2], "cpu_ms": 1000 * sorted(cpu)[reps // 2]}
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", nargs="*", default=[], help="other checkouts to time alongside this one")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5, help="prefills per child (median)")
    ap.add_argument("--tokens", type=int, nargs="+", default=[215, 260])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", help="write the raw results here")
    a = ap.parse_args()
    dirs = [ROOT] + [os.path.abspath(d) for d in a.against]
    for d in dirs:
        if not os.path.isdir(os.path.join(d, "quantann")):
            sys.exit(f"error: {d} holds no quantann package")
    raw = {}
    for r in range(a.rounds):
        for t in a.threads:
            for d in (dirs if r % 2 == 0 else dirs[::-1]):
                out = subprocess.run([sys.executable, "-c", CHILD, str(t), str(a.reps), ",".join(map(str, a.tokens))],
                                     cwd=d, capture_output=True, text=True, check=True).stdout
                raw.setdefault(f"{d}|{t}", []).append(json.loads(out))
        print(f"round {r + 1}/{a.rounds} done, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    print(f"prefill of random-token prompts, SmolLM2-135M-Instruct Q4_1, medians of {a.rounds} rounds x {a.reps} "
          f"(load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print("| checkout | threads | " + " | ".join(f"{n} tokens: ms (tok/s), CPU ms" for n in a.tokens) + " |")
    print("|---|---|" + "---|" * len(a.tokens))
    med = {}
    for key, rs in raw.items():
        d, t = key.split("|")
        cells = []
        for n in a.tokens:
            w = statistics.median(x[str(n)]["wall_ms"] for x in rs)
            c = statistics.median(x[str(n)]["cpu_ms"] for x in rs)
            med[d, int(t), n] = (w, c)
            cells.append(f"{w:.0f} ({n / w * 1000:.0f}), {c:.0f}")
        print(f"| {os.path.relpath(d, os.path.dirname(ROOT))} | {t} | " + " | ".join(cells) + " |")
    for d in dirs[1:]:
        for t in a.threads:
            print(f"{t} thread(s): this checkout / {os.path.basename(d)}: " + ", ".join(
                f"{n} tokens {med[d, t, n][0] / med[ROOT, t, n][0]:.2f}x faster "
                f"({med[d, t, n][1] / med[ROOT, t, n][1]:.2f}x less CPU)" for n in a.tokens))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
