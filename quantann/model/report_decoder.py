"""Precision report for decoder LLMs (quantann model-report on a llama / qwen2 / phi3 /
gemma3 GGUF): what quantization costs, layer by layer.

The reference is the same weights in F32 (the kernel converts every matrix of the file in
memory), or --reference FILE (e.g. an unquantized original of the model). Over the tokens
of a text, evaluated as one context:
- the whole quantized model: the relative L2 error of the residual stream after each layer
  against the reference's, and the next-token KL divergence KL(reference || model) and top-1
  agreement at every position;
- each weight group alone (the token embeddings, each layer's matrices, the output matrix):
  the reference with only that group taken from the quantized file, against the reference:
  what that group's quantization costs by itself.
The kernel computes (Decoder.to_f32 / take_weights / hidden_states); this module compares.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

from ..errors import FormatError, QuantannError
from ..jsonl import read_texts

DECODER_ARCHS = ("llama", "qwen2", "phi3", "gemma3")
N_BATCH = 64


def is_decoder(path) -> bool:
    """True when the GGUF's general.architecture is one of the decoder LLMs."""
    from ..gguf_file import GGUFFile
    return GGUFFile(path).get("general.architecture") in DECODER_ARCHS


def _open(path, threads):
    from .. import _model
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise FormatError(f"{path}: not a GGUF file: the file is empty")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return _model.Decoder(mm, threads), mm
    except _model.UnsupportedError as e:
        raise QuantannError(f"{path}: {e}") from None
    except ValueError as e:
        raise FormatError(f"{path}: {e}") from None


def default_text(dataset=None) -> tuple[str, str]:
    """(text, where it is from): every 97th minilm-100k passage (a mix of its sources)."""
    from .report import default_dataset
    ds = Path(dataset) if dataset else default_dataset()
    if ds is None or not (ds / "passages.jsonl").exists():
        raise FileNotFoundError("no text: pass --text FILE, or --dataset (minilm-100k, passages.jsonl)")
    texts = read_texts(ds / "passages.jsonl", limit=40000)[::97]
    return "\n\n".join(texts), f"{ds / 'passages.jsonl'} (every 97th passage)"


def _ids(dec, mm, text: str, n_tokens: int) -> list[int]:
    from .. import _model
    ids = _model.Tokenizer(mm).encode(text, add_special=False, parse_special=False)
    bos = dec.metadata("tokenizer.ggml.bos_token_id")
    if bos is not None and dec.metadata("tokenizer.ggml.add_bos_token"):
        ids = [int(bos)] + ids
    if len(ids) < 2:
        raise ValueError(f"the text has {len(ids)} token(s); at least 2 are needed")
    return ids[:n_tokens]


def _log_softmax(lo: np.ndarray) -> np.ndarray:
    lo = lo.astype(np.float64)
    m = lo.max(1, keepdims=True)
    return lo - m - np.log(np.exp(lo - m).sum(1, keepdims=True))


def next_token_stats(ref_lp: np.ndarray, lo: np.ndarray) -> dict:
    """KL(reference || model) per position (mean, max) and top-1 agreement of logits lo
    against the reference's log-probabilities, both (positions, n_vocab)."""
    lp = _log_softmax(lo)
    kl = (np.exp(ref_lp) * (ref_lp - lp)).sum(1)
    return {"kl": float(kl.mean()), "kl_max": float(kl.max()),
            "top1": float((lp.argmax(1) == ref_lp.argmax(1)).mean())}


def _perplexity(lp: np.ndarray, ids) -> float:
    return float(np.exp(-lp[np.arange(len(ids) - 1), ids[1:]].mean()))


def run(model, reference=None, text: str | None = None, text_source: str | None = None, dataset=None,
        n_tokens: int = 256, threads: int | None = None, groups: bool = True, progress=print) -> dict:
    """Builds the report of one decoder GGUF as a dict (see format_markdown)."""
    if not isinstance(n_tokens, int) or n_tokens < 2:
        raise ValueError(f"tokens must be an integer >= 2, got {n_tokens!r}")
    threads = threads or min(4, os.cpu_count() or 1)
    q, qmm = _open(model, threads)
    if text is None:
        text, text_source = default_text(dataset)
    ids = _ids(q, qmm, text, n_tokens)
    r, _ = _open(reference if reference is not None else model, threads)
    if reference is None:
        progress(f"F32 reference of the same weights: {r.to_f32() / 1e6:.0f} MB")
    info = q.info()
    for key in ("arch", "n_layer", "n_embd", "n_vocab"):
        if r.info()[key] != info[key]:
            raise ValueError(f"{reference}: not the same model as {model} ({key} {r.info()[key]} vs {info[key]})")
    q.start(len(ids), N_BATCH)
    r.start(len(ids), N_BATCH)
    progress(f"{len(ids)} tokens through the quantized model and the reference")
    lq, hq = q.hidden_states(ids)
    lr, hr = r.hidden_states(ids)
    ref_lp = _log_softmax(lr)
    rep = {"model": os.fspath(model), "reference": os.fspath(reference) if reference else "F32 of the same weights",
           "arch": info["arch"], "embd_type": info["embd_type"], "ffn_type": info["ffn_type"],
           "n_layer": info["n_layer"], "tied": info["tied"], "n_tokens": len(ids), "text": text_source or "(given)",
           "model_file_bytes": os.path.getsize(model),
           "whole": dict(next_token_stats(ref_lp, lq), ppl=_perplexity(_log_softmax(lq), ids),
                         ppl_reference=_perplexity(ref_lp, ids)),
           "layers": [], "groups": []}
    for layer in range(info["n_layer"]):
        d = hq[layer].astype(np.float64) - hr[layer]
        rep["layers"].append({"layer": layer, "rel_l2": float(np.linalg.norm(d) / np.linalg.norm(hr[layer]))})
    if groups:
        names = ["token_embd"] + list(range(info["n_layer"])) + ([] if info["tied"] else ["output"])
        for g in names:
            progress(f"group {g}: quantized alone")
            r.take_weights(q, g)
            lo, _ = r.hidden_states(ids)
            r.take_weights(None, g)
            label = f"blk.{g}" if isinstance(g, int) else g + (" (+ output, tied)" if g == "token_embd" and info["tied"] else "")
            rep["groups"].append(dict(next_token_stats(ref_lp, lo), group=label))
    return rep


def format_markdown(rep: dict) -> str:
    w = rep["whole"]
    L = [f"{Path(rep['model']).name} ({rep['arch']}, token_embd {rep['embd_type']}, blk.0 ffn_down {rep['ffn_type']}, "
         f"{rep['model_file_bytes'] / 1e6:.1f} MB) against {rep['reference']}",
         f"text: {rep['text']}, {rep['n_tokens']} tokens in one context",
         "",
         "| whole model | KL mean | KL max | top-1 agreement | perplexity | reference perplexity |",
         "|---|---:|---:|---:|---:|---:|",
         f"| all weights quantized | {w['kl']:.5f} | {w['kl_max']:.4f} | {w['top1']:.4f} | {w['ppl']:.3f} | "
         f"{w['ppl_reference']:.3f} |"]
    alone = {g["group"]: g for g in rep["groups"]}
    L += ["", "| layer | residual rel. L2 error (whole model) | KL, this layer alone | top-1, this layer alone |",
          "|---|---:|---:|---:|"]
    for s in rep["layers"]:
        g = alone.get(f"blk.{s['layer']}")
        L.append(f"| blk.{s['layer']} | {s['rel_l2']:.5f} | " +
                 (f"{g['kl']:.6f} | {g['top1']:.4f} |" if g else "| |"))
    for g in rep["groups"]:
        if not g["group"].startswith("blk."):
            L.append(f"| {g['group']} | | {g['kl']:.6f} | {g['top1']:.4f} |")
    return "\n".join(L)


def plot(reports: list, path) -> None:
    """The per-layer figures of each report in one figure (PNG, SVG or PDF by suffix)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    for rep in reports:
        name = f"{Path(rep['model']).name}"
        layers = [s["layer"] for s in rep["layers"]]
        ax[0].plot(layers, [s["rel_l2"] for s in rep["layers"]], marker="o", ms=3, label=name)
        per = [g for g in rep["groups"] if g["group"].startswith("blk.")]
        ax[1].plot([int(g["group"][4:]) for g in per], [g["kl"] for g in per], marker="o", ms=3, label=name)
        ax[2].plot([int(g["group"][4:]) for g in per], [g["top1"] for g in per], marker="o", ms=3, label=name)
    ax[0].set_ylabel("residual rel. L2 error\n(whole model quantized)")
    ax[1].set_ylabel("next-token KL\n(this layer alone)")
    ax[1].set_yscale("log")
    ax[2].set_ylabel("top-1 agreement\n(this layer alone)")
    ax[2].set_xlabel("layer")
    ax[0].set_title("quantization cost per layer, against the reference")
    for a in ax:
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
