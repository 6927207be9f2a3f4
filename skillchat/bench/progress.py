"""Progress on stderr: a redrawn bar on a terminal, a few plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self._label = ""
        self._total = 0
        self._done = 0
        self._start = 0.0
        self._last_draw = 0.0
        self._last_quarter = -1

    def phase(self, label: str, total: int) -> None:
        self._finish()
        self._label, self._total, self._done = label, max(total, 0), 0
        self._start = time.perf_counter()
        self._last_quarter = -1
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        self._done = min(self._total, self._done + n) if self._total else self._done + n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        frac = self._done / self._total if self._total else 1.0
        if self.tty:
            if not force and now - self._last_draw < 0.1 and self._done < self._total:
                return
            self._last_draw = now
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self._label:<28} [{bar}] {frac:4.0%} {now - self._start:6.1f}s")
            self.stream.flush()
        else:
            quarter = int(frac * 4)
            if quarter > self._last_quarter:
                self._last_quarter = quarter
                self.stream.write(f"bench: {self._label}: {self._done}/{self._total} ({now - self._start:.1f}s)\n")
                self.stream.flush()

    def _finish(self) -> None:
        if self.enabled and self.tty and self._label:
            self._done = self._total
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        self._label = ""

    def close(self) -> None:
        self._finish()
