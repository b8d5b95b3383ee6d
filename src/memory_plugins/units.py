"""Memory units: what the working set holds, their forms, and the forgetting curve.

A unit is one sentence or fact of a turn. Its id is derived from where it came
from (``turn id << 8 | index in the turn``), so a unit forgotten and later
restored from the log comes back under the same id.

The stored record never copies the sentence: the raw log holds it, and the
record points at it (origin turn + span). Degradation changes what may be shown
and really removes information from the record:

    level 0 verbatim     the sentence, read from the log   My dog's name is Potola.
    level 1 compressed   subject|relation|value            user|dog|Potola
    level 2 abbreviated  value cut to its initials         user|dog|P
    level 3 trace        value dropped                     user|dog
    gone                 record deleted (the raw log still has the turn)
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from typing import Any

from .errors import CorruptionError
from .frames import get_varint, is_whole, put_varint, unzigzag, zigzag
from .settings import MEMORY_TYPES

__all__ = ["GONE", "LEVEL_NAMES", "MemoryUnit", "abbreviate", "estimate_tokens"]

LEVEL_NAMES = ("verbatim", "compressed", "abbreviated", "trace")
GONE = 4
SECONDS_PER_DAY = 86400.0
_RECORD_VERSION = 3  # layout in MemoryUnit.to_record; older records are never read
_F32, _F64 = struct.Struct("<f"), struct.Struct("<d")
_MAX_COUNT = (1 << 32) - 1
_TYPE_INDEX = {name: i for i, name in enumerate(MEMORY_TYPES)}


def abbreviate(value: str) -> str:
    """Initials of the value's words, dates cut to the month: 'Potola' -> 'P'."""
    out: list[str] = []
    for word in value.split()[:4]:
        if word.startswith("@"):  # a resolved date "@2023-05-07" keeps year and month
            out.append(word[:8])
        elif word[:1].isdigit():
            out.append(word)
        else:
            out.append(word[:1])
    return " ".join(out)


def estimate_tokens(chars: int) -> int:
    """A cheap token estimate (about four characters a token) for capacities.

    Prompts are counted exactly by the target model's tokenizer; the working
    set only needs a stable, fast measure of its size.
    """
    return (chars + 3) // 4


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryUnit:
    """One memory of one user, at its current fidelity level."""

    id: int
    user_id: str
    type: str  # one of settings.MEMORY_TYPES
    level: int  # 0 verbatim .. 3 trace
    verbatim: str | None  # the sentence when read for callers; never stored in the record
    subject: str
    relation: str
    value: str | None  # full at levels 0-1, abbreviated at 2, None at 3
    created_at: float  # POSIX seconds (conversation time)
    last_reinforced: float
    stability_days: float
    reinforcements: int
    access_count: int
    origin: int  # the turn whose text holds the verbatim form (changes on update)
    span: tuple[int, int]  # character span of the sentence in that turn's text
    sources: tuple[int, ...]  # every turn that said it (duplicates merge here)
    metadata: dict[str, Any] | None = None  # caller's: the source turn's, or add()'s
    fingerprint: str = ""  # hash of the normalised sentence: repeats reinforce, not add
    strength: float = 1.0  # retention at the time it was read, 0..1

    @property
    def text(self) -> str:
        """The unit at its current level."""
        form = self.form(self.level)
        assert form is not None
        return form

    def form(self, level: int) -> str | None:
        """The unit shown at ``level`` (>= its own); None if that level is finer."""
        if level < self.level or level >= GONE:
            return None
        if level == 0:
            return self.verbatim
        head = f"{self.subject}|{self.relation}"
        if level == 3 or not self.value:
            return head
        value = self.value if level == 1 or self.level == 2 else abbreviate(self.value)
        return f"{head}|{value}"

    def size_tokens(self) -> int:
        """Estimated tokens of the unit at its level (verbatim: its span's length)."""
        if self.level == 0:
            return estimate_tokens(self.span[1] - self.span[0])
        form = self.form(self.level)
        return estimate_tokens(len(form) if form else 0)

    def retention(self, now: float) -> float:
        age = max(0.0, now - self.last_reinforced)
        return math.exp(-age / (self.stability_days * SECONDS_PER_DAY))

    def level_at(self, now: float, thresholds: tuple[float, ...]) -> int:
        """The level the forgetting curve puts it at by ``now`` (never finer than now)."""
        r = self.retention(now)
        level = sum(1 for t in thresholds if r < t)
        return max(level, self.level)

    def crossing_time(self, level: int, thresholds: tuple[float, ...]) -> float:
        """When retention falls below the threshold that ends ``level``."""
        return self.last_reinforced + self.stability_days * SECONDS_PER_DAY * math.log(
            1.0 / thresholds[level]
        )

    def degraded_to(self, level: int) -> MemoryUnit:
        """A copy at a coarser ``level`` with the finer information removed."""
        if level <= self.level:
            return self
        value = self.value
        if level >= 2 and self.level < 2 and value:
            value = abbreviate(value)
        if level >= 3:
            value = None
        return self.evolve(level=level, verbatim=None, value=value)

    def evolve(self, **changes: Any) -> MemoryUnit:
        """A copy with ``changes``: ``dataclasses.replace`` without its per-call cost
        (it re-runs ``__init__``; this is on the write path several times a turn)."""
        new = object.__new__(MemoryUnit)
        for name in _FIELD_NAMES:
            object.__setattr__(new, name, changes.pop(name) if name in changes
                               else getattr(self, name))
        if changes:
            raise TypeError(f"MemoryUnit has no field(s) {sorted(changes)}")
        return new

    # -- persistence: a compact binary record, versioned --------------------------

    def to_record(self) -> bytes:
        """The unit as stored (the user id is not repeated: the record's key holds its
        128-bit hash). Layout (version 3), every number exact on the way back:

            byte 0     record version (3)
            byte 1     level (bits 0-1), type (2-4), has value (5), has metadata (6),
                       has fingerprint (7)
            byte 2     layout: origin is the id's turn (bit 0), sources are just the
                       origin (1), created == last reinforced (2), last reinforced is a
                       whole number of seconds (3), so is created (4), stability fits a
                       float32 exactly (5)
            varints    reinforcements, access count
            times      [created], last reinforced: float64, or a zigzag varint when whole
            stability  float32 or float64 (days)
            [origin]   varint
            span       varint start, varint length
            [8 bytes]  fingerprint
            [sources]  varint count, then zigzag varint deltas from the previous one
            strings    subject, relation, [value], [metadata JSON]: varint length + UTF-8
        """
        has_fp = bool(self.fingerprint)
        head = (self.level | _TYPE_INDEX[self.type] << 2 | (self.value is not None) << 5
                | (self.metadata is not None) << 6 | has_fp << 7)
        origin_default = self.origin == self.id >> 8
        sources_default = self.sources == (self.origin,)
        same_times = _same_float(self.created_at, self.last_reinforced)
        last_whole = is_whole(self.last_reinforced)
        created_whole = not same_times and is_whole(self.created_at)
        stab32 = _fits_f32(self.stability_days)
        layout = (origin_default | sources_default << 1 | same_times << 2 | last_whole << 3
                  | created_whole << 4 | stab32 << 5)
        out = bytearray((_RECORD_VERSION, head, layout))
        put_varint(out, min(self.reinforcements, _MAX_COUNT))
        put_varint(out, min(self.access_count, _MAX_COUNT))
        if not same_times:
            _put_time(out, self.created_at, created_whole)
        _put_time(out, self.last_reinforced, last_whole)
        out += _F32.pack(self.stability_days) if stab32 else _F64.pack(self.stability_days)
        if not origin_default:
            put_varint(out, self.origin)
        put_varint(out, self.span[0])
        put_varint(out, self.span[1] - self.span[0])
        if has_fp:
            out += bytes.fromhex(self.fingerprint)
        if not sources_default:
            put_varint(out, len(self.sources))
            prev = self.origin
            for source in self.sources:
                put_varint(out, zigzag(source - prev))
                prev = source
        texts = [self.subject, self.relation]
        if self.value is not None:
            texts.append(self.value)
        if self.metadata is not None:
            texts.append(json.dumps(self.metadata, ensure_ascii=False, separators=(",", ":")))
        for text in texts:
            raw = text.encode("utf-8", "surrogatepass")
            put_varint(out, len(raw))
            out += raw
        return bytes(out)

    @classmethod
    def from_record(cls, unit_id: int, user_id: str, raw: bytes) -> MemoryUnit:
        try:
            version, head, layout = raw[0], raw[1], raw[2]
            if version != _RECORD_VERSION:
                raise ValueError(f"unit record version {version}")
            reinforcements, pos = get_varint(raw, 3)
            access, pos = get_varint(raw, pos)
            if layout & 4:
                created = None
            else:
                created, pos = _get_time(raw, pos, layout & 16)
            last, pos = _get_time(raw, pos, layout & 8)
            if layout & 32:
                stability = _F32.unpack_from(raw, pos)[0]
                pos += 4
            else:
                stability = _F64.unpack_from(raw, pos)[0]
                pos += 8
            if layout & 1:
                origin = unit_id >> 8
            else:
                origin, pos = get_varint(raw, pos)
            start, pos = get_varint(raw, pos)
            length, pos = get_varint(raw, pos)
            fp = ""
            if head & 128:
                fp = raw[pos : pos + 8].hex()
                pos += 8
            if layout & 2:
                sources: tuple[int, ...] = (origin,)
            else:
                n, pos = get_varint(raw, pos)
                found = []
                prev = origin
                for _ in range(n):
                    delta, pos = get_varint(raw, pos)
                    prev += unzigzag(delta)
                    found.append(prev)
                sources = tuple(found)
            texts = []
            for _ in range(2 + (head >> 5 & 1) + (head >> 6 & 1)):
                n, pos = get_varint(raw, pos)
                if pos + n > len(raw):
                    raise ValueError("a text runs past the record")
                texts.append(raw[pos : pos + n].decode("utf-8", "surrogatepass"))
                pos += n
            if pos != len(raw):
                raise ValueError("trailing bytes after the record")
            return cls(
                id=unit_id, user_id=user_id, type=MEMORY_TYPES[head >> 2 & 7], level=head & 3,
                verbatim=None, subject=texts[0], relation=texts[1],
                value=texts[2] if head & 32 else None,
                created_at=last if created is None else created, last_reinforced=last,
                stability_days=stability, reinforcements=reinforcements, access_count=access,
                origin=origin, span=(start, start + length), sources=sources,
                metadata=json.loads(texts[-1]) if head & 64 else None, fingerprint=fp)
        except (ValueError, IndexError, struct.error) as exc:
            raise CorruptionError(f"memory {unit_id} has an unreadable record: {exc}") from exc


def _same_float(a: float, b: float) -> bool:
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _fits_f32(x: float) -> bool:
    try:
        return bool(_F32.unpack(_F32.pack(x))[0] == x) and math.isfinite(x)
    except (OverflowError, struct.error):
        return False


def _put_time(out: bytearray, x: float, whole: bool) -> None:
    if whole:
        put_varint(out, zigzag(int(x)))
    else:
        out += _F64.pack(x)


def _get_time(raw: bytes, pos: int, whole: int) -> tuple[float, int]:
    if whole:
        n, pos = get_varint(raw, pos)
        return float(unzigzag(n)), pos
    return float(_F64.unpack_from(raw, pos)[0]), pos + 8


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(MemoryUnit))
