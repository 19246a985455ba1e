"""Builds the C kernel as CPython extensions.

The kernel sources under kernel/ are shared with the wasm32 build (web/build-wasm.sh);
only kernel/py/ holds CPython glue. SIMD variants are chosen at run time
(__builtin_cpu_supports), so the wheel runs on any x86-64 and uses AVX2 where present.
"""
import glob
import os

import numpy
from setuptools import Extension, setup

CFLAGS = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
if os.environ.get("QUANTANN_DEBUG"):
    CFLAGS = ["-O0", "-g", "-std=c11", "-Wall", "-fsanitize=address,undefined"]


def sources(*patterns):
    return sorted(f for p in patterns for f in glob.glob(p))


extensions = [
    Extension(
        "quantann._kernel",
        sources=sources("kernel/*.c", "kernel/py/index_module.c"),
        include_dirs=["kernel", numpy.get_include()],
        extra_compile_args=CFLAGS,
        extra_link_args=["-lpthread"] + (["-fsanitize=address,undefined"] if os.environ.get("QUANTANN_DEBUG") else []),
    ),
]
# Further CPython glue files kernel/py/<name>_module.c become quantann._<name>, over the
# same kernel sources (e.g. the lazy-loading baseline used by the benchmarks).
for glue in sources("kernel/py/*_module.c"):
    name = os.path.basename(glue)[: -len("_module.c")]
    if name in ("index", "model"):
        continue
    extensions.append(
        Extension(
            f"quantann._{name}",
            sources=sources("kernel/*.c") + [glue],
            include_dirs=["kernel", numpy.get_include()],
            extra_compile_args=CFLAGS,
            extra_link_args=["-lpthread"],
        )
    )
# Decoder files under kernel/model/ that the encoder extension does not use (helper F).
DECODER_ONLY = ("kernel/model/ops_decoder.c", "kernel/model/sample.c")
if glob.glob("kernel/py/model_module.c"):
    extensions.append(
        Extension(
            "quantann._model",
            sources=[f for f in sources("kernel/gguf/*.c", "kernel/model/*.c", "kernel/py/model_module.c")
                     if f not in DECODER_ONLY],
            include_dirs=["kernel", numpy.get_include()],
            extra_compile_args=CFLAGS,
            extra_link_args=["-lpthread"],
        )
    )

# The decoder (text generation): its own extension over the GGUF reader, the types table
# and the decoder ops (helper F; the lead may fold it into quantann._model).
if glob.glob("kernel/py/decoder_glue.c"):
    extensions.append(
        Extension(
            "quantann._decoder",
            sources=sources("kernel/gguf/*.c", "kernel/model/threads.c", "kernel/model/quant.c",
                            "kernel/model/types/*.c", "kernel/model/ops_decoder.c", "kernel/model/sample.c",
                            "kernel/model/arch/llama.c", "kernel/py/decoder_glue.c"),
            include_dirs=["kernel", numpy.get_include()],
            extra_compile_args=CFLAGS,
            extra_link_args=["-lpthread"],
        )
    )

# QUANTANN_EXT=_kernel (or _model) builds just one extension, for quick iteration.
only = os.environ.get("QUANTANN_EXT")
if only:
    extensions = [e for e in extensions if e.name.endswith(only)]

setup(ext_modules=extensions)
