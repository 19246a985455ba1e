"""The decoder's rows of the types table (Q4_1 weights, Q8_1 activations; Q8_0 as the
tied embedding): to_float against the gguf package, the SIMD dot and the 2x4 tile held to
the scalar reference over many rows, the activation quantizer's SIMD held to its scalar."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from quantann import _model

SCALAR, BEST = 0, 3
ROW = {r["type"]: r for r in _model.types()}


@pytest.fixture(autouse=True)
def best_simd():
    yield
    _model.set_simd(BEST)


def n_values(t, data):
    return len(data) // ROW[int(t)]["size"] * ROW[int(t)]["blck"]


def to_float(t, data):
    return _model.type_to_float(int(t), data, n_values(t, data))


def dot(t, w, a, ref=False):
    return _model.type_dot(int(t), w, a, n_values(t, w), ref)


def tile(t, w2, a4):
    return _model.type_tile(int(t), w2, a4, n_values(t, w2) // 2)


def rows(n_rows, n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n)).astype(np.float32) * scale
    x[:, :7] *= 30  # outliers inside some blocks
    return x


@pytest.mark.parametrize("t", [T.Q4_1, T.Q8_0])
def test_to_float_matches_gguf(t):
    q = quantize(rows(64, 576, 1), t)
    for r in q:
        got = to_float(t, r.tobytes())
        np.testing.assert_array_equal(got, dequantize(r, t).reshape(-1))


def act(t, x):
    return _model.type_quantize_act(int(t), x.astype(np.float32))


def test_q8_1_activations_simd_equal_scalar_and_carry_their_sum():
    x = rows(200, 1536, 2)
    for r in x:
        _model.set_simd(SCALAR)
        ref = act(T.Q4_1, r)
        _model.set_simd(BEST)
        assert act(T.Q4_1, r) == ref
    blocks = np.frombuffer(ref, dtype=np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)]))
    d = blocks["d"].astype(np.float32)
    deq = (d[:, None] * blocks["qs"]).reshape(-1)
    assert np.all(np.abs(deq - x[-1]) <= np.repeat(d, 32) * 0.6 + 1e-6)  # q rounded with 1/d before d is stored as fp16
    s = blocks["qs"].astype(np.int32).sum(1) * d  # stored from the unrounded d, in fp16
    np.testing.assert_allclose(blocks["s"].astype(np.float32), s, rtol=2e-3, atol=1e-4)


LEVELS = (0, 1, 3)  # scalar, AVX2, AVX2 + AVX-512 VNNI: those this CPU lacks fall back to the one below


def extreme_rows(t, n, seed):
    """Weight and activation blocks with sums that make lane partial sums, block scales and
    magnitudes vary widely (so that a different lane partition, order or rounding shows)."""
    rng = np.random.default_rng(seed)
    x = rows(64, n, seed) * np.exp(rng.normal(scale=1.5, size=(64, n // 32, 1))).repeat(32, 2).reshape(64, n)
    return quantize(x.astype(np.float32), t)


@pytest.mark.parametrize("t,n", [(T.Q4_1, 576), (T.Q4_1, 1536), (T.Q4_1, 32), (T.Q8_0, 576), (T.Q8_0, 1536)])
def test_vec_dot_every_level_equals_the_reference_bit_for_bit(t, n):
    """The Q4_1 and Q8_0 dots of every SIMD level give the scalar reference's bits (ggml's x86
    order: 8 fma lanes, the hsum tree), so logits do not depend on the CPU or on wasm."""
    for plain, w in ((True, quantize(rows(100, n, 3), t)), (False, extreme_rows(t, n, 13))):
        a = rows(len(w), n, 4, scale=0.5)
        for i in range(len(w)):
            ab = act(t, a[i])
            ref = dot(t, w[i].tobytes(), ab, ref=True)
            if plain:  # (the extreme rows cancel: float32 sums stray from numpy's float64)
                assert ref == pytest.approx(numpy_dot(t, w[i], ab), rel=1e-4, abs=1e-3)
            for level in LEVELS:
                _model.set_simd(level)
                got = dot(t, w[i].tobytes(), ab)
                assert np.float32(got).tobytes() == np.float32(ref).tobytes(), (level, i, got, ref)


def test_the_reference_is_ggml_lane_order_not_a_plain_sum():
    """The reference sums 8 fused lanes (not one running sum): on these rows the two orders
    differ, so a reference that went back to one sum would fail here."""
    n, differ = 1536, 0
    w = quantize(rows(50, n, 21), T.Q4_1)
    a = rows(50, n, 22)
    for i in range(len(w)):
        ab = act(T.Q4_1, a[i])
        wb, xb = np.frombuffer(w[i].tobytes(), Q4_1), np.frombuffer(ab, Q8_1)
        q = np.concatenate([wb["qs"] & 15, wb["qs"] >> 4], axis=1).astype(np.int32)
        acc = (q * xb["qs"]).sum(1)
        plain = np.float32(0)
        for b in range(len(wb)):  # the old order: one float sum, block by block
            plain = np.float32(plain + np.float32(np.float32(wb["d"][b]) * np.float32(xb["d"][b]) * np.float32(acc[b])
                                                  + np.float32(wb["m"][b]) * np.float32(xb["s"][b])))
        differ += dot(T.Q4_1, w[i].tobytes(), ab, ref=True) != plain
    assert differ > 10


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
def test_tile_equals_vec_dot_bit_for_bit(t):
    n = 576
    for w in (quantize(rows(40, n, 5), t), extreme_rows(t, n, 15)[:40]):
        a = rows(80, n, 6)
        for i in range(0, 40, 2):
            xs = [act(t, a[(i * 2 + j) % 80]) for j in range(4)]
            for level in LEVELS:  # tiles exist at the SIMD levels only (the matmul uses vec_dot where a row has none)
                _model.set_simd(level)
                out = tile(t, w[i].tobytes() + w[i + 1].tobytes(), b"".join(xs))
                if out is None:
                    assert level == 0
                    continue
                for r in range(2):
                    for j in range(4):
                        ref = dot(t, w[i + r].tobytes(), xs[j], ref=True)
                        assert np.float32(out[r * 4 + j]).tobytes() == np.float32(ref).tobytes(), (level, i, r, j)


# ---------------------------------------------------------------- Q5_0 and the K-quants
# The gguf package cannot quantize K-quants: blocks are random bytes with sane fp16 scales.

BLOCK = {T.Q5_0: (32, 22), T.Q4_K: (256, 144), T.Q6_K: (256, 210)}


def random_blocks(t, n_rows, n, seed):
    rng = np.random.default_rng(seed)
    blck, size = BLOCK[t]
    b = rng.integers(0, 256, size=(n_rows, n // blck, size), dtype=np.uint8)
    f16 = lambda k: np.frombuffer(rng.normal(scale=0.02, size=k).astype(np.float16).tobytes(), np.uint8).reshape(-1, 2)
    cnt = n_rows * (n // blck)
    if t == T.Q5_0:
        b[..., 0:2] = f16(cnt).reshape(n_rows, n // blck, 2)
    elif t == T.Q4_K:  # d, dmin
        b[..., 0:2] = f16(cnt).reshape(n_rows, n // blck, 2)
        b[..., 2:4] = f16(cnt).reshape(n_rows, n // blck, 2)
    else:  # Q6_K: d last
        b[..., 208:210] = f16(cnt).reshape(n_rows, n // blck, 2)
    return b.reshape(n_rows, -1)


@pytest.mark.parametrize("t", [T.Q5_0, T.Q4_K, T.Q6_K])
def test_k_quant_to_float_matches_gguf(t):
    for r in random_blocks(t, 32, 1024, 7):
        got = to_float(t, r.tobytes())
        np.testing.assert_allclose(got, dequantize(r, t).reshape(-1), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("t,n", [(T.Q5_0, 576), (T.Q4_K, 512), (T.Q4_K, 1536), (T.Q6_K, 768), (T.Q6_K, 256)])
def test_k_quant_vec_dot_simd_matches_reference_and_exact(t, n):
    act_t = T.Q8_0 if t == T.Q5_0 else T.Q8_K
    w = random_blocks(t, 60, n, 8)
    a = rows(60, n, 9)
    for i in range(len(w)):
        ab = act(t, a[i])
        _model.set_simd(SCALAR)
        ref = dot(t, w[i].tobytes(), ab, ref=True)
        _model.set_simd(BEST)
        got = dot(t, w[i].tobytes(), ab)
        wf = dequantize(w[i], t).reshape(-1).astype(np.float64)
        af = to_float(act_t, ab).astype(np.float64)
        exact = float(wf @ af)  # integer products: only float rounding separates them
        tol = 1e-4 * float(np.abs(wf) @ np.abs(af)) + 1e-6
        assert abs(ref - exact) <= tol
        assert got == ref  # the SIMD variants follow the reference's (llama.cpp's) summation order


def test_q8_k_activations_map_the_extreme_to_127_and_carry_sums():
    x = rows(20, 512, 10)
    for r in x:
        ab = act(T.Q4_K, r)
        blocks = np.frombuffer(ab, np.dtype([("d", "<f4"), ("qs", "i1", 256), ("bsums", "<i2", 16)]))
        assert (np.abs(blocks["qs"]).max(1) == 127).all()
        np.testing.assert_array_equal(blocks["bsums"], blocks["qs"].reshape(-1, 16, 16).astype(np.int32).sum(2))
        deq = (blocks["d"][:, None] * blocks["qs"]).reshape(-1)
        assert np.all(np.abs(deq - r) <= np.repeat(np.abs(blocks["d"]), 256) * 0.5 + 1e-6)


def test_q8_0_dot_rounds_once_like_fma_on_a_float_midpoint():
    """Block 1 adds 16777217 * 2^-17 (a midpoint between two floats) to lane 0's 2^-48 from
    block 0: one rounding (fma) gives 128 + 2^-16; rounding the double sum to float again
    (the midpoint's tie to even) would give 128. Every level, and wasm (web/test/model.test.js),
    must give fma's."""
    f16 = lambda e, m: (e << 10 | m).to_bytes(2, "little")
    def block(d, q0):
        return d + bytes([q0 & 255]) + bytes(31)
    w = block(f16(0, 1), 1) + block(f16(15, 1346 - 1024), 97)
    a = block(f16(0, 1), 1) + block(f16(15, 4), 1)
    for level in LEVELS:
        _model.set_simd(level)
        assert dot(T.Q8_0, w, a, ref=level == 0) == 128 + 2 ** -16
