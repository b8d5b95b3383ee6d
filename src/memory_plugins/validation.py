"""Argument checks shared by the public API: each raises ValidationError with a
message that says what was expected."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from typing import Any

from .errors import ValidationError

__all__ = ["MAX_ID_CHARS", "check_id", "check_int_id", "check_metadata", "to_timestamp"]

MAX_ID_CHARS = 4096


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
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ValidationError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        # Only what reads back identically is accepted: str keys, JSON values.
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False)
        same = json.loads(text) == metadata and all(isinstance(k, str) for k in metadata)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata must be JSON-serialisable: {exc}") from exc
    if not same:
        raise ValidationError(
            "metadata must read back unchanged: use str keys and JSON values (no tuples, "
            "no non-str keys)")
    return metadata


def to_timestamp(timestamp: object) -> tuple[float, int]:
    """(POSIX seconds, UTC offset in minutes). Naive datetimes are taken as UTC."""
    if timestamp is None:
        return time.time(), 0
    if isinstance(timestamp, dt.datetime):
        if timestamp.tzinfo is None:
            return timestamp.replace(tzinfo=dt.UTC).timestamp(), 0
        offset = timestamp.utcoffset() or dt.timedelta(0)
        return timestamp.timestamp(), int(offset.total_seconds() // 60)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise ValidationError(
            f"timestamp must be a datetime, POSIX seconds or None, got {type(timestamp).__name__}")
    if not math.isfinite(timestamp) or abs(timestamp) > 1e11:
        raise ValidationError(f"timestamp {timestamp!r} is not a usable POSIX time")
    return float(timestamp), 0



def check_int_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"{name} must be a positive int, got {value!r}")
    if value >= 1 << 63:
        raise ValidationError(f"{name} {value} is out of range")
    return value
