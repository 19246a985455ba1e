"""Progress on stderr for long work: tqdm when installed, else a plain counter line."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str = "", unit: str = "vec", enabled: bool = True):
        self.total, self.desc, self.unit = total, desc, unit
        self.n, self.t0, self.bar = 0, time.perf_counter(), None
        self.enabled = enabled and total > 0
        if self.enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=desc or None, unit=unit, unit_scale=True, leave=False,
                                file=sys.stderr)
            except ImportError:
                pass

    def update(self, k: int) -> None:
        self.n += k
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(k)
        else:
            rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
            print(f"\r{self.desc} {self.n}/{self.total} {self.unit}, {rate:.0f}/s", end="", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(file=sys.stderr)
