"""The background worker stays out of the way of the caller's observe() calls."""

from __future__ import annotations

from pathlib import Path

import pytest

import memory_plugins.engine as engine_module
from memory_plugins import MemoryEngine


def active_readers(engine: MemoryEngine) -> list[str]:
    """This process's open read transactions on the raw log, its inbox and archive
    (LMDB's reader tables)."""
    rows = [row for env in (engine._store.inbox, engine._store.log)
            for row in env.env.readers().splitlines()[1:]]
    return [row for row in rows if row.split()[-1] != "-"]


def test_the_worker_yields_between_turns_holding_no_log_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A log snapshot held while the caller commits would keep LMDB from reusing the
    # pages those commits free; every later commit would then write the grown free
    # list out again.
    monkeypatch.setattr(MemoryEngine, "_wake_maintainer", lambda self: None)
    seen: list[list[str]] = []
    with MemoryEngine(tmp_path) as engine:
        monkeypatch.setattr(engine_module, "yield_gil",
                            lambda: seen.append(active_readers(engine)))
        for name in ("Potola", "Rex", "Bella", "Max"):
            engine.observe(f"My dog's name is {name}.", user_id="u1")
        engine._catch_up(background=True)  # what the worker runs
        assert seen == [[], [], []]  # between each two of the four turns, no snapshot
        assert [m.text for m in engine.memories(user_id="u1")] == [
            f"My dog's name is {name}." for name in ("Potola", "Rex", "Bella", "Max")]
