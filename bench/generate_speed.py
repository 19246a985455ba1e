"""Text generation speed: quantann's decoder against llama.cpp (llama-cpp-python) on the
same GGUF: prefill tok/s, time to the first token and decode tok/s on the chat prompts of
the recorded reference, at 1 and 2 threads, and resident memory.

Each (contender, threads) measurement runs in its own process (clean RSS), pinned with
sched_setaffinity (1 thread: core 1; 2 threads: cores 0-1); contenders alternate within each
repeat; figures are medians over repeats x prompts.

    python bench/generate_speed.py [--model M.gguf] [--repeats 5] [--tokens 64] [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a hash table is in one sentence.",
    "List three fruits.",
    "How do I reverse a list in Python?",
]
# A ~320-token prompt, the size of `quantann ask`'s (a question over retrieved passages):
# its prefill is the first-token time there (issue 12). Prefill only, once per repeat.
LONG_PROMPT = ("Answer from these passages.\n" + " ".join(
    f"Passage {i}: The river valley was settled early because the soil was rich, the water "
    f"was close, and the hills gave shelter from the northern winds in winter." for i in range(9))
    + "\nQuestion: why was the valley settled early?")


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_quantann(model, threads, n_tokens, n_ctx):
    sys.path.insert(0, ROOT)
    import numpy as np
    from quantann.generate import Generator
    gen = Generator.open(model, threads=threads, n_ctx=n_ctx)
    dec = gen._dec
    prompts = [gen.tokenize(gen.render_chat([{"role": "user", "content": p}]), add_bos=False)
               for p in PROMPTS + [LONG_PROMPT]]
    prompts, long_ids = prompts[:-1], prompts[-1]
    dec.eval(np.asarray(prompts[0], np.int32))  # warm-up: the weights paged in, as on the llama.cpp side
    dec.rewind(0)
    t0 = time.perf_counter()
    dec.eval(np.asarray(long_ids, np.int32))
    long = {"prompt_tokens": len(long_ids), "prefill_tok_s": len(long_ids) / (time.perf_counter() - t0)}
    out = []
    for warm, ids in [(True, prompts[0])] + [(False, p) for p in prompts]:
        dec.rewind(0)
        t0 = time.perf_counter()
        lo = dec.eval(np.asarray(ids, np.int32))
        tok = int(lo.argmax())
        t1 = time.perf_counter()
        for _ in range(n_tokens):
            tok = int(dec.eval(np.asarray([tok], np.int32)).argmax())
        t2 = time.perf_counter()
        if not warm:
            out.append({"prompt_tokens": len(ids), "prefill_tok_s": len(ids) / (t1 - t0),
                        "first_token_ms": (t1 - t0) * 1000, "decode_tok_s": n_tokens / (t2 - t1)})
    return {"runs": out, "long": long, "rss": rss_bytes(), "kv_bytes": gen.kv_bytes,
            "file_bytes": os.path.getsize(gen.path)}


def run_llama(model, threads, n_tokens, n_ctx):
    import llama_cpp
    import numpy as np
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    llm = llama_cpp.Llama(model, n_ctx=n_ctx, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    toks = [llm.detokenize([i], special=True).decode() for i in (llm.token_bos(), llm.token_eos())]
    fmt = Jinja2ChatFormatter(llm.metadata["tokenizer.chat_template"], eos_token=toks[1], bos_token=toks[0])
    prompts = [llm.tokenize(fmt(messages=[{"role": "user", "content": p}]).prompt.encode(), add_bos=False, special=True)
               for p in PROMPTS + [LONG_PROMPT]]
    prompts, long_ids = prompts[:-1], prompts[-1]
    llm.eval(prompts[0])  # warm-up, as on the quantann side
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(long_ids)
    long = {"prompt_tokens": len(long_ids), "prefill_tok_s": len(long_ids) / (time.perf_counter() - t0)}
    out = []
    for warm, ids in [(True, prompts[0])] + [(False, p) for p in prompts]:
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t1 = time.perf_counter()
        for _ in range(n_tokens):
            llm.eval([tok])
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t2 = time.perf_counter()
        if not warm:
            out.append({"prompt_tokens": len(ids), "prefill_tok_s": len(ids) / (t1 - t0),
                        "first_token_ms": (t1 - t0) * 1000, "decode_tok_s": n_tokens / (t2 - t1)})
    return {"runs": out, "long": long, "rss": rss_bytes(), "version": llama_cpp.__version__}


def child(args):
    threads = args.threads[0]
    os.sched_setaffinity(0, {1} if threads == 1 else {0, 1})
    fn = run_quantann if args.contender == "quantann" else run_llama
    print(json.dumps(fn(args.model, threads, args.tokens, args.n_ctx)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF (default: the installed SmolLM2-135M-Instruct Q4_1)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64, help="greedy tokens decoded per prompt")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.model is None:
        sys.path.insert(0, ROOT)
        from quantann.generate import default_model_path
        args.model = default_model_path()
    if args.contender:
        return child(args)
    results = {}
    for rep in range(args.repeats):
        for t in args.threads:
            order = ["quantann", "llama.cpp"] if rep % 2 == 0 else ["llama.cpp", "quantann"]
            for c in order:
                cmd = [sys.executable, __file__, "--contender", c, "--model", args.model, "--threads", str(t),
                       "--tokens", str(args.tokens), "--n-ctx", str(args.n_ctx)]
                r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                results.setdefault(f"{c}/{t}", []).append(r)
                print(f"repeat {rep + 1}/{args.repeats} {c:9s} {t} thread(s): decode "
                      f"{statistics.median(x['decode_tok_s'] for x in r['runs']):.1f} tok/s", file=sys.stderr)
    print(f"model {os.path.basename(args.model)}, {args.tokens} decoded tokens per prompt, "
          f"{len(PROMPTS)} chat prompts x {args.repeats} repeats, medians")
    n_long = next(iter(results.values()))[0]["long"]["prompt_tokens"]
    print(f"| contender | threads | prefill tok/s | first token ms | decode tok/s | prefill tok/s, {n_long}-token prompt "
          f"| RSS MB |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for key, rs in results.items():
        runs = [x for r in rs for x in r["runs"]]
        med = {k: statistics.median(x[k] for x in runs) for k in ("prefill_tok_s", "first_token_ms", "decode_tok_s")}
        med["rss"] = statistics.median(r["rss"] for r in rs)
        med["long_prefill_tok_s"] = statistics.median(r["long"]["prefill_tok_s"] for r in rs)
        summary[key] = med
        c, t = key.split("/")
        print(f"| {c} | {t} | {med['prefill_tok_s']:.0f} | {med['first_token_ms']:.0f} | {med['decode_tok_s']:.1f} | "
              f"{med['long_prefill_tok_s']:.0f} | {med['rss'] / 1e6:.0f} |")
    for t in args.threads:
        q, l = summary.get(f"quantann/{t}"), summary.get(f"llama.cpp/{t}")
        if q and l:
            print(f"{t} thread(s): quantann / llama.cpp: decode {q['decode_tok_s'] / l['decode_tok_s']:.2f}x, "
                  f"prefill {q['prefill_tok_s'] / l['prefill_tok_s']:.2f}x "
                  f"({q['long_prefill_tok_s'] / l['long_prefill_tok_s']:.2f}x on the long prompt), first token "
                  f"{q['first_token_ms'] / l['first_token_ms']:.2f}x the time")
    q = results.get(f"quantann/{args.threads[0]}")
    if q:
        r = q[0]
        print(f"quantann RSS {r['rss'] / 1e6:.1f} MB vs file + KV + 20 MB = "
              f"{(r['file_bytes'] + r['kv_bytes']) / 1e6 + 20:.1f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
