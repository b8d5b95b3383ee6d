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
from .frames import get_varint, put_varint
from .settings import MEMORY_TYPES

__all__ = ["GONE", "LEVEL_NAMES", "MemoryUnit", "abbreviate", "estimate_tokens"]

LEVEL_NAMES = ("verbatim", "compressed", "abbreviated", "trace")
GONE = 4
SECONDS_PER_DAY = 86400.0
_RECORD_VERSION = 2
# version, level, type, flags, reinforcements, access count, created, last reinforced,
# stability (days), origin turn, span start, span end, fingerprint, number of sources
_RECORD = struct.Struct("<BBBBHIdddQII8sB")
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
        flags = (1 if self.value is not None else 0) | (2 if self.metadata is not None else 0)
        out = bytearray(_RECORD.pack(
            _RECORD_VERSION, self.level, _TYPE_INDEX[self.type], flags,
            min(self.reinforcements, 0xFFFF), min(self.access_count, 0xFFFFFFFF),
            self.created_at, self.last_reinforced, self.stability_days, self.origin,
            self.span[0], self.span[1], bytes.fromhex(self.fingerprint or "00" * 8),
            len(self.sources)))
        for source in self.sources:
            put_varint(out, source)
        # The user id is not repeated here: the record's key holds its 128-bit hash.
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
            (version, level, kind, flags, reinforcements, access, created, last, stability,
             origin, start, end, fp, n_sources) = _RECORD.unpack_from(raw)
            if version != _RECORD_VERSION:
                raise ValueError(f"unit record version {version}")
            pos = _RECORD.size
            sources = []
            for _ in range(n_sources):
                source, pos = get_varint(raw, pos)
                sources.append(source)
            texts = []
            for _ in range(2 + (flags & 1) + (flags >> 1 & 1)):
                n, pos = get_varint(raw, pos)
                texts.append(raw[pos : pos + n].decode("utf-8", "surrogatepass"))
                pos += n
            value = texts[2] if flags & 1 else None
            metadata = json.loads(texts[-1]) if flags & 2 else None
            return cls(
                id=unit_id, user_id=user_id, type=MEMORY_TYPES[kind], level=level,
                verbatim=None, subject=texts[0], relation=texts[1], value=value,
                created_at=created, last_reinforced=last, stability_days=stability,
                reinforcements=reinforcements, access_count=access, origin=origin,
                span=(start, end), sources=tuple(sources), metadata=metadata,
                fingerprint=fp.hex())
        except (ValueError, IndexError, struct.error) as exc:
            raise CorruptionError(f"memory {unit_id} has an unreadable record: {exc}") from exc


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(MemoryUnit))
