"""/generate and /ask: the requests, checked before they take a slot, and the jobs that run
on a slot (llm.py), as events:

    /generate   ("token", text)..., ("done", {"text", "stats"})
    /ask        ("sources", [...]), ("token", text)..., ("done", {"answer", "sources", "timings", "dropped"})

A job checks what needs the model (the prompt's length in tokens against the context,
the chat template) before its first event, so those mistakes are 4xx JSON errors too,
not an error event in a stream already begun. Stage times go to the metrics as they
happen: embed and search (/ask), prefill, first token, and each decoded token.
"""
from __future__ import annotations

import json
import math
import time

from ..errors import PromptTooLongError, QuantannError
from . import jsonio
from .limits import ApiError, Limits, json_depth

SAMPLING = {"max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "stream"}
GENERATE_FIELDS = SAMPLING | {"prompt", "messages"}
ASK_FIELDS = SAMPLING | {"question", "k", "ef", "hybrid"}
ROLES = ("system", "user", "assistant")
DEFAULTS = {"generate": {"max_tokens": 128, "temperature": 0.8},
            "ask": {"max_tokens": 256, "temperature": 0.0}}  # those of Generator.stream and ask()


def _object(body: bytes, limits: Limits, fields: set, example: str) -> dict:
    if json_depth(body, stop=limits.max_depth) > limits.max_depth:
        raise ApiError(400, "too_deep", f"the JSON nests deeper than {limits.max_depth} levels")
    try:
        req = jsonio.loads(body or b"{}")
    except (ValueError, RecursionError) as e:
        raise ApiError(400, "bad_json", f"the body is not JSON: {e}") from None
    if not isinstance(req, dict):
        raise ApiError(400, "bad_request", f"the body must be a JSON object like {example}")
    unknown = sorted(set(req) - fields)
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field {unknown[0]!r}: use {', '.join(sorted(fields))}")
    return req


def _show(v) -> str:
    return json.dumps(v)[:40]


def _int(req: dict, name: str, default, lo: int, hi: int, flag: str = "") -> int:
    v = req.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {_show(v)}")
    if not lo <= v <= hi:
        raise ApiError(400, "out_of_range", f"{name}={v} is outside {lo}..{hi}"
                       + (f" (this server's limit, {flag})" if flag and v > hi else ""))
    return v


def _float(req: dict, name: str, default: float, ok, what: str) -> float:
    v = req.get(name, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise ApiError(400, "bad_parameter", f"{name} must be a number, got {_show(v)}")
    if not ok(v):
        raise ApiError(400, "out_of_range", f"{name}={v} is outside {what}")
    return float(v)


def sampling(req: dict, limits: Limits, endpoint: str) -> dict:
    """The sampling parameters of a request, checked; the endpoint's defaults otherwise."""
    d = DEFAULTS[endpoint]
    kw = {"max_tokens": _int(req, "max_tokens", min(d["max_tokens"], limits.max_tokens), 1, limits.max_tokens,
                             "--max-tokens"),
          "temperature": _float(req, "temperature", d["temperature"], lambda v: 0 <= v <= 100, "0..100"),
          "top_k": _int(req, "top_k", 40, 0, 1 << 20),
          "top_p": _float(req, "top_p", 0.95, lambda v: 0 < v <= 1, "(0, 1]"),
          "min_p": _float(req, "min_p", 0.05, lambda v: 0 <= v <= 1, "[0, 1]"),
          "repeat_penalty": _float(req, "repeat_penalty", 1.0, lambda v: 0 < v <= 10, "(0, 10]")}
    seed = req.get("seed")
    if seed is not None:
        seed = _int(req, "seed", None, 0, 2**64 - 1)
    kw["seed"] = seed
    stream = req.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "bad_parameter", f"stream must be true or false, got {_show(stream)}")
    return {"kw": kw, "stream": stream}


def parse_generate(body: bytes, limits: Limits) -> dict:
    """{"prompt": str} or {"messages": [...]}, plus {"kw": sampling, "stream": bool}."""
    req = _object(body, limits, GENERATE_FIELDS, '{"prompt": "..."} or {"messages": [...]}')
    given = [n for n in ("prompt", "messages") if n in req]
    if len(given) != 1:
        raise ApiError(400, "bad_request", 'send exactly one of {"prompt": "..."} or '
                                           '{"messages": [{"role": "user", "content": "..."}, ...]}')
    out = {}
    if given[0] == "prompt":
        prompt = req["prompt"]
        if not isinstance(prompt, str) or not prompt:
            raise ApiError(400, "bad_request", "prompt must be a non-empty string")
        size = len(prompt)
        out["prompt"] = prompt
    else:
        msgs = req["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise ApiError(400, "bad_request", "messages must be a non-empty list of "
                                               '{"role": "user", "content": "..."} objects')
        if len(msgs) > limits.max_messages:
            raise ApiError(400, "too_large", f"{len(msgs)} messages is over this server's limit of "
                                             f"{limits.max_messages}")
        for i, m in enumerate(msgs):
            if (not isinstance(m, dict) or set(m) != {"role", "content"} or m["role"] not in ROLES
                    or not isinstance(m["content"], str)):
                raise ApiError(400, "bad_request", f"message {i} must be {{\"role\": one of {', '.join(ROLES)}, "
                                                   f"\"content\": a string}}")
        size = sum(len(m["content"]) for m in msgs)
        out["messages"] = msgs
    if size > limits.max_prompt:
        raise ApiError(400, "too_large", f"the prompt has {size} characters, over this server's limit of "
                                         f"{limits.max_prompt}")
    out.update(sampling(req, limits, "generate"))
    return out


def parse_ask(body: bytes, limits: Limits, defaults: dict) -> dict:
    """{"question": str, "k", "ef", "hybrid"} plus {"kw": sampling, "stream": bool}."""
    from ..ask import MAX_K
    req = _object(body, limits, ASK_FIELDS, '{"question": "..."}')
    if "question" not in req:
        raise ApiError(400, "bad_request", 'send {"question": "..."}')
    q = req["question"]
    if not isinstance(q, str) or not q.strip():
        raise ApiError(400, "bad_request", "question must be a non-empty string")
    if len(q) > limits.max_text:
        raise ApiError(400, "too_large", f"the question has {len(q)} characters, over this server's limit "
                                         f"of {limits.max_text}")
    out = sampling(req, limits, "ask")
    out["question"] = q
    out["k"] = _int(req, "k", min(5, MAX_K), 1, MAX_K)
    out["ef"] = _int(req, "ef", defaults["ef"], 1, limits.max_ef, "--max-ef")
    out["hybrid"] = req.get("hybrid")  # None: hybrid when the index has a lexical index
    if out["hybrid"] is not None and not isinstance(out["hybrid"], bool):
        raise ApiError(400, "bad_parameter", f"hybrid must be true or false, got {_show(out['hybrid'])}")
    return out


# ---- jobs (run on an LLM slot's thread) -----------------------------------------------------

class TokenClock:
    """Counts generated tokens as they come (a generation cut short is counted too) and
    times each: the time between two pieces over the tokens generated between them (the
    first piece, which carries the prefill, is not a decode time)."""

    def __init__(self, metrics, endpoint: str):
        self.metrics, self.endpoint = metrics, endpoint
        self.t = None
        self.n = 0

    def tick(self, tokens: int) -> None:
        now = time.perf_counter()
        if tokens > self.n:
            self.metrics.generated_tokens.labels(self.endpoint).inc(tokens - self.n)
            if self.t is not None:
                self.metrics.decode_tokens(now - self.t, tokens - self.n)
        self.t, self.n = now, tokens

    def end(self, tokens: int) -> None:
        """The generation's own count: tokens no piece showed (a stop token, or a piece
        held back) are counted too."""
        if tokens > self.n:
            self.metrics.generated_tokens.labels(self.endpoint).inc(tokens - self.n)
            self.n = tokens


def prompt_ids(gen, req: dict, max_tokens: int) -> list:
    """The request's prompt as token ids (the model's chat template for messages),
    refused when it leaves no room for max_tokens in the context."""
    if "messages" in req:
        try:
            text = gen.render_chat(req["messages"])
        except QuantannError as e:  # the template refuses these messages, or there is none
            raise ApiError(400, "bad_request", str(e)) from None
        ids = gen.tokenize(text, add_bos=False)
    else:
        ids = gen.tokenize(req["prompt"])
    if not ids:
        raise ApiError(400, "bad_request", "the prompt has no tokens")
    if len(ids) + max_tokens > gen.n_ctx:
        raise ApiError(400, "too_long", f"the prompt has {len(ids)} tokens; with max_tokens={max_tokens} it "
                                        f"exceeds the context of {gen.n_ctx} tokens")
    return ids


def generate_job(req: dict, metrics):
    kw = req["kw"]

    def job(gen):
        ids = prompt_ids(gen, req, kw["max_tokens"])
        tokens: list = []
        clock = TokenClock(metrics, "/generate")
        pieces = []
        for piece in gen.stream(ids, tokens_out=tokens, **kw):
            clock.tick(len(tokens))
            pieces.append(piece)
            yield "token", piece
        st = gen.last_stats
        clock.end(st.generated_tokens)
        metrics.generation("/generate", st.prompt_tokens, st.stop_reason,
                           prefill_s=st.prompt_tokens / st.prefill_tok_s if st.prefill_tok_s else None,
                           first_token_s=st.first_token_ms / 1e3)
        yield "done", {"text": "".join(pieces), "stats": st.as_dict()}
    return job


def ask_job(req: dict, text_index, metrics):
    from ..ask import ask
    kw = dict(req["kw"])

    def job(gen):
        try:
            events = ask(text_index, req["question"], generator=gen, k=req["k"], ef=req["ef"], stream=True,
                         hybrid=req.get("hybrid"), **kw)
        except PromptTooLongError as e:
            raise ApiError(400, "too_long", str(e)) from None
        except ValueError as e:  # the question or the values, seen by ask(): the client's to fix
            raise ApiError(400, "bad_request", str(e)) from None
        clock = TokenClock(metrics, "/ask")
        n = 0
        for kind, value in events:
            if kind == "sources":
                yield kind, [s.as_dict() for s in value]
            elif kind == "token":
                n += 1  # a piece per token, but for a character split across tokens
                clock.tick(n)
                yield kind, value
            else:  # done
                t = value.timings
                metrics.observe_stage("embed", t["embed_ms"] / 1e3)
                metrics.observe_stage("search", t["search_ms"] / 1e3)
                clock.end(t["tokens"])
                metrics.generation("/ask", t["prompt_tokens"], gen.last_stats.stop_reason,
                                   prefill_s=t["prefill_ms"] / 1e3, first_token_s=t["first_token_ms"] / 1e3)
                yield "done", value.as_dict()
    return job
