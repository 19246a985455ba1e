"""Converter output (llama.cpp bert layout) and the GGUF reader's checks on malformed files."""
import functools
import struct

import numpy as np
import pytest

from test_model_helpers import model_path

gguf = pytest.importorskip("gguf")


@functools.lru_cache(maxsize=None)
def reader(kind):
    return gguf.GGUFReader(str(model_path(kind)))


def test_names_and_keys_follow_llama_cpp_bert():
    r = reader("q8_0")
    allowed = set()
    for t in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.BERT]:
        for bid in range(6):
            allowed.add(gguf.TENSOR_NAMES[t].format(bid=bid))
    names = [t.name for t in r.tensors]
    assert len(names) == 3 + 2 + 6 * 16
    for n in names:
        assert n.rsplit(".", 1)[0] in allowed, n
    f = r.fields
    s = lambda k: bytes(f[k].parts[f[k].data[0]]).decode()  # noqa: E731
    v = lambda k: f[k].parts[f[k].data[0]][0]  # noqa: E731
    assert s("general.architecture") == "bert" and s("tokenizer.ggml.model") == "bert"
    assert v("bert.block_count") == 6 and v("bert.embedding_length") == 384
    assert v("bert.feed_forward_length") == 1536 and v("bert.attention.head_count") == 12
    assert v("bert.context_length") == 512 and v("bert.pooling_type") == 1  # mean
    assert v("bert.attention.causal") == 0
    assert v("tokenizer.ggml.bos_token_id") == 101 and v("tokenizer.ggml.seperator_token_id") == 102
    assert v("tokenizer.ggml.unknown_token_id") == 100 and v("tokenizer.ggml.padding_token_id") == 0
    toks = f["tokenizer.ggml.tokens"]
    vocab = [bytes(toks.parts[i]).decode() for i in toks.data]
    assert len(vocab) == 30522
    assert vocab[101] == "[CLS]" and vocab[2088] == "\u2581world" and "ing" in vocab  # "##ing"


@pytest.mark.parametrize("kind,qtype", [("f32", "F32"), ("f16", "F16"), ("q8_0", "Q8_0"), ("q4_0", "Q4_0"),
                                        ("q4_0-pure", "Q4_0")])
def test_tensor_types(kind, qtype):
    from quantann.model.convert import Q4_0_MIX_Q8_0, _in_mix
    from quantann.model.embedder import Embedder

    with Embedder.open(model_path(kind), n_threads=1) as e:
        tensors = e.info["tensors"]
    assert len(tensors) == 101
    for t in tensors:
        if t["name"].startswith(("position_embd", "token_types")) or t["shape"][1] == 1:
            assert t["type"] == "F32", t["name"]
        elif kind == "q4_0" and _in_mix(t["name"], Q4_0_MIX_Q8_0):
            assert t["type"] == "Q8_0", t["name"]
        else:
            assert t["type"] == qtype, t["name"]


def test_q4_0_mix_is_recorded():
    from quantann.model.convert import Q4_0_MIX_Q8_0

    f = reader("q4_0")
    mix = bytes(f.fields["quantann.quant_mix"].parts[-1]).decode()
    assert mix.startswith("q4_0") and all(p in mix for p in Q4_0_MIX_Q8_0)
    assert int(f.fields["general.file_type"].parts[-1][0]) == int(gguf.LlamaFileType.MOSTLY_Q4_0)
    assert bytes(reader("q4_0-pure").fields["quantann.quant_mix"].parts[-1]).decode() == "q4_0"
    n_q8 = sum(t.tensor_type == gguf.GGMLQuantizationType.Q8_0 for t in f.tensors)
    assert n_q8 == sum(1 for t in f.tensors if _mixed(t.name))
    assert 0 < n_q8 < 37


def _mixed(name):
    from quantann.model.convert import Q4_0_MIX_Q8_0, _in_mix

    return _in_mix(name, Q4_0_MIX_Q8_0)


def test_q4_0_blocks_decode_with_ggml_reference():
    from quantann.model.convert import quantize_q4_0

    x = np.random.default_rng(0).normal(size=(16, 384)).astype(np.float32)
    ours = quantize_q4_0(x)
    ref = gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q4_0)
    assert ours.shape == ref.shape and ours.dtype == np.uint8
    d_ours = gguf.quants.dequantize(ours, gguf.GGMLQuantizationType.Q4_0)
    d_ref = gguf.quants.dequantize(ref, gguf.GGMLQuantizationType.Q4_0)
    assert ((d_ours - x) ** 2).sum() < ((d_ref - x) ** 2).sum()


# ---------------------------------------------------------------- malformed files

@pytest.fixture(scope="module")
def good_bytes():
    return model_path("q8_0").read_bytes()


def open_bytes(tmp_path, data, name="bad.gguf"):
    from quantann.model.embedder import Embedder

    p = tmp_path / name
    p.write_bytes(data)
    return Embedder.open(p, n_threads=1)


def expect_format_error(tmp_path, data, match):
    from quantann.errors import FormatError

    with pytest.raises(FormatError, match=match):
        open_bytes(tmp_path, data)


def tensor_field_offsets(name):
    """Byte positions of a tensor record's type and offset fields."""
    r = reader("q8_0")
    t = next(t for t in r.tensors if t.name == name)
    pos = t.field.offset
    sizes = [p.nbytes for p in t.field.parts]
    return pos + sum(sizes[:-2]), pos + sum(sizes[:-1]), r


def test_good_file_loads(tmp_path, good_bytes):
    e = open_bytes(tmp_path, good_bytes)
    assert e.dim == 384 and e.weight_type == "Q8_0"
    e.close()


def test_empty_file(tmp_path):
    expect_format_error(tmp_path, b"", "empty")


def test_bad_magic(tmp_path, good_bytes):
    expect_format_error(tmp_path, b"GGML" + good_bytes[4:], "bad magic")


def test_unsupported_version(tmp_path, good_bytes):
    expect_format_error(tmp_path, good_bytes[:4] + struct.pack("<I", 99) + good_bytes[8:], "version")


@pytest.mark.parametrize("frac", [0.0001, 0.001, 0.01, 0.02, 0.5, 0.9, 0.99999])
def test_truncated(tmp_path, good_bytes, frac):
    expect_format_error(tmp_path, good_bytes[: max(1, int(len(good_bytes) * frac))],
                        "truncated|past the end|shorter|cannot fit")


def test_absurd_counts(tmp_path, good_bytes):
    data = good_bytes[:8] + struct.pack("<QQ", 1 << 60, 3) + good_bytes[24:]
    expect_format_error(tmp_path, data, "cannot fit")


def test_tensor_offset_past_end(tmp_path, good_bytes):
    _, off_pos, _ = tensor_field_offsets("blk.5.ffn_down.weight")
    data = bytearray(good_bytes)
    data[off_pos:off_pos + 8] = struct.pack("<Q", len(good_bytes))  # aligned, but past the end
    expect_format_error(tmp_path, bytes(data), "past the end")


def test_tensor_offset_overflow(tmp_path, good_bytes):
    _, off_pos, _ = tensor_field_offsets("token_embd.weight")
    data = bytearray(good_bytes)
    data[off_pos:off_pos + 8] = struct.pack("<Q", (1 << 64) - 32)
    expect_format_error(tmp_path, bytes(data), "past the end")


def test_unknown_tensor_type(tmp_path, good_bytes):
    type_pos, _, _ = tensor_field_offsets("blk.0.attn_q.weight")
    data = bytearray(good_bytes)
    data[type_pos:type_pos + 4] = struct.pack("<I", 77)
    expect_format_error(tmp_path, bytes(data), "unsupported or inconsistent type")


def test_wrong_tensor_type(tmp_path, good_bytes):
    # a norm weight claimed as Q8_0 is a valid GGUF record but not a valid BERT model
    type_pos, _, _ = tensor_field_offsets("blk.0.attn_output_norm.weight")
    data = bytearray(good_bytes)
    data[type_pos:type_pos + 4] = struct.pack("<I", 8)
    expect_format_error(tmp_path, bytes(data), "F32 expected")


def test_random_corruption_never_crashes(tmp_path, good_bytes):
    """Flipped bytes in the header either still load or give FormatError, never a crash."""
    from quantann.errors import FormatError

    _, _, r = tensor_field_offsets("token_embd.weight")
    header_end = r.data_offset
    rng = np.random.default_rng(1)
    for i in range(40):
        data = bytearray(good_bytes[:header_end + 4096])  # header, plus a little data
        for p in rng.integers(0, header_end, size=4):
            data[p] = int(rng.integers(0, 256))
        try:
            open_bytes(tmp_path, bytes(data), f"fuzz{i}.gguf").close()
        except FormatError:
            pass
