"""The lexical index (kernel/text/lexical.c): terms, BM25 held to a Python reference, its
tensors in INDEX.texts (old stores still open, corrupt ones refused), reciprocal rank
fusion, and hybrid search beating vector search on rare-word questions over real passages."""
import gzip
import json
import math
import sys

import numpy as np
import pytest

import quantann
from quantann import _kernel
from quantann.constants import LEXICAL
from quantann.demo import BUILTIN
from quantann.gguf_file import GGUFFile
from quantann.text import LEX_TENSORS, TextIndex, TextStore, sidecar
from quantann.constants import TEXT_STORE as T

from bench.ask_quality import questions

terms = _kernel.Lexical.terms


@pytest.fixture(scope="module")
def rows():
    """The first 10,000 minilm-100k passages ({"src", "id", "text"}) and their vectors."""
    with gzip.open(BUILTIN / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(ln) for ln in f], np.load(BUILTIN / "vectors.npy")


def test_terms():
    assert terms("Hello, World! it's 2x2=4") == [b"hello", b"world", b"it", b"s", b"2x2", b"4"]
    # ASCII and Latin-1 capitals folded; other letters kept; punctuation splits
    assert terms("ÉCOLE Straße naïve ÀÞ×") == ["école".encode(), "straße".encode(), "naïve".encode(),
                                               "àþ×".encode()]
    assert terms("日本語 テキスト") == ["日本語".encode(), "テキスト".encode()]
    # cut at max_term_bytes, at a character boundary
    m = int(LEXICAL["max_term_bytes"])
    assert terms("a" * (m + 9)) == [b"a" * m]
    cut = terms("é" * m)[0]
    assert len(cut) == m and cut.decode("utf-8") == "é" * (m // 2)
    assert terms("   ,.;  ") == []


def _bm25_reference(docs, query, k):
    """BM25 (k1, b of constants.json) in plain Python over the kernel's terms."""
    k1, b = LEXICAL["k1"], LEXICAL["b"]
    toks = [terms(d) for d in docs]
    lens = [min(len(t), 65535) for t in toks]
    avg = sum(lens) / len(docs)
    df = {}
    for t in toks:
        for w in set(t):
            df[w] = df.get(w, 0) + 1
    scores = np.zeros(len(docs))
    found = [w for w in sorted(set(terms(query))) if w in df]
    common = LEXICAL["common_df"] * len(docs)  # FORMAT.md: common terms count only when all are
    rare = [w for w in found if df[w] <= common]
    for w in rare or found:
        idf = math.log(1 + (len(docs) - df[w] + 0.5) / (df[w] + 0.5))
        for i, t in enumerate(toks):
            f = t.count(w)
            if f:
                scores[i] += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * lens[i] / avg))
    order = sorted((i for i in range(len(docs)) if scores[i] > 0), key=lambda i: (-scores[i], i))[:k]
    return order, scores[order]


def _lexical(docs):
    enc = [d.encode("utf-8") for d in docs]
    off = np.zeros(len(enc) + 1, np.uint64)
    off[1:] = np.cumsum([len(e) for e in enc])
    return _kernel.Lexical(len(docs), *_kernel.lex_build(b"".join(enc) + b"\0", off))


def test_bm25_matches_reference(rows):
    docs = [r["text"] for r in rows[0][:1500]]
    lx = _lexical(docs)
    assert lx.info["documents"] == 1500
    for q in ["What is an eschar?", "python function returns a string", "Firefox ESR language package",
              "no such wordzzz", "the of a"]:
        pos, sc = lx.search(q, 10)
        pos, sc = np.frombuffer(pos, np.uint32), np.frombuffer(sc, np.float32)
        want, want_sc = _bm25_reference(docs, q, 10)
        np.testing.assert_allclose(sc, want_sc, rtol=2e-5)
        # the same documents; near-equal scores may swap order only within float32 rounding
        assert sorted(pos.tolist()) == sorted(want) or np.allclose(sc[-1], sc[-2], rtol=1e-5)
        assert pos.tolist()[:3] == want[:3] or not len(want)


def test_rrf_fuse_matches_reference():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.choice(60, rng.integers(0, 30), replace=False).astype(np.uint64)
        b = rng.choice(60, rng.integers(0, 30), replace=False).astype(np.uint64)
        wa, wb, rk, k = 1.0, float(rng.uniform(0.5, 2)), 60.0, int(rng.integers(1, 40))
        ids, sc = _kernel.rrf_fuse(a, b, wa, wb, rk, k)
        ids, sc = np.frombuffer(ids, np.uint64), np.frombuffer(sc, np.float64)
        ra = {int(x): r for r, x in enumerate(a)}
        rb = {int(x): r for r, x in enumerate(b)}
        score = {x: (wa / (rk + ra[x] + 1) if x in ra else 0) + (wb / (rk + rb[x] + 1) if x in rb else 0)
                 for x in set(ra) | set(rb)}
        big = 1 << 40
        want = sorted(score, key=lambda x: (-score[x], ra.get(x, big), rb.get(x, big)))[:k]
        assert ids.tolist() == want
        np.testing.assert_allclose(sc, [score[x] for x in want])


def _store(tmp_path, texts, lexical=True):
    path = tmp_path / "s.texts"
    TextStore.write(path, dict(enumerate(texts)), None, lexical=lexical)
    return path


def test_store_tensors_memory_and_old_stores(tmp_path):
    texts = ["apple river", "banana ocean", "apple apple kernel"]
    st = TextStore(_store(tmp_path, texts))
    ids, sc = st.lexical_search("Apple", 5)
    assert ids.tolist() == [2, 0] and sc[0] > sc[1] > 0
    f = GGUFFile(st.path)
    assert st.memory()["lexical"] == sum(f.tensors[T[key]][3] for key, _, _ in LEX_TENSORS)
    old = TextStore(_store(tmp_path, texts, lexical=False))  # a store as written before the lexical index
    assert old.lexical is None and old.memory()["lexical"] == 0 and old.get([1]) == ["banana ocean"]
    with pytest.raises(ValueError, match="no lexical index"):
        old.lexical_search("apple", 3)


def _corrupt(path, tensor, at, value):
    _, _, offset, nbytes = GGUFFile(path).tensors[tensor]
    data = bytearray(open(path, "rb").read())
    data[offset + at] = value
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("tensor,at,value,msg", [
    (T["lex_postings"], 0, 0xFF, "postings"),          # a varint running past its list
    (T["lex_term_offsets"], 4, 0xFF, "term"),          # a term beyond the term bytes
    (T["lex_df"], 0, 0x7F, "frequency|postings"),      # more documents than its list holds
    (T["lex_terms"], 0, ord("z"), "order"),            # terms out of order
])
def test_corrupt_lexical_index_is_a_format_error(tmp_path, tensor, at, value, msg):
    path = _store(tmp_path, ["apple river ocean", "banana ocean", "kernel graph apple"])
    _corrupt(path, tensor, at, value)
    with pytest.raises(quantann.FormatError, match=msg):
        TextStore(path)



@pytest.fixture(scope="module")
def passages_index(rows, tmp_path_factory):
    sys.path.insert(0, str(BUILTIN.parent.parent.parent / "tests"))
    from test_model_helpers import model_path
    texts, x = [r["text"] for r in rows[0]], rows[1]
    ti = TextIndex.create(model_path("q8_0"))
    ti.add_texts(texts, vectors=x)
    path = tmp_path_factory.mktemp("lexical") / "p.qann"
    ti.save(path)
    return TextIndex.open(path), rows[0]


def test_hybrid_beats_vectors_on_rare_word_questions(passages_index):
    """Over 10,000 real passages, 120 questions (fixed seed): the fused search finds the gold
    gloss in its top 5 more often than the vector search, and on the words MiniLM splits
    into pieces too."""
    ti, rows = passages_index
    qs, _ = questions(rows, 120, seed=1)  # as bench/ask_quality.py asks them
    vecs = ti.embedder.embed([q for _, _, q in qs])
    hv = hh = 0
    rare_v = rare_h = rare = 0
    for (g, w, q), v in zip(qs, vecs):
        vid, _ = ti.search_ids(v, q, k=5)
        hid, hd = ti.search_ids(v, q, k=5, hybrid=True)
        inv = g in ti.rows(vid).tolist()
        inh = g in ti.rows(hid).tolist()
        hv, hh = hv + inv, hh + inh
        if len(ti.embedder.tokenize(w)) > 3:  # [CLS] word [SEP]: more than one piece
            rare, rare_v, rare_h = rare + 1, rare_v + inv, rare_h + inh
        # the distances stay the vector distances (exact), whatever list a passage came from
        want = 1 - ti._distances(v, hid.tolist())[0]
        assert abs((1 - hd[0]) - want) < 1e-3
    assert rare >= 30
    assert hh > hv and hh / len(qs) >= 0.9, (hv, hh, rare_v, rare_h, rare)
    assert rare_h > rare_v, (rare_v, rare_h, rare)


def test_search_text_hybrid_and_lexical(passages_index):
    ti, rows = passages_index
    g = next(i for i, r in enumerate(rows) if r["text"].startswith("eschar:"))
    hits = ti.search_text("What is an eschar?", k=5, hybrid=True)
    assert hits[0][0] == g and hits[0][2] == rows[g]["text"]
    lex = ti.lexical_search("eschar", 3)
    assert lex[0][0] == g and lex[0][1] > 0
    mem = ti.memory()
    assert mem["lexical"] == ti._stored.lexical_bytes and mem["total"] == sum(
        v for key, v in mem.items() if key != "total")
    with pytest.raises(ValueError, match="k must be"):
        ti.lexical_search("eschar", 0)


def test_hybrid_without_lexical_index(rows, tmp_path):
    class RowEmbedder:
        dim = 384
        path = None

        def embed(self, texts):
            return rows[1][[int(t.split()[1]) for t in texts]].astype(np.float32)
    ti = TextIndex.create(RowEmbedder(), lexical=False)
    ti.add_texts([r["text"] for r in rows[0][:200]], vectors=rows[1][:200])
    ti.save(tmp_path / "n.qann")
    ti = TextIndex.open(tmp_path / "n.qann", model=RowEmbedder())
    assert not ti.has_lexical and "lexical" not in ti.memory()
    assert ti.search_text("row 7", k=1)[0][0] == 7
    with pytest.raises(ValueError, match="no lexical index"):
        ti.search_text("row 7", k=1, hybrid=True)
    from quantann.ask import retrieve
    sources, _ = retrieve(ti, "row 7", k=2)  # hybrid=None: vectors only when there is no lexical index
    assert sources[0].row == 7


def _cli(*args):
    """quantann.cli.main in this process; (exit status, stdout + the error message)."""
    import contextlib
    import io
    from quantann.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:
            if not isinstance(e.code, str):
                raise
            return 1, e.code
    return rc or 0, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def cli_data(rows, tmp_path_factory):
    d = tmp_path_factory.mktemp("lexical-cli")
    np.save(d / "v.npy", rows[1][:300])
    (d / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[0][:300]), encoding="utf-8")
    return d


def test_cli_build_search_hybrid(cli_data, rows):
    from test_model_helpers import model_path
    d = cli_data
    assert _cli("build", d / "v.npy", "--texts", d / "p.jsonl", "--model", model_path("q8_0"), "-o", d / "h.qann",
                "-q")[0] == 0
    assert TextStore(sidecar(d / "h.qann")).lexical is not None
    assert _cli("build", d / "v.npy", "--texts", d / "p.jsonl", "--model", model_path("q8_0"), "-o", d / "n.qann",
                "-q", "--no-lexical")[0] == 0
    assert TextStore(sidecar(d / "n.qann")).lexical is None
    g = next(i for i, r in enumerate(rows[0][:300]) if r["text"].startswith("eschar:"))
    rc, out = _cli("search", d / "h.qann", "--text", "What is an eschar?", "--hybrid", "-k", "3", "--json")
    assert rc == 0 and json.loads(out)[0]["id"] == g
    rc, msg = _cli("search", d / "n.qann", "--text", "What is an eschar?", "--hybrid")
    assert rc == 1 and "no lexical index" in msg
    rc, msg = _cli("search", d / "h.qann", "--queries", d / "v.npy", "--hybrid")
    assert rc == 1 and "needs a text query" in msg


def test_service_hybrid_field(cli_data, rows):
    pytest.importorskip("uvicorn")
    from test_model_helpers import model_path
    from test_serve import Running, call
    from quantann.model.embedder import Embedder
    from quantann.service.generation import parse_ask
    from quantann.service.limits import ApiError, Limits
    d = cli_data
    path = d / "s.qann"
    assert _cli("build", d / "v.npy", "--texts", d / "p.jsonl", "--model", model_path("q8_0"), "-o", path,
                "-q")[0] == 0
    g = next(i for i, r in enumerate(rows[0][:300]) if r["text"].startswith("eschar:"))
    s = Running(path, threads=1, embedder=Embedder.open(model_path("q8_0")), texts=TextStore(sidecar(path)))
    try:
        code, out, _ = call(s.port, "POST", "/search", {"text": "What is an eschar?", "k": 3, "hybrid": True})
        assert code == 200 and out["ids"][0][0] == g and out["texts"][0][0] == rows[0][g]["text"]
        assert call(s.port, "POST", "/search", {"text": "x", "hybrid": "yes"})[0] == 400
        assert call(s.port, "POST", "/search", {"vector": rows[1][0].tolist(), "hybrid": True})[0] == 400
    finally:
        s.stop()
    defaults = {"k": 10, "ef": 64, "rerank": 4}
    assert parse_ask(b'{"question": "x", "hybrid": false}', Limits(), defaults)["hybrid"] is False
    assert parse_ask(b'{"question": "x"}', Limits(), defaults)["hybrid"] is None
    with pytest.raises(ApiError, match="hybrid must be true or false"):
        parse_ask(b'{"question": "x", "hybrid": 1}', Limits(), defaults)
