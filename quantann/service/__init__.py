"""`quantann serve`: one read-only index over HTTP, on uvicorn.

    POST /search   {"vector": [...]} | {"vectors": [[...], ...]} | {"text": "..."}
                   optional "k", "ef", "rerank", "hybrid" (text)  ->  {"ids", "distances", "stats"[, "texts"]}
    POST /generate {"prompt": "..."} | {"messages": [...]}, sampling, "stream"
                   ->  {"text", "stats"}, or Server-Sent Events: token..., done
    POST /ask      {"question": "...", "k", "hybrid"}, sampling, "stream" (a text index)
                   ->  {"answer", "sources", "timings", "dropped"}, or events: sources, token..., done
    GET  /healthz  {"status": "ok", "vectors": n, "dim": d}   (never needs the token)
    GET  /metrics  Prometheus text format

The pieces, each in its own file:

    limits.py   what a request may ask for (body, batch, k, ef, JSON depth), checked
                before anything is parsed or searched
    search.py   a /search request: parsed and validated, searched chunk by chunk, encoded
    jsonio.py   JSON in and out (orjson when installed)
    pool.py     the worker threads that search one read-only index in parallel
    generation.py  /generate and /ask requests, checked, and their jobs (events)
    llm.py      the LLM slots (a Generator each): admission, 503 when busy, cancellation
    metrics.py  the Prometheus registry
    app.py      the ASGI app: routes, bearer token, body limits, JSON errors
    protocol.py uvicorn's HTTP protocols plus a read deadline per request and a
                lingering close (httptools when installed, else h11)
    server.py   uvicorn: the listening socket, the token rule, graceful shutdown
    workers.py  --workers N: forked worker processes on one socket and one opened
                index, supervised (replaced when they die, stopped together)
    listener.py the socket the workers share, connections spread evenly among them
    cli.py      the `serve` command's options (imports nothing heavy until it runs)

The event loop only moves bytes; parsing, searching and encoding run on the pool, so a
slow client or a large batch never holds the others; generations run on the LLM slots'
own threads.

This package imports nothing from uvicorn or starlette here, so that `cli.py` can be
imported (for the parser) without the `[serve]` extra installed.
"""
