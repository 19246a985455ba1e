"""`quantann serve`: one read-only index over HTTP, on uvicorn.

    POST /search   {"vector": [...]} | {"vectors": [[...], ...]} | {"text": "..."}
                   optional "k", "ef", "rerank"  ->  {"ids", "distances", "stats"[, "texts"]}
    GET  /healthz  {"status": "ok", "vectors": n, "dim": d}   (never needs the token)
    GET  /metrics  Prometheus text format

The pieces, each in its own file:

    limits.py   what a request may ask for (body, batch, k, ef, JSON depth), checked
                before anything is parsed or searched
    search.py   a /search request: parsed and validated, searched chunk by chunk, encoded
    pool.py     the worker threads that search one read-only index in parallel
    metrics.py  the Prometheus registry
    app.py      the ASGI app: routes, bearer token, body limits, JSON errors
    protocol.py uvicorn's HTTP protocols plus a read deadline per request and a
                lingering close (httptools when installed, else h11)
    server.py   uvicorn: the listening socket, the token rule, graceful shutdown
    cli.py      the `serve` command's options (imports nothing heavy until it runs)

The event loop only moves bytes; parsing, searching and encoding run on the pool, so a
slow client or a large batch never holds the others. New endpoints (/ask, /generate)
add a route in app.py and their work as pool jobs (or their own pool for a model).

This package imports nothing from uvicorn or starlette here, so that `cli.py` can be
imported (for the parser) without the `[serve]` extra installed.
"""
