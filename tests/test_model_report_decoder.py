"""quantann model-report for decoder LLMs (quantann/model/report_decoder.py over the
kernel's Decoder.to_f32 / take_weights / hidden_states), on tiny llama files whose layers
are F32 or Q4_0 as each test needs: what a group costs alone is found where it is."""
import json
import mmap
import os

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

from quantann import _model
from quantann.model import report_decoder

HERE = os.path.dirname(os.path.abspath(__file__))
D, FF, NH, NKV = 64, 128, 4, 2


def _vocab():
    import gguf
    r = gguf.GGUFReader(os.path.join(HERE, "data", "spm_synthetic.gguf"))
    f = lambda k: r.fields[k].contents()
    return dict(tokens=f("tokenizer.ggml.tokens"), scores=f("tokenizer.ggml.scores"),
                token_type=f("tokenizer.ggml.token_type"), bos=f("tokenizer.ggml.bos_token_id"),
                eos=f("tokenizer.ggml.eos_token_id"), unk=f("tokenizer.ggml.unknown_token_id"))


VOCAB = _vocab()
NV = len(VOCAB["tokens"])


def _write(path, layer_types, seed=0, tied=False):
    """A llama file with F32 embeddings / output and layer i's matrices of layer_types[i]."""
    import gguf
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(len(layer_types))
    w.add_embedding_length(D)
    w.add_feed_forward_length(FF)
    w.add_head_count(NH)
    w.add_head_count_kv(NKV)
    w.add_context_length(256)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(VOCAB["tokens"])
    w.add_token_scores(VOCAB["scores"])
    w.add_token_types(VOCAB["token_type"])
    w.add_bos_token_id(VOCAB["bos"])
    w.add_eos_token_id(VOCAB["eos"])
    w.add_unk_token_id(VOCAB["unk"])
    w.add_add_bos_token(True)

    def mat(name, n_in, n_out, t=T.F32):
        x = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        if t == T.F32:
            w.add_tensor(name, x)
        else:
            w.add_tensor(name, gguf.quants.quantize(x, t), raw_dtype=t)
    mat("token_embd.weight", D, NV)
    if not tied:
        mat("output.weight", D, NV)
    w.add_tensor("output_norm.weight", np.ones(D, np.float32))
    dkv = D // NH * NKV
    for i, t in enumerate(layer_types):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(D, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(D, np.float32))
        for n, a, b in (("attn_q", D, D), ("attn_k", D, dkv), ("attn_v", D, dkv), ("attn_output", D, D),
                        ("ffn_gate", D, FF), ("ffn_up", D, FF), ("ffn_down", FF, D)):
            mat(f"blk.{i}.{n}.weight", a, b, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


IDS = list(np.random.default_rng(5).integers(3, NV, 40))


def _run(path, **kw):
    return report_decoder.run(path, text="x", n_tokens=64, threads=1, progress=lambda s: None, **kw)


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch):
    monkeypatch.setattr(report_decoder, "_ids", lambda dec, mm, text, n: IDS[:n])


def test_an_f32_model_costs_nothing(tmp_path):
    rep = _run(_write(tmp_path / "f32.gguf", [T.F32, T.F32]))
    assert rep["whole"]["kl"] == pytest.approx(0, abs=1e-12) and rep["whole"]["top1"] == 1.0
    assert [s["rel_l2"] for s in rep["layers"]] == [0.0, 0.0]
    assert [g["group"] for g in rep["groups"]] == ["token_embd", "blk.0", "blk.1", "output"]
    assert all(g["kl"] == pytest.approx(0, abs=1e-12) for g in rep["groups"])


def test_the_one_quantized_layer_is_found_alone(tmp_path):
    rep = _run(_write(tmp_path / "mixed.gguf", [T.F32, T.Q4_0]))
    kl = {g["group"]: g["kl"] for g in rep["groups"]}
    assert rep["whole"]["kl"] > 1e-6
    assert kl["blk.0"] == pytest.approx(0, abs=1e-12) and kl["token_embd"] == pytest.approx(0, abs=1e-12)
    assert kl["output"] == pytest.approx(0, abs=1e-12)
    assert kl["blk.1"] == pytest.approx(rep["whole"]["kl"], rel=1e-9)  # the reference with it == the model
    assert rep["layers"][0]["rel_l2"] == 0.0 and rep["layers"][1]["rel_l2"] > 1e-4


def test_hidden_states_are_the_residual_the_logits_come_from(tmp_path):
    import gguf
    path = _write(tmp_path / "f32.gguf", [T.F32, T.F32])
    with open(path, "rb") as f:
        d = _model.Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1)
    d.start(64, 16)
    lo, hid = d.hidden_states(IDS)
    assert lo.shape == (len(IDS), NV) and hid.shape == (2, len(IDS), D)
    out = next(t for t in gguf.GGUFReader(path).tensors if t.name == "output.weight").data
    h = hid[-1].astype(np.float64)
    want = (h / np.sqrt((h * h).mean(1, keepdims=True) + 1e-5)) @ out.T.astype(np.float64)
    np.testing.assert_allclose(lo, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(lo, d.hidden_states(IDS)[0])  # from position 0 each time


def test_reference_file_and_a_different_model(tmp_path):
    q = _write(tmp_path / "q.gguf", [T.Q4_0, T.Q4_0])
    same = _run(q, reference=q, groups=False)
    assert same["whole"]["kl"] == pytest.approx(0, abs=1e-12) and same["reference"] == str(q)
    with pytest.raises(ValueError, match="not the same model"):
        _run(q, reference=_write(tmp_path / "three.gguf", [T.F32] * 3))


def test_take_weights_errors(tmp_path):
    def dec(p):
        with open(p, "rb") as f:
            return _model.Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1)
    q, r = dec(_write(tmp_path / "q.gguf", [T.Q4_0, T.Q4_0])), dec(_write(tmp_path / "f.gguf", [T.F32, T.F32]))
    q.start(16, 4)
    with pytest.raises(ValueError, match="scratch allocated at start"):
        q.take_weights(r, 0)  # F32 activations are wider than the Q8_0 rows the scratch holds
    with pytest.raises(ValueError, match="weight group must be a layer in 0..1"):
        q.take_weights(r, 2)
    with pytest.raises(TypeError):
        q.take_weights("x", 0)
    tied = dec(_write(tmp_path / "t.gguf", [T.F32, T.F32], tied=True))
    with pytest.raises(ValueError, match="tied"):
        tied.take_weights(tied, "output")
    with pytest.raises(ValueError, match="not the same model"):
        tied.take_weights(r, "token_embd")
    r.to_f32()
    with pytest.raises(RuntimeError, match="once"):
        r.to_f32()


def test_cli_decoder_report_table_json_and_plot(tmp_path, capsys, monkeypatch):
    from quantann.cli import main
    monkeypatch.undo()  # the real tokenizer this time
    path = _write(tmp_path / "mixed.gguf", [T.F32, T.Q4_0])
    txt = tmp_path / "t.txt"
    txt.write_text("the quick brown fox jumps over the lazy dog " * 4)
    png, js = tmp_path / "r.png", tmp_path / "r.json"
    assert main(["model-report", str(path), "--text", str(txt), "--tokens", "16", "--threads", "1",
                 "--plot", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "| blk.1 |" in out and "top-1 agreement" in out
    assert png.stat().st_size > 1000
    rep = json.loads(js.read_text())["models"][0]
    assert rep["n_tokens"] == 16 and rep["text"] == str(txt) and len(rep["groups"]) == 4
    assert main(["model-report", str(path), "--tokens", "1"]) == 1
    assert "error: tokens must be" in capsys.readouterr().err
