"""Texts from JSON-lines files ({"text": ...} per line, optionally gzipped)."""
from __future__ import annotations

import gzip
import json
import os


def read_texts(path, field: str = "text", start: int = 0, limit: int | None = None) -> list[str]:
    """The `field` of each non-blank line, from line `start` (0-based, blank lines not
    counted), at most `limit` of them. A bad line raises ValueError naming file and line."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    out: list[str] = []
    seen = 0
    with opener(path, "rt", encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            seen += 1
            if seen <= start:
                continue
            if limit is not None and len(out) >= limit:
                break
            try:
                value = json.loads(line)[field]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}:{ln}: expected a JSON object with a {field!r} field") from None
            if not isinstance(value, str):
                raise ValueError(f"{path}:{ln}: {field!r} is not a string")
            out.append(value)
    return out
