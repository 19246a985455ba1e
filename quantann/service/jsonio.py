"""JSON in and out of the service, with orjson when it is installed.

A /search request is mostly a list of 384+ floats; the standard library's parser makes a
Python float of each under the GIL (~80 us a query here), orjson parses the same body in
a quarter of that, and writes numpy arrays and dataclasses without a Python list in
between. Both hold the GIL: every microsecond saved here is one the other search
threads can use (docs/SERVICE.md, "Threads").

Bodies orjson refuses (NaN and Infinity literals, numbers beyond 64 bits, bad UTF-8) go
to the standard parser, so what is accepted and every error message stay those of
`json`. Non-finite floats in an answer (distances of empty result slots) are written as
null, which is JSON (the standard library's `Infinity` is not).
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

try:
    import orjson
except ImportError:  # the [serve] extra installs it; the standard library still works
    orjson = None


def loads(body: bytes):
    """The parsed body; ValueError (json's own message) when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # parsed again below, for json's verdict and message
    return json.loads(body)


def _plain(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def _finite(o):
    """Non-finite floats as None, as orjson writes them."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, list):
        return [_finite(x) for x in o]
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    return o


def dumps(obj) -> bytes:
    """obj (dicts, lists, numbers, strings, numpy arrays, dataclasses) as JSON bytes."""
    if orjson is not None:
        return orjson.dumps(obj, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)
    try:
        return json.dumps(obj, default=_plain, allow_nan=False).encode()
    except ValueError:  # a non-finite float somewhere: the slow, rare path
        return json.dumps(_finite(json.loads(json.dumps(obj, default=_plain))), allow_nan=False).encode()
