"""Small synthetic-weight GGUFs of real decoder layouts, for the architectures and tensor
types that have no real weights here. Deterministic: the same spec gives the same bytes,
so tests/data/make_llama_reference.py records llama.cpp on a file the tests rebuild.

The vocabulary (byte-level BPE) is SmolLM2's, copied from the installed model, so llama.cpp
loads the files and both sides read the same token ids.
"""
import numpy as np

import gguf
from gguf import GGMLQuantizationType as T

Q4K, Q6K, Q5_0, Q4_0, Q4_1, Q8_0, F16, F32 = T.Q4_K, T.Q6_K, T.Q5_0, T.Q4_0, T.Q4_1, T.Q8_0, T.F16, T.F32
MATS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
PHI3_MATS = ("attn_qkv", "attn_output", "ffn_up", "ffn_down")  # fused q/k/v rows, gate+up rows

SPECS = {
    # K-quants as a Q4_K_M file mixes them, a separate Q6_K output matrix
    "llama-kquants": dict(arch="llama", d=256, ff=768, n_head=4, n_kv=2, layers=2,
                          types=dict(attn_q=Q4K, attn_k=Q4K, attn_v=Q6K, attn_output=Q4K, ffn_gate=Q4K,
                                     ffn_up=Q4K, ffn_down=Q6K), output=Q6K),
    # the Q4_K_M fallback type for rows that are not a multiple of 256
    "llama-q5_0": dict(arch="llama", d=192, ff=512, n_head=3, n_kv=1, layers=2,
                       types={m: Q5_0 for m in MATS}, output=Q8_0),
    # qwen2: q/k/v biases, neox RoPE, tied embeddings
    "qwen2": dict(arch="qwen2", d=192, ff=512, n_head=6, n_kv=2, layers=2,
                  types={m: Q4_1 for m in MATS}, output=None),
    # the float types and Q4_0 (q/k/v of mixed activation types: no shared matmul group)
    "llama-floats-q4_0": dict(arch="llama", d=128, ff=384, n_head=4, n_kv=2, layers=2,
                              types=dict(attn_q=F32, attn_k=F16, attn_v=F16, attn_output=F32, ffn_gate=Q4_0,
                                         ffn_up=Q4_0, ffn_down=F16), output=F16),
    # phi3 (Phi-3-mini's layout at small size, with grouped kv heads as Phi-3-medium):
    # fused attn_qkv and ffn_up of 2 x ff rows, neox RoPE, the sliding window phi3 files
    # declare (llama.cpp ignores it), tied output
    "phi3": dict(arch="phi3", d=256, ff=512, n_head=4, n_kv=2, layers=2, swa=64,
                 types=dict(attn_qkv=Q4K, attn_output=Q8_0, ffn_up=Q4_0, ffn_down=Q6K), output=None),
    # phi3 with LongRoPE (Phi-3-*-128k, Phi-3.5): frequency factors, long ones beyond the
    # original context (the reference's 257 positions here), short ones within it, and the
    # attention factor that scales every rotation
    "phi3-longrope-long": dict(arch="phi3", d=256, ff=512, n_head=4, n_kv=4, layers=2, longrope=(128, 1.19),
                               types=dict(attn_qkv=Q8_0, attn_output=Q8_0, ffn_up=Q8_0, ffn_down=Q8_0), output=Q8_0),
    # Llama 3.x's rope_freqs.weight (its "llama3" RoPE scaling: long wavelengths slowed down)
    "llama3-rope-freqs": dict(arch="llama", d=256, ff=512, n_head=4, n_kv=2, layers=2, rope_freqs=True,
                              types={m: Q8_0 for m in MATS}, output=Q8_0),
    # gemma3 (gemma-3-270m's layout at small size): q/k RMSNorm per head, norms after
    # attention and feed-forward, GELU gate, sqrt(width) embedding scale, a sliding window
    # (64 of the 257 reference positions) on 5 of every 6 layers with RoPE base 10000 and
    # base 1e6 on the 6th, tied output; the Q4_K_M mix of types
    "gemma3": dict(arch="gemma3", d=256, ff=512, n_head=4, n_kv=1, layers=6, swa=64, freq_base=1e6,
                   types=dict(attn_q=Q5_0, attn_k=Q5_0, attn_v=Q8_0, attn_output=Q4K, ffn_gate=Q5_0,
                              ffn_up=Q5_0, ffn_down=Q6K), output=None),
    "phi3-longrope-short": dict(arch="phi3", d=256, ff=512, n_head=4, n_kv=4, layers=2, longrope=(4096, 1.19),
                                types=dict(attn_qkv=Q8_0, attn_output=Q8_0, ffn_up=Q8_0, ffn_down=Q8_0), output=Q8_0),
}


def _k_blocks(t, n_out, n_in, rng, gain=1.0):
    """Random K-quant blocks with scales that give weights of about +-0.1 * gain."""
    nb = n_in // 256
    if t == Q4K:
        b = rng.integers(0, 256, size=(n_out, nb, 144), dtype=np.uint8)
        b[..., 0:2] = np.frombuffer(np.full(n_out * nb, 4e-4 * gain, np.float16).tobytes(), np.uint8).reshape(n_out, nb, 2)
        b[..., 2:4] = np.frombuffer((rng.uniform(1e-4, 3e-3, n_out * nb) * gain).astype(np.float16).tobytes(),
                                    np.uint8).reshape(n_out, nb, 2)
    else:
        b = rng.integers(0, 256, size=(n_out, nb, 210), dtype=np.uint8)
        b[..., 208:210] = np.frombuffer((rng.uniform(2e-5, 6e-5, n_out * nb) * gain).astype(np.float16).tobytes(),
                                        np.uint8).reshape(n_out, nb, 2)
    return b.reshape(n_out, -1)


def write(name, path, vocab):
    """Writes spec `name` to path. vocab: dict of SmolLM2's tokenizer metadata
    (tokens, token_type, merges, bos, eos)."""
    s = SPECS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    d, ff, nh, nkv = s["d"], s["ff"], s["n_head"], s["n_kv"]
    hd = d // nh
    nv = len(vocab["tokens"])
    w = gguf.GGUFWriter(str(path), s["arch"])
    w.add_block_count(s["layers"])
    w.add_context_length(2048)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(s.get("freq_base", 10000.0))
    if "swa" in s:
        w.add_sliding_window(s["swa"])
        if s["arch"] == "phi3":
            w.add_rope_scaling_orig_ctx_len(2048)
    if s.get("rope_freqs"):  # factor 1 for the short wavelengths, up to 8 for the long ones
        half = d // nh // 2
        w.add_tensor("rope_freqs.weight", np.clip(np.geomspace(0.25, 16.0, half), 1.0, 8.0).astype(np.float32))
    if "longrope" in s:
        w.add_rope_scaling_orig_ctx_len(s["longrope"][0])
        w.add_rope_scaling_attn_factors(s["longrope"][1])
        half = d // nh // 2  # a factor per rotated pair, growing with the wavelength as in Phi-3's
        w.add_tensor("rope_factors_long.weight", np.geomspace(1.0, 40.0, half).astype(np.float32))
        w.add_tensor("rope_factors_short.weight", (1.0 + 0.2 * np.linspace(0, 1, half) ** 2).astype(np.float32))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["token_type"])
    w.add_token_merges(vocab["merges"])
    w.add_bos_token_id(vocab["bos"])
    w.add_eos_token_id(vocab["eos"])
    w.add_add_bos_token(False)

    def mat(tname, n_in, n_out, t, scale):
        if t in (Q4K, Q6K):  # scale relative to 1/sqrt(n_in)
            w.add_tensor(tname, _k_blocks(t, n_out, n_in, rng, scale * np.sqrt(n_in)), raw_dtype=t)
        else:
            x = (rng.normal(size=(n_out, n_in)) * scale).astype(np.float32)
            if t in (F32, F16):
                w.add_tensor(tname, x.astype(np.float16 if t == F16 else np.float32))
            else:
                w.add_tensor(tname, gguf.quants.quantize(x, t), raw_dtype=t)

    def vec(tname, n, center, scale):
        w.add_tensor(tname, (center + rng.normal(size=n) * scale).astype(np.float32))

    mat("token_embd.weight", d, nv, Q8_0, 1.0)
    vec("output_norm.weight", d, 1.0, 0.1)
    if s["output"] is not None:
        mat("output.weight", d, nv, s["output"], 8.0 / np.sqrt(d))  # peaked next-token distributions
    dims = dict(attn_q=(d, d), attn_k=(d, nkv * hd), attn_v=(d, nkv * hd), attn_output=(d, d),
                ffn_gate=(d, ff), ffn_up=(d, ff), ffn_down=(ff, d))
    if s["arch"] == "phi3":
        dims.update(attn_qkv=(d, d + 2 * nkv * hd), ffn_up=(d, 2 * ff))
    for i in range(s["layers"]):
        vec(f"blk.{i}.attn_norm.weight", d, 1.0, 0.1)
        vec(f"blk.{i}.ffn_norm.weight", d, 1.0, 0.1)
        for m in (PHI3_MATS if s["arch"] == "phi3" else MATS):
            n_in, n_out = dims[m]
            mat(f"blk.{i}.{m}.weight", n_in, n_out, s["types"][m], 1.0 / np.sqrt(n_in))
        if s["arch"] == "gemma3":
            for m, n in (("attn_q_norm", hd), ("attn_k_norm", hd), ("post_attention_norm", d), ("post_ffw_norm", d)):
                vec(f"blk.{i}.{m}.weight", n, 1.0, 0.1)
        if s["arch"] == "qwen2":
            for m, n in (("attn_q", d), ("attn_k", nkv * hd), ("attn_v", nkv * hd)):
                vec(f"blk.{i}.{m}.bias", n, 0.0, 0.5)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def smollm2_vocab(dec):
    """The tokenizer metadata of an open quantann._model.Decoder of SmolLM2."""
    return dict(tokens=[t.decode("utf-8") for t in dec.metadata("tokenizer.ggml.tokens")],
                token_type=[int(x) for x in dec.metadata("tokenizer.ggml.token_type")],
                merges=[m.decode("utf-8") for m in dec.metadata("tokenizer.ggml.merges")],
                bos=int(dec.metadata("tokenizer.ggml.bos_token_id")),
                eos=int(dec.metadata("tokenizer.ggml.eos_token_id")))
