"""Progress on stderr: a one-line bar redrawn in place, shown only on a terminal."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``update(done, loss)`` redraws ``[#####.....] done/total loss rate``; silent when disabled."""

    def __init__(self, total: int, unit: str = "epoch", enabled: bool | None = None,
                 stream: TextIO | None = None, min_interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.total, self.unit = max(int(total), 1), unit
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.t0 = self.last = time.perf_counter()
        self.min_interval = min_interval
        self.drawn = False

    def update(self, done: int, loss: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < self.min_interval and done < self.total:
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 24)
        rate = done / max(now - self.t0, 1e-9)
        text = f"\r[{bar:<24}] {done}/{self.total} {self.unit}s"
        if loss is not None:
            text += f"  loss {loss:.6g}"
        text += f"  {rate:,.0f} {self.unit}s/s"
        self.stream.write(text)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
