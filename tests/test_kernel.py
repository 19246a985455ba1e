"""Every row of the codec table, every variant held to its scalar reference bit for bit,
and the reference to plain arithmetic. A new codec is tested by adding its row."""
import numpy as np
import pytest

from quantann import _kernel
from quantann.constants import CODECS, METRICS
from quantann.quantize import Quantizer, pad_dims

ROWS = _kernel.codecs()


def test_table_matches_constants():
    assert {r["name"]: r["id"] for r in ROWS} == CODECS
    for r in ROWS:
        assert r["variants"][0] == "ref"
        # RaBitQ rows bound their error (with a confidence), sq8 by its step (tests/test_sq8_bound.py)
        assert r["error_bound"] is (r["name"].startswith("rabitq") or r["name"] == "sq8")


def random_quantizer(name, d, rng):
    if name == "none":
        return Quantizer(name, d, np.zeros(pad_dims(d), np.float32), np.zeros(pad_dims(d), np.float32))
    x = rng.normal(size=(200, d)).astype(np.float32)
    return Quantizer.train(name, x, clip=0.01)


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
@pytest.mark.parametrize("metric", sorted(set(METRICS.values())))
@pytest.mark.parametrize("d", [1, 7, 64, 100, 384, 771])
def test_every_variant_equals_reference(row, metric, d):
    rng = np.random.default_rng(d * 7 + row["id"])
    qz = random_quantizer(row["name"], d, rng)
    x = rng.normal(size=(60, d)).astype(np.float32)
    x[0] *= 50  # far outside the trained range: clipped codes
    codes = qz.encode(x)
    norms = None
    if metric == METRICS["l2"] and row["name"] != "none":
        norms = np.empty(len(codes), np.float32)
        _kernel.code_norms(row["id"], d, qz.vmin, qz.scale, codes, norms)
    q = rng.normal(size=d).astype(np.float32)

    def dists(variant, batch):
        return np.frombuffer(_kernel.codec_distances(row["id"], variant, metric, d, qz.vmin, qz.scale, q,
                                                     codes, norms, batch), np.float32)

    ref = dists("ref", False)
    assert ref.tobytes() == dists("ref", True).tobytes()
    for v in row["variants"][1:]:
        assert dists(v, False).tobytes() == ref.tobytes(), v
        assert dists(v, True).tobytes() == ref.tobytes(), v
    if row["name"].startswith("rabitq"):
        return  # an estimate, not the distance to a decoded point: tests/test_rabitq.py
    # the reference is the distance to the decoded code, up to the query's int16 rounding
    dec = qz.decode(codes)
    exact = ((dec - q) ** 2).sum(1) if metric == METRICS["l2"] else 1 - dec @ q
    tol = 1e-4 if row["name"] == "none" else 2e-3 * (1 + np.abs(exact).max())
    np.testing.assert_allclose(ref, exact, rtol=1e-4, atol=tol)


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_code_size_and_round_trip(row):
    for d in (1, 63, 64, 65, 384):
        qz = random_quantizer(row["name"], d, np.random.default_rng(d))
        sizes = {"none": 4 * d, "sq8": pad_dims(d), "sq4": pad_dims(d) // 2}
        sizes.update({f"rabitq{b}": b * pad_dims(d) // 8 + 16 for b in range(1, 5)})  # + 4 float factors
        assert qz.code_size == sizes[row["name"]]
        x = np.random.default_rng(1).normal(size=(5, d)).astype(np.float32)
        c = qz.encode(x)
        assert c.shape == (5, qz.code_size)
        if not row["name"].startswith("rabitq"):  # RaBitQ decodes to a projection: tests/test_rabitq.py
            assert np.array_equal(qz.encode(qz.decode(c)), c)  # decoding lands on the grid


@pytest.mark.parametrize("metric", [0, 1])
@pytest.mark.parametrize("d", [1, 7, 8, 33, 384, 771])
def test_float_kernels_bit_identical(metric, d):
    rng = np.random.default_rng(d)
    q = rng.normal(size=d).astype(np.float32)
    x = rng.normal(size=(20, d)).astype(np.float32)
    assert _kernel.float_dists(metric, q, x, d, True) == _kernel.float_dists(metric, q, x, d, False)
    exact = ((x - q) ** 2).sum(1) if metric == 0 else x @ q
    np.testing.assert_allclose(_kernel.float_dists(metric, q, x, d, False), exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["sq8", "sq4"])
def test_extreme_weights_do_not_overflow(kind):
    """The int16 query weights are bounded so the int32 dot cannot wrap: a query along the
    largest scale against all-maximal codes gives the float answer."""
    d = 4096
    qz = Quantizer(kind, d, np.zeros(d, np.float32), np.ones(d, np.float32))
    codes = np.full((1, qz.code_size), 255, np.uint8)
    q = np.ones(d, np.float32)
    for v in next(r for r in ROWS if r["name"] == kind)["variants"]:
        got = np.frombuffer(_kernel.codec_distances(CODECS[kind], v, 1, d, qz.vmin, qz.scale, q, codes, None, True),
                            np.float32)
        levels = 255 if kind == "sq8" else 15
        assert got[0] == pytest.approx(1 - d * levels, rel=1e-5)


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


@pytest.mark.parametrize("kind", ["sq8", "sq4"])
@pytest.mark.parametrize("d", [64, 384])
def test_sq_distance_is_the_exact_integer_dot(kind, d):
    """With vmin = 0, scale = 1 and |q| peaking at the largest weight that cannot overflow
    int32, the query weights are q itself, so every variant must return exactly
    1 - codes . q (sums below 2^24 are exact floats)."""
    rng = np.random.default_rng(d)
    levels = 255 if kind == "sq8" else 15
    qz = Quantizer(kind, d, np.zeros(pad_dims(d), np.float32), np.ones(pad_dims(d), np.float32))
    q = rng.integers(-40, 41, size=d).astype(np.float32)
    q[0] = min(32767, (2**31 - 1) // (pad_dims(d) * levels))
    x = rng.integers(0, levels + 1, size=(40, d)).astype(np.float32)
    x[:, 0] = 0
    codes = qz.encode(x)
    want = (1 - x.astype(np.int64) @ q.astype(np.int64)).astype(np.float32)
    for v in next(r for r in ROWS if r["name"] == kind)["variants"]:
        got = np.frombuffer(_kernel.codec_distances(CODECS[kind], v, 1, d, qz.vmin, qz.scale, q, codes, None, True),
                            np.float32)
        assert got.tobytes() == want.tobytes(), v
