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
        # the product kernel: no benchmark code (the lazy-loading baseline is bench/'s own module)
        sources=sources("kernel/*.c", "kernel/codec/*.c", "kernel/gguf/*.c", "kernel/index/*.c",
                        "kernel/text/*.c", "kernel/py/index_module.c", "kernel/py/file_glue.c",
                        "kernel/py/lexical_glue.c"),
        include_dirs=["kernel", numpy.get_include()],
        extra_compile_args=CFLAGS,
        extra_link_args=["-lpthread"] + (["-fsanitize=address,undefined"] if os.environ.get("QUANTANN_DEBUG") else []),
    ),
]
# The model kernel (encoders, decoder LLMs, their tokenizers): one extension, quantann._model;
# kernel/py/model_module.c creates the module, decoder_glue.c and tokenizer_glue.c add to it.
extensions.append(
    Extension(
        "quantann._model",
        sources=sources("kernel/simd.c", "kernel/gguf/*.c", "kernel/model/*.c", "kernel/model/*/*.c",
                        "kernel/py/model_module.c", "kernel/py/decoder_glue.c", "kernel/py/decoder_mix_glue.c",
                        "kernel/py/tokenizer_glue.c"),
        include_dirs=["kernel", numpy.get_include()],
        extra_compile_args=CFLAGS,
        extra_link_args=["-lpthread"] + (["-fsanitize=address,undefined"] if os.environ.get("QUANTANN_DEBUG") else []),
    )
)

# QUANTANN_EXT=_kernel (or _model) builds just one extension, for quick iteration.
only = os.environ.get("QUANTANN_EXT")
if only:
    extensions = [e for e in extensions if e.name.endswith(only)]

setup(ext_modules=extensions)
