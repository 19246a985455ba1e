"""The decoder's rows of the types table (Q4_1 weights, Q8_1 activations; Q8_0 as the
tied embedding): to_float against the gguf package, the SIMD dot and the 2x4 tile held to
the scalar reference over many rows, the activation quantizer's SIMD held to its scalar."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from quantann import _decoder

SCALAR, BEST = 0, 3


@pytest.fixture(autouse=True)
def best_simd():
    yield
    _decoder.set_simd(BEST)


def rows(n_rows, n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n)).astype(np.float32) * scale
    x[:, :7] *= 30  # outliers inside some blocks
    return x


@pytest.mark.parametrize("t", [T.Q4_1, T.Q8_0])
def test_to_float_matches_gguf(t):
    q = quantize(rows(64, 576, 1), t)
    for r in q:
        got = _decoder.type_op(int(t), "to_float", r.tobytes())
        np.testing.assert_array_equal(got, dequantize(r, t).reshape(-1))


def act(t, x):
    return _decoder.type_op(int(t), "quantize_act", x.astype(np.float32).tobytes())


def test_q8_1_activations_simd_equal_scalar_and_carry_their_sum():
    x = rows(200, 1536, 2)
    for r in x:
        _decoder.set_simd(SCALAR)
        ref = act(T.Q4_1, r)
        _decoder.set_simd(BEST)
        assert act(T.Q4_1, r) == ref
    blocks = np.frombuffer(ref, dtype=np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)]))
    d = blocks["d"].astype(np.float32)
    deq = (d[:, None] * blocks["qs"]).reshape(-1)
    assert np.all(np.abs(deq - x[-1]) <= np.repeat(d, 32) * 0.6 + 1e-6)  # q rounded with 1/d before d is stored as fp16
    s = blocks["qs"].astype(np.int32).sum(1) * d  # stored from the unrounded d, in fp16
    np.testing.assert_allclose(blocks["s"].astype(np.float32), s, rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("t,n", [(T.Q4_1, 576), (T.Q4_1, 1536), (T.Q4_1, 32), (T.Q8_0, 576)])
def test_vec_dot_simd_matches_reference_and_float(t, n):
    w = quantize(rows(100, n, 3), t)
    a = rows(100, n, 4, scale=0.5)
    for i in range(len(w)):
        ab = act(t, a[i])
        _decoder.set_simd(SCALAR)
        ref = _decoder.type_op(int(t), "dot_ref", w[i].tobytes(), ab)
        _decoder.set_simd(BEST)
        got = _decoder.type_op(int(t), "dot", w[i].tobytes(), ab)
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-3)
        assert ref == pytest.approx(numpy_dot(t, w[i], ab), rel=1e-4, abs=1e-3)


Q8 = np.dtype([("d", "<f2"), ("qs", "i1", 32)])
Q8_1 = np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)])
Q4_1 = np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)])


def numpy_dot(t, w, a):
    """ggml's definition in numpy: integer dot per block times the scales, plus m * s (Q4_1)."""
    if t == T.Q8_0:
        wb, ab = np.frombuffer(w.tobytes(), Q8), np.frombuffer(a, Q8)
        return float((wb["d"].astype(np.float64) * ab["d"] * (wb["qs"].astype(np.int64) * ab["qs"]).sum(1)).sum())
    wb, ab = np.frombuffer(w.tobytes(), Q4_1), np.frombuffer(a, Q8_1)
    q = np.concatenate([wb["qs"] & 15, wb["qs"] >> 4], axis=1).astype(np.int64)
    return float((wb["d"].astype(np.float64) * ab["d"] * (q * ab["qs"]).sum(1) + wb["m"].astype(np.float64) * ab["s"]).sum())


@pytest.mark.parametrize("t", [T.Q4_1, T.Q8_0])
def test_tile_matches_vec_dot(t):
    n = 576
    w = quantize(rows(40, n, 5), t)
    a = rows(80, n, 6)
    for i in range(0, 40, 2):
        xs = [act(t, a[(i * 2 + j) % 80]) for j in range(4)]
        for level in (SCALAR, BEST):
            _decoder.set_simd(level)
            out = _decoder.type_op(int(t), "tile", w[i].tobytes() + w[i + 1].tobytes(), b"".join(xs))
            for r in range(2):
                for j in range(4):
                    want = _decoder.type_op(int(t), "dot", w[i + r].tobytes(), xs[j])
                    assert out[r * 4 + j] == pytest.approx(want, rel=1e-4, abs=1e-3)
