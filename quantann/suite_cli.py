"""`quantann bench ...`: the benchmark suite of a source checkout, from the product's CLI.

Benchmarks are not part of the installed package (they need peers, datasets and browsers); they
live in the repository's bench/ beside this package. quantann.cli calls register(subparsers);
the arguments go unchanged to `python -m bench.run` (see its --help), run from the checkout.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cmd_bench(a) -> int:
    if not os.path.exists(os.path.join(REPO, "bench", "run.py")):
        raise ValueError("the benchmarks ship with the source checkout, not the installed package: clone the "
                         "repository and run `quantann bench` (or `python -m bench.run`) from it")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    return subprocess.call([sys.executable, "-m", "bench.run", *a.args], cwd=REPO, env=env)


def register(subparsers) -> None:
    b = subparsers.add_parser(
        "bench", help="run the benchmark suite of a source checkout (python -m bench.run)", add_help=False,
        prefix_chars="+",  # quantann.cli.main hands every argument to bench.run unparsed
        description="Forwards every argument to `python -m bench.run` in the checkout: e.g. `quantann bench "
                    "--browser --json [--store opfs|idb|http] [--browser-name chromium|firefox]` or `quantann "
                    "bench --browser --generate --json`. `quantann bench --help` prints the suite's options.")
    b.add_argument("args", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_bench)
