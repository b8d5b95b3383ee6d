"""Where a benchmark's table goes: printed, and appended to benchmarks/RESULTS.md."""

from __future__ import annotations

from pathlib import Path


def record(report: str, out: str | Path, *, end: str = "") -> None:
    """Print ``report`` and append it, then ``end``, to ``out`` (``"-"``: print only)."""
    print(report)
    if str(out) != "-":
        with open(out, "a", encoding="utf-8") as f:
            f.write(report + end)
