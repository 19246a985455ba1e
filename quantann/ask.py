"""Ask your documents: retrieval-augmented answers, entirely on the device.

    ti = quantann.TextIndex.open("notes.qann")
    a = ti.ask("What is an eschar?", k=5, max_tokens=64)      # an Answer
    print(a.answer, [s.row for s in a.sources], a.timings)
    for kind, value in ti.ask("What is an eschar?", stream=True):
        ...   # ("sources", [Source, ...]), then ("token", str) pieces, then ("done", Answer)

The question is embedded with the index's model and searched; the top-k passages, best
first and numbered [1]..[k], go into a prompt built with the LLM's own chat template (a
system instruction to answer from them and cite them: quantann/constants.json "ask"). A
prompt that would not leave room for max_tokens in the context drops the weakest passages
first (`Answer.dropped`). Everything checkable is checked before the first event, so a
caller (the CLI, the service) can report a bad request before it starts streaming.

timings (milliseconds unless named otherwise): embed_ms, search_ms, prompt_tokens,
cached_tokens (of them, the prefix the generator's previous prompt left in its KV cache: the
chat template's system block is the same for every question), prefill_ms, first_token_ms (end to end: from the call to the first generated token),
decode_tok_s, tokens (generated), total_ms.
"""
from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field

from .constants import ASK
from .errors import PromptTooLongError, QuantannError

MAX_K = int(ASK["max_k"])
PASSAGE_TOKENS = int(ASK["passage_tokens"])  # each passage's share of the prompt, by default
SYSTEM = ASK["system"]
BEST_LAST = bool(ASK["best_last"])  # passages listed weakest first, so the best is nearest the question
ENCODER_ARCHS = ("bert", "nomic-bert", "jina-bert-v2")  # GGUF embedding models, not decoders


@dataclass
class Source:
    row: int          # the passage's row in the build input (VECTORS.npy + PASSAGES.jsonl: the line; TextIndex.rows)
    id: int
    distance: float
    text: str
    fields: dict = field(default_factory=dict)   # the passage's other JSONL fields

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    answer: str
    sources: list          # [Source], the passages in the prompt, numbered [1].. in order
    timings: dict
    dropped: int = 0       # passages left out so that the prompt fits the context

    def as_dict(self) -> dict:
        return {"answer": self.answer, "sources": [s.as_dict() for s in self.sources],
                "timings": dict(self.timings), "dropped": self.dropped}


# ---------------------------------------------------------------- the decoder

_default = {}                      # threads -> Generator (the installed SmolLM2)
_default_lock = threading.Lock()
_gen_locks = weakref.WeakKeyDictionary()   # one generation at a time per Generator


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def open_generator(path=None, threads: int | None = None, n_ctx: int | None = None, memory_budget=None,
                   chat_template: str | None = None):
    """A Generator for answers. path None: the installed SmolLM2, opened once per thread
    count and cached. An embedding model (the index's own GGUF, say) is refused by name.
    chat_template: a jinja2 chat template (text) used instead of the GGUF's own, for a model
    whose GGUF has none (a base model) or a wrong one."""
    from .generate import Generator
    threads = threads or default_threads()
    if chat_template is not None and (not isinstance(chat_template, str) or not chat_template.strip()):
        raise ValueError("chat_template must be the non-empty text of a jinja2 chat template")
    if path is None and n_ctx is None and memory_budget is None and chat_template is None:
        with _default_lock:
            if threads not in _default:
                _default[threads] = Generator.open(threads=threads)
            return _default[threads]
    if path is not None:
        _refuse_encoder(os.fspath(path))
    gen = Generator.open(path, threads=threads, n_ctx=n_ctx, memory_budget=memory_budget)
    if chat_template is not None:
        gen.chat_template = chat_template
    return gen


def _refuse_encoder(path: str) -> None:
    from .gguf_file import GGUFFile
    try:
        arch = GGUFFile(path).get("general.architecture")
    except (QuantannError, ValueError, OSError):
        return  # Generator.open names what is wrong with the file
    if arch in ENCODER_ARCHS:
        raise QuantannError(f"{path} is an embedding model (architecture {arch!r}), not a decoder LLM: "
                            "give a decoder GGUF (llama, qwen2 or gemma3 layout) to answer with")


def _lock_of(gen) -> threading.Lock:
    with _default_lock:
        lock = _gen_locks.get(gen)
        if lock is None:
            lock = _gen_locks[gen] = threading.Lock()
        return lock


# ---------------------------------------------------------------- the steps

def check_question(question) -> str:
    if not isinstance(question, str):
        raise ValueError(f"the question must be a string, got {type(question).__name__}")
    if not question.strip():
        raise ValueError("the question is empty")
    return question.strip()


def retrieve(text_index, question: str, k: int = 5, ef: int = 64, hybrid: bool | None = None) -> tuple[list, dict]:
    """The top-k passages for question, best first, and {embed_ms, search_ms}. hybrid: vector
    and lexical (BM25) search fused (TextIndex.search_ids); None: when the index has a lexical index."""
    if text_index.index is None or len(text_index) == 0:
        raise ValueError("the index is empty: there is nothing to answer from")
    if not text_index.has_texts:
        where = getattr(text_index.index, "path", None)
        raise ValueError(f"{where or 'the index'} has no texts beside it, so it has no passages to answer from: "
                         "build it with --texts PASSAGES.jsonl (or from a .jsonl of texts)")
    if text_index.embedder is None:
        raise ValueError("the index has no embedding model to embed the question with")
    n = len(text_index)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer in 1..{MAX_K} (passages in the prompt), got {k!r}")
    k = min(k, n)
    t0 = time.perf_counter()
    q = text_index.embedder.embed([question])
    t1 = time.perf_counter()
    if hybrid is None:
        hybrid = text_index.has_lexical
    ids, dist = text_index.search_ids(q[0], question, k=k, ef=max(ef, k), hybrid=hybrid)
    t2 = time.perf_counter()
    texts, fields, rows = text_index.texts(ids), text_index.fields(ids), text_index.rows(ids)
    sources = [Source(int(r), int(i), float(d), t, f)
               for i, d, t, f, r in zip(ids, dist, texts, fields, rows) if t is not None and r >= 0]
    return sources, {"embed_ms": (t1 - t0) * 1000, "search_ms": (t2 - t1) * 1000}


def messages(question: str, passages: list) -> list:
    """The chat: the system instruction, then the passages (best first, numbered [1]..; or
    with BEST_LAST listed weakest first, keeping their numbers) and the question."""
    numbered = [f"[{n}] {p}" for n, p in enumerate(passages, 1)]
    numbered = "\n".join(reversed(numbered) if BEST_LAST else numbered)
    user = (f"Passages:\n{numbered}\n\nQuestion: {question}" if passages else f"Question: {question}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def cut(gen, text: str, passage_tokens: int | None) -> str:
    """text, or its first passage_tokens tokens (of the LLM's vocabulary) and an ellipsis
    (0 or None: the whole text)."""
    if not passage_tokens:
        return text
    ids = gen.tokenize(text, add_bos=False)
    return text if len(ids) <= passage_tokens else gen.detokenize(ids[:passage_tokens]).rstrip() + " ..."


def build_prompt(gen, question: str, sources: list, max_tokens: int,
                 passage_tokens: int | None = PASSAGE_TOKENS) -> tuple[list, int]:
    """Prompt token ids with as many of sources (best first) as leave max_tokens of room in
    the context, and how many were dropped (the weakest). passage_tokens: each passage
    cut to that many tokens in the prompt (0 or None: whole)."""
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens < gen.n_ctx:
        raise ValueError(f"max_tokens must be an integer in 1..{gen.n_ctx - 1} (the context is {gen.n_ctx} tokens), "
                         f"got {max_tokens!r}")
    if passage_tokens is not None and (isinstance(passage_tokens, bool) or not isinstance(passage_tokens, int)
                                       or passage_tokens < 0):
        raise ValueError(f"passage_tokens must be an integer >= 0 (0: whole passages), got {passage_tokens!r}")
    room = gen.n_ctx - max_tokens
    texts = [cut(gen, s.text, passage_tokens) for s in sources]
    for keep in range(len(sources), -1, -1):
        ids = gen.tokenize(gen.render_chat(messages(question, texts[:keep])), add_bos=False)
        if len(ids) <= room:
            return ids, len(sources) - keep
    raise PromptTooLongError(f"the question is too long: with no passage the prompt has {len(ids)} tokens, and with "
                     f"max_tokens={max_tokens} that exceeds the context of {gen.n_ctx} tokens")


def ask(text_index, question: str, generator=None, k: int = 5, stream: bool = False,
        max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None, ef: int = 64,
        passage_tokens: int | None = PASSAGE_TOKENS, hybrid: bool | None = None, stop=None, **sample_kw):
    """Answers question from the top-k passages of text_index with a decoder LLM.

    generator: a quantann.Generator, a GGUF path, or None for the installed SmolLM2 (cached).
    stream=False returns an Answer; stream=True an iterator of ("sources", [Source]),
    ("token", str)..., ("done", Answer). hybrid: fuse the vector search with the lexical one (None:
    when the index has a lexical index; False: vectors only). passage_tokens: cut each passage to that many tokens in
    the prompt (shorter prefill, fewer distractions; the sources keep the whole text; 0: whole). stop: strings that
    end the answer (Generator.stream's; for a base model prompted by a completion template). sample_kw: top_k,
    top_p, min_p, repeat_penalty."""
    from .generate import Generator, _check_sampling
    t0 = time.perf_counter()
    question = check_question(question)
    gen = generator if isinstance(generator, Generator) else open_generator(generator)
    kw = dict(top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0)
    unknown = set(sample_kw) - set(kw)
    if unknown:
        raise TypeError(f"ask() got unexpected arguments: {', '.join(sorted(unknown))}")
    kw.update(sample_kw)
    _check_sampling(max_tokens, temperature, **kw)
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if any(not isinstance(x, str) or not x for x in stops):
        raise ValueError("stop must be a non-empty string or a list of them")
    sources, timings = retrieve(text_index, question, k, ef, hybrid)
    ids, dropped = build_prompt(gen, question, sources, max_tokens, passage_tokens)
    sources = sources[:len(sources) - dropped]
    events = _answer(gen, ids, sources, dropped, timings, t0,
                     dict(kw, max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stops))
    if stream:
        return events
    for kind, value in events:
        if kind == "done":
            return value
    raise AssertionError("unreachable: the event stream ends with 'done'")


def _answer(gen, ids, sources, dropped, timings, t0, kw):
    """The events of one answer; holds the generator's lock while it decodes."""
    yield "sources", sources
    pieces = []
    with _lock_of(gen):
        t_gen = time.perf_counter()
        for piece in gen.stream(ids, **kw):
            pieces.append(piece)
            yield "token", piece
        st = gen.last_stats
    t_end = time.perf_counter()
    timings = dict(timings)
    timings.update(
        prompt_tokens=st.prompt_tokens,
        cached_tokens=st.cached_tokens,
        prefill_ms=(st.prompt_tokens - st.cached_tokens) / st.prefill_tok_s * 1000 if st.prefill_tok_s else 0.0,
        first_token_ms=(t_gen - t0) * 1000 + st.first_token_ms,
        decode_tok_s=st.decode_tok_s,
        tokens=st.generated_tokens,
        total_ms=(t_end - t0) * 1000)
    yield "done", Answer("".join(pieces), sources, timings, dropped)
