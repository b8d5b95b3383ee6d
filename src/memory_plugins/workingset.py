"""The working set: each user's bounded set of memory units, and how it changes.

It is derived from the raw log: ``catch_up`` applies logged turns in log order,
and records the last one applied in the same transaction, so any process can
bring it up to date after any crash. Explicit operations (add, update, delete)
are logged turns too, so the log alone rebuilds everything. Functions take a
``Tx``: a write (or read) transaction on the working set and a read transaction
on the log. The work done per applied turn is bounded by settings, never by the
log's length:

* new units: at most ``max_units_per_turn``;
* reinforcement by mention: at most ``restore_per_turn`` units;
* scheduled degradation: at most ``decay_steps_per_turn`` units, taken from the
  schedule's due entries in order of when they leave their level (no scan);
* capacity: the weakest units (soonest forgotten, from the expiry entries)
  degrade, then go, until the user is back under ``warm_units`` and
  ``working_set_tokens``.

Conversation time drives decay: "now" for a user is the latest timestamp seen
for that user, so replayed or simulated conversations decay as they would have.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import math
from collections.abc import Callable, Container, Iterator
from typing import Any

from . import rawlog
from .errors import CorruptionError, StorageError
from .extract import (
    Extracted,
    TurnAnalysis,
    analyze_turn,
    extract_span,
    fingerprint,
    opens_reply,
    questions,
)
from .frames import Turn
from .settings import Settings
from .storage import Store, pack_u64, term_key, unpack_u64, user_key
from .units import GONE, MemoryUnit

__all__ = ["Changes", "Tx", "UserState", "WorkingSet"]

log = logging.getLogger("memory_plugins")
# A schedule entry is a duplicate under the user key: part (b"d" due, b"e" expiry),
# when (whole seconds, rounded up, 5 bytes), unit id (6 bytes). Rounding up only
# delays a degradation by under a second of conversation time, never advances it.
# The same database holds, as part b"f", each unit's fingerprint (its first 5 bytes)
# then its id: duplicate detection, removed with the unit like its schedule.
_DUE, _EXPIRY, _FINGERPRINT = b"d", b"e", b"f"
_WHEN_END = 6  # the unit id follows part + time
_SECONDS_BIAS = 1 << 39  # times from about 17,000 years before 1970 to as many after
_SECONDS_MAX = (1 << 40) - 1
# A mention entry is a duplicate under the user key: term hash (5 bytes), unit id (6),
# span (3: start 14 bits, length 10 bits). A span that does not fit is stored as all
# ones and found again by analysing the unit's turn.
_TERM = 5
_NO_SPAN = b"\xff" * 3
_UID = 6  # unit ids stored in 6 bytes: turn ids below 2**40
_MAX_UID = 1 << (8 * _UID)
# A unit is a duplicate under its user's key: unit id (6 bytes) + record. LMDB caps a
# duplicate at 511 bytes; a longer record (long caller metadata) is stored apart, in
# ``big_units`` under user key + unit id, and its duplicate holds the marker instead.
_MAX_INLINE = 511 - _UID
_APART = b"\x00"  # never a record's first byte (its version)
_COMPACT_AFTER = 64  # removals before a user's entries may be compacted (see _compact)
MAX_SOURCES = 16  # a unit said many times keeps its latest 16 source turns


@dataclasses.dataclass(slots=True)
class UserState:
    """Per-user counters, so stats and capacity checks never scan."""

    user_id: str
    now: float  # latest conversation time seen for this user
    levels: list[int]  # units at each level 0..3
    tokens: int  # estimated tokens of all units' current forms
    version: int = 0  # bumped by every write: tells a process its RAM cache is stale
    removed: int = 0  # units removed since the user's entries were last compacted

    @property
    def units(self) -> int:
        return sum(self.levels)

    def to_bytes(self) -> bytes:
        return json.dumps([self.user_id, self.now, self.levels, self.tokens, self.version,
                           self.removed], ensure_ascii=False).encode("utf-8", "surrogatepass")

    @classmethod
    def from_bytes(cls, raw: bytes) -> UserState:
        uid, now, levels, tokens, version, removed = json.loads(
            raw.decode("utf-8", "surrogatepass"))
        return cls(uid, now, levels, tokens, version, removed)


@dataclasses.dataclass(slots=True)
class Changes:
    """What one write did, for callers, events and the RAM cache (applied after commit)."""

    added: list[MemoryUnit] = dataclasses.field(default_factory=list)
    reinforced: list[MemoryUnit] = dataclasses.field(default_factory=list)
    restored: list[MemoryUnit] = dataclasses.field(default_factory=list)  # back to verbatim
    degraded: list[MemoryUnit] = dataclasses.field(default_factory=list)
    forgotten: list[int] = dataclasses.field(default_factory=list)  # out of the working set
    deleted: list[int] = dataclasses.field(default_factory=list)  # tombstoned: never back
    version: int = 0  # the user's write version after this change
    since: int = -1  # ... and before it (-1: nothing saved yet)

    def merged(self, later: Changes) -> Changes:
        """This change followed by ``later`` (same user). A unit forgotten here and
        back in ``later`` is no longer listed as forgotten."""
        back = {u.id for u in later.touched()}
        return Changes(self.added + later.added, self.reinforced + later.reinforced,
                       self.restored + later.restored, self.degraded + later.degraded,
                       [i for i in self.forgotten if i not in back] + later.forgotten,
                       self.deleted + later.deleted, later.version,
                       self.since if self.since >= 0 else later.since)

    def touched(self) -> Iterator[MemoryUnit]:
        yield from self.added
        yield from self.reinforced
        yield from self.restored
        yield from self.degraded


@dataclasses.dataclass(frozen=True, slots=True)
class Tx:
    """A transaction on the working set (``ws``) with a read snapshot of the log."""

    ws: Any
    log: Any


def unit_key(ukey: bytes, unit_id: int) -> bytes:
    return ukey + pack_u64(unit_id)


def _pack_uid(unit_id: int) -> bytes:
    if not 0 <= unit_id < _MAX_UID:
        raise StorageError(f"memory id {unit_id} is past what the working set stores "
                           f"(turn ids below 2**40)")
    return unit_id.to_bytes(_UID, "big")


def _seconds(ts: float) -> bytes:
    """A time as sortable whole seconds, rounded up, clamped (5 bytes)."""
    if ts != ts:  # NaN: never due
        n = _SECONDS_MAX
    elif math.isinf(ts):
        n = _SECONDS_MAX if ts > 0 else 0
    else:
        n = min(max(math.ceil(ts) + _SECONDS_BIAS, 0), _SECONDS_MAX)
    return n.to_bytes(5, "big")


def _mention(term_hash: bytes, unit_id: int, start: int, end: int) -> bytes:
    length = end - start
    if 0 <= start < 1 << 14 and 0 <= length < 1 << 10 and (start, length) != (16383, 1023):
        span = (start << 10 | length).to_bytes(3, "big")
    else:
        span = _NO_SPAN
    return term_hash + _pack_uid(unit_id) + span


def _unmention(raw: bytes) -> tuple[int, int, int]:
    """(unit id, span start, span end); the span is (-1, -1) where it was not stored."""
    uid = int.from_bytes(raw[_TERM : _TERM + _UID], "big")
    span = raw[_TERM + _UID :]
    if span == _NO_SPAN:
        return uid, -1, -1
    packed = int.from_bytes(span, "big")
    return uid, packed >> 10, (packed >> 10) + (packed & 0x3FF)


def _fingerprint_entry(unit: MemoryUnit) -> bytes:
    return _FINGERPRINT + bytes.fromhex(unit.fingerprint)[:5] + _pack_uid(unit.id)


def _term_entries(cur: Any, ukey: bytes, term_hash: bytes, limit: int) -> list[bytes]:
    """Up to ``limit`` of the user's mention entries for a term, newest unit first."""
    if cur.set_range_dup(ukey, term_hash + b"\xff" * (_UID + 3)):
        ok = cur.prev_dup()
    else:
        ok = cur.set_key(ukey) and cur.last_dup()
    found: list[bytes] = []
    while ok and len(found) < limit:
        raw = cur.value()
        if raw[:_TERM] != term_hash:
            break
        found.append(bytes(raw))
        ok = cur.prev_dup()
    return found


def _is_added_memory(turn: Turn, unit_id: int) -> bool:
    """Does ``unit_id`` name the memory an explicit ``add`` created in ``turn``?"""
    return unit_id & 0xFF == 0 and (turn.metadata or {}).get("op") == "add"


def cue(unit: MemoryUnit, turn: Turn | None,
        before: Callable[[Turn], Turn | None] | None = None) -> str:
    """What recall indexes a unit by, whatever its level: its whole sentence and
    who said it, from its source ``turn``. Degradation changes what a memory
    shows, not what can bring it back: a matching query restores it.

    A reply's first statement is also indexed by the questions it answers (the
    turn ``before`` it, another speaker's, in the same session): "It taught me
    self-acceptance" says little alone, and a question yields no unit of its
    own, so "what did you take away from the book?" is found only this way.
    LoCoMo dev: evidence 0.901 -> 0.915; the reply's other sentences gaining
    the question too: 0.880 (each would carry it, the turn counting it again
    and again)."""
    if turn is None:
        return unit.form(max(unit.level, 1)) or ""
    sentence = turn.text[unit.span[0] : unit.span[1]]
    said = f"{turn.speaker}: {sentence}" if turn.speaker else sentence
    asked = _asked(turn, before) if before is not None and opens_reply(
        turn.text, unit.span[0]) else ""
    return f"{asked}\n{said}" if asked else said  # see recall.embed_cues


QUESTIONS_IN_CUE = 3  # at most, the last ones asked: a cue stays one sentence's size


def _asked(turn: Turn, before: Callable[[Turn], Turn | None]) -> str:
    """The questions the turn before ``turn`` asked, if another speaker's in the
    same session ("Melanie asked: What pet do you have?"), else ""."""
    if turn.role == "memory":
        return ""
    prev = before(turn)
    if (prev is None or prev.role == "memory" or prev.session_id != turn.session_id
            or (prev.speaker, prev.role) == (turn.speaker, turn.role)):
        return ""
    asked = questions(prev.text)[-QUESTIONS_IN_CUE:]
    if not asked:
        return ""
    who = prev.speaker or prev.role
    return f"{who} asked: {' '.join(asked)}"


def caller_metadata(unit: MemoryUnit, turn: Turn | None) -> dict[str, Any] | None:
    """The caller's metadata of a memory: add()'s own, else its source turn's (a
    turn logged by add/update/delete carries our operation, not the caller's)."""
    if unit.metadata is not None:
        return unit.metadata
    return None if turn is None or turn.role == "memory" else turn.metadata


def when_of(turn: Turn) -> dt.datetime:
    return turn.datetime


class WorkingSet:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.s = settings
        self.db = store.ws.dbs

    # -- catching up with the log -------------------------------------------------

    def applied(self, tx: Tx) -> int:
        raw = tx.ws.get(b"applied", db=self.db["meta"])
        return 0 if raw is None else unpack_u64(bytes(raw))

    def catch_up(self, tx: Tx, limit: int) -> tuple[dict[str, Changes], int]:
        """Apply up to ``limit`` logged turns not applied yet; (changes by user, left)."""
        done = self.applied(tx)
        changes: dict[str, Changes] = {}
        for turn in rawlog.iter_after(tx.log, done, limit):
            ch = self.apply(tx, turn)
            prev = changes.get(turn.user_id)
            changes[turn.user_id] = ch if prev is None else prev.merged(ch)
            done = turn.id
        tx.ws.put(b"applied", pack_u64(done), db=self.db["meta"])
        return changes, rawlog.last_seq(tx.log) - done

    def apply(self, tx: Tx, turn: Turn) -> Changes:
        """One logged turn: a conversation turn, or an explicit memory operation."""
        if turn.role != "memory":
            try:
                analysis = self._analyze(turn)
            except Exception as exc:  # an extractor bug must not stall every user's memory
                log.exception("turn %d could not be analysed; it stays in the log, "
                              "without memories", turn.id)
                self._record_skip(tx, turn, exc)
                return Changes()
            return self.ingest(tx, turn, analysis)
        info = turn.metadata or {}
        op = info.get("op")
        if op == "add":
            return self.add_explicit(tx, turn, info.get("type"), info.get("metadata"))
        if op == "update":
            return self.update_explicit(tx, turn, int(info["memory_id"]), info.get("metadata"))
        if op == "delete":
            return self.delete(tx, turn, int(info["memory_id"]))
        return Changes()  # a memory-role turn of a newer release: kept in the log only

    # -- reading ----------------------------------------------------------------

    def state(self, tx: Tx, user_id: str) -> UserState:
        raw = tx.ws.get(user_key(user_id), db=self.db["users"])
        if raw is None:
            return UserState(user_id, -math.inf, [0, 0, 0, 0], 0)
        return UserState.from_bytes(bytes(raw))

    def load(self, tx: Tx, user_id: str, unit_id: int) -> MemoryUnit | None:
        """The user's unit ``unit_id``; None if it has none (another user's units live
        under another user key, so they are never found here)."""
        if not 0 <= unit_id < _MAX_UID:
            return None
        ukey, uid = user_key(user_id), unit_id.to_bytes(_UID, "big")
        with tx.ws.cursor(db=self.db["units"]) as cur:
            if not cur.set_range_dup(ukey, uid):
                return None
            raw = cur.value()
        if raw[:_UID] != uid:
            return None
        record = raw[_UID:]
        if record == _APART:
            record = tx.ws.get(ukey + uid, db=self.db["big_units"])
            if record is None:
                raise CorruptionError(f"memory {unit_id} is missing its stored-apart record")
        return MemoryUnit.from_record(unit_id, user_id, bytes(record))

    def iter_units(self, tx: Tx, user_id: str) -> Iterator[MemoryUnit]:
        """The user's units, weakest first (every unit has one expiry entry)."""
        ids: list[int] = []
        with tx.ws.cursor(db=self.db["schedule"]) as cur:
            if cur.set_range_dup(user_key(user_id), _EXPIRY):
                ids = [int.from_bytes(raw[_WHEN_END:], "big") for raw in
                       itertools.takewhile(lambda raw: raw[:1] == _EXPIRY,
                                           cur.iternext_dup(keys=False))]
        for unit_id in ids:
            unit = self.load(tx, user_id, unit_id)
            if unit is not None:
                yield unit

    def original_text(self, tx: Tx, origin: Turn | None, unit_id: int) -> str | None:
        """The sentence a unit was created from (its first, pre-update form)."""
        if origin is None:
            return None
        if origin.role == "memory":
            return origin.text if _is_added_memory(origin, unit_id) else None
        for ex in self._analyze(origin).units:
            if ex.index == unit_id & 0xFF:
                return ex.text
        return None

    def _analyze(self, turn: Turn) -> TurnAnalysis:
        return analyze_turn(turn.text, role=turn.role, speaker=turn.speaker, when=when_of(turn),
                            max_units=self.s.max_units_per_turn, max_chars=self.s.max_unit_chars)

    def is_deleted(self, tx: Tx, user_id: str, unit_id: int) -> bool:
        return tx.ws.get(unit_key(user_key(user_id), unit_id), db=self.db["tombstones"]) is not None

    # -- the write path ---------------------------------------------------------

    def _record_skip(self, tx: Tx, turn: Turn, exc: Exception) -> None:
        meta = self.db["meta"]
        count = unpack_u64(tx.ws.get(b"skipped", db=meta) or bytes(8))
        tx.ws.put(b"skipped", pack_u64(count + 1), db=meta)
        if count == 0:
            tx.ws.put(b"first_skipped", f"turn {turn.id}: {type(exc).__name__}: {exc}".encode(
                "utf-8", "replace"), db=meta)

    def skipped(self, tx: Tx) -> tuple[int, str]:
        """How many turns could not be analysed, and the first of them."""
        meta = self.db["meta"]
        count = unpack_u64(tx.ws.get(b"skipped", db=meta) or bytes(8))
        first = tx.ws.get(b"first_skipped", db=meta)
        return count, bytes(first).decode("utf-8", "replace") if first else ""

    def ingest(self, tx: Tx, turn: Turn, analysis: TurnAnalysis) -> Changes:
        """Add a logged turn's units, reinforce what it mentions, decay, enforce capacity."""
        ch = Changes()
        st = self.state(tx, turn.user_id)
        now = st.now = max(st.now, turn.timestamp)
        fresh: set[int] = set()
        for ex in analysis.units:
            unit_id = turn.id << 8 | ex.index
            dup = self._duplicate_of(tx, turn.user_id, ex.text)
            if dup is not None:
                self._reinforce(tx, st, dup, now, ch, source=turn.id)
                fresh.add(dup.id)
                continue
            unit = self._new_unit(turn, ex, now)
            self._insert(tx, st, unit)
            self._index_mentions(tx, unit, ex.terms)
            ch.added.append(unit)
            fresh.add(unit_id)
        self.reinforce_terms(tx, st, analysis.mentions, now, ch, skip=fresh, source=turn.id)
        self._decay(tx, st, now, ch)
        self._enforce_capacity(tx, st, ch)
        self._save_state(tx, st, ch)
        return ch

    def add_explicit(self, tx: Tx, turn: Turn, kind: str | None,
                     metadata: dict[str, Any] | None) -> Changes:
        """One unit for the whole text of an explicit ``add`` (logged as ``turn``)."""
        ch = Changes()
        st = self.state(tx, turn.user_id)
        now = st.now = max(st.now, turn.timestamp)
        ex = self._explicit_extract(turn, kind)
        unit = self._new_unit(turn, ex, now).evolve(metadata=metadata)
        self._insert(tx, st, unit)
        self._index_mentions(tx, unit, ex.terms)
        ch.added.append(unit)
        self._record_event(tx, turn, unit.id, "ADD", None, turn.text)
        self._enforce_capacity(tx, st, ch)
        self._save_state(tx, st, ch)
        return ch

    def update_explicit(self, tx: Tx, turn: Turn, unit_id: int,
                        metadata: dict[str, Any] | None) -> Changes:
        """Replace a memory's content with ``turn``'s text, keeping its id and strength.

        A forgotten memory is first restored from the log; a deleted one stays deleted.
        """
        ch = Changes()
        st = self.state(tx, turn.user_id)
        now = st.now = max(st.now, turn.timestamp)
        unit = self.load(tx, turn.user_id, unit_id)
        if unit is None and not self._restore_by_id(tx, st, turn.user_id, unit_id, ch,
                                                   access=False):
            self._save_state(tx, st, ch)
            return ch
        unit = unit or self.load(tx, turn.user_id, unit_id)
        assert unit is not None
        old_text = self.shown_text(tx.log, unit)
        ex = self._explicit_extract(turn, unit.type)
        self._remove(tx, st, unit)
        new = self._new_unit(turn, ex, now).evolve(
            id=unit.id, created_at=unit.created_at,
            stability_days=unit.stability_days, reinforcements=unit.reinforcements,
            access_count=unit.access_count,
            sources=(*unit.sources, turn.id)[-MAX_SOURCES:],
            metadata=metadata if metadata is not None else unit.metadata)
        self._insert(tx, st, new)
        self._index_mentions(tx, new, ex.terms)
        ch.reinforced.append(new)
        self._record_event(tx, turn, unit.id, "UPDATE", old_text, turn.text)
        self._enforce_capacity(tx, st, ch)
        self._save_state(tx, st, ch)
        return ch

    def delete(self, tx: Tx, turn: Turn, unit_id: int) -> Changes:
        """Tombstone a memory: out of the working set, and never restored."""
        ch = Changes()
        if self.is_deleted(tx, turn.user_id, unit_id):
            return ch
        st = self.state(tx, turn.user_id)
        unit = self.load(tx, turn.user_id, unit_id)
        old_text = None
        if unit is not None:
            old_text = self.shown_text(tx.log, unit)
            self._remove(tx, st, unit)
        ch.deleted.append(unit_id)
        self._save_state(tx, st, ch)
        self._tombstone(tx, turn.user_id, unit_id, {"turn_id": turn.id, "at": turn.timestamp})
        self._record_event(tx, turn, unit_id, "DELETE", old_text, None)
        return ch

    def _tombstone(self, tx: Tx, user_id: str, unit_id: int, record: dict[str, Any]) -> None:
        tx.ws.put(unit_key(user_key(user_id), unit_id), json.dumps(record).encode(),
                  db=self.db["tombstones"])

    def _record_event(self, tx: Tx, turn: Turn, unit_id: int, event: str, old: str | None,
                      new: str | None) -> None:
        key = unit_key(user_key(turn.user_id), unit_id) + pack_u64(turn.id)
        record = {"event": event, "old_memory": old, "new_memory": new,
                  "turn_id": turn.id, "timestamp": turn.timestamp}
        tx.ws.put(key, json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogatepass"),
                  db=self.db["history"])

    def events(self, tx: Tx, user_id: str, unit_id: int) -> list[dict[str, Any]]:
        """The recorded ADD/UPDATE/DELETE events of an explicit memory, oldest first."""
        prefix = unit_key(user_key(user_id), unit_id)
        found: list[dict[str, Any]] = []
        with tx.ws.cursor(db=self.db["history"]) as cur:
            if cur.set_range(prefix):
                for key, raw in cur:
                    if key[:24] != prefix:
                        break
                    found.append(json.loads(bytes(raw).decode("utf-8", "surrogatepass")))
        return found

    def shown_text(self, log_txn: Any, unit: MemoryUnit) -> str:
        """A unit's text at its stored level (verbatim from the log at level 0)."""
        if unit.level == 0:
            turn = rawlog.get_turn(log_txn, unit.origin)
            if turn is not None:
                return turn.text[unit.span[0] : unit.span[1]]
        form = unit.form(max(unit.level, 1))
        return form or ""

    def reinforce_ids(self, tx: Tx, user_id: str, unit_ids: list[int],
                      access: bool = True) -> Changes:
        """Reinforce units by id (retrieval); forgotten ones come back from the log."""
        ch = Changes()
        st = self.state(tx, user_id)
        for unit_id in unit_ids:
            unit = self.load(tx, user_id, unit_id)
            if unit is not None:
                self._reinforce(tx, st, unit, st.now, ch, access=access)
            else:
                self._restore_by_id(tx, st, user_id, unit_id, ch, access=access)
        self._enforce_capacity(tx, st, ch)
        self._save_state(tx, st, ch)
        return ch

    def reinforce_terms(self, tx: Tx, st: UserState, terms: tuple[str, ...], now: float,
                        ch: Changes, *, skip: set[int], source: int | None) -> None:
        """Mentioned again: reinforce the newest units carrying each term."""
        budget = self.s.restore_per_turn
        ukey = user_key(st.user_id)
        done = set(skip)
        with tx.ws.cursor(db=self.db["mentions"]) as cur:
            if not cur.set_key(ukey):
                return  # nothing indexed for this user yet
            for term in terms:
                if budget <= 0:
                    return
                limit = self.s.common_term_limit
                entries = _term_entries(cur, ukey, term_key(term), limit + 1)
                if len(entries) > limit:
                    continue  # said everywhere: not a specific mention
                hits: list[tuple[int, int, int]] = []
                for raw in entries:
                    uid, start, end = _unmention(raw)
                    if uid in done or any(h[0] == uid for h in hits):
                        continue
                    hits.append((uid, start, end))
                    if len(hits) >= budget:
                        break
                for uid, start, end in hits:
                    done.add(uid)
                    unit = self.load(tx, st.user_id, uid)
                    if unit is not None:
                        self._reinforce(tx, st, unit, now, ch, source=source, access=False)
                        budget -= 1
                    elif self._restore(tx, st, uid, uid >> 8, start, end, now, ch, source):
                        budget -= 1

    def rebuild(self, tx: Tx, unit: MemoryUnit) -> MemoryUnit | None:
        """``unit`` at full fidelity from the log (its latest text if updated)."""
        return self._from_log(tx, unit.user_id, unit.id, unit.origin, *unit.span)

    def recently_forgotten(self, tx: Tx, user_id: str, limit: int,
                           max_turns: int) -> list[MemoryUnit]:
        """Units of the user's latest turns that have left the working set (not
        deleted), newest first, rebuilt from the log; at most ``limit`` of them,
        looking at no more than ``max_turns`` turns."""
        found: list[MemoryUnit] = []
        turns = rawlog.iter_user_turns(tx.log, user_id, reverse=True)
        for turn in itertools.islice(turns, max_turns):
            if len(found) >= limit:
                break
            if turn.role == "memory":
                spans = [(turn.id << 8, 0, len(turn.text))] if _is_added_memory(
                    turn, turn.id << 8) else []
            else:
                spans = [((turn.id << 8) | ex.index, ex.start, ex.end)
                         for ex in self._analyze(turn).units]
            for unit_id, start, end in spans:
                if self.load(tx, user_id, unit_id) is not None or self.is_deleted(
                        tx, user_id, unit_id):
                    continue
                unit = self._from_log(tx, user_id, unit_id, turn.id, start, end)
                if unit is not None:
                    found.append(unit)
        return found[:limit]

    def forgotten_mentioning(self, tx: Tx, user_id: str, terms: list[str], per_term: int,
                             limit: int, skip: Container[int] = ()) -> list[MemoryUnit]:
        """Units out of the working set (forgotten, never deleted) that the mention
        index links to ``terms``, newest first per term, rebuilt from the log: the
        cold side of recall. Bounded by ``per_term`` x len(terms) and ``limit``.
        Ids in ``skip`` (those the caller has already) are passed over unread."""
        ukey = user_key(user_id)
        hits: dict[int, tuple[int, int]] = {}
        with tx.ws.cursor(db=self.db["mentions"]) as cur:
            if not cur.set_key(ukey):
                return []
            for term in terms:
                for raw in _term_entries(cur, ukey, term_key(term), per_term):
                    uid, start, end = _unmention(raw)
                    hits.setdefault(uid, (start, end))
        found: list[MemoryUnit] = []
        for uid in sorted(hits, reverse=True):
            if len(found) >= limit:
                break
            if (uid in skip or self.load(tx, user_id, uid) is not None
                    or self.is_deleted(tx, user_id, uid)):
                continue  # the caller's already, in the working set, or deleted
            unit = self._from_log(tx, user_id, uid, uid >> 8, *hits[uid])
            if unit is not None:
                found.append(unit)
        return found

    # -- internals ----------------------------------------------------------------

    def _explicit_extract(self, turn: Turn, kind: str | None) -> Extracted:
        text = turn.text
        ex = extract_span(text, 0, len(text), index=0, role=turn.role, speaker=turn.speaker,
                          when=when_of(turn))
        if ex is None:  # a question or a single word: keep it as a plain note
            ex = Extracted(index=0, start=0, end=len(text), text=text, type="semantic",
                           subject="user", relation="note", value=" ".join(text.split()[:6]),
                           terms=(), importance=1.0)
        if kind is not None:
            ex = dataclasses.replace(ex, type=kind)
        return dataclasses.replace(ex, start=0, end=len(text), text=text)

    def _new_unit(self, turn: Turn, ex: Extracted, now: float) -> MemoryUnit:
        base = self.s.base_stability_days[ex.type] * ex.importance
        return MemoryUnit(
            id=turn.id << 8 | ex.index, user_id=turn.user_id, type=ex.type, level=0,
            verbatim=ex.text, subject=ex.subject, relation=ex.relation, value=ex.value or None,
            created_at=turn.timestamp, last_reinforced=now, stability_days=base,
            reinforcements=0, access_count=0, origin=turn.id, span=(ex.start, ex.end),
            sources=(turn.id,), fingerprint=fingerprint(ex.text).hex(),
        )

    def _duplicate_of(self, tx: Tx, user_id: str, text: str) -> MemoryUnit | None:
        ukey, fp = user_key(user_id), fingerprint(text)
        prefix = _FINGERPRINT + fp[:5]
        ids: list[int] = []
        with tx.ws.cursor(db=self.db["schedule"]) as cur:
            if cur.set_range_dup(ukey, prefix):
                ids = [int.from_bytes(raw[len(prefix):], "big") for raw in
                       itertools.takewhile(lambda raw: raw[: len(prefix)] == prefix,
                                           cur.iternext_dup(keys=False))]
        for unit_id in reversed(ids):  # the newest unit with that sentence
            unit = self.load(tx, user_id, unit_id)
            if unit is not None and unit.fingerprint == fp.hex():
                return unit
        return None

    def _index_mentions(self, tx: Tx, unit: MemoryUnit, terms: tuple[str, ...]) -> None:
        ukey, db = user_key(unit.user_id), self.db["mentions"]
        for term in terms:
            tx.ws.put(ukey, _mention(term_key(term), unit.id, *unit.span), db=db, dupdata=True)

    def _schedule_keys(self, unit: MemoryUnit) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
        """The (key, value) of its due entry (when it leaves its level) and of its expiry
        entry (when it would be gone)."""
        ukey, th = user_key(unit.user_id), self.s.level_thresholds
        tail = _pack_uid(unit.id)
        return ((ukey, _DUE + _seconds(unit.crossing_time(unit.level, th)) + tail),
                (ukey, _EXPIRY + _seconds(unit.crossing_time(3, th)) + tail))

    def _write_record(self, tx: Tx, unit: MemoryUnit, *, new: bool) -> None:
        ukey, uid = user_key(unit.user_id), _pack_uid(unit.id)
        record = unit.to_record()
        value = uid + (record if len(record) <= _MAX_INLINE else _APART)
        with tx.ws.cursor(db=self.db["units"]) as cur:
            # New units have the user's highest id so far: appending keeps pages full.
            # A restored unit has an older id; LMDB then refuses the append (False).
            if not (new and cur.put(ukey, value, dupdata=True, append=True)):
                self._delete_record(tx, cur, ukey, uid, keep_apart=value[_UID:] == _APART)
                cur.put(ukey, value, dupdata=True)
        if value[_UID:] == _APART:
            tx.ws.put(ukey + uid, record, db=self.db["big_units"])

    def _delete_record(self, tx: Tx, cur: Any, ukey: bytes, uid: bytes, *,
                       keep_apart: bool = False) -> None:
        if cur.set_range_dup(ukey, uid) and cur.value()[:_UID] == uid:
            apart = cur.value()[_UID:] == _APART
            cur.delete()
            if apart and not keep_apart:
                tx.ws.delete(ukey + uid, db=self.db["big_units"])

    def _put(self, tx: Tx, st: UserState, unit: MemoryUnit) -> None:
        """Schedule a unit's degradation and count it."""
        for key, value in self._schedule_keys(unit):
            tx.ws.put(key, value, db=self.db["schedule"], dupdata=True)
        st.levels[unit.level] += 1
        st.tokens += unit.size_tokens()

    def _unput(self, tx: Tx, st: UserState, unit: MemoryUnit) -> None:
        for key, value in self._schedule_keys(unit):
            tx.ws.delete(key, value, db=self.db["schedule"])
        st.levels[unit.level] -= 1
        st.tokens -= unit.size_tokens()

    def _insert(self, tx: Tx, st: UserState, unit: MemoryUnit) -> None:
        self._write_record(tx, unit, new=True)
        self._put(tx, st, unit)
        if unit.fingerprint:
            tx.ws.put(user_key(unit.user_id), _fingerprint_entry(unit), db=self.db["schedule"],
                      dupdata=True)

    def _remove(self, tx: Tx, st: UserState, unit: MemoryUnit) -> None:
        self._unput(tx, st, unit)
        st.removed += 1
        with tx.ws.cursor(db=self.db["units"]) as cur:
            self._delete_record(tx, cur, user_key(unit.user_id), _pack_uid(unit.id))
        if unit.fingerprint:
            tx.ws.delete(user_key(unit.user_id), _fingerprint_entry(unit), db=self.db["schedule"])

    def _replace(self, tx: Tx, st: UserState, old: MemoryUnit, new: MemoryUnit) -> None:
        """The same unit in a new state (degraded, reinforced): its fingerprint stays,
        and only the schedule entries that moved are rewritten."""
        self._write_record(tx, new, new=False)
        for before, after in zip(self._schedule_keys(old), self._schedule_keys(new),
                                 strict=True):
            if before != after:
                tx.ws.delete(*before, db=self.db["schedule"])
                tx.ws.put(*after, db=self.db["schedule"], dupdata=True)
        st.levels[old.level] -= 1
        st.levels[new.level] += 1
        st.tokens += new.size_tokens() - old.size_tokens()

    def _reinforce(self, tx: Tx, st: UserState, unit: MemoryUnit, now: float, ch: Changes,
                   *, source: int | None = None, access: bool = False) -> None:
        """Mentioned or retrieved: back to verbatim (from the log), stronger, fresher."""
        if unit.level == 0 and unit.last_reinforced >= now and not access:
            return  # already verbatim and reinforced at this very time: nothing to gain
        restored = unit
        if unit.level > 0:
            full = self._from_log(tx, unit.user_id, unit.id, unit.origin, *unit.span)
            if full is None:
                return  # its turn no longer yields a unit; leave it as it is
            restored = full.evolve(
                created_at=unit.created_at, stability_days=unit.stability_days,
                reinforcements=unit.reinforcements, access_count=unit.access_count,
                sources=unit.sources, metadata=unit.metadata)
        growth = 1.0 + (self.s.reinforce_growth - 1.0) * (1.0 - unit.retention(now))
        sources = restored.sources
        if source is not None and source not in sources:
            sources = (*sources, source)[-MAX_SOURCES:]
        new = restored.evolve(
            last_reinforced=max(now, unit.last_reinforced),
            stability_days=unit.stability_days * growth,
            reinforcements=unit.reinforcements + 1,
            access_count=unit.access_count + (1 if access else 0), sources=sources)
        self._replace(tx, st, unit, new)
        (ch.restored if unit.level > 0 else ch.reinforced).append(new)

    def _from_log(self, tx: Tx, user_id: str, unit_id: int, origin: int, start: int,
                  end: int) -> MemoryUnit | None:
        """The unit at full fidelity, from its turn in the log; an updated memory
        (explicit or observed) from its last update."""
        updates = [e["turn_id"] for e in self.events(tx, user_id, unit_id)
                   if e["event"] == "UPDATE"]
        turn = rawlog.get_turn(tx.log, updates[-1] if updates else origin)
        if turn is None or turn.user_id != user_id:
            return None
        if turn.role == "memory":  # an explicit memory, or an update: the whole text
            info = turn.metadata or {}
            explicit = self._explicit_extract(turn, info.get("type"))
            unit = self._new_unit(turn, explicit, turn.timestamp)
            return unit.evolve(id=unit_id, metadata=info.get("metadata"))
        if start < 0:  # the mention index had no room for the span: find it again
            spans = [(ex.start, ex.end) for ex in self._analyze(turn).units
                     if ex.index == unit_id & 0xFF]
            if not spans:
                return None
            start, end = spans[0]
        ex = extract_span(turn.text, start, end, index=unit_id & 0xFF, role=turn.role,
                          speaker=turn.speaker, when=when_of(turn))
        if ex is None:
            return None
        unit = self._new_unit(turn, ex, turn.timestamp)
        return unit.evolve(id=unit_id)

    def _restore(self, tx: Tx, st: UserState, unit_id: int, origin: int, start: int,
                 end: int, now: float, ch: Changes, source: int | None = None,
                 access: bool = False) -> bool:
        """Bring a forgotten unit back into the working set, verbatim, from the raw log.

        Being forgotten and then needed is what spaced repetition rewards most:
        it returns with its stability grown by the full ``reinforce_growth``.
        """
        if self.is_deleted(tx, st.user_id, unit_id):
            return False
        unit = self._from_log(tx, st.user_id, unit_id, origin, start, end)
        if unit is None:
            return False
        sources = unit.sources if source is None or source in unit.sources else (
            *unit.sources, source)
        unit = unit.evolve(last_reinforced=max(now, unit.last_reinforced),
                           stability_days=unit.stability_days * self.s.reinforce_growth,
                           reinforcements=1, access_count=1 if access else 0, sources=sources)
        self._insert(tx, st, unit)
        ch.restored.append(unit)
        if unit_id in ch.forgotten:  # forgotten earlier in this same write
            ch.forgotten.remove(unit_id)
        return True

    def _restore_by_id(self, tx: Tx, st: UserState, user_id: str, unit_id: int,
                       ch: Changes, *, access: bool) -> bool:
        turn = rawlog.get_turn(tx.log, unit_id >> 8)
        if turn is None or turn.user_id != user_id:
            return False
        if turn.role == "memory":
            if not _is_added_memory(turn, unit_id):
                return False  # an update or delete turn, or a made-up index: no memory
            return self._restore(tx, st, unit_id, turn.id, 0, len(turn.text), st.now, ch,
                                 access=access)
        for ex in self._analyze(turn).units:
            if ex.index == unit_id & 0xFF:
                return self._restore(tx, st, unit_id, turn.id, ex.start, ex.end, st.now, ch,
                                     access=access)
        return False

    def _degrade(self, tx: Tx, st: UserState, unit: MemoryUnit, level: int,
                 ch: Changes) -> None:
        if level >= GONE:
            self._remove(tx, st, unit)
            ch.forgotten.append(unit.id)
            return
        new = unit.degraded_to(level)
        self._replace(tx, st, unit, new)
        ch.degraded.append(new)

    def _decay(self, tx: Tx, st: UserState, now: float, ch: Changes) -> None:
        """Apply the forgetting curve to units whose next level change is due."""
        key = user_key(st.user_id)
        # Due entries come first (b"d" < b"e"); those due by the whole second before now.
        limit = _DUE + _seconds(math.floor(now) if math.isfinite(now) else now) + b"\xff" * _UID
        due: list[bytes] = []
        with tx.ws.cursor(db=self.db["schedule"]) as cur:
            if cur.set_key(key):
                for value in cur.iternext_dup(keys=False):
                    if value > limit or len(due) >= self.s.decay_steps_per_turn:
                        break
                    due.append(bytes(value))
        for value in due:
            unit = self.load(tx, st.user_id, int.from_bytes(value[_WHEN_END:], "big"))
            if unit is None or self._schedule_keys(unit)[0] != (key, value):
                tx.ws.delete(key, value, db=self.db["schedule"])  # stale (never expected)
                continue
            self._degrade(tx, st, unit, unit.level_at(now, self.s.level_thresholds), ch)

    def _enforce_capacity(self, tx: Tx, st: UserState, ch: Changes) -> None:
        """Past capacity the weakest (soonest forgotten) degrade one level, or go."""
        key = user_key(st.user_id)
        for _ in range(4096):  # a hard bound; each step frees tokens or a unit
            over_units = st.units > self.s.warm_units
            if not over_units and st.tokens <= self.s.working_set_tokens:
                return
            with tx.ws.cursor(db=self.db["schedule"]) as cur:
                if not cur.set_range_dup(key, _EXPIRY) or cur.value()[:1] != _EXPIRY:
                    return  # (the first expiry entry is the user's weakest unit)
                weakest = bytes(cur.value())
            unit = self.load(tx, st.user_id, int.from_bytes(weakest[_WHEN_END:], "big"))
            if unit is None:  # a stale index entry: drop it and go on
                tx.ws.delete(key, weakest, db=self.db["schedule"])
                continue
            self._degrade(tx, st, unit, GONE if over_units else unit.level + 1, ch)

    def consolidate(self, tx: Tx, user_id: str) -> tuple[int, Changes]:
        """Merge units with the same compressed form into the strongest of them.

        The others are tombstoned ("merged into N") so that mentions never bring
        them back as separate memories; their source turns move to the survivor.
        An explicit call: it reads the user's whole working set (bounded by
        ``warm_units``), never run on the write path.
        """
        ch = Changes()
        st = self.state(tx, user_id)
        groups: dict[str, list[MemoryUnit]] = {}
        for unit in self.iter_units(tx, user_id):
            if unit.level <= 1 and unit.value:
                key = f"{unit.subject}|{unit.relation}|{unit.value}".casefold()
                groups.setdefault(key, []).append(unit)
        merged = 0
        for group in groups.values():
            if len(group) < 2:
                continue
            group.sort(key=lambda u: (u.retention(st.now), u.last_reinforced, u.id), reverse=True)
            keep, rest = group[0], group[1:]
            sources = sorted({s for u in group for s in u.sources})[-MAX_SOURCES:]
            new = keep.evolve(
                sources=tuple(sources),
                reinforcements=sum(u.reinforcements for u in group) + len(rest),
                access_count=sum(u.access_count for u in group))
            self._replace(tx, st, keep, new)
            ch.reinforced.append(new)
            for unit in rest:
                self._remove(tx, st, unit)
                self._tombstone(tx, user_id, unit.id, {"merged_into": keep.id, "at": st.now})
                ch.deleted.append(unit.id)
                merged += 1
        self._save_state(tx, st, ch)
        return merged, ch

    def _compact(self, tx: Tx, st: UserState) -> None:
        """Rewrite the user's units onto full pages.

        Units are appended in id order, onto full pages, and most are later forgotten
        one by one, which leaves their pages mostly empty (LMDB merges a page only
        below a quarter full). Once as many units have gone as are left, the user's
        units are read, deleted and appended again in order: work bounded by the
        working-set capacity, done once per that many removals (O(1) amortised).
        (Indexes with random inserts, the schedule and mentions, settle near two
        thirds full by themselves; rewriting them full only makes the next inserts
        split pages.)
        """
        ukey = user_key(st.user_id)
        with tx.ws.cursor(db=self.db["units"]) as cur:
            if cur.set_key(ukey):
                values = [bytes(v) for v in cur.iternext_dup(keys=False)]
                # The first stays: LMDB's page counts (stats) miss the last page of a
                # duplicate set that is emptied.
                cur.set_key(ukey)
                if cur.next_dup():
                    for _value in values[1:]:
                        cur.delete()
                for value in values[1:]:
                    cur.put(ukey, value, dupdata=True, append=True)
        st.removed = 0

    def _save_state(self, tx: Tx, st: UserState, ch: Changes) -> None:
        if st.removed >= max(_COMPACT_AFTER, st.units):
            self._compact(tx, st)
        if ch.since < 0:
            ch.since = st.version
        st.version += 1
        ch.version = st.version
        tx.ws.put(user_key(st.user_id), st.to_bytes(), db=self.db["users"])
