"""MemoryEngine: the public face of a store.

    with MemoryEngine(path="./memory") as engine:
        engine.observe("My dog's name is Potola.", user_id="u1")
        for turn in engine.turns(user_id="u1"):
            print(turn.text)

Thread-safe within a process; several processes may share one store (LMDB
serialises writers and never blocks readers).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from . import rawlog
from .errors import NotFoundError, ValidationError
from .frames import Turn, decode_frame
from .rawlog import VerifyReport
from .settings import MEMORY_TYPES, PROCESS_ONLY, Settings
from .storage import Store, unpack_u64, user_key
from .units import GONE, LEVEL_NAMES, MemoryUnit
from .workingset import Changes, UserState, WorkingSet

__all__ = ["HealthReport", "MemoryEngine", "MemoryEvent", "Stats"]

_SETTINGS_KEY = b"settings"
_MAX_ID_CHARS = 4096
_MEMORY_ROLE = "memory"  # the role of turns logged by add/update/delete


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """Counts and sizes of a store, or of one user in it."""

    users: int
    turns: int
    units: int
    units_by_level: dict[str, int]  # verbatim / compressed / abbreviated / trace
    units_by_tier: dict[str, int]  # hot (this process's RAM), warm (levels 0-1), cold (2-3)
    working_set_tokens: int  # estimated
    log_bytes: int  # bytes of the LMDB file in use (whole store)
    oldest: float | None  # timestamps of the first and last turn (POSIX seconds)
    newest: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class HealthReport:
    ok: bool
    checks: dict[str, str]  # name -> "ok" or what is wrong and what to do


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryEvent:
    """One entry of a memory's history, the way Mem0 reports it."""

    memory_id: int
    event: str  # ADD, UPDATE or DELETE
    old_memory: str | None
    new_memory: str | None
    turn_id: int  # the log frame that recorded it
    timestamp: float


def _check_id(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{name} must not be empty")
    if len(value) > _MAX_ID_CHARS:
        raise ValidationError(f"{name} is {len(value)} characters; the limit is {_MAX_ID_CHARS}")


def _check_metadata(metadata: object) -> dict[str, Any] | None:
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


def _to_timestamp(timestamp: object) -> tuple[float, int]:
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


class _HotCache:
    """Recently touched units per user, decoded, in RAM (the hot tier).

    Tagged with the user's write version: if another process wrote since, the
    user's cache is dropped rather than trusted.
    """

    def __init__(self, per_user: int, users: int) -> None:
        self.per_user, self.users = per_user, users
        self.data: OrderedDict[str, tuple[int, OrderedDict[int, MemoryUnit]]] = OrderedDict()

    def apply(self, user_id: str, version: int, ch: Changes) -> None:
        entry = self.data.pop(user_id, None)
        units = entry[1] if entry is not None and entry[0] == version - 1 else OrderedDict()
        for unit in ch.touched():
            units.pop(unit.id, None)
            units[unit.id] = unit
        for unit_id in ch.forgotten:
            units.pop(unit_id, None)
        while len(units) > self.per_user:
            units.popitem(last=False)
        self.data[user_id] = (version, units)
        while len(self.data) > self.users:
            self.data.popitem(last=False)

    def get(self, user_id: str, version: int) -> list[MemoryUnit]:
        entry = self.data.get(user_id)
        if entry is None or entry[0] != version:
            self.data.pop(user_id, None)
            return []
        return list(entry[1].values())


class MemoryEngine:
    """Opens (or creates) a store at ``path`` and gives it a memory API.

    Keyword settings override the store's persisted ones (see
    ``memory_plugins.settings.DEFAULT_SETTINGS``).
    """

    def __init__(self, path: str | os.PathLike[str] = "./memory", **settings: Any) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ValidationError(f"path must be a str or PathLike, got {type(path).__name__}")
        given = Settings.from_mapping(settings)  # validate before touching the disk
        self._store = Store(path, durable=given.durability == "sync",
                            map_size=given.map_size_mb * 1024 * 1024,
                            flush_interval_ms=given.flush_interval_ms)
        try:
            self.settings = self._load_settings(settings)
        except BaseException:
            self._store.close()
            raise
        self._ws = WorkingSet(self._store, self.settings)
        self._hot = _HotCache(self.settings.hot_units, self.settings.cached_users)

    def _load_settings(self, given: dict[str, Any]) -> Settings:
        def fn(txn: Any) -> Settings:
            raw = txn.get(_SETTINGS_KEY, db=self._store.dbs["meta"])
            stored = {} if raw is None else json.loads(bytes(raw))
            merged = Settings.from_mapping({**stored, **given})
            if raw is None or any(k not in PROCESS_ONLY for k in given):
                txn.put(_SETTINGS_KEY, merged.to_json().encode(), db=self._store.dbs["meta"])
            return merged
        return self._store.write(fn)

    @property
    def path(self) -> str:
        return str(self._store.path)

    # -- the write path -------------------------------------------------------

    def _make_turn(self, text: object, role: object, user_id: object, session_id: object,
                   speaker: object, timestamp: object, metadata: object) -> Turn:
        if not isinstance(text, str):
            raise ValidationError(f"text must be a str, got {type(text).__name__}")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.settings.max_turn_bytes:
            raise ValidationError(
                f"text is {size} bytes; the limit is {self.settings.max_turn_bytes} "
                "(setting max_turn_bytes)")
        _check_id("role", role)
        if isinstance(role, str) and len(role) > 64:
            raise ValidationError("role must be at most 64 characters")
        _check_id("user_id", user_id)
        _check_id("session_id", session_id, optional=True)
        _check_id("speaker", speaker, optional=True)
        ts, offset = _to_timestamp(timestamp)
        assert isinstance(role, str) and isinstance(user_id, str)
        return Turn(id=0, user_id=user_id, session_id=session_id,  # type: ignore[arg-type]
                    role=role, speaker=speaker, text=text,  # type: ignore[arg-type]
                    timestamp=ts, utc_offset_minutes=offset, metadata=_check_metadata(metadata))

    def _commit(self, user_id: str, fn: Any) -> Any:
        """Run a write; after commit, bring this process's hot cache up to date."""
        result, changes = self._store.write(fn)
        self._hot.apply(user_id, changes.version, changes)
        return result

    def observe(self, text: str, *, role: str = "user", user_id: str = "default",
                session_id: str | None = None, speaker: str | None = None,
                timestamp: dt.datetime | float | None = None,
                metadata: dict[str, Any] | None = None) -> int:
        """Log one turn and update the user's memories; returns the turn id.

        Durable when it returns (unless the store runs with durability="deferred").
        """
        turn = self._make_turn(text, role, user_id, session_id, speaker, timestamp, metadata)

        def fn(txn: Any) -> tuple[int, Changes]:
            logged = rawlog.append(self._store, txn, turn)
            return logged.id, self._ws.ingest(txn, logged)

        result: int = self._commit(turn.user_id, fn)
        return result

    # -- reading the log ------------------------------------------------------

    def turns(self, *, user_id: str, session_id: str | None = None) -> Iterator[Turn]:
        """A user's turns in order, byte-exact (optionally one session's)."""
        _check_id("user_id", user_id)
        _check_id("session_id", session_id, optional=True)
        after = 0
        while True:  # short read transactions, so a long loop never pins old pages
            with self._store.read() as txn:
                batch = []
                for turn in rawlog.iter_user_turns(self._store, txn, user_id, after=after):
                    batch.append(turn)
                    if len(batch) >= 256:
                        break
            for turn in batch:
                if session_id is None or turn.session_id == session_id:
                    yield turn
            if len(batch) < 256:
                return
            after = batch[-1].id

    def get_turn(self, turn_id: int) -> Turn:
        with self._store.read() as txn:
            turn = rawlog.get_turn(self._store, txn, _check_int_id("turn_id", turn_id))
        if turn is None:
            raise NotFoundError(f"no turn {turn_id} in this store")
        return turn

    def verify(self) -> VerifyReport:
        """Check every frame's CRC32 and every user's hash chain (reads the whole log)."""
        with self._store.read() as txn:
            return rawlog.verify(self._store, txn)

    # -- explicit memory management --------------------------------------------

    def add(self, text: str, *, user_id: str = "default", type: str | None = None,
            session_id: str | None = None, timestamp: dt.datetime | float | None = None,
            metadata: dict[str, Any] | None = None) -> MemoryUnit:
        """Store ``text`` as one memory, as given (logged first, like any turn)."""
        if type is not None and type not in MEMORY_TYPES:
            raise ValidationError(f"type must be one of {list(MEMORY_TYPES)}, got {type!r}")
        if isinstance(text, str) and not text.strip():
            raise ValidationError("a memory's text must not be empty")
        meta = _check_metadata(metadata)
        turn = self._make_turn(text, _MEMORY_ROLE, user_id, session_id, None, timestamp,
                               {"op": "add", "type": type, "metadata": meta})

        def fn(txn: Any) -> tuple[MemoryUnit, Changes]:
            logged = rawlog.append(self._store, txn, turn)
            return self._ws.add_explicit(txn, logged, type, meta)

        unit: MemoryUnit = self._commit(turn.user_id, fn)
        return unit

    def _owner(self, txn: Any, memory_id: int) -> str:
        turn = rawlog.get_turn(self._store, txn, memory_id >> 8)
        if turn is None:
            raise NotFoundError(f"no memory {memory_id} in this store")
        return turn.user_id

    def _check_live(self, txn: Any, memory_id: int) -> MemoryUnit:
        user_id = self._owner(txn, memory_id)
        if self._ws.is_deleted(txn, user_id, memory_id):
            raise NotFoundError(f"memory {memory_id} was deleted")
        unit = self._ws.load(txn, user_id, memory_id)
        if unit is None:
            raise NotFoundError(
                f"memory {memory_id} is not in the working set (forgotten, or never a "
                "memory); its turn is still in the log: reinforce([id]) brings it back")
        return unit

    def _present(self, txn: Any, unit: MemoryUnit, now: float, *,
                 curve: bool = True) -> MemoryUnit | None:
        """A unit as callers see it: its sentence read from the log, its strength,
        its source turn's metadata, and (with ``curve``) the level the forgetting
        curve gives it now, even while its record waits for its scheduled
        degradation. None if the curve says it is gone."""
        level = unit.level_at(now, self.settings.level_thresholds) if curve else unit.level
        if level >= GONE:
            return None
        turn = rawlog.get_turn(self._store, txn, unit.origin)
        meta = unit.metadata
        if meta is None and turn is not None and turn.role != _MEMORY_ROLE:
            meta = turn.metadata
        verbatim = turn.text[unit.span[0]:unit.span[1]] if turn is not None else None
        if level > 0:
            verbatim = None
        return unit.degraded_to(level).evolve(verbatim=verbatim, metadata=meta,
                                             strength=unit.retention(now))

    def _shown_text(self, txn: Any, unit: MemoryUnit) -> str:
        shown = self._present(txn, unit, 0.0, curve=False)
        assert shown is not None
        return shown.text

    def get(self, memory_id: int, *, user_id: str | None = None) -> MemoryUnit:
        """One memory by id; with ``user_id``, only if it is that user's."""
        memory_id = _check_int_id("memory_id", memory_id)
        _check_id("user_id", user_id, optional=True)
        with self._store.read() as txn:
            unit = self._check_live(txn, memory_id)
            if user_id is not None and unit.user_id != user_id:
                raise NotFoundError(f"no memory {memory_id} for this user")
            shown = self._present(txn, unit, self._ws.state(txn, unit.user_id).now)
            if shown is None:
                raise NotFoundError(f"memory {memory_id} has been forgotten; its turn is "
                                    "still in the log: reinforce([id]) brings it back")
            return shown

    def memories(self, *, user_id: str, type: str | None = None, level: int | None = None,
                 since: float | None = None, until: float | None = None,
                 limit: int | None = None) -> list[MemoryUnit]:
        """A user's memories in the working set, oldest first, optionally filtered."""
        _check_id("user_id", user_id)
        if type is not None and type not in MEMORY_TYPES:
            raise ValidationError(f"type must be one of {list(MEMORY_TYPES)}, got {type!r}")
        if level is not None and level not in (0, 1, 2, 3):
            raise ValidationError(f"level must be 0..3, got {level!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be a non-negative int, got {limit!r}")
        with self._store.read() as txn:
            now = self._ws.state(txn, user_id).now
            shown = [self._present(txn, u, now) for u in self._ws.iter_units(txn, user_id)
                     if (type is None or u.type == type)
                     and (since is None or u.created_at >= since)
                     and (until is None or u.created_at <= until)]
        found = [u for u in shown if u is not None and (level is None or u.level == level)]
        found.sort(key=lambda u: (u.created_at, u.id))
        return found[:limit]

    def update(self, memory_id: int, text: str, *,
               metadata: dict[str, Any] | None = None) -> MemoryUnit:
        """Replace a memory's text (and metadata); the old text stays in its history."""
        memory_id = _check_int_id("memory_id", memory_id)
        if isinstance(text, str) and not text.strip():
            raise ValidationError("a memory's text must not be empty")
        meta = _check_metadata(metadata)
        with self._store.read() as txn:
            user_id = self._check_live(txn, memory_id).user_id
        turn = self._make_turn(text, _MEMORY_ROLE, user_id, None, None, None,
                               {"op": "update", "memory_id": memory_id, "metadata": meta})

        def fn(txn: Any) -> tuple[MemoryUnit, Changes]:
            old = self._check_live(txn, memory_id)
            logged = rawlog.append(self._store, txn, turn)
            new, ch = self._ws.update_explicit(txn, old, logged, meta)
            self._record_event(txn, user_id, MemoryEvent(
                memory_id, "UPDATE", self._shown_text(txn, old), turn.text, logged.id,
                logged.timestamp))
            return new, ch

        unit: MemoryUnit = self._commit(user_id, fn)
        return unit

    def delete(self, memory_id: int) -> None:
        """Delete a memory: gone from the working set, never restored; the log keeps it."""
        memory_id = _check_int_id("memory_id", memory_id)
        with self._store.read() as txn:
            user_id = self._owner(txn, memory_id)
            if self._ws.is_deleted(txn, user_id, memory_id):
                raise NotFoundError(f"memory {memory_id} was already deleted")
        turn = self._make_turn("", _MEMORY_ROLE, user_id, None, None, None,
                               {"op": "delete", "memory_id": memory_id})

        def fn(txn: Any) -> tuple[None, Changes]:
            unit = self._ws.load(txn, user_id, memory_id)
            logged = rawlog.append(self._store, txn, turn)
            self._record_event(txn, user_id, MemoryEvent(
                memory_id, "DELETE", self._shown_text(txn, unit) if unit else None, None,
                logged.id, logged.timestamp))
            return None, self._ws.delete(txn, user_id, memory_id,
                                         {"turn_id": logged.id, "at": logged.timestamp})

        self._commit(user_id, fn)

    def _record_event(self, txn: Any, user_id: str, ev: MemoryEvent) -> None:
        key = user_key(user_id) + ev.memory_id.to_bytes(8, "big") + ev.turn_id.to_bytes(8, "big")
        txn.put(key, json.dumps(dataclasses.asdict(ev), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"), db=self._store.dbs["history"])

    def history(self, memory_id: int) -> list[MemoryEvent]:
        """ADD (from the log), then every UPDATE and DELETE, oldest first."""
        memory_id = _check_int_id("memory_id", memory_id)
        with self._store.read() as txn:
            origin = rawlog.get_turn(self._store, txn, memory_id >> 8)
            if origin is None:
                raise NotFoundError(f"no memory {memory_id} in this store")
            events: list[MemoryEvent] = []
            prefix = user_key(origin.user_id) + memory_id.to_bytes(8, "big")
            with txn.cursor(db=self._store.dbs["history"]) as cur:
                if cur.set_range(prefix):
                    for key, raw in cur:
                        if key[:24] != prefix:
                            break
                        events.append(MemoryEvent(**json.loads(bytes(raw))))
            first = events[0].old_memory if events else None
            if first is None:
                first = self._ws.original_text(txn, origin, memory_id)
            added = MemoryEvent(memory_id, "ADD", None, first, origin.id, origin.timestamp)
            return [added, *events]

    def reinforce(self, memory_ids: Iterable[int], *, user_id: str) -> list[MemoryUnit]:
        """Count a retrieval: each memory grows stronger and returns to verbatim.

        Forgotten memories are restored from the log; deleted ones are skipped.
        """
        _check_id("user_id", user_id)
        ids = [_check_int_id("memory_id", m) for m in memory_ids]

        def fn(txn: Any) -> tuple[list[MemoryUnit], Changes]:
            ch = self._ws.reinforce_ids(txn, user_id, ids)
            return [*ch.reinforced, *ch.restored], ch

        units: list[MemoryUnit] = self._commit(user_id, fn)
        with self._store.read() as txn:
            shown = [self._present(txn, u, u.last_reinforced, curve=False) for u in units]
        return [u for u in shown if u is not None]

    def consolidate(self, *, user_id: str) -> int:
        """Merge near-duplicate memories (same compressed form); returns how many went."""
        _check_id("user_id", user_id)

        def fn(txn: Any) -> tuple[int, Changes]:
            return self._ws.consolidate(txn, user_id)

        merged: int = self._commit(user_id, fn)
        return merged

    # -- health and numbers -----------------------------------------------------

    def stats(self, user_id: str | None = None) -> Stats:
        """Counts per level and tier, tokens, bytes, and the time span of the log."""
        _check_id("user_id", user_id, optional=True)
        dbs = self._store.dbs
        with self._store.read() as txn:
            if user_id is None:
                with txn.cursor(db=dbs["users"]) as cur:
                    states = [UserState.from_bytes(bytes(v)) for _k, v in cur]
                users = txn.stat(dbs["chains"])["entries"]
                first, last = _first_last(txn, dbs["turns"], None)
                turns = txn.stat(dbs["turns"])["entries"]
            else:
                states = [self._ws.state(txn, user_id)]
                first, last = _first_last(txn, dbs["user_turns"], user_key(user_id))
                with txn.cursor(db=dbs["user_turns"]) as cur:
                    turns = cur.count() if cur.set_key(user_key(user_id)) else 0
                users = 1 if turns else 0
            ends = [rawlog.get_turn(self._store, txn, seq) if seq else None
                    for seq in (first, last)]
            hot = sum(len(self._hot.get(s.user_id, s.version)) for s in states)
        levels = [sum(s.levels[i] for s in states) for i in range(4)]
        return Stats(
            users=users, turns=turns, units=sum(levels),
            units_by_level=dict(zip(LEVEL_NAMES, levels, strict=True)),
            units_by_tier={"hot": hot, "warm": levels[0] + levels[1],
                           "cold": levels[2] + levels[3]},
            working_set_tokens=sum(s.tokens for s in states),
            log_bytes=self._store.used_bytes(),
            oldest=ends[0].timestamp if ends[0] else None,
            newest=ends[1].timestamp if ends[1] else None)

    def health(self) -> HealthReport:
        """Quick checks (no full log walk; ``verify()`` does that)."""
        checks: dict[str, str] = {}
        try:
            with self._store.read() as txn:
                with txn.cursor(db=self._store.dbs["turns"]) as cur:
                    if cur.last():
                        decode_frame(bytes(cur.value()))
                checks["last_frame"] = "ok"
        except Exception as exc:  # reported, not raised: this is the health check
            checks["last_frame"] = f"{type(exc).__name__}: {exc}; run verify() for details"
        info = self._store.env.info()
        used = self._store.used_bytes() / max(1, info["map_size"])
        checks["map"] = "ok" if used < 0.9 else f"{used:.0%} of the map used; it grows on demand"
        free = shutil.disk_usage(self._store.path).free
        checks["disk"] = "ok" if free > 256 * 1024 * 1024 else (
            f"only {free // (1024 * 1024)} MiB free on the store's disk: free some space")
        readers = info["num_readers"]
        checks["readers"] = "ok" if readers < 200 else (
            f"{readers} reader slots in use: a crashed process may hold some; reopen")
        return HealthReport(ok=all(v == "ok" for v in checks.values()), checks=checks)

    # -- lifecycle ------------------------------------------------------------

    def flush(self) -> None:
        """fsync now (only needed with durability="deferred")."""
        self._store.flush()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> MemoryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryEngine(path={self.path!r})"


def _check_int_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"{name} must be a positive int, got {value!r}")
    if value >= 1 << 63:
        raise ValidationError(f"{name} {value} is out of range")
    return value


def _first_last(txn: Any, db: Any, key: bytes | None) -> tuple[int, int]:
    """First and last turn id of the whole log (key None) or of one user (0, 0 if none)."""
    with txn.cursor(db=db) as cur:
        if key is None:
            if not cur.first():
                return 0, 0
            first = unpack_u64(cur.key())
            cur.last()
            return first, unpack_u64(cur.key())
        if not cur.set_key(key):
            return 0, 0
        first = unpack_u64(cur.value())
        cur.last_dup()
        return first, unpack_u64(cur.value())
