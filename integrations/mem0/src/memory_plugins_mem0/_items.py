"""Our memories and history events as Mem0's result dicts.

Ids: a memory-plugins memory id is an int; Mem0's are UUID strings. Here an id is
the decimal string of ours (``"1792"``), and both ``"1792"`` and ``1792`` are accepted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from memory_plugins import MemoryEvent, MemoryUnit
from memory_plugins.validation import clamp_timestamp

from ._scopes import Scope

__all__ = ["INTERNAL", "history_item", "iso", "memory_item", "parse_id", "payload", "user_metadata"]

INTERNAL = "_mem0"  # our bookkeeping inside a memory's metadata, never shown
PROMOTED = ("user_id", "agent_id", "run_id", "actor_id", "role")


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(clamp_timestamp(seconds), dt.UTC).isoformat()


def parse_id(memory_id: object) -> int | None:
    """Our int id from a Mem0 id (str of digits, or int); None if it cannot be one."""
    if isinstance(memory_id, bool):
        return None
    if isinstance(memory_id, int):
        return memory_id if 0 < memory_id < 1 << 63 else None
    if isinstance(memory_id, str) and memory_id.strip().isascii() and memory_id.strip().isdigit():
        value = int(memory_id.strip())
        return value if 0 < value < 1 << 63 else None
    return None


def internal(unit: MemoryUnit) -> dict[str, Any]:
    info = (unit.metadata or {}).get(INTERNAL)
    return info if isinstance(info, dict) else {}


def user_metadata(unit: MemoryUnit) -> dict[str, Any]:
    return {k: v for k, v in (unit.metadata or {}).items() if k != INTERNAL}


def payload(unit: MemoryUnit, scope: Scope) -> dict[str, Any]:
    """What Mem0's filters see: the caller's metadata, the ids, role and actor."""
    info = internal(unit)
    out = user_metadata(unit)
    out.update(scope)
    for key in ("actor_id", "role", "expiration_date"):
        if info.get(key) is not None:
            out[key] = info[key]
    out["created_at"] = iso(unit.created_at)
    out["updated_at"] = info.get("updated_at") or out["created_at"]
    return out


def memory_item(unit: MemoryUnit, scope: Scope, *, score: float | None = None,
                with_score: bool = True) -> dict[str, Any]:
    """One memory the way Mem0's get / get_all / search show it."""
    info = internal(unit)
    text = unit.text
    created = iso(unit.created_at)
    item: dict[str, Any] = {
        "id": str(unit.id),
        "memory": text,
        "hash": hashlib.md5(text.encode("utf-8", "surrogatepass")).hexdigest(),
        "metadata": user_metadata(unit) or None,
        "created_at": created,
        "updated_at": info.get("updated_at") or created,
    }
    if with_score:
        item["score"] = score
    item.update(scope)
    for key in ("actor_id", "role", "expiration_date"):
        if info.get(key) is not None:
            item[key] = info[key]
    # mem0's key order: id, memory, hash, metadata, score, created_at, updated_at, ids...
    order = ["id", "memory", "hash", "metadata", "score", "created_at", "updated_at"]
    return {k: item[k] for k in order if k in item} | {
        k: v for k, v in item.items() if k not in order}


def history_item(event: MemoryEvent, created_at: float, info: dict[str, Any]) -> dict[str, Any]:
    """One history entry with Mem0's keys (its id is the log frame that recorded it)."""
    return {
        "id": str(event.turn_id),
        "memory_id": str(event.memory_id),
        "old_memory": event.old_memory,
        "new_memory": event.new_memory,
        "event": event.event,
        "created_at": iso(created_at),
        "updated_at": iso(event.timestamp),
        "is_deleted": event.event == "DELETE",
        "actor_id": info.get("actor_id"),
        "role": info.get("role"),
    }
