"""Memory units: what the working set holds, their forms, and the forgetting curve.

A unit is one sentence or fact of a turn. Its id is derived from where it came
from (``turn id << 8 | index in the turn``), so a unit forgotten and later
restored from the log comes back under the same id.

Degradation really removes information from the stored record:

    level 0 verbatim     record keeps the sentence       My dog's name is Potola.
    level 1 compressed   sentence dropped                user|dog|Potola
    level 2 abbreviated  value cut to its initials       user|dog|P
    level 3 trace        value dropped                   user|dog
    gone                 record deleted (the raw log still has the turn)
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from .errors import CorruptionError

__all__ = ["GONE", "LEVEL_NAMES", "MemoryUnit", "abbreviate", "estimate_tokens"]

LEVEL_NAMES = ("verbatim", "compressed", "abbreviated", "trace")
GONE = 4
SECONDS_PER_DAY = 86400.0
_RECORD_VERSION = 1


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


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four UTF-8 bytes a token) for capacities.

    Prompts are counted exactly by the target model's tokenizer; the working
    set only needs a stable, fast measure of its size.
    """
    return (len(text.encode("utf-8", "surrogatepass")) + 3) // 4


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryUnit:
    """One memory of one user, at its current fidelity level."""

    id: int
    user_id: str
    type: str  # one of settings.MEMORY_TYPES
    level: int  # 0 verbatim .. 3 trace
    verbatim: str | None  # None once degraded past level 0
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
    terms: tuple[str, ...]  # mention keys: "user|dog", entity names
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

    # -- persistence: a compact JSON list, versioned -------------------------------

    def to_record(self) -> bytes:
        rec: list[Any] = [
            _RECORD_VERSION, self.user_id, self.type, self.level, self.verbatim, self.subject,
            # Floats unrounded: schedule keys are recomputed from them and must match.
            self.relation, self.value, self.created_at,
            self.last_reinforced, self.stability_days, self.reinforcements,
            self.access_count, self.origin, self.span[0], self.span[1], list(self.sources),
            list(self.terms), self.metadata, self.fingerprint,
        ]
        return json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "surrogatepass")

    @classmethod
    def from_record(cls, unit_id: int, raw: bytes) -> MemoryUnit:
        try:
            r = json.loads(raw.decode("utf-8", "surrogatepass"))
            if r[0] != _RECORD_VERSION:
                raise ValueError(f"unit record version {r[0]}")
            return cls(
                id=unit_id, user_id=r[1], type=r[2], level=r[3], verbatim=r[4], subject=r[5],
                relation=r[6], value=r[7], created_at=r[8], last_reinforced=r[9],
                stability_days=r[10], reinforcements=r[11], access_count=r[12], origin=r[13],
                span=(r[14], r[15]), sources=tuple(r[16]), terms=tuple(r[17]),
                metadata=r[18], fingerprint=r[19],
            )
        except (ValueError, IndexError, TypeError) as exc:
            raise CorruptionError(f"memory {unit_id} has an unreadable record: {exc}") from exc


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(MemoryUnit))
