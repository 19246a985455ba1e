"""Texts from JSON-lines files ({"text": ...} per line, optionally gzipped)."""
from __future__ import annotations

import gzip
import json
import os


def _objects(path, field: str, start: int, limit: int | None):
    """(value of `field`, the whole object) for each non-blank line from `start` (0-based,
    blank lines not counted), at most `limit`. A bad line raises ValueError naming file and line."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    seen = given = 0
    with opener(path, "rt", encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            seen += 1
            if seen <= start:
                continue
            if limit is not None and given >= limit:
                break
            try:
                obj = json.loads(line)
                value = obj[field]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}:{ln}: expected a JSON object with a {field!r} field") from None
            if not isinstance(value, str):
                raise ValueError(f"{path}:{ln}: {field!r} is not a string")
            given += 1
            yield value, obj


def read_texts(path, field: str = "text", start: int = 0, limit: int | None = None) -> list[str]:
    """The `field` of each non-blank line, from line `start` (0-based, blank lines not
    counted), at most `limit` of them. A bad line raises ValueError naming file and line."""
    return [value for value, _ in _objects(path, field, start, limit)]


def read_records(path, field: str = "text") -> tuple[list[str], list[dict]]:
    """The texts of every non-blank line and, for each, its other fields (a dict, empty
    when the line holds only the text)."""
    texts, fields = [], []
    for value, obj in _objects(path, field, 0, None):
        texts.append(value)
        fields.append({k: v for k, v in obj.items() if k != field})
    return texts, fields
