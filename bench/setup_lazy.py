"""Builds the lazy-loading baseline's CPython extension, bench/_lazy*.so, from
bench/lazy/{lazy.c,py_module.c} over the index kernel's sources. It is a benchmark
peer, not part of the quantann package (whose setup.py never sees it).

    python bench/setup_lazy.py          # = build_ext --inplace, from anywhere
"""
import glob
import os
import sys

import numpy
from setuptools import Extension, setup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(REPO)  # setuptools wants relative source paths

CFLAGS = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
# the index kernel (graph search, distances, codes), whatever its folder layout
KERNEL = sorted(glob.glob("kernel/*.c") + glob.glob("kernel/codec/*.c") + glob.glob("kernel/index/*.c") + glob.glob("kernel/gguf/*.c"))

if len(sys.argv) == 1:
    sys.argv += ["-q", "build_ext", "--inplace"]
setup(
    name="quantann-bench-lazy",
    # its own build folder: in build/, the package's wheel would pick the module up
    options={"build": {"build_base": "bench/.build"}},
    ext_modules=[Extension(
        "bench._lazy",
        sources=KERNEL + ["bench/lazy/lazy.c", "bench/lazy/py_module.c"],
        include_dirs=["kernel", "bench/lazy", numpy.get_include()],
        extra_compile_args=CFLAGS,
        extra_link_args=["-lpthread"],
    )],
)
