"""Memory sizes: reading budgets like "300MB" and printing byte counts.

One rule in every runtime (web/src/sizes.js is the JS twin, tests/data/sizes.json holds
both to the same answers): the units are quantann/constants.json `size_units`, matched
without regard to case; "MB" is 10^6 bytes and "MiB" 2^20. A bare "K", "M", "G" or "T"
is refused as ambiguous. Fractions are exact (decimal), and a fractional byte is dropped.
Sizes print in decimal units with two decimals, rounded half up: "52.00 MB".
"""
from __future__ import annotations

import numbers
import re

from .constants import SIZE_UNITS

_UNITS = {u.lower(): v for u, v in SIZE_UNITS.items()}
_AMBIGUOUS = {u[0] for u in _UNITS if len(u) > 1} - set(_UNITS)  # k, m, g, t
_PRINTED = sorted(((v, u) for u, v in SIZE_UNITS.items() if v > 1 and not u.lower().endswith("ib")), reverse=True)
_NUMBER = re.compile(r"[ \t]*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*([A-Za-z]*)[ \t]*")
MAX_BYTES = 2**53 - 1  # the largest byte count both runtimes hold exactly
_CHOICES = "use e.g. 300MB (10^6 bytes each), 512MiB (2^20 bytes each) or a number of bytes"


def parse_size(s) -> int | None:
    """Bytes from a positive int or a string like "300MB", "1.5GiB", "4096"; None stays None."""
    if s is None:
        return None
    if isinstance(s, bool) or not isinstance(s, (numbers.Real, str)):
        raise ValueError(f"cannot read memory size {s!r}: {_CHOICES}")
    if not isinstance(s, str):  # a number of bytes (int, float or numpy scalar)
        if s != s or s in (float("inf"), float("-inf")) or s != int(s) or s <= 0 or s > MAX_BYTES:
            raise ValueError(f"memory size must be a positive whole number of bytes, got {s!r}")
        return int(s)
    m = _NUMBER.fullmatch(s)
    unit = m.group(2).lower() if m else ""
    if m and unit in _AMBIGUOUS:
        dec, binary = unit.upper() + "B", unit.upper() + "iB"
        raise ValueError(f"ambiguous memory size {s!r}: write {m.group(1)}{dec} ({_UNITS[dec.lower()]:,} bytes "
                         f"each) or {m.group(1)}{binary} ({_UNITS[binary.lower()]:,} bytes each)")
    if not m or unit not in _UNITS and unit:
        raise ValueError(f"cannot read memory size {s!r}: {_CHOICES}")
    whole, _, frac = m.group(1).partition(".")
    v = int(whole + frac or "0") * _UNITS.get(unit, 1) // 10 ** len(frac)
    if v <= 0:
        raise ValueError(f"memory size must be at least one byte, got {s!r}")
    if v > MAX_BYTES:
        raise ValueError(f"memory size {s!r} is too large (over 2^53 bytes)")
    return v


def format_size(n: int) -> str:
    """'512 B', '1.50 KB', '52.00 MB': decimal units, two decimals, half up."""
    n = int(n)
    if n < 0:
        return "-" + format_size(-n)
    for f, unit in _PRINTED:
        if n >= f:
            h = (n * 100 + f // 2) // f
            return f"{h // 100}.{h % 100:02d} {unit}"
    return f"{n} B"


human = format_size  # the name the rest of the package uses


def format_breakdown(b: dict) -> str:
    return ", ".join(f"{k} {format_size(v)}" for k, v in b.items())
