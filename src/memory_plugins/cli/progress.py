"""A one-line progress bar on stderr, for long work (import, benchmarks).

Small on purpose (no tqdm dependency): it redraws at most ten times a second,
only when the stream is a terminal, so logs and pipes stay clean.

    with Progress(total=len(lines), label="import") as bar:
        for line in lines:
            ...
            bar.advance()
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 30
_INTERVAL = 0.1  # seconds between redraws


class Progress:
    def __init__(self, total: int | None, *, label: str = "", stream: TextIO | None = None,
                 unit: str = "items") -> None:
        self.total, self.label, self.unit = total, label, unit
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self.enabled = self.stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._drawn >= _INTERVAL:
            self._drawn = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The bar as text: ``import [#######.......]  40% 400/1000 items 812/s``."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        rate = f"{self.done / elapsed:,.0f}/s" if elapsed > 0 else ""
        if self.total:
            frac = min(1.0, self.done / self.total)
            filled = int(frac * _WIDTH)
            bar = "#" * filled + "." * (_WIDTH - filled)
            return (f"{self.label} [{bar}] {frac:4.0%} {self.done:,}/{self.total:,} "
                    f"{self.unit} {rate}").strip()
        return f"{self.label} {self.done:,} {self.unit} {rate}".strip()

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
