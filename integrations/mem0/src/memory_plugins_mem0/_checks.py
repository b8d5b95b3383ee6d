"""Mem0's argument checks, with Mem0's messages: each raises our ``ValidationError``
(a ``ValueError``, as Mem0's own checks raise)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from memory_plugins import ValidationError as CoreValidationError
from memory_plugins.validation import check_metadata, to_timestamp

from ._scopes import ENTITY_KEYS, check_entity_id, check_filters
from .exceptions import ValidationError

__all__ = ["check_expiration", "check_metadata_arg", "check_search_filters", "check_timestamp",
           "check_top_k", "is_expired", "reject_top_level_ids"]


def reject_top_level_ids(kwargs: Mapping[str, Any], method: str) -> None:
    bad = set(kwargs) & set(ENTITY_KEYS)
    if bad:
        raise ValidationError(
            f"Top-level entity parameters {frozenset(bad)} are not supported in {method}(). "
            "Use filters={'user_id': '...'} instead.", "VALIDATION_004")
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword arguments {sorted(kwargs)}")


def check_top_k(top_k: object, threshold: object = None) -> None:
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValidationError("threshold must be a valid number")
        if not 0 <= threshold <= 1:  # NaN too
            raise ValidationError(
                f"Invalid threshold: {threshold}. Must be between 0 and 1 (inclusive).")
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise ValidationError("top_k must be a valid integer")
    if top_k < 0:
        raise ValidationError(f"Invalid top_k: {top_k}. Must be a non-negative integer.")


def check_search_filters(filters: object) -> dict[str, Any]:
    if filters is not None and not isinstance(filters, Mapping):
        raise ValidationError(f"filters must be a dict, got {type(filters).__name__}")
    out = dict(filters or {})
    for key in ENTITY_KEYS:
        if key in out and not isinstance(out[key], Mapping | list) and out[key] != "*":
            out[key] = check_entity_id(out[key], key)
    if not any(key in out for key in ENTITY_KEYS):
        raise ValidationError(
            "filters must contain at least one of: user_id, agent_id, run_id. "
            "Example: filters={'user_id': 'u1'}", "VALIDATION_005")
    check_filters(out)
    return out


def check_metadata_arg(metadata: object) -> dict[str, Any]:
    try:
        return dict(check_metadata(metadata) or {})
    except CoreValidationError as exc:  # ours: the same, with Mem0's fields
        raise ValidationError(str(exc), "VALIDATION_010") from None


def check_expiration(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValidationError(
                "expiration_date must be a valid date in YYYY-MM-DD format.") from None
    raise ValidationError("expiration_date must be a date string in YYYY-MM-DD format.")


def is_expired(item: Mapping[str, Any]) -> bool:
    when = item.get("expiration_date")
    if not when:
        return False
    try:
        return dt.date.fromisoformat(str(when)) < dt.datetime.now(dt.UTC).date()
    except ValueError:
        return False


def check_timestamp(value: Any) -> dt.datetime | float | None:
    """Conversation time for ``add`` (a datetime, POSIX seconds or an ISO string)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"timestamp must be ISO 8601, got {value!r}") from None
    try:
        to_timestamp(value)  # the engine's own check, before anything is stored
    except CoreValidationError as exc:
        raise ValidationError(str(exc), "VALIDATION_012") from None
    return value  # type: ignore[no-any-return]
