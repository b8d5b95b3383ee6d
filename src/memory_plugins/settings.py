"""Settings are data: one table of defaults, one comment per knob.

The store persists its settings (LMDB key ``meta/settings``) so that a store
reopened without arguments behaves as it did. Keyword arguments given to
``MemoryEngine(...)`` override the persisted values and are persisted in turn,
except the per-process knobs in ``PROCESS_ONLY`` (how this process syncs to disk
is its own business, not the store's).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

__all__ = ["DEFAULT_SETTINGS", "MEMORY_TYPES", "PROCESS_ONLY", "Settings"]

MEMORY_TYPES = ("episodic", "semantic", "preference", "procedural", "emotional", "contextual")

DEFAULT_SETTINGS: dict[str, Any] = {
    # "sync": observe() returns only after the turn is fsynced (LMDB sync on commit).
    # "deferred": commits reach the OS at once (safe if the process is killed) but are
    # fsynced at most every `flush_interval_ms`: a power loss or kernel crash may lose
    # that last interval. About 30x faster writes on a typical SSD.
    "durability": "sync",
    "flush_interval_ms": 200,
    # Initial LMDB map size per environment: address space, not disk (the files grow
    # only as data is written). Large, because growing the map later must wait for
    # this process's other transactions, and is best never needed.
    "map_size_mb": 8192,
    # Per-user working-set capacities. Past them the weakest units degrade, then go
    # (they stay in the raw log and come back when mentioned again).
    "hot_units": 256,  # decoded units kept in this process's RAM per user (a cache)
    "warm_units": 4096,  # units in the working set per user, all fidelity levels
    "working_set_tokens": 65536,  # est. tokens of all units' current forms per user
    # Extraction: a turn becomes at most this many units; longer sentences are cut.
    "max_units_per_turn": 32,
    "max_unit_chars": 400,
    # Largest turn accepted, in UTF-8 bytes (the log stores it whole, compressed).
    "max_turn_bytes": 16 * 1024 * 1024,
    # Forgetting curve: retention R = exp(-age / stability). A unit's stability starts
    # at `base_stability_days[type]` x its importance (1..2, from entities, numbers,
    # dates) and grows on each reinforcement by up to `reinforce_growth` (the more it
    # had decayed, the more it grows: spaced repetition).
    "base_stability_days": {
        "episodic": 7.0,
        "semantic": 45.0,
        "preference": 45.0,
        "procedural": 60.0,
        "emotional": 10.0,
        "contextual": 2.0,
    },
    "reinforce_growth": 2.0,
    # Retention below which a unit leaves level 0 (verbatim), 1 (compressed),
    # 2 (abbreviated) and 3 (trace, after which it is gone from the working set).
    "level_thresholds": [0.6, 0.35, 0.2, 0.1],
    # Bounded work per observed turn: at most this many scheduled degradations. Reads
    # always show the level the curve gives *now*; this only paces the rewrites.
    "decay_steps_per_turn": 8,
    # Reinforcement by mention: per turn, at most this many units reinforced or
    # restored from the log, and terms seen in more than `common_term_limit` units
    # (a name said in every session) count as no mention at all.
    "restore_per_turn": 3,
    "common_term_limit": 16,
    # How many users' hot caches and recall indexes this process keeps.
    "cached_users": 64,
    # Recall also searches this many of a user's most recently forgotten units (kept
    # in the RAM index with their sentence; shown again, restored, when they match).
    # Older forgotten units are found through the mention index only.
    "recall_forgotten_units": 2048,
    # "background": observe() returns once the turn is durable in the log; a worker
    # thread applies it to the working set, and every read of memories first applies
    # what is still pending (so reads always see every observed turn). "inline":
    # observe() applies its turn before returning (slower, no thread).
    "maintenance": "background",
    # The worker runs in the gaps between turns; if a burst leaves this many turns
    # unapplied, observe() applies them itself (bounded lag, amortised cost).
    "max_pending_turns": 256,
}

PROCESS_ONLY = frozenset({"durability", "flush_interval_ms", "map_size_mb", "cached_users",
                          "recall_forgotten_units", "maintenance", "max_pending_turns"})


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"setting {name!r} must be a positive integer, got {value!r}")
    return value


def _positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValidationError(f"setting {name!r} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValidationError(f"setting {name!r} must be finite, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings; build with ``Settings.from_mapping``."""

    durability: str
    flush_interval_ms: int
    map_size_mb: int
    hot_units: int
    warm_units: int
    working_set_tokens: int
    max_units_per_turn: int
    max_unit_chars: int
    max_turn_bytes: int
    base_stability_days: Mapping[str, float]
    reinforce_growth: float
    level_thresholds: tuple[float, float, float, float]
    decay_steps_per_turn: int
    restore_per_turn: int
    common_term_limit: int
    cached_users: int
    recall_forgotten_units: int
    maintenance: str
    max_pending_turns: int

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        unknown = set(values) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValidationError(
                f"unknown setting(s) {sorted(unknown)}; known: {sorted(DEFAULT_SETTINGS)}"
            )
        merged = {**DEFAULT_SETTINGS, **values}
        if merged["maintenance"] not in ("background", "inline"):
            raise ValidationError(
                f"setting 'maintenance' must be 'background' or 'inline', "
                f"got {merged['maintenance']!r}")
        if merged["durability"] not in ("sync", "deferred"):
            raise ValidationError(
                f"setting 'durability' must be 'sync' or 'deferred', got {merged['durability']!r}"
            )
        ints = {
            k: _positive_int(k, merged[k])
            for k in (
                "flush_interval_ms", "map_size_mb", "hot_units", "warm_units",
                "working_set_tokens", "max_units_per_turn", "max_unit_chars",
                "max_turn_bytes", "decay_steps_per_turn", "restore_per_turn",
                "common_term_limit", "cached_users", "recall_forgotten_units",
                "max_pending_turns",
            )
        }
        if ints["max_units_per_turn"] > 255:
            raise ValidationError("setting 'max_units_per_turn' must be at most 255")
        stab = merged["base_stability_days"]
        if not isinstance(stab, Mapping) or set(stab) != set(MEMORY_TYPES):
            raise ValidationError(
                f"setting 'base_stability_days' must map each of {list(MEMORY_TYPES)} to days"
            )
        stability = {t: _positive_float(f"base_stability_days[{t}]", stab[t]) for t in MEMORY_TYPES}
        growth = _positive_float("reinforce_growth", merged["reinforce_growth"])
        if growth < 1.0:
            raise ValidationError("setting 'reinforce_growth' must be >= 1.0")
        th = merged["level_thresholds"]
        if (
            not isinstance(th, list | tuple)
            or len(th) != 4
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in th)
            or not (1.0 > th[0] > th[1] > th[2] > th[3] > 0.0)
        ):
            raise ValidationError(
                "setting 'level_thresholds' must be four retentions with 1 > t0 > t1 > t2 > t3 > 0"
            )
        return cls(
            durability=merged["durability"],
            maintenance=merged["maintenance"],
            base_stability_days=stability,
            reinforce_growth=growth,
            level_thresholds=(float(th[0]), float(th[1]), float(th[2]), float(th[3])),
            **ints,
        )

    def to_json(self) -> str:
        """The persisted part (process-only knobs left out)."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in PROCESS_ONLY}
        data["base_stability_days"] = dict(self.base_stability_days)
        data["level_thresholds"] = list(self.level_thresholds)
        return json.dumps(data, sort_keys=True)
