"""phi3: the fused matrices as row views of the llama forward (kernel/model/arch/phi3.c).
llama.cpp parity on a synthetic phi3 file is in tests/test_generate.py; here, without any
reference: a phi3 file computes exactly what the same weights unfused compute (qwen2's
layout with zero biases: neox RoPE too); LongRoPE's factors are picked by context size."""
import mmap

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

from quantann import _model

D, FF, NH, NKV, NV = 64, 96, 4, 2, 200
DKV = D // NH * NKV


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    m = lambda n_in, n_out: (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    return dict(embd=m(D, NV), q=m(D, D), k=m(D, DKV), v=m(D, DKV), o=m(D, D), gate=m(D, FF), up=m(D, FF),
                down=m(FF, D), norm=(1 + 0.1 * rng.normal(size=D)).astype(np.float32))


def _write(path, arch, w, qkv_rows=None, extra=None, t=T.Q8_0):
    import gguf
    g = gguf.GGUFWriter(str(path), arch)
    g.add_block_count(1)
    g.add_embedding_length(D)
    g.add_feed_forward_length(FF)
    g.add_head_count(NH)
    g.add_head_count_kv(NKV)
    g.add_context_length(128)
    g.add_layer_norm_rms_eps(1e-5)
    q = lambda name, x: g.add_tensor(name, gguf.quants.quantize(x, t), raw_dtype=t)
    q("token_embd.weight", w["embd"])
    for name in ("output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"):
        g.add_tensor(name, w["norm"])
    if arch == "phi3":
        q("blk.0.attn_qkv.weight", np.concatenate([w["q"], w["k"], w["v"]])[:qkv_rows])
        q("blk.0.ffn_up.weight", np.concatenate([w["gate"], w["up"]]))
    else:
        for n in ("q", "k", "v"):
            q(f"blk.0.attn_{n}.weight", w[n])
            g.add_tensor(f"blk.0.attn_{n}.bias", np.zeros(len(w[n]), np.float32))
        q("blk.0.ffn_gate.weight", w["gate"])
        q("blk.0.ffn_up.weight", w["up"])
    q("blk.0.attn_output.weight", w["o"])
    q("blk.0.ffn_down.weight", w["down"])
    for name, x in (extra or {}).items():
        g.add_tensor(name, x)
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()
    return path


def _open(path):
    with open(path, "rb") as f:
        return _model.Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1)


def test_fused_phi3_computes_what_the_unfused_weights_compute(tmp_path):
    w = _weights()
    ids = np.random.default_rng(1).integers(0, NV, 40).astype(np.int32)
    out = []
    for arch in ("phi3", "qwen2"):
        d = _open(_write(tmp_path / f"{arch}.gguf", arch, w))
        d.start(64, 8)
        out.append(d.eval(ids, all=True))
    assert out[0].shape == (40, NV) and np.isfinite(out[0]).all()
    np.testing.assert_allclose(out[0], out[1], rtol=0, atol=1e-5)
    assert np.abs(out[0] - out[0].mean(1, keepdims=True)).max() > 0.1  # not a degenerate output


def test_phi3_fused_shapes_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"attn_qkv.weight has shape \[64, 112\], expected \[64, 128\]"):
        _open(_write(tmp_path / "bad.gguf", "phi3", _weights(), qkv_rows=D + DKV + DKV // 2))


def _logits(path, n_ctx, ids):
    d = _open(path)
    d.start(n_ctx, 8)
    return d.eval(ids, all=True)


def test_longrope_factors_pick_by_context_and_unit_factors_change_nothing(tmp_path):
    """llama.cpp's rule: the long factors when the context exceeds the original length,
    the short ones otherwise (a LongRoPE pair against llama.cpp: tests/test_generate.py)."""
    w, half = _weights(), D // NH // 2
    ids = np.random.default_rng(2).integers(0, NV, 20).astype(np.int32)
    plain = _logits(_write(tmp_path / "plain.gguf", "phi3", w), 64, ids)
    ones = {"rope_factors_long.weight": np.ones(half, np.float32), "rope_factors_short.weight": np.ones(half, np.float32)}
    np.testing.assert_array_equal(_logits(_write(tmp_path / "ones.gguf", "phi3", w, extra=ones), 64, ids), plain)
    longer = {"rope_factors_long.weight": np.geomspace(1, 30, half).astype(np.float32),
              "rope_factors_short.weight": np.ones(half, np.float32)}
    path = _write(tmp_path / "long.gguf", "phi3", w, extra=longer)  # original context: the file's 128
    np.testing.assert_array_equal(_logits(path, 64, ids), plain)  # 64 <= 128: short (ones)
    assert np.abs(_logits(path, 200, ids) - plain).max() > 1e-3  # 200 > 128: long


def test_bad_rope_factors_are_refused_by_name(tmp_path):
    path = _write(tmp_path / "bad.gguf", "phi3", _weights(), extra={"rope_factors_long.weight": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="rope_factors_long.weight must be F32 of 8 values"):
        _open(path)
