"""Progress lines with count, rate and ETA, printed at most every few seconds (safe in CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """Seconds as ``H:MM:SS`` or ``M:SS``."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts work done out of ``total`` and prints ``desc n/total (p%) rate unit/s ETA m:ss``."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "it",
        every_s: float = 5.0,
        stream: TextIO | None = None,
        enabled: bool = True,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.start = time.perf_counter()
        self._last_print = self.start

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and now - self._last_print >= self.every_s:
            self._last_print = now
            self._print(now)

    def line(self, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100 * self.done / self.total if self.total else 100.0
        return (
            f"{self.desc}: {self.done}/{self.total} ({pct:.0f}%) {rate:.1f} {self.unit}/s "
            f"elapsed {format_duration(elapsed)} ETA {format_duration(left)}"
        )

    def _print(self, now: float) -> None:
        print(self.line(now), file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.total:
            self._print(time.perf_counter())
