"""Writes the model side of the conformance corpus: handcrafted bad model GGUF files.

    python tests/conformance/make_model_corpus.py [OUT_DIR]   (default: tests/conformance/model)

Each file is a tiny synthetic BERT (llama.cpp's `bert` layout, written with the `gguf`
package: 2 layers, 32 wide, Q8_0 matrices) with one thing wrong, and manifest.json lists
every file with a substring of the error it must give:
    [{"file": "bad_magic.gguf", "kind": "model", "error": "bad magic"}, ...]
A model file must fail either when opened or when it embeds its first text (weights that
produce NaN or infinity are only found by computing). The output is deterministic: running
the script again writes the same bytes.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

D, F, H, LAYERS, CTX = 32, 64, 2, 2, 16
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    "\u2581" + w for w in ("hello", "world", "the", "a", "test", "model", "file", "bad", "good", "text")
] + ["ing", "s", "ed", "er", "ly", ".", ",", "!", "?", "'", "x", "y", "z", "q", "w", "e", "r"]
TYPES = [3] * 5 + [1] * (len(TOKENS) - 5)  # control tokens first


def tensors(rng):
    """name -> float32 array of a small, well-behaved BERT (numpy shapes are [rows, cols])."""
    t = {
        "token_embd.weight": rng.normal(0, 0.5, (len(TOKENS), D)),
        "position_embd.weight": rng.normal(0, 0.1, (CTX, D)),
        "token_types.weight": rng.normal(0, 0.1, (2, D)),
        "token_embd_norm.weight": np.ones(D), "token_embd_norm.bias": np.zeros(D),
    }
    for b in range(LAYERS):
        for nm, shape in (("attn_q", (D, D)), ("attn_k", (D, D)), ("attn_v", (D, D)), ("attn_output", (D, D)),
                          ("ffn_up", (F, D)), ("ffn_down", (D, F))):
            t[f"blk.{b}.{nm}.weight"] = rng.normal(0, 0.2, shape)
            t[f"blk.{b}.{nm}.bias"] = rng.normal(0, 0.02, shape[0])
        for nm in ("attn_output_norm", "layer_output_norm"):
            t[f"blk.{b}.{nm}.weight"] = np.ones(D)
            t[f"blk.{b}.{nm}.bias"] = np.zeros(D)
    return {k: np.asarray(v, np.float32) for k, v in t.items()}


def write(path: Path, *, arch="bert", kv=None, drop=(), tensor_over=None, types_over=None, tokens=None,
          tokenizer="bert", skip_tokens=False):
    """A synthetic BERT GGUF; kv overrides metadata ({key: (value, GGUFValueType) or None to
    drop}), tensor_over replaces arrays, types_over forces a tensor's GGML type."""
    import gguf

    rng = np.random.default_rng(1234)
    T = tensors(rng)
    T.update(tensor_over or {})
    w = gguf.GGUFWriter(str(path), arch)
    V = gguf.GGUFValueType
    meta = {
        f"{arch}.context_length": (CTX, V.UINT32), f"{arch}.embedding_length": (D, V.UINT32),
        f"{arch}.feed_forward_length": (F, V.UINT32), f"{arch}.block_count": (LAYERS, V.UINT32),
        f"{arch}.attention.head_count": (H, V.UINT32), f"{arch}.attention.layer_norm_epsilon": (1e-12, V.FLOAT32),
        f"{arch}.attention.causal": (False, V.BOOL), f"{arch}.pooling_type": (1, V.UINT32),
        "quantann.normalize": (True, V.BOOL), "tokenizer.ggml.model": (tokenizer, V.STRING),
        "tokenizer.ggml.bos_token_id": (2, V.UINT32), "tokenizer.ggml.seperator_token_id": (3, V.UINT32),
        "tokenizer.ggml.unknown_token_id": (1, V.UINT32), "tokenizer.ggml.padding_token_id": (0, V.UINT32),
    }
    meta.update(kv or {})
    for k, v in meta.items():
        if v is not None:
            w.add_key_value(k, v[0], v[1])
    if not skip_tokens:
        w.add_token_list(tokens or TOKENS)
        w.add_token_types(TYPES[:len(tokens or TOKENS)])
    for name, arr in T.items():
        if name in drop:
            continue
        qt = (types_over or {}).get(name)
        if qt is None:
            qt = gguf.GGMLQuantizationType.Q8_0 if arr.ndim == 2 and name != "position_embd.weight" \
                and name != "token_types.weight" else gguf.GGMLQuantizationType.F32
        if qt == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, arr)
        elif qt == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def patch(path: Path, old: bytes, new: bytes):
    """Replaces the one occurrence of old by new (same length) in the file."""
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1, old
    path.write_bytes(data.replace(old, new))


def q8_with_inf_scale(arr):
    import gguf

    q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0).copy()
    q[0, 0:2] = np.frombuffer(np.float16(np.inf).tobytes(), np.uint8)  # first block's scale
    return q


def build(out: Path) -> list:
    import gguf

    V, Q = gguf.GGUFValueType, gguf.GGMLQuantizationType
    out.mkdir(parents=True, exist_ok=True)
    entries = []

    def case(name, error, **kw):
        write(out / name, **kw)
        entries.append({"file": name, "kind": "model", "error": error})

    good = write(out / "good.tmp", )
    data = good.read_bytes()
    good.unlink()

    def raw(name, blob, error):
        (out / name).write_bytes(blob)
        entries.append({"file": name, "kind": "model", "error": error})

    # the container
    raw("bad_magic.gguf", b"GGML" + data[4:], "bad magic")
    raw("bad_version.gguf", data[:4] + struct.pack("<I", 99) + data[8:], "unsupported GGUF version 99")
    raw("truncated_header.gguf", data[:200], "cannot fit in 200 bytes")
    raw("truncated_tensor_table.gguf", data[:2000], "truncated GGUF: tensor record")
    raw("truncated_data.gguf", data[:len(data) - 40], "past the end")
    raw("absurd_counts.gguf", data[:8] + struct.pack("<QQ", 1 << 60, 3) + data[24:], "cannot fit")
    # which model: architecture and tokenizer rows, text that is not UTF-8
    case("arch_unknown.gguf", "unsupported general.architecture 'gptj'", arch="gptj")
    write(out / "arch_bad_utf8.gguf", arch="zzzz")
    patch(out / "arch_bad_utf8.gguf", b"\x04\x00\x00\x00\x00\x00\x00\x00zzzz", b"\x04\x00\x00\x00\x00\x00\x00\x00\xff\xfezz")
    entries.append({"file": "arch_bad_utf8.gguf", "kind": "model", "error": "unsupported general.architecture"})
    write(out / "key_bad_utf8_bad_type.gguf", kv={"quantann.qqqq": (1, V.UINT32)})
    patch(out / "key_bad_utf8_bad_type.gguf", b"quantann.qqqq" + struct.pack("<I", int(V.UINT32)),
          b"quantann.\xff\xfeqq" + struct.pack("<I", 99))
    entries.append({"file": "key_bad_utf8_bad_type.gguf", "kind": "model", "error": "bad GGUF value type 99 for key"})
    case("tokenizer_unknown.gguf", "unsupported tokenizer.ggml.model 'gpt2'", tokenizer="gpt2")
    case("tokens_missing.gguf", "tokenizer.ggml.tokens", skip_tokens=True)
    case("token_too_long.gguf", "bytes long", tokens=TOKENS[:-1] + ["x" * 2000])
    write(out / "tensor_name_bad_utf8.gguf", tensor_over={}, drop=())
    patch(out / "tensor_name_bad_utf8.gguf", b"blk.1.ffn_up.weight", b"blk.1.ffn_up.weig\xff\xfe")
    entries.append({"file": "tensor_name_bad_utf8.gguf", "kind": "model", "error": "missing tensor 'blk.1.ffn_up.weight'"})
    # hyper-parameters out of range or inconsistent
    case("block_count_zero.gguf", "'bert.block_count' = 0 out of range", kv={"bert.block_count": (0, V.UINT32)})
    case("block_count_huge.gguf", "'bert.block_count' = 1000000 out of range",
         kv={"bert.block_count": (1000000, V.UINT32)})
    case("heads_not_dividing.gguf", "unsupported shape", kv={"bert.attention.head_count": (5, V.UINT32)})
    case("eps_zero.gguf", "layer_norm_epsilon", kv={"bert.attention.layer_norm_epsilon": (0.0, V.FLOAT32)})
    case("eps_inf.gguf", "layer_norm_epsilon", kv={"bert.attention.layer_norm_epsilon": (float("inf"), V.FLOAT32)})
    case("context_one.gguf", "'bert.context_length' = 1 out of range", kv={"bert.context_length": (1, V.UINT32)})
    case("embedding_length_string.gguf", "missing or non-integer metadata key 'bert.embedding_length'",
         kv={"bert.embedding_length": ("32", V.STRING)})
    case("pooling_unknown.gguf", "unsupported bert.pooling_type 7", kv={"bert.pooling_type": (7, V.UINT32)})
    case("cls_id_out_of_vocab.gguf", "'tokenizer.ggml.bos_token_id' = 500 out of range",
         kv={"tokenizer.ggml.bos_token_id": (500, V.UINT32)})
    # tensors against the hyper-parameters and the types table
    case("ffn_shape_mismatch.gguf", "tensor 'blk.0.ffn_up.weight' has shape [32, 64], expected [32, 96]",
         kv={"bert.feed_forward_length": (96, V.UINT32)})
    case("vocab_rows_mismatch.gguf", "tensor 'token_embd.weight' has shape [32, 32], expected [32, 31]",
         tokens=TOKENS[:-1])
    case("tensor_missing.gguf", "missing tensor 'blk.1.attn_v.bias'", drop=("blk.1.attn_v.bias",))
    case("norm_not_f32.gguf", "F32 expected", types_over={"blk.0.attn_output_norm.weight": Q.F16})
    case("weight_type_unsupported.gguf", "tensor 'blk.0.attn_k.weight': unsupported type 7",
         types_over={"blk.0.attn_k.weight": Q.Q5_1})
    case("position_rows_one.gguf", "no room for [CLS] and [SEP]",
         tensor_over={"position_embd.weight": np.zeros((1, D), np.float32)})
    # weights that compute NaN or infinity: found by the first embedding, an error there
    nan_norm = np.ones(D, np.float32)
    nan_norm[3] = np.nan
    case("weight_nan.gguf", "non-finite", tensor_over={"blk.1.layer_output_norm.weight": nan_norm})
    big = np.full(D, 3e38, np.float32)
    case("weight_overflow.gguf", "non-finite", tensor_over={"token_embd_norm.bias": big})
    write(out / "q8_0_scale_inf.gguf")
    q = gguf.quants.quantize(tensors(np.random.default_rng(1234))["blk.0.ffn_down.weight"], Q.Q8_0)
    bad = q8_with_inf_scale(tensors(np.random.default_rng(1234))["blk.0.ffn_down.weight"])
    patch(out / "q8_0_scale_inf.gguf", q.tobytes()[:34], bad.tobytes()[:34])
    entries.append({"file": "q8_0_scale_inf.gguf", "kind": "model", "error": "non-finite"})

    (out / "manifest.json").write_text(json.dumps(entries, indent=1) + "\n")
    return entries


if __name__ == "__main__":
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "model"
    print(f"wrote {len(build(dest))} files to {dest}")
