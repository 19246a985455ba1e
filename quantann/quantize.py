"""Quantizers: how a float vector becomes a code.

RaBitQ kinds (rabitq1..4) train only a centroid (the mean). SQ training picks, per dimension, the range [lo, hi] between two quantiles of the data
(clipping outliers that would otherwise waste levels), and splits it into 255 (sq8) or
15 (sq4) steps. Code sizes, encoding, decoding and query-vs-code distances are rows of the
C kernel's codec table (kernel/codec/); this module only holds and trains the parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernel
from .constants import CODECS

KINDS = dict(CODECS)
_HAS_RESIDUALS = {c["id"]: c["residual"] for c in _kernel.codecs()}  # the codec table says
LEVELS = {"sq8": 255, "sq4": 15}
# Quantiles that bound each dimension's range: wide enough to keep almost every value,
# tight enough that a handful of outliers cannot stretch the grid.
DEFAULT_CLIP = {"sq8": 0.0005, "sq4": 0.003}


def pad_dims(d: int) -> int:
    """Codes and quantizer parameters are padded to a multiple of 64 dimensions."""
    return (d + 63) // 64 * 64


def code_size(kind: str, d: int) -> int:
    return _kernel.code_size(KINDS[kind], d)


@dataclass
class Quantizer:
    kind: str
    d: int
    vmin: np.ndarray  # float32 [dpad]
    scale: np.ndarray  # float32 [dpad]

    @property
    def kind_id(self) -> int:
        return KINDS[self.kind]

    @property
    def code_size(self) -> int:
        return code_size(self.kind, self.d)

    @classmethod
    def train(cls, kind: str, x: np.ndarray, clip: float | None = None, sample: int = 200_000,
              seed: int = 0) -> "Quantizer":
        if kind not in KINDS:
            raise ValueError(f"unknown quantizer {kind!r}: choose one of {', '.join(KINDS)}")
        n, d = x.shape
        dpad = pad_dims(d)
        vmin = np.zeros(dpad, np.float32)
        scale = np.zeros(dpad, np.float32)
        if kind.startswith("rabitq"):
            # RaBitQ codes (kernel/codec/rabitq.c): vmin holds the centroid the residuals
            # are taken to; the rotation is seeded in the kernel, scale is unused
            vmin[:d] = x[:sample].mean(0, dtype=np.float64)
        elif kind != "none":
            if n > sample:
                rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
                x = x[rows]
            c = DEFAULT_CLIP[kind] if clip is None else clip
            lo, hi = np.quantile(x, [c, 1.0 - c], axis=0).astype(np.float32)
            width = np.maximum(hi - lo, 1e-12)
            vmin[:d] = lo
            scale[:d] = width / LEVELS[kind]
        return cls(kind, d, vmin, scale)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.encode_rows(x)[0]

    def encode_rows(self, x: np.ndarray):
        """(codes, residuals): residuals is what the codec's error bound needs of each row
        beyond its code (float32 [n]; sq8: |x - x^|, so rerank="auto" holds for every row,
        clipped coordinates included), None for codecs without them."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((x.shape[0], self.code_size), np.uint8)
        res = np.empty(x.shape[0], np.float32) if _HAS_RESIDUALS[self.kind_id] else None
        _kernel.encode(self.kind_id, self.d, self.vmin, self.scale, x, out, res)
        return out, res

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, self.code_size)
        out = np.empty((codes.shape[0], self.d), np.float32)
        _kernel.decode(self.kind_id, self.d, self.vmin, self.scale, codes, out)
        return out

    def nbytes(self) -> int:
        return self.vmin.nbytes + self.scale.nbytes
