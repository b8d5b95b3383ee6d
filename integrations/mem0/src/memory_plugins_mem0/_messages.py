"""Mem0's ``messages`` argument, and which messages a scope has already received."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from memory_plugins import MemoryEngine, MemoryUnit
from memory_plugins.validation import MAX_ID_CHARS

from ._items import INTERNAL, internal
from .exceptions import ValidationError

__all__ = ["Dedupe", "message_hash", "normalise_messages"]

log = logging.getLogger("memory_plugins_mem0")


def text_of(content: Any) -> str | None:
    """A message's text: a str, or the text parts of an OpenAI content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content
                 if isinstance(p, Mapping) and p.get("type") == "text"]
        if parts and all(isinstance(p, str) for p in parts):
            return "\n".join(p for p in parts if isinstance(p, str))
    return None


def normalise_messages(messages: object) -> list[dict[str, Any]]:
    """Mem0's accepted forms, checked before anything is stored: str, dict, list[dict].
    Like Mem0, entries without role or content and system messages are skipped."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        messages = [messages]
    elif not isinstance(messages, list):
        raise ValidationError(
            "messages must be str, dict, or list[dict]", "VALIDATION_003",
            {"provided_type": type(messages).__name__,
             "valid_types": ["str", "dict", "list[dict]"]},
            "Convert your input to a string, dictionary, or list of dictionaries.")
    out = []
    for message in messages:
        if not isinstance(message, Mapping):  # Mem0 fails with an AttributeError here
            raise ValidationError(
                f"messages must be str, dict, or list[dict]; an entry is a "
                f"{type(message).__name__}", "VALIDATION_003")
        if message.get("role") is None or message.get("content") is None:
            log.warning("Skipping invalid message format: %r", message)
            continue
        role = message["role"]
        if role == "system":
            continue
        if not isinstance(role, str) or not role or len(role) > 64 or role == "memory":
            raise ValidationError(f"a message's role must be a short str (not 'memory'), "
                                  f"got {role!r}", "VALIDATION_006")
        text = text_of(message["content"])
        if text is None:
            raise ValidationError("a message's content must be a str or a list of text parts, "
                                  f"got {type(message['content']).__name__}", "VALIDATION_007")
        name = message.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()
                                 or len(name) > MAX_ID_CHARS):
            raise ValidationError(f"a message's name must be a non-empty str of at most "
                                  f"{MAX_ID_CHARS} characters, got {name!r:.80}",
                                  "VALIDATION_008")
        if not text.strip():
            continue  # nothing to remember (Mem0 would store an empty memory)
        out.append({"role": role, "content": text, "name": name})
    return out


def message_hash(message: Mapping[str, Any]) -> str:
    raw = f"{message['role']}\0{message.get('name') or ''}\0{message['content']}"
    return hashlib.md5(raw.encode("utf-8", "surrogatepass")).hexdigest()


class Dedupe:
    """How many times each message (role, name, content) a scope has received.

    Pipecat's Mem0MemoryService sends the whole conversation on every turn; a store
    that kept each copy would grow quadratically. A message is received again only as
    many times as it occurs in one call more often than the scope received it before,
    so a re-sent transcript adds only its new messages, and a message said twice in
    one conversation is kept twice. Counts come from the store the first time a scope
    is used in this process (its turns, and the memories ``infer=False`` added), then
    live in memory; deleting an ``infer=False`` memory forgets its message.
    """

    def __init__(self, engine: MemoryEngine) -> None:
        self._engine = engine
        self._counts: dict[str, Counter[str]] = {}

    def counts(self, key: str) -> Counter[str]:
        found = self._counts.get(key)
        if found is None:
            found = Counter()
            for turn in self._engine.turns(user_id=key):
                info = (turn.metadata or {}).get(INTERNAL)
                if turn.role != "memory" and isinstance(info, dict) and info.get("msg"):
                    found[info["msg"]] += 1
            for unit in self._engine.memories(user_id=key):
                info = internal(unit)
                if info.get("via") == "add" and info.get("msg"):
                    found[info["msg"]] += 1
                for src in info.get("src") or ():
                    found[src] = max(found[src], 1)
            self._counts[key] = found
        return found

    def new_messages(self, key: str, messages: list[dict[str, Any]]
                     ) -> list[tuple[dict[str, Any], str]]:
        seen = self.counts(key)
        used: Counter[str] = Counter()
        fresh = []
        for message in messages:
            digest = message_hash(message)
            used[digest] += 1
            if used[digest] > seen[digest]:
                fresh.append((message, digest))
        return fresh

    def received(self, key: str, digest: str) -> None:
        self.counts(key)[digest] += 1

    def forgotten(self, key: str, unit: MemoryUnit) -> None:
        info = internal(unit)
        counts = self._counts.get(key)
        if counts is not None and info.get("via") == "add" and counts[info.get("msg", "")] > 0:
            counts[info["msg"]] -= 1

    def clear(self) -> None:
        self._counts.clear()
