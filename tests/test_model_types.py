"""The model kernel's types table (kernel/model/types.c), row by row.

Every row is held to the `gguf` package (the oracle: GGML_QUANT_SIZES for the block layout,
gguf.quants.dequantize for to_float) and every dispatched variant to the row's scalar
reference, at every SIMD level this CPU has. A new type is tested by adding its row.
"""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
_model = pytest.importorskip("quantann._model")

QT = gguf.GGMLQuantizationType
# Weight rows (with a dot product); the activation-only rows (Q8_1, Q8_K: quantizers of the
# rows that take them) are tested through those rows here and in test_generate_types.py.
ALL_ROWS = _model.types()
ROWS = [r for r in ALL_ROWS if r["has_dot"]]
IDS = [r["name"] for r in ROWS]
N = 1024  # values per row: a multiple of every block size (32 and 256)


@pytest.fixture()
def levels():
    """The SIMD levels this CPU runs (scalar first); the best level is restored after."""
    best = _model.set_simd(_model.SIMD_AVX512VNNI)
    found = [lv for lv in (_model.SIMD_SCALAR, _model.SIMD_AVX2, _model.SIMD_AVX512VNNI) if _model.set_simd(lv) == lv]
    yield found
    _model.set_simd(best)


def weights(row, rows=1, seed=0):
    """(bytes, float64 values) of `rows` rows of N values of this type."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(rows, N)) * rng.uniform(0.05, 4, size=(rows, 1))).astype(np.float32)
    t = QT(row["type"])
    try:
        data = np.ascontiguousarray(gguf.quants.quantize(x, t)).view(np.uint8).reshape(rows, -1)
    except (NotImplementedError, gguf.quants.QuantError):
        # types gguf cannot quantize: random blocks whose fp16 fields are finite (scales,
        # mins); any byte pattern is a valid block otherwise
        nb = N // row["blck"]
        data = rng.integers(0, 256, size=(rows, nb * row["size"]), dtype=np.uint8)
        deq = gguf.quants.dequantize(data, t)
        data[~np.isfinite(deq).reshape(rows, nb, -1).all(-1).repeat(row["size"], 1)] = 0
    deq = gguf.quants.dequantize(data, t).astype(np.float64).reshape(rows, N)
    return data, deq


def activations(row, rows=1, seed=1):
    """(bytes, float64 values) of `rows` activation rows for this type's vec_dot."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(rows, N)) * rng.uniform(0.1, 10, size=(rows, N))).astype(np.float32)
    if row["act_type"] == int(QT.F32):
        return x.tobytes(), x.astype(np.float64)
    blocks = [_model.type_quantize_act(row["type"], r, True) for r in x]
    raw = np.frombuffer(b"".join(blocks), np.uint8).reshape(rows, -1)
    return b"".join(blocks), act_dequantize(raw, row["act_type"]).reshape(rows, N)


def act_dequantize(raw, act_type):
    """float64 values of activation blocks: gguf's dequantize, or ggml's layout by hand for the
    activation-only types gguf does not decode (Q8_1: fp16 d, fp16 s, 32 int8; Q8_K: f32 d,
    256 int8, 16 int16 sums)."""
    if act_type == int(QT.Q8_1):
        b = raw.reshape(-1).view(np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)]))
    elif act_type == int(QT.Q8_K):
        b = raw.reshape(-1).view(np.dtype([("d", "<f4"), ("qs", "i1", 256), ("bsums", "<i2", 16)]))
    else:
        return gguf.quants.dequantize(raw, QT(act_type)).astype(np.float64)
    return (b["d"].astype(np.float64)[:, None] * b["qs"]).reshape(raw.shape[0], -1)


def exact_dot(row, w, wd, a, ad):
    """float64 dot of decoded weights and activations. Q8_1 blocks carry s = fp16(d * sum(qs))
    and ggml's Q4_1 dot adds m * s per block (as llama.cpp does), so s's rounding is part of
    the exact value there."""
    exact = float(wd @ ad)
    if row["act_type"] == int(QT.Q8_1):
        m = np.frombuffer(bytes(w), np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)]))["m"]
        b = np.frombuffer(a, np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)]))
        d_sum = b["d"].astype(np.float64) * b["qs"].sum(1)
        exact += float((m.astype(np.float64) * (b["s"].astype(np.float64) - d_sum)).sum())
    return exact


def test_table_holds_the_encoder_types():
    assert {"F32", "F16", "Q8_0", "Q4_0"} <= set(IDS)
    assert len(set(r["type"] for r in ALL_ROWS)) == len(ALL_ROWS)
    # every weight row's activation type is a row too (the matmul sizes its blocks from it)
    assert {r["act_type"] for r in ROWS} <= {r["type"] for r in ALL_ROWS}


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_block_layout_matches_ggml(row):
    assert QT(row["type"]).name == row["name"]
    assert gguf.GGML_QUANT_SIZES[QT(row["type"])] == (row["blck"], row["size"])
    act = QT(row["act_type"])
    assert act in gguf.GGML_QUANT_SIZES and (row["act_type"] == int(QT.F32)) != row["has_quantize_act"]


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_to_float_equals_gguf_dequantize(row, levels):
    data, deq = weights(row, rows=3)
    for lv in levels:
        _model.set_simd(lv)
        for r in range(3):
            ours = _model.type_to_float(row["type"], data[r].tobytes(), N)
            np.testing.assert_allclose(ours, deq[r], rtol=1e-6, atol=1e-30, err_msg=f"level {lv}")
    if row["name"] in ("F32", "F16", "Q8_0", "Q4_0"):  # one multiply per value: exact
        assert np.array_equal(_model.type_to_float(row["type"], data[0].tobytes(), N), deq[0].astype(np.float32))


@pytest.mark.parametrize("row", [r for r in ROWS if r["has_quantize_act"]], ids=lambda r: r["name"])
def test_activation_quantizer_variants_are_bit_exact(row, levels):
    x = (np.random.default_rng(7).normal(size=N) * 3).astype(np.float32)
    x[5] = 0.0
    x[64:96] = 0.0  # an all-zero block
    ref = _model.type_quantize_act(row["type"], x, True)
    for lv in levels:
        _model.set_simd(lv)
        assert _model.type_quantize_act(row["type"], x) == ref, lv
    # and the blocks decode (ggml's layout) to x within half a quantization step (plus the
    # fp16 rounding of the scale: 127 * 2^-11 of a step)
    if row["act_type"] in (int(QT.Q8_0), int(QT.Q8_1)):
        deq = act_dequantize(np.frombuffer(ref, np.uint8)[None], row["act_type"])[0]
        step = np.abs(x.reshape(-1, 32)).max(1) / 127
        assert np.all(np.abs(deq - x).reshape(-1, 32) <= step[:, None] * 0.57 + 1e-12)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_dispatched_dot_equals_reference(row, levels):
    w, wd = weights(row, rows=4, seed=2)
    a, ad = activations(row, rows=4, seed=3)
    a_rows = [a[i * len(a) // 4:(i + 1) * len(a) // 4] for i in range(4)]
    for i in range(4):
        ref = _model.type_dot(row["type"], w[i].tobytes(), a_rows[i], N, True)
        scale = float(np.abs(wd[i] * ad[i]).sum())
        # the reference against a float64 dot of the decoded values
        assert abs(ref - exact_dot(row, w[i], wd[i], a_rows[i], ad[i])) <= 1e-5 * scale + 1e-6, row["name"]
        for lv in levels:
            _model.set_simd(lv)
            got = _model.type_dot(row["type"], w[i].tobytes(), a_rows[i], N)
            if lv == _model.SIMD_SCALAR:
                assert got == ref  # the scalar level runs the reference itself
            else:  # same products, summed in another order
                assert abs(got - ref) <= 2e-6 * scale + 1e-6, (row["name"], lv)


@pytest.mark.parametrize("row", [r for r in ROWS if r["act_type"] != int(QT.F32)], ids=lambda r: r["name"])
def test_tiles_equal_reference_dots(row, levels):
    """The 2 x 4 matmul tiles (where a level has one) against the reference dots."""
    w, wd = weights(row, rows=2, seed=4)
    a, ad = activations(row, rows=4, seed=5)
    na = len(a) // 4
    ref = [_model.type_dot(row["type"], w[r].tobytes(), a[j * na:(j + 1) * na], N, True)
           for r in range(2) for j in range(4)]
    scale = [float(np.abs(wd[r] * ad[j]).sum()) for r in range(2) for j in range(4)]
    tiled = 0
    for lv in levels:
        _model.set_simd(lv)
        out = _model.type_tile(row["type"], w.tobytes(), a, N)
        if out is None:
            continue
        tiled += 1
        for k in range(8):
            assert abs(out[k] - ref[k]) <= 2e-6 * scale[k] + 1e-6, (row["name"], lv, k)
    if row["name"] in ("Q8_0", "Q4_0") and len(levels) > 1:
        assert tiled >= 1  # the matmul's hot path is covered


def test_q8_0_weight_of_minus_128_is_exact_in_every_variant(levels):
    """ggml's quantizers write -127..127, but a Q8_0 file may hold -128: every level's dot and
    tile must read it as -128 (x86's sign trick keeps |w| unsigned; on the activation side a
    negated -128 would wrap to -128 and flip the product's sign)."""
    row = next(r for r in ROWS if r["name"] == "Q8_0")
    w, wd = weights(row, rows=2, seed=8)
    blocks = w.reshape(2, N // 32, 34)
    blocks[:, ::3, 2 + 5] = np.uint8(0x80)  # qs[5] = -128 in every third block of both rows
    blocks[:, 1::4, 2 + 30] = np.uint8(0x80)
    w = blocks.reshape(2, -1)
    wd = gguf.quants.dequantize(w, QT.Q8_0).astype(np.float64).reshape(2, N)
    assert (wd[:, 5::96] < 0).all()
    a, ad = activations(row, rows=4, seed=9)
    na = len(a) // 4
    for lv in levels:
        _model.set_simd(lv)
        dots = [_model.type_dot(row["type"], w[r].tobytes(), a[j * na:(j + 1) * na], N) for r in range(2) for j in range(4)]
        for r in range(2):
            for j in range(4):
                scale = float(np.abs(wd[r] * ad[j]).sum())
                assert abs(dots[r * 4 + j] - float(wd[r] @ ad[j])) <= 2e-6 * scale + 1e-6, (lv, r, j)
        tile = _model.type_tile(row["type"], w.tobytes(), a, N)
        if tile is not None:  # the tile keeps the single-row dot's order: the same bits
            assert list(tile) == dots, lv


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="not in the types table"):
        _model.type_to_float(77, b"", 32)
    with pytest.raises(ValueError, match="not 32 values of Q8_0"):
        _model.type_to_float(int(QT.Q8_0), b"\0" * 33, 32)
    with pytest.raises(ValueError, match="no activation quantizer"):
        _model.type_quantize_act(int(QT.F32), np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="activations"):
        _model.type_dot(int(QT.Q8_0), b"\0" * 34, b"\0" * 33, 32)


@pytest.mark.parametrize("row", [r for r in ROWS if r["act_type"] != int(QT.F32)], ids=lambda r: r["name"])
def test_panels_equal_dispatched_dots_bit_for_bit(row, levels):
    """The prompt matmul's packed panels (2 weight rows x PANEL_TOKENS tokens, AVX-512) give
    the single-row dot's bits at that level: the matmul mixes them with vec_dot and tiles
    (odd rows, tokens past the last whole panel, decoding), and the logits must not depend
    on which one computed an output."""
    T = _model.PANEL_TOKENS
    w, _ = weights(row, rows=2, seed=6)
    a, _ = activations(row, rows=T, seed=7)
    na = len(a) // T
    paneled = 0
    for lv in levels:
        _model.set_simd(lv)
        out = _model.type_panel(row["type"], w.tobytes(), a, N)
        if out is None:
            continue
        paneled += 1
        dots = [_model.type_dot(row["type"], w[r].tobytes(), a[j * na:(j + 1) * na], N) for r in range(2) for j in range(T)]
        assert out == dots, (row["name"], lv)
    if row["name"] == "Q4_1" and _model.SIMD_AVX512VNNI in levels:
        assert paneled == 1  # SmolLM2's prompt matmuls run here
