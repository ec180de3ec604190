"""Progress lines for long steps (plain text: logs and CI read it)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, every_s: float = 5.0, stream=None):
        self.label, self.total, self.every_s = label, total, every_s
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < self.every_s:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0
        tail = f", {extra}" if extra else ""
        print(f"  {self.label}: {done}/{self.total} ({now - self.start:.0f} s, eta {eta:.0f} s{tail})",
              file=self.stream, flush=True)
