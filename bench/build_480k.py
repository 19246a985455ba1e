"""Generates the 480K x 768 scenario and builds its quantann indexes (cached)."""
import sys
import time

from bench.build import quantann_files
from bench.datasets import synthetic

n = int(sys.argv[1]) if len(sys.argv) > 1 else 480_000
t = time.time()
ds = synthetic(n, 768)
print(f"data + truth {time.time() - t:.0f} s", flush=True)
quantann_files(ds, 16, 200, log=lambda m: print(m, flush=True))
print(f"total {time.time() - t:.0f} s", flush=True)
