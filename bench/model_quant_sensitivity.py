"""Per-tensor Q4_0 sensitivity of MiniLM, and the greedy Q4_0/Q8_0 mix.

    python bench/model_quant_sensitivity.py sensitivity --out /tmp/sens.json
    python bench/model_quant_sensitivity.py mix --sens /tmp/sens.json

sensitivity: for each 2-D weight matrix, a file with only that matrix at Q4_0 (the rest F32)
is embedded over a calibration set (passages 0..N-1 of minilm-100k) and compared with the
F32 file (mean cosine drop). Also: every matrix Q4_0 (integer dots over Q8_0-quantized
activations) against every matrix Q4_0-dequantized stored as F32 (same weights, float
activations), to see what the activation quantization adds.

mix: promotes matrices to Q8_0 in order of cosine drop per extra byte, measuring a held-out
set (passages from --heldout-start, disjoint from the calibration set) after each step,
until the mean cosine reaches --target.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quantann.model import convert as cv  # noqa: E402
from quantann.model.embedder import Embedder  # noqa: E402
from quantann.jsonl import read_texts  # noqa: E402
from quantann.model.report import default_dataset  # noqa: E402


def passages(n, start):
    return read_texts(default_dataset() / "passages.jsonl", start=start, limit=n)


def load_weights():
    from safetensors.numpy import load_file

    return load_file(str(cv.default_source() / "model.safetensors"))


def matrices(weights):
    """GGUF names of the matrices the converter quantizes, with their element counts."""
    out = {}
    for hf, a in weights.items():
        name = cv.gguf_tensor_name(hf)
        if name and a.ndim == 2 and not name.startswith(("position_embd", "token_types")):
            out[name] = int(a.size)
    return out


def embed(path, texts, threads, max_tokens=128):
    with Embedder.open(path, n_threads=threads, max_tokens=max_tokens) as m:
        return m.embed(texts)


def build(tmp, tag, weights, type_name, overrides=None, w=None):
    p = Path(tmp) / f"{tag}.gguf"
    cv.convert(None, p, type_name, tensor_types=overrides, weights=w or weights)
    return p


def cmd_sensitivity(a):
    weights = load_weights()
    mats = matrices(weights)
    texts = passages(a.n, a.start)
    res = {"n": a.n, "start": a.start, "tensors": {}}
    with tempfile.TemporaryDirectory(dir=a.tmp) as tmp:
        ref = embed(build(tmp, "f32", weights, "f32"), texts, a.threads)
        for what in ("q4_0-pure", "q8_0"):
            e = embed(build(tmp, what, weights, what), texts, a.threads)
            c = (e * ref).sum(1)
            res[what] = [float(c.mean()), float(c.min())]
            print(what, res[what], flush=True)
        # same Q4_0 weights, float activations: dequantize into an F32 file
        import gguf
        dq = {}
        for hf, arr in weights.items():
            name = cv.gguf_tensor_name(hf)
            if name in mats:
                blocks = cv.quantize_q4_0(np.ascontiguousarray(arr, dtype=np.float32))
                arr = gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType.Q4_0).reshape(arr.shape)
            dq[hf] = arr
        e = embed(build(tmp, "q4dq", weights, "f32", w=dq), texts, a.threads)
        c = (e * ref).sum(1)
        res["q4_0_weights_f32_activations"] = [float(c.mean()), float(c.min())]
        print("q4 weights x f32 activations", res["q4_0_weights_f32_activations"], flush=True)
        for name, size in sorted(mats.items()):
            t0 = time.perf_counter()
            p = build(tmp, "one", weights, "f32", {name: "q4_0"})
            c = (embed(p, texts, a.threads) * ref).sum(1)
            res["tensors"][name] = {"elements": size, "cos_mean": float(c.mean()), "cos_min": float(c.min()),
                                    "drop": float(1 - c.mean())}
            print(f"{name:28s} {size:9d} drop {1 - c.mean():.5f} min {c.min():.4f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
            os.unlink(p)
    Path(a.out).write_text(json.dumps(res, indent=1))


def cmd_mix(a):
    sens = json.loads(Path(a.sens).read_text())["tensors"]
    weights = load_weights()
    texts = passages(a.n, a.heldout_start)
    # extra bytes at Q8_0 vs Q4_0: 34 - 18 bytes per 32 elements
    order = sorted(sens, key=lambda k: -sens[k]["drop"] / (sens[k]["elements"] / 2))
    if a.by_drop:
        order = sorted(sens, key=lambda k: -sens[k]["drop"])
    steps = []
    with tempfile.TemporaryDirectory(dir=a.tmp) as tmp:
        ref = embed(build(tmp, "f32", weights, "f32"), texts, a.threads)
        chosen = []
        i = a.first - 1 if a.first else 0
        chosen = order[:i]
        while True:
            ov = {k: "q8_0" for k in chosen}
            p = build(tmp, "mix", weights, "q4_0-pure", ov)
            c = (embed(p, texts, a.threads) * ref).sum(1)
            steps.append({"q8_0": list(chosen), "bytes": os.path.getsize(p), "cos_mean": float(c.mean()),
                          "cos_min": float(c.min())})
            print(f"{len(chosen):2d} +{chosen[-1] if chosen else '-':28s} {os.path.getsize(p) / 1e6:6.2f} MB "
                  f"mean {c.mean():.5f} min {c.min():.4f}", flush=True)
            if c.mean() >= a.target or i >= len(order):
                break
            chosen = order[:i + a.step]
            i += a.step
    Path(a.out).write_text(json.dumps({"order": order, "steps": steps}, indent=1))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(required=True)
    s = sub.add_parser("sensitivity")
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--out", default="/tmp/model_sens.json")
    s.set_defaults(func=cmd_sensitivity)
    m = sub.add_parser("mix")
    m.add_argument("--sens", default="/tmp/model_sens.json")
    m.add_argument("--n", type=int, default=300)
    m.add_argument("--heldout-start", type=int, default=5000)
    m.add_argument("--target", type=float, default=0.99)
    m.add_argument("--step", type=int, default=2)
    m.add_argument("--first", type=int, default=0, help="start with this many promoted")
    m.add_argument("--by-drop", action="store_true", help="order by drop, not drop per byte")
    m.add_argument("--out", default="/tmp/model_mix.json")
    m.set_defaults(func=cmd_mix)
    for p in (s, m):
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--tmp", default=None)
    a = ap.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
