"""Mem0's entity ids (user_id / agent_id / run_id) and filters, mapped onto our users.

Every memory-plugins memory belongs to one engine user. A Mem0 memory belongs to a
*scope*: the ids it was added with. A scope with only a ``user_id`` is that engine
user, so ``Memory().add(..., user_id="ana")`` and ``MemoryEngine.build(...,
user_id="ana")`` share memories. Any other scope is an engine user named like Mem0's
own session scope, ``agent_id=a&user_id=ana`` (values escaped, so it always contains
``=`` and never collides with a plain user id, which is then escaped too).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from .exceptions import ValidationError

__all__ = [
    "ENTITY_KEYS",
    "Scope",
    "check_entity_id",
    "check_filters",
    "matches",
    "parse_scope",
    "scope_key",
    "scope_matches",
]

ENTITY_KEYS = ("user_id", "agent_id", "run_id")
Scope = dict[str, str]
_OPERATORS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains"}


def check_entity_id(value: object, name: str) -> str | None:
    """Mem0's rule: None passes; ints become str; trimmed; no empty, no whitespace."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"Invalid {name}: must be a str (or an int), got "
                              f"{type(value).__name__}. Provide a valid identifier.")
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    if text == "":
        raise ValidationError(
            f"Invalid {name}: cannot be empty or whitespace-only. Provide a valid identifier.")
    if any(c.isspace() for c in text):
        raise ValidationError(f"Invalid {name}: cannot contain whitespace. Provide a valid "
                              "identifier without spaces.")
    return text


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("&", "%26").replace("=", "%3D")


def _unescape(value: str) -> str:
    return value.replace("%3D", "=").replace("%26", "&").replace("%25", "%")


def scope_key(scope: Mapping[str, str]) -> str:
    """The engine user id of a scope (at least one id set)."""
    if set(scope) == {"user_id"} and "=" not in scope["user_id"]:
        return scope["user_id"]
    return "&".join(f"{k}={_escape(scope[k])}" for k in sorted(scope))


def parse_scope(key: str) -> Scope | None:
    """The scope an engine user id stands for; None if it is no scope of ours."""
    if "=" not in key:
        return {"user_id": key}
    scope: Scope = {}
    for part in key.split("&"):
        name, sep, value = part.partition("=")
        if not sep or name not in ENTITY_KEYS or name in scope or not value:
            return None
        scope[name] = _unescape(value)
    return scope


def scope_matches(scope: Mapping[str, str], filters: Mapping[str, Any]) -> bool:
    """Whether a scope can hold memories the filters' top-level entity conditions allow."""
    return all(_condition(scope.get(k), filters[k], k in scope)
               for k in ENTITY_KEYS if k in filters)


def matches(payload: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Mem0's filter language over one memory's payload: equality, ``"*"``, a list
    (any of), the operators eq ne gt gte lt lte in nin contains icontains, and
    AND / OR / NOT over lists of filters."""
    for key, cond in filters.items():
        if key == "AND":
            if not isinstance(cond, list):
                raise ValidationError("AND operator requires a list of conditions")
            if not all(matches(payload, _sub(c)) for c in cond):
                return False
        elif key == "OR":
            if not isinstance(cond, list) or not cond:
                raise ValidationError("OR operator requires a non-empty list of conditions")
            if not any(matches(payload, _sub(c)) for c in cond):
                return False
        elif key == "NOT":
            if not isinstance(cond, list) or not cond:
                raise ValidationError("NOT operator requires a non-empty list of conditions")
            if any(matches(payload, _sub(c)) for c in cond):
                return False
        elif not _condition(payload.get(key), cond, key in payload):
            return False
    return True


def check_filters(filters: Mapping[str, Any]) -> None:
    """Refuse unknown operators and malformed AND / OR / NOT up front (matching an
    empty scope would never look at them)."""
    for key, cond in filters.items():
        if key in ("AND", "OR", "NOT"):
            matches({}, {key: cond})  # its shape
            for sub in cond:
                check_filters(_sub(sub))
        elif isinstance(cond, Mapping):
            _condition(None, cond, False)


def _sub(cond: object) -> Mapping[str, Any]:
    if not isinstance(cond, Mapping):
        raise ValidationError(f"a logical operator's conditions must be dicts, got {cond!r}")
    return cond


def _condition(value: Any, cond: Any, present: bool) -> bool:
    if isinstance(cond, Mapping):
        for op, arg in cond.items():
            if op not in _OPERATORS:
                raise ValidationError(f"Unsupported metadata filter operator: {op}")
            if op in ("in", "nin") and not isinstance(arg, list):
                raise ValidationError(f"'{op}' needs a list, got {arg!r}")
        return all((present or op in ("ne", "nin")) and _apply(op, value, arg)
                   for op, arg in cond.items())
    if cond == "*":
        return present
    if isinstance(cond, list):
        return present and value in cond
    return present and value == cond


def _apply(op: str, value: Any, arg: Any) -> bool:
    if op == "eq":
        return bool(value == arg)
    if op == "ne":
        return bool(value != arg)
    if op in ("in", "nin"):
        if not isinstance(arg, list):
            raise ValidationError(f"'{op}' needs a list, got {arg!r}")
        return (value in arg) == (op == "in")
    if op in ("contains", "icontains"):
        if not isinstance(value, str) or not isinstance(arg, str):
            return False
        return arg.lower() in value.lower() if op == "icontains" else arg in value
    left, right = _comparable(value), _comparable(arg)
    if left is None or right is None:
        return False
    if isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        return _compare(op, left.timestamp(), right.timestamp())
    if isinstance(left, float) and isinstance(right, float):
        return _compare(op, left, right)
    return False


def _compare(op: str, left: float, right: float) -> bool:
    return {"gt": left > right, "gte": left >= right, "lt": left < right,
            "lte": left <= right}[op]


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def _comparable(value: Any) -> float | dt.datetime | None:
    """Numbers compare as numbers, ISO dates and datetimes as UTC datetimes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _ISO.match(value):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None
