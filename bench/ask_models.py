"""Two LLMs answering the same questions in one process, interleaved: first token (end to
end), prefill and decode tokens/s of each, and their ratio. A report, not a test.

    python bench/ask_models.py [--workdir DIR] [--questions 8] [--threads 2] [--max-tokens 32]
        [--llm B.gguf --chat-template bench/templates/completion.jinja --stop $'\\n\\n']
        [--json bench/results/ask-models.json]

Model A is the installed SmolLM2-135M-Instruct Q4_1 (its own chat template); model B is
--llm (default /work/models/gemma-3-270m-q4_k_m.gguf, or $QUANTANN_GEMMA), with the template
and stop texts given (a base model has none of its own). Questions: the first --questions of
bench/ask_quality.py's (seed 0) over the 100k text index in --workdir (ask_quality builds
it). Each question is asked of A then B, or B then A (alternating), each Generator warm
(a first question answered before timing: its system block is in the KV cache), pinned to
the first --threads cores.
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ask_quality import pin, prepare, questions  # noqa: E402
from quantann.ask import ask, open_generator  # noqa: E402


def main():
    from quantann.model.report import default_dataset
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default_dataset())
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "cache" / "ask")
    p.add_argument("--questions", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--llm", default=os.environ.get("QUANTANN_GEMMA", "/work/models/gemma-3-270m-q4_k_m.gguf"))
    p.add_argument("--chat-template", type=Path, default=ROOT / "bench" / "templates" / "completion.jinja")
    p.add_argument("--stop", action="append", default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    stop = a.stop if a.stop is not None else ["\n\n"]
    ti, rows = prepare(a.data, a.workdir)
    qs = [q for _, _, q in questions(rows, 500, 0)[0][:a.questions + 1]]
    pin(a.threads)
    gens = {"smollm2": (open_generator(None, threads=a.threads, n_ctx=2048), None),
            Path(a.llm).stem: (open_generator(a.llm, threads=a.threads, n_ctx=2048,
                                              chat_template=a.chat_template.read_text()), stop)}
    for g, s in gens.values():  # warm: each Generator's KV cache holds the system block
        ask(ti, qs[0], generator=g, max_tokens=1, stop=s)
    runs = {name: [] for name in gens}
    for j, q in enumerate(qs[1:]):
        for name in (list(gens) if j % 2 == 0 else list(gens)[::-1]):
            g, s = gens[name]
            t = ask(ti, q, generator=g, max_tokens=a.max_tokens, stop=s).timings
            runs[name].append(t)
            print(f"{name:28s} {q:34s} first token {t['first_token_ms']:7.0f} ms, prefill "
                  f"{(t['prompt_tokens'] - t['cached_tokens']) / max(t['prefill_ms'], 1e-9) * 1000:5.0f} tok/s, "
                  f"decode {t['decode_tok_s']:5.1f} tok/s", flush=True)
    out = {}
    for name, ts in runs.items():
        med = lambda f: statistics.median(f(t) for t in ts)  # noqa: E731
        out[name] = {"prompt_tokens": med(lambda t: t["prompt_tokens"]), "reused": med(lambda t: t["cached_tokens"]),
                     "first_token_ms": med(lambda t: t["first_token_ms"]),
                     "prefill_tok_s": med(lambda t: (t["prompt_tokens"] - t["cached_tokens"]) / t["prefill_ms"] * 1000),
                     "decode_tok_s": med(lambda t: t["decode_tok_s"]), "tokens": med(lambda t: t["tokens"])}
    a_name, b_name = list(runs)
    ratio = {k: out[b_name][k] / out[a_name][k] for k in ("first_token_ms", "prefill_tok_s", "decode_tok_s")}
    print(f"\n| model | prompt tokens | reused | first token ms | prefill tok/s | decode tok/s |\n|---|---|---|---|---|---|")
    for name, m in out.items():
        print(f"| {name} | {m['prompt_tokens']:.0f} | {m['reused']:.0f} | {m['first_token_ms']:.0f} | "
              f"{m['prefill_tok_s']:.0f} | {m['decode_tok_s']:.1f} |")
    print(f"{b_name} / {a_name}: first token {ratio['first_token_ms']:.2f}x the time, prefill "
          f"{ratio['prefill_tok_s']:.2f}x, decode {ratio['decode_tok_s']:.2f}x the speed "
          f"({a.questions} questions, {a.threads} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if a.json:
        a.json.write_text(json.dumps({"command": " ".join(sys.argv), "medians": out, "ratio": ratio,
                                      "loadavg": os.getloadavg(), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
