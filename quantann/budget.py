"""Memory sizes: parsing budgets like "300MB" and formatting breakdowns."""
from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30, "tib": 2**40}


def parse_size(s) -> int:
    """Bytes from an int or a string like "300MB", "1.5GiB", "4096"."""
    if s is None:
        return None
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        if s <= 0:
            raise ValueError(f"memory budget must be positive, got {s}")
        return int(s)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(s))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"cannot read memory size {s!r}: use e.g. 300MB, 1.5GB, 512MiB or bytes")
    v = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if v <= 0:
        raise ValueError(f"memory budget must be positive, got {s!r}")
    return v


def human(n: int) -> str:
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= f:
            return f"{n / f:.2f} {unit}"
    return f"{n} B"


def format_breakdown(b: dict) -> str:
    return ", ".join(f"{k} {human(v)}" for k, v in b.items())
