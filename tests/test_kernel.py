"""Every SIMD kernel is held to its scalar reference, bit for bit."""
import numpy as np
import pytest

from quantann import _kernel
from quantann.quantize import Quantizer


@pytest.mark.parametrize("kind,cs", [(1, 1.0), (2, 0.5)])
@pytest.mark.parametrize("dpad", [64, 128, 384, 768, 4096])
def test_int_dots_match_reference(kind, cs, dpad):
    rng = np.random.default_rng(dpad + kind)
    cmax = 255 if kind == 1 else 15
    wmax = min(32767, (2**31 - 1) // (dpad * cmax))
    w = rng.integers(-wmax, wmax + 1, size=dpad).astype(np.int16)
    w[:4] = [wmax, -wmax, wmax, -wmax]  # extremes must not overflow
    codes = rng.integers(0, 256, size=(50, int(dpad * cs))).astype(np.uint8)
    codes[0] = 255
    ref = _kernel.int_dots(kind, w, codes, dpad, True)
    fast = _kernel.int_dots(kind, w, codes, dpad, False)
    assert ref == fast
    # and the reference is the plain integer dot product of the unpacked codes
    qz = Quantizer("sq8" if kind == 1 else "sq4", dpad, np.zeros(dpad, np.float32), np.ones(dpad, np.float32))
    unpacked = qz.decode(codes).astype(np.int64)
    assert ref == list(unpacked @ w.astype(np.int64))


@pytest.mark.parametrize("metric", [0, 1])
@pytest.mark.parametrize("d", [1, 7, 8, 33, 384, 771])
def test_float_kernels_bit_identical(metric, d):
    rng = np.random.default_rng(d)
    q = rng.normal(size=d).astype(np.float32)
    x = rng.normal(size=(20, d)).astype(np.float32)
    assert _kernel.float_dists(metric, q, x, d, True) == _kernel.float_dists(metric, q, x, d, False)
    exact = ((x - q) ** 2).sum(1) if metric == 0 else x @ q
    np.testing.assert_allclose(_kernel.float_dists(metric, q, x, d, False), exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind,levels", [("sq8", 255), ("sq4", 15)])
def test_encode_decode_error_is_half_a_step(kind, levels):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 100)).astype(np.float32)
    qz = Quantizer.train(kind, x, clip=0.0)
    err = np.abs(qz.decode(qz.encode(x)) - x)
    assert (err <= qz.scale[:100] / 2 + 1e-5).all()
    # clipping: values beyond the trained range land on the end levels
    qz2 = Quantizer.train(kind, x, clip=0.05)
    c = qz2.decode(qz2.encode(x * 10))
    assert (c <= qz2.vmin[:100] + qz2.scale[:100] * levels + 1e-4).all()


def test_sq4_layout_low_then_high_nibbles():
    d = 64
    qz = Quantizer("sq4", d, np.zeros(d, np.float32), np.ones(d, np.float32))
    x = np.zeros((1, d), np.float32)
    x[0, 0], x[0, 32], x[0, 31], x[0, 63] = 3, 5, 7, 15
    c = qz.encode(x)[0]
    assert c[0] == 3 | (5 << 4)
    assert c[31] == 7 | (15 << 4)
