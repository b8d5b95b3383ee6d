"""Argument checks shared by the public API: each raises ValidationError with a
message that says what was expected."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from typing import Any

from .errors import ValidationError

__all__ = ["MAX_ID_CHARS", "check_id", "check_int_id", "check_metadata", "checked_metadata",
           "clamp_offset", "clamp_timestamp", "to_timestamp"]

MAX_ID_CHARS = 4096

# Timestamps a stored turn may carry: years 2 to 9998. A year's slack either side of
# what datetime can hold, so a turn read back in any UTC offset, and a relative date
# resolved from it ("two weeks ago", "next year"), stays representable.
MIN_TIMESTAMP = dt.datetime(2, 1, 1, tzinfo=dt.UTC).timestamp()
MAX_TIMESTAMP = dt.datetime(9999, 1, 1, tzinfo=dt.UTC).timestamp()


def check_id(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{name} must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise ValidationError(f"{name} is {len(value)} characters; the limit is {MAX_ID_CHARS}")


def check_metadata(metadata: object) -> dict[str, Any] | None:
    return checked_metadata(metadata)[0]


def checked_metadata(metadata: object) -> tuple[dict[str, Any] | None, int]:
    """``metadata`` if it reads back unchanged from JSON, and its JSON's UTF-8 size."""
    if metadata is None:
        return None, 0
    if not isinstance(metadata, dict):
        raise ValidationError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        # Only what reads back identically is accepted: str keys, JSON values.
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        same = json.loads(text) == metadata and all(isinstance(k, str) for k in metadata)
    except RecursionError:
        raise ValidationError("metadata is nested too deeply to store") from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata must be JSON-serialisable: {exc}") from exc
    if not same:
        raise ValidationError(
            "metadata must read back unchanged: use str keys and JSON values (no tuples, "
            "no non-str keys)")
    return metadata, len(text.encode("utf-8", "surrogatepass"))


def to_timestamp(timestamp: object) -> tuple[float, int]:
    """(POSIX seconds, UTC offset in minutes). Naive datetimes are taken as UTC."""
    if timestamp is None:
        return time.time(), 0
    if isinstance(timestamp, dt.datetime):
        # An offset with seconds (historical local mean times) is rounded to the
        # minute the log stores; the instant itself is kept exactly.
        offset = timestamp.utcoffset() if timestamp.tzinfo is not None else None
        minutes = clamp_offset(round((offset or dt.timedelta(0)).total_seconds() / 60))
        if offset is None:
            timestamp = timestamp.replace(tzinfo=dt.UTC)
        try:
            seconds = timestamp.timestamp()
        except (OverflowError, ValueError) as exc:  # 0001-01-01 with a positive offset
            raise ValidationError(f"timestamp {timestamp.isoformat()} is out of range: {exc}"
                                  ) from None
        return _in_range(seconds, timestamp.isoformat()), minutes
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise ValidationError(
            f"timestamp must be a datetime, POSIX seconds or None, got {type(timestamp).__name__}")
    try:
        seconds = float(timestamp)
    except OverflowError:  # an int past float's range (too long to print, perhaps)
        raise ValidationError("timestamp is an int too large to be POSIX seconds") from None
    if not math.isfinite(seconds):
        raise ValidationError(f"timestamp {timestamp!r} is not a usable POSIX time")
    return _in_range(seconds, repr(timestamp) if abs(seconds) < 1e15 else f"{seconds:.3g}"), 0


def _in_range(seconds: float, shown: str) -> float:
    if not MIN_TIMESTAMP <= seconds < MAX_TIMESTAMP:
        raise ValidationError(
            f"timestamp {shown} is out of range: give a time between the years 2 and 9998 "
            f"(POSIX seconds {MIN_TIMESTAMP:.0f} to {MAX_TIMESTAMP:.0f})")
    return seconds


def clamp_offset(minutes: int) -> int:
    """A UTC offset in minutes inside dt.timezone's range (under 24 hours)."""
    return max(-1439, min(1439, minutes))


def clamp_timestamp(seconds: float) -> float:
    """``seconds`` inside the range observe() accepts: for reading turns stored before
    it was checked, which would otherwise fail every read of their user."""
    return min(max(seconds, MIN_TIMESTAMP), MAX_TIMESTAMP - 1) if math.isfinite(seconds) else 0.0



def check_int_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"{name} must be a positive int, got {value!r}")
    if value >= 1 << 63:
        raise ValidationError(f"{name} {value} is out of range")
    return value
