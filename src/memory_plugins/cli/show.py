"""The read-only commands: inspect, stats, verify, recall. Each prints plain text
(``--json`` where a script may want the numbers)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TextIO

from ..engine import MemoryEngine
from ..errors import NotFoundError
from ..units import LEVEL_NAMES, MemoryUnit
from ..validation import clamp_timestamp
from .chat import describe

__all__ = ["inspect", "recall", "stats", "verify"]

TIERS = {"warm": (0, 1), "cold": (2, 3)}  # as stats() counts them: by fidelity level


def _day(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(clamp_timestamp(ts), dt.UTC).date().isoformat()


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def _memory_json(m: MemoryUnit) -> dict[str, object]:
    return {"id": m.id, "level": m.level, "fidelity": LEVEL_NAMES[m.level], "type": m.type,
            "text": m.text, "strength": round(m.strength, 4), "created_at": m.created_at,
            "origin_turn": m.origin, "reinforcements": m.reinforcements,
            "metadata": m.metadata}


def inspect(engine: MemoryEngine, out: TextIO, *, user_id: str, level: int | None,
            type: str | None, limit: int | None, as_json: bool) -> int:
    found = engine.memories(user_id=user_id, level=level, type=type, limit=limit)
    if as_json:
        for m in found:
            out.write(json.dumps(_memory_json(m), ensure_ascii=False) + "\n")
        return 0
    out.write(f"user {user_id!r}: {len(found)} memories in the working set\n")
    for tier, levels in TIERS.items():
        for lvl in levels:
            group = [m for m in found if m.level == lvl]
            if not group:
                continue
            out.write(f"\n{tier} / {LEVEL_NAMES[lvl]} ({len(group)})\n")
            out.write(f"  {'id':>12}  {'type':<10} {'strength':>8}  {'said on':<10}  text\n")
            for m in group:
                out.write(f"  {m.id:>12}  {m.type:<10} {m.strength:>8.2f}  "
                          f"{_day(m.created_at):<10}  {_one_line(m.text)}\n")
    return 0


def stats(engine: MemoryEngine, out: TextIO, *, user_id: str | None, as_json: bool) -> int:
    s = engine.stats(user_id)
    if as_json:
        out.write(json.dumps(dataclasses.asdict(s)) + "\n")
        return 0
    scope = f"user {user_id!r}" if user_id else "store"
    levels = ", ".join(f"{n} {k}" for k, n in s.units_by_level.items())
    tiers = ", ".join(f"{n} {k}" for k, n in s.units_by_tier.items())
    out.write(f"{scope} at {engine.path}\n"
              f"  users        {s.users}\n"
              f"  turns        {s.turns} (first logged {_day(s.oldest)}, last "
              f"{_day(s.newest)})\n"
              f"  memories     {s.units}: {levels}\n"
              f"  tiers        {tiers}\n"
              f"  working set  ~{s.working_set_tokens} tokens\n"
              f"  on disk      {s.log_bytes / 1e6:.2f} MB (log and working set)\n")
    return 0


def verify(engine: MemoryEngine, out: TextIO) -> int:
    report = engine.verify()
    if report.ok:
        out.write(f"ok: {report.frames} frames, {report.users} users; every CRC32 and hash "
                  "chain checks out\n")
        return 0
    first = report.first_broken
    assert first is not None
    out.write(f"BROKEN: {len(report.problems)} problem(s) in {report.frames} frames; the "
              f"first at turn {first.seq}: {first.reason}\n")
    for p in report.problems:
        who = f" (user {p.user_id!r})" if p.user_id is not None else ""
        out.write(f"  turn {p.seq}{who}: {p.reason}\n")
    out.write("Turns before the first problem are intact; export what reads back with "
              "'memory-plugins export' and keep a copy of the store.\n")
    return 1


def _stored_level(engine: MemoryEngine, memory_id: int, user_id: str) -> str:
    """The level a memory is stored at now (a forgotten one that build() showed has
    come back from the log)."""
    try:
        return LEVEL_NAMES[engine.get(memory_id, user_id=user_id).level]
    except NotFoundError:
        return "forgotten (rebuilt from the log)"


def recall(engine: MemoryEngine, out: TextIO, *, query: str, user_id: str, limit: int,
           deep: bool) -> int:
    """What build(query) includes, why, and what it left out."""
    prompt = engine.build(query, user_id=user_id)
    hits = {h.memory.id: h for h in engine.search(query, user_id=user_id, limit=limit)}
    out.write(f"build({query!r}) for user {user_id!r}\n{describe(prompt)}\n")
    chosen = [s for s in prompt.sources if s.section == "memories"]
    out.write(f"\nmemories section: {len(chosen)} memories, chosen by relevance and the "
              "value of each fidelity level per token\n")
    for source in chosen:
        stored = _stored_level(engine, source.id, user_id)
        out.write(f"  memory {source.id}: score {source.score:.3f}, shown "
                  f"{LEVEL_NAMES[source.level]} (stored {stored}), {source.tokens} tokens\n"
                  f"    {_one_line(source.text)}\n")
    history = [s for s in prompt.sources if s.section == "history"]
    out.write(f"\nhistory section: {len(history)} turns\n")
    for source in history:
        why = f"source turn of a relevant memory (score {source.score:.3f})" if source.score \
            else "recent"
        out.write(f"  turn {source.id}: {why}, {source.tokens} tokens\n"
                  f"    {_one_line(source.text)}\n")
    in_prompt = {s.id for s in chosen}
    history_turns = {s.id for s in history}
    left = [h for h in hits.values() if h.memory.id not in in_prompt]
    if left:
        out.write("\nsearch hits not in the memories section:\n")
        for h in left:
            why = ("its turn is in the history" if h.memory.origin in history_turns
                   else "less value per token than those chosen")
            out.write(f"  memory {h.memory.id}: score {h.score:.3f}, {why}\n"
                      f"    {_one_line(h.memory.text)}\n")
    if deep:
        found = engine.deep_recall(query, user_id=user_id, limit=limit)
        assert isinstance(found, list)
        out.write(f"\ndeep recall (the whole raw log, slow path): {len(found)} turns\n")
        for d in found:
            out.write(f"  turn {d.turn_id} ({_day(d.timestamp)}), score {d.score:.2f}: "
                      f"{_one_line(d.text)}\n")
    return 0
