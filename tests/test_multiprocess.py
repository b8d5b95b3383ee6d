"""Several processes on one store: LMDB gives one writer at a time and many readers.

Writers and readers are child processes running ``_writer.py``; they start
together on a "go" line and report each acknowledged turn, so the test knows
exactly what the store must hold afterwards.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _writer as writer  # tests/ is on sys.path under pytest
import pytest

from memory_plugins import MemoryEngine

pytestmark = pytest.mark.slow


Spawn = Callable[..., Any]  # spawn(*args) -> a running _writer.Child


@pytest.mark.parametrize(
    ("kind", "count", "map_size_mb"),
    [
        ("varied", 150, None),
        # 200 KB turns into a 1 MiB map: both writers grow the map, each must adopt
        # the size the other set (MDB_MAP_RESIZED), readers included.
        ("big", 20, 1),
    ],
    ids=["varied", "growing-map"],
)
def test_two_writers_and_a_reader_share_one_store(
        tmp_path: Path, spawn: Spawn, kind: str, count: int, map_size_mb: int | None) -> None:
    store = str(tmp_path / "store")
    users = {"A": ["alice", "shared"], "B": ["bob", "shared"]}  # turn i goes to users[i % 2]
    extra = ["--map-size-mb", str(map_size_mb)] if map_size_mb else []
    writers = {
        tag: spawn("write", "--path", store, "--tag", tag, "--kind", kind, "--count", str(count),
                   "--wait-go", *[a for u in us for a in ("--user", u)], *extra)
        for tag, us in users.items()
    }
    reader = spawn("read", "--path", store, "--kind", kind, "--user", "alice", "--user", "bob",
                   "--user", "shared", "--expect", str(2 * count))
    for child in [*writers.values(), reader]:
        child.expect("ready")
    for child in writers.values():
        child.send("go")

    for child in writers.values():
        child.expect("done")
        assert child.finish() == 0, child.stderr()
    # The reader checked ids, per-writer order and texts on every pass it made
    # while the writers wrote; it stops once it has seen every turn.
    passes = int(reader.expect("done").split()[1])
    assert reader.finish() == 0, reader.stderr()
    assert passes >= 1

    acks = {tag: child.acks() for tag, child in writers.items()}
    ids = {tag: [turn_id for turn_id, _i, _h in a] for tag, a in acks.items()}
    assert all(len(a) == count for a in ids.values())
    assert all(a == sorted(a) for a in ids.values())
    assert len(set(ids["A"]) | set(ids["B"])) == 2 * count  # unique across processes
    # The writers really were concurrent: their turns interleave in the log.
    order = sorted((turn_id, tag) for tag, a in ids.items() for turn_id in a)
    switches = sum(1 for x, y in itertools.pairwise(order) if x[1] != y[1])
    assert switches > 1

    with MemoryEngine(store) as engine:
        for tag, tag_acks in acks.items():
            for turn_id, i, digest in tag_acks:
                turn = engine.get_turn(turn_id)
                assert turn.text == writer.text_for(kind, tag, i)
                assert writer.text_hash(turn.text) == digest
                assert (turn.user_id, turn.metadata) == (users[tag][i % 2], {"writer": tag, "i": i})
        for user in ("alice", "bob", "shared"):
            logged = list(engine.turns(user_id=user))
            assert [t.id for t in logged] == sorted({t.id for t in logged})  # ids increase
            wanted = {tag: [i for i in range(count) if us[i % 2] == user]
                      for tag, us in users.items()}
            metas = [t.metadata or {} for t in logged]
            for tag, indexes in wanted.items():  # each writer's turns, in its order
                assert [m["i"] for m in metas if m["writer"] == tag] == indexes
            assert len(logged) == sum(map(len, wanted.values()))
        report = engine.verify()
        assert report.ok, report.problems
        assert (report.frames, report.users) == (2 * count, 3)
        assert engine.health().ok


def _fresh_view(spawn: Spawn, store: str, user: str) -> dict[str, Any]:
    """What a newly started process reads for ``user`` (stats and memories)."""
    child = spawn("inspect", "--path", store, "--user", user)
    assert child.finish() == 0, child.stderr()
    (line,) = child.lines
    view: dict[str, Any] = json.loads(line)
    return view


def _view(engine: MemoryEngine, user: str) -> dict[str, Any]:
    stats = engine.stats(user)
    return {
        "user": user, "turns": stats.turns, "units": stats.units,
        "units_by_level": stats.units_by_level, "working_set_tokens": stats.working_set_tokens,
        "oldest": stats.oldest, "newest": stats.newest,
        "memories": [[m.id, m.level, m.text] for m in engine.memories(user_id=user)],
    }


def test_an_open_engine_sees_what_another_process_wrote(tmp_path: Path, spawn: Spawn) -> None:
    store = str(tmp_path / "store")
    with MemoryEngine(store) as engine:
        for text in ["My dog's name is Potola.", "I live in Lisbon since 2019.",
                     "My sister Ana works at the hospital.", "I prefer tea over coffee."]:
            engine.observe(text, user_id="u")
        before = engine.stats("u")
        assert before.units > 0 and before.units_by_tier["hot"] > 0  # cached in this process

        other = spawn("write", "--path", store, "--tag", "other", "--user", "u",
                      "--count", "40")
        other.expect("done")
        assert other.finish() == 0, other.stderr()

        # This process's view equals a fresh process's: counts, levels, tokens,
        # memories; nothing served from its RAM cache of before the other's writes.
        assert _view(engine, "u") == _fresh_view(spawn, store, "u")
        stats = engine.stats("u")
        assert stats.turns == before.turns + 40
        # The stale cache was dropped: what is hot now is what this process itself
        # applied after the other's writes, each entry as current as the store's.
        with engine._ws_read() as tx:
            state = engine._ws.state(tx, "u")
            hot = engine._hot.get("u", state.version)
            assert len(hot) == stats.units_by_tier["hot"] <= stats.units
            for unit in hot:
                stored = engine._ws.load(tx, "u", unit.id)
                assert stored is not None and stored.level == unit.level
                assert stored.last_reinforced == unit.last_reinforced

        # And it keeps working: a new turn, its memories, the numbers.
        turn_id = engine.observe("My cat is called Miso.", user_id="u")
        assert turn_id == max(t.id for t in engine.turns(user_id="u"))
        assert any("Miso" in m.text for m in engine.memories(user_id="u"))
        after = engine.stats("u")
        assert after.turns == stats.turns + 1
        assert 0 < after.units_by_tier["hot"] <= after.units
        mine = _view(engine, "u")
    assert mine == _fresh_view(spawn, store, "u")
    with MemoryEngine(store) as engine:
        assert engine.verify().ok
