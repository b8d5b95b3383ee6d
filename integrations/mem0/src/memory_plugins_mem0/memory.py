"""``Memory``: Mem0's synchronous API over a memory-plugins store.

    from memory_plugins_mem0 import Memory      # was: from mem0 import Memory

    m = Memory()                                 # or Memory.from_config({"path": "./memory"})
    m.add("My dog's name is Potola.", user_id="ana")
    m.search("dog's name?", filters={"user_id": "ana"})["results"][0]["memory"]

What each call becomes:

* ``add(infer=True)`` (Mem0's default) logs each message as a turn (``observe``): our
  rule-based extraction makes the memories, no LLM. With an ``extractor`` in the
  config, that function's facts are stored instead (``add`` each, as given).
* ``add(infer=False)`` stores each message as one memory, as given (``add``).
* A message this scope already received is not received again (Pipecat re-sends the
  whole conversation every turn); see ``_messages.Dedupe``.
* ``search`` / ``get_all`` / ``delete_all`` act on every scope the filters select
  (see ``_scopes``), then apply the rest of the filters to each memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from memory_plugins import MemoryEngine, MemoryUnit, NotFoundError
from memory_plugins.engine import added_metadata
from memory_plugins.storage import erase_store
from memory_plugins.validation import checked_metadata

from ._checks import (
    check_expiration,
    check_metadata_arg,
    check_search_filters,
    check_timestamp,
    check_top_k,
    is_expired,
    reject_top_level_ids,
)
from ._config import Config, parse_config
from ._items import (
    INTERNAL,
    PROMOTED,
    history_item,
    internal,
    iso,
    memory_item,
    parse_id,
    payload,
)
from ._messages import Dedupe, message_hash, normalise_messages
from ._scopes import (
    ENTITY_KEYS,
    Scope,
    check_entity_id,
    parse_scope,
    scope_key,
    scope_matches,
)
from ._scopes import matches as filters_match
from .exceptions import MemoryNotFoundError, ValidationError

__all__ = ["Memory"]

log = logging.getLogger("memory_plugins_mem0")
REGISTRY_USER = "mem0=scopes"  # an engine user that logs every scope once; never a scope
_UNSET: Any = object()
_SENTENCE_END = re.compile(r"[.!?…\n]+")


class Memory:
    """Mem0's ``Memory`` API (mem0ai 2.x) on a memory-plugins store.

    ``Memory()`` opens the default store (``$MEMORY_PLUGINS_MEM0_DIR`` or
    ``~/.memory_plugins/mem0``); ``Memory.from_config({"path": ...})`` takes our
    settings (see ``_config``). Ids are decimal strings of our int ids.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: Config = parse_config(config)
        self._owns_engine = self.config.engine is None
        self._engine = self.config.engine or self._open()
        self._lock = threading.RLock()
        self._dedupe = Dedupe(self._engine)
        self._scopes: dict[str, Scope] | None = None  # engine user -> scope, this process

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> Memory:
        return cls(config_dict)

    def _open(self) -> MemoryEngine:
        return MemoryEngine(self.config.path, embedder=self.config.embedder,
                            **self.config.settings)

    @property
    def engine(self) -> MemoryEngine:
        """The memory-plugins engine underneath (for ``build()``, ``stats()``, ...)."""
        return self._engine

    # -- scopes -----------------------------------------------------------------

    def _known_scopes(self) -> dict[str, Scope]:
        if self._scopes is None:
            scopes: dict[str, Scope] = {}
            for turn in self._engine.turns(user_id=REGISTRY_USER):
                scope = (turn.metadata or {}).get("scope")
                if isinstance(scope, dict):
                    scopes[scope_key(scope)] = scope
            self._scopes = scopes
        return self._scopes

    def _register(self, scope: Scope) -> str:
        key = scope_key(scope)
        known = self._known_scopes()
        if key not in known:
            self._engine.observe("", user_id=REGISTRY_USER, metadata={"scope": scope})
            known[key] = scope
        return key

    def _resolve(self, filters: Mapping[str, Any]) -> list[tuple[str, Scope]]:
        """The scopes (engine users) whose memories the filters may select."""
        with self._lock:  # add() may be registering a scope in another thread
            known = list(self._known_scopes().items())
        found = {k: s for k, s in known if scope_matches(s, filters)}
        user = filters.get("user_id")
        wanted: list[Any] = []
        if isinstance(user, str) and user != "*":
            wanted = [user]
        elif isinstance(user, list):
            wanted = user
        elif isinstance(user, Mapping) and set(user) <= {"eq", "in"}:
            wanted = [user["eq"]] if "eq" in user else list(user.get("in") or ())
        for name in wanted:  # users of the core API, never registered here, are scopes too
            if isinstance(name, str) and name:
                plain = {"user_id": name}
                if scope_matches(plain, filters):
                    found.setdefault(scope_key(plain), plain)
        return sorted(found.items())

    def _scope_of(self, unit: MemoryUnit) -> Scope | None:
        return parse_scope(unit.user_id) if unit.user_id != REGISTRY_USER else None

    # -- add --------------------------------------------------------------------

    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, metadata: dict[str, Any] | None = None,
            timestamp: Any = None, expiration_date: Any = None, infer: bool = True,
            memory_type: str | None = None, prompt: str | None = None) -> dict[str, Any]:
        """Store messages (a str, a message dict, or a list of them) in a scope."""
        ids = {k: check_entity_id(v, k) for k, v in
               (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id))}
        scope: Scope = {k: v for k, v in ids.items() if v}
        if not scope:
            raise ValidationError(
                "At least one of 'user_id', 'agent_id', or 'run_id' must be provided.",
                "VALIDATION_001", {"provided_ids": ids},
                "Please provide at least one identifier to scope the memory operation.")
        meta = check_metadata_arg(metadata)
        for key in [k for k in meta if k in (*ENTITY_KEYS, "actor_id", INTERNAL)]:
            log.warning("add(): ignoring metadata['%s'] - identity fields cannot be set "
                        "through metadata", key)
            del meta[key]
        expires = check_expiration(expiration_date)
        if memory_type is not None:
            raise ValidationError(
                "memory_type is not supported: Mem0's procedural memories are an LLM's "
                "summary of a conversation; store the summary with infer=False instead",
                "VALIDATION_002", {"provided_type": memory_type})
        if not isinstance(infer, bool):
            raise ValidationError(f"infer must be a bool, got {infer!r}")
        if prompt is not None and not isinstance(prompt, str):
            raise ValidationError(f"prompt must be a str, got {prompt!r}")
        when = check_timestamp(timestamp)
        items = normalise_messages(messages)
        limit = self._engine.settings.max_turn_bytes
        for item in items:  # checked before the first message is stored
            size = self._stored_size(item, meta, expires, as_given=not infer)
            if size > limit:
                raise ValidationError(f"a message and its metadata are {size} bytes; the "
                                      f"limit is {limit} (setting max_turn_bytes)",
                                      "VALIDATION_011")
        with self._lock:
            key = self._register(scope)
            fresh = (self._dedupe.new_messages(key, items) if self.config.dedupe
                     else [(m, message_hash(m)) for m in items])
            if not fresh:
                return {"results": []}
            if not infer:
                return {"results": self._add_as_given(key, fresh, meta, when, expires)}
            if self.config.extractor is not None:
                return {"results": self._add_extracted(key, fresh, meta, when, expires,
                                                       prompt)}
            return {"results": self._observe(key, fresh, meta, when, expires)}

    def _stored_size(self, message: Mapping[str, Any], meta: dict[str, Any],
                     expires: str | None, *, as_given: bool) -> int:
        """The bytes the engine counts against max_turn_bytes for this message: its
        text and the metadata stored with it (add() wraps it in its operation)."""
        info = self._internal(message, message_hash(message), "add" if as_given else "observe",
                              expires)
        stored: dict[str, Any] = {**meta, INTERNAL: info}
        if as_given:
            stored = added_metadata(None, stored)
        return (len(message["content"].encode("utf-8", "surrogatepass"))
                + checked_metadata(stored)[1])

    def _internal(self, message: Mapping[str, Any], digest: str, via: str,
                  expires: str | None) -> dict[str, Any]:
        info = {"via": via, "role": message["role"], "msg": digest}
        if message.get("name"):
            info["actor_id"] = message["name"]
        if expires:
            info["expiration_date"] = expires
        return info

    def _add_as_given(self, key: str, fresh: list[tuple[dict[str, Any], str]],
                      meta: dict[str, Any], when: Any, expires: str | None
                      ) -> list[dict[str, Any]]:
        out = []
        for message, digest in fresh:
            info = self._internal(message, digest, "add", expires)
            unit = self._engine.add(message["content"], user_id=key, timestamp=when,
                                    metadata={**meta, INTERNAL: info})
            self._dedupe.received(key, digest)
            out.append({"id": str(unit.id), "memory": message["content"], "event": "ADD",
                        "actor_id": message.get("name"), "role": message["role"]})
        return out

    def _observe(self, key: str, fresh: list[tuple[dict[str, Any], str]],
                 meta: dict[str, Any], when: Any, expires: str | None
                 ) -> list[dict[str, Any]]:
        turns = []
        for message, digest in fresh:
            info = self._internal(message, digest, "observe", expires)
            turn_id = self._engine.observe(message["content"], role=message["role"],
                                           user_id=key, speaker=message.get("name"),
                                           timestamp=when, metadata={**meta, INTERNAL: info})
            self._dedupe.received(key, digest)
            turns.append((turn_id, message["content"]))
        out = []
        for unit in self._units_of(key, turns):
            out.append({"id": str(unit.id), "memory": unit.text, "event": "ADD"})
        return out

    def _units_of(self, key: str, turns: list[tuple[int, str]]) -> Iterator[MemoryUnit]:
        """The memories extraction made from these turns (read-your-writes: the first
        read applies them). A sentence that repeats a memory reinforces it instead."""
        per_turn = self._engine.settings.max_units_per_turn
        piece = self._engine.settings.max_unit_chars
        for turn_id, text in turns:
            guess = len(_SENTENCE_END.findall(text)) + 1 + len(text) // piece
            for index in range(min(per_turn, guess)):
                try:
                    yield self._engine.get(turn_id << 8 | index, user_id=key)
                except NotFoundError:
                    continue

    def _add_extracted(self, key: str, fresh: list[tuple[dict[str, Any], str]],
                       meta: dict[str, Any], when: Any, expires: str | None,
                       prompt: str | None) -> list[dict[str, Any]]:
        assert self.config.extractor is not None
        messages = [{k: v for k, v in m.items() if v is not None} for m, _d in fresh]
        facts = self.config.extractor(messages, prompt)
        if isinstance(facts, str) or not isinstance(facts, Sequence) \
                or not all(isinstance(f, str) for f in facts):
            raise ValidationError(f"an extractor must return a list of str, got {facts!r}",
                                  "VALIDATION_009")
        sources = [d for _m, d in fresh]
        out = []
        for fact in (f.strip() for f in facts):
            if not fact:
                continue
            info = {"via": "extractor", "role": "user", "src": sources}
            if expires:
                info["expiration_date"] = expires
            unit = self._engine.add(fact, user_id=key, timestamp=when,
                                    metadata={**meta, INTERNAL: info})
            out.append({"id": str(unit.id), "memory": fact, "event": "ADD"})
        for digest in sources:
            self._dedupe.received(key, digest)
        return out

    # -- read ---------------------------------------------------------------------

    def _live(self, memory_id: object) -> tuple[MemoryUnit, Scope] | None:
        number = parse_id(memory_id)
        if number is None:
            return None
        try:
            unit = self._engine.get(number)
        except NotFoundError:
            return None
        scope = self._scope_of(unit)
        return None if scope is None else (unit, scope)

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or None (as Mem0) if there is none."""
        found = self._live(memory_id)
        return None if found is None else memory_item(found[0], found[1])

    def get_all(self, *, filters: dict[str, Any] | None = None, top_k: int = 20,
                show_expired: bool = False, **kwargs: Any) -> dict[str, Any]:
        """The memories the filters select, oldest first, at most ``top_k``."""
        reject_top_level_ids(kwargs, "get_all")
        check_top_k(top_k)
        wanted = check_search_filters(filters)
        out: list[dict[str, Any]] = []
        for key, scope in self._resolve(wanted):
            if len(out) >= top_k:
                break
            for unit in self._engine.memories(user_id=key):
                seen = payload(unit, scope)
                if (show_expired or not is_expired(seen)) and filters_match(seen, wanted):
                    out.append(memory_item(unit, scope, with_score=False))
                    if len(out) >= top_k:
                        break
        return {"results": out}

    def search(self, query: str, *, top_k: int = 20, filters: dict[str, Any] | None = None,
               threshold: float = 0.1, rerank: bool = False, explain: bool = False,
               reference_date: Any = None, show_expired: bool = False,
               **kwargs: Any) -> dict[str, Any]:
        """The memories most relevant to ``query`` among those the filters select,
        best first; ``score`` is our fused relevance (0..1)."""
        if reference_date is not None:
            raise ValidationError("reference_date is a Mem0 Platform feature; the open-source "
                                  "API (and this one) does not take it")
        reject_top_level_ids(kwargs, "search")
        check_top_k(top_k, threshold)
        if not isinstance(query, str):
            raise ValidationError("Invalid query: must be a non-empty string.")
        query = query.strip()
        if not query:
            raise ValidationError("Invalid query: cannot be empty or whitespace-only.")
        wanted = check_search_filters(filters)
        if top_k == 0:
            return {"results": []}
        only_ids = set(wanted) <= set(ENTITY_KEYS) and all(
            isinstance(wanted[k], str) and wanted[k] != "*" for k in wanted)
        fetch = top_k if only_ids else max(top_k * 4, 60)
        scored: list[tuple[float, int, str, Scope, MemoryUnit]] = []
        for key, scope in self._resolve(wanted):
            for hit in self._engine.search(query, user_id=key, limit=fetch):
                if hit.score < (threshold or 0.0):
                    continue
                seen = payload(hit.memory, scope)
                if (show_expired or not is_expired(seen)) and filters_match(seen, wanted):
                    scored.append((hit.score, hit.memory.id, key, scope, hit.memory))
        scored.sort(key=lambda s: (-s[0], s[1]))
        chosen = scored[:top_k]
        shown = self._retrieved(chosen) if self.config.reinforce else {}
        return {"results": [memory_item(shown.get(unit.id, unit), scope, score=score)
                            for score, _id, _key, scope, unit in chosen]}

    def _retrieved(self, chosen: list[tuple[float, int, str, Scope, MemoryUnit]]
                   ) -> dict[int, MemoryUnit]:
        """Count a search as a retrieval (``MemoryEngine.reinforce``): the memories
        found grow stronger and come back verbatim from the log, the way recalling
        something refreshes it. Off with ``{"reinforce": False}``."""
        by_key: dict[str, list[int]] = {}
        for _score, unit_id, key, _scope, _unit in chosen:
            by_key.setdefault(key, []).append(unit_id)
        shown: dict[int, MemoryUnit] = {}
        for key, ids in by_key.items():
            shown.update((u.id, u) for u in self._engine.reinforce(ids, user_id=key))
        return shown

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """ADD, UPDATE and DELETE events of a memory, oldest first ([] if none)."""
        number = parse_id(memory_id)
        if number is None:
            return []
        try:
            events = self._engine.history(number)
        except NotFoundError:
            return []
        info = self._origin_info(number)
        created = events[0].timestamp if events else 0.0
        return [history_item(e, created, info) for e in events]

    def _origin_info(self, memory_id: int) -> dict[str, Any]:
        """Our bookkeeping (role, actor) from the turn that made the memory, which the
        log keeps after a delete: an observed turn's metadata, or an add's."""
        try:
            meta = self._engine.get_turn(memory_id >> 8).metadata or {}
        except NotFoundError:
            return {}
        info = meta.get(INTERNAL)
        if not isinstance(info, dict) and isinstance(meta.get("metadata"), dict):
            info = meta["metadata"].get(INTERNAL)
        return info if isinstance(info, dict) else {}

    # -- change -----------------------------------------------------------------

    def update(self, memory_id: str, text: str | None = None,
               metadata: dict[str, Any] | None = None, expiration_date: Any = _UNSET,
               data: str | None = None) -> dict[str, str]:
        """Replace a memory's text and/or merge metadata into its own."""
        if data is not None:
            log.warning("The `data` argument to update() is deprecated; use `text` instead.")
            text = text if text is not None else data
        if text is None and metadata is None and expiration_date is _UNSET:
            raise ValidationError(
                "At least one of text, metadata, or expiration_date must be provided.")
        if text is not None and not isinstance(text, str):
            raise ValidationError(f"text must be a str, got {type(text).__name__}")
        extra = check_metadata_arg(metadata)
        expires = _UNSET if expiration_date is _UNSET else check_expiration(expiration_date)
        with self._lock:
            found = self._live(memory_id)
            if found is None:
                raise MemoryNotFoundError(f"Memory with id {memory_id} not found. Please "
                                          "provide a valid 'memory_id'")
            unit, _scope = found
            if text is None:  # the memory's full text, even when it has faded
                text = self._engine.history(unit.id)[-1].new_memory or unit.text
            meta = dict(unit.metadata or {})
            for key, value in extra.items():
                if key in PROMOTED or key == INTERNAL:
                    log.warning("update(): ignoring metadata['%s'] - identity fields cannot "
                                "be set through metadata", key)
                else:
                    meta[key] = value
            info = dict(internal(unit))
            info["updated_at"] = iso(dt.datetime.now(dt.UTC).timestamp())
            if expires is not _UNSET:
                info["expiration_date"] = expires
            meta[INTERNAL] = info
            self._engine.update(unit.id, text, metadata=meta)
        return {"message": "Memory updated successfully!"}

    def delete(self, memory_id: str) -> dict[str, str]:
        with self._lock:
            found = self._live(memory_id)
            if found is None:
                raise MemoryNotFoundError(f"Memory with id {memory_id} not found")
            self._engine.delete(found[0].id)
            self._dedupe.forgotten(found[0].user_id, found[0])
        return {"message": "Memory deleted successfully!"}

    def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, str]:
        """Delete every memory of the scopes these ids select (the log keeps them)."""
        ids = {k: check_entity_id(v, k) for k, v in
               (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id))}
        wanted = {k: v for k, v in ids.items() if v}
        if not wanted:
            raise ValidationError(
                "At least one filter is required to delete all memories. If you want to "
                "delete all memories, use the `reset()` method.")
        with self._lock:
            for key, _scope in self._resolve(wanted):
                for unit in self._engine.memories(user_id=key):
                    self._engine.delete(unit.id)
                    self._dedupe.forgotten(key, unit)
        return {"message": "Memories deleted successfully!"}

    def reset(self) -> None:
        """Erase the store: its files are deleted and a fresh store opened. With an
        engine given in the config (not ours to erase), every memory of every scope
        is deleted instead (its log keeps the turns)."""
        with self._lock:
            if self._owns_engine:
                self._engine.close()
                erase_store(self.config.path)  # its own files: the directory may hold others
                self._engine = self._open()
                self._dedupe = Dedupe(self._engine)
                self._scopes = None
                return
            for key in list(self._known_scopes()):
                for unit in self._engine.memories(user_id=key):
                    self._engine.delete(unit.id)
            self._dedupe.clear()

    # -- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        """Close the store (only if this object opened it)."""
        if self._owns_engine:
            self._engine.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(self, query: str) -> str:
        raise NotImplementedError("Chat function not implemented yet.")  # as Mem0

    def __repr__(self) -> str:
        return f"Memory(path={self._engine.path!r})"
