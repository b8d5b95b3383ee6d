"""Fault tests: a writer process killed with SIGKILL at random moments loses nothing.

Invariant 2 (DESIGN.md): every acknowledged turn reads back byte-exact after a
crash. A child process (``_writer.py``) observes turns in a loop and prints an
acknowledgement only after ``observe`` has returned; the test kills it at a
random moment, reopens the store and checks every acknowledged turn, the hash
chains (``verify``), ``health``, and that the store takes new turns. The same
store goes through every kill, so each round also recovers from all the
earlier ones.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _writer as writer  # tests/ is on sys.path under pytest
import pytest

from memory_plugins import MemoryEngine, Turn

pytestmark = pytest.mark.slow


Spawn = Callable[..., Any]  # spawn(*args) -> a running _writer.Child
USER = "crash-user"


class Ledger:
    """What the store must hold: every acknowledged turn, and the log as last seen."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.acked: dict[int, tuple[str, str]] = {}  # turn id -> (user, text)
        self.last_ids: list[int] = []
        self.unacked_but_logged = 0

    def check_round(self, engine: MemoryEngine, tag: str,
                    acks: list[tuple[int, int, str]]) -> None:
        # Each acknowledged turn, by id, byte-exact, and as acknowledged (same hash).
        for turn_id, i, digest in acks:
            text = writer.text_for(self.kind, tag, i)
            assert writer.text_hash(text) == digest
            turn = engine.get_turn(turn_id)
            assert (turn.user_id, turn.metadata) == (USER, {"writer": tag, "i": i})
            assert turn.text == text
            self.acked[turn_id] = (USER, text)

        report = engine.verify()
        assert report.ok, report.problems
        assert report.frames == engine.stats().turns
        health = engine.health()
        assert health.ok, health.checks

        # The store takes new turns after the crash.
        text = f"the parent writes after {tag} 🐶 我的狗"
        parent_id = engine.observe(text, user_id=USER, metadata={"writer": "parent"})
        assert engine.get_turn(parent_id).text == text
        self.acked[parent_id] = (USER, text)

        # The user's log, read in order: every acknowledged turn (of every round so
        # far) is there; the log before this round is a prefix of it (nothing
        # vanished or moved); ids increase; the parent's turn is the newest.
        logged: list[Turn] = list(engine.turns(user_id=USER))
        ids = [t.id for t in logged]
        assert ids == sorted(set(ids))
        assert ids[: len(self.last_ids)] == self.last_ids
        assert ids[-1] == parent_id
        by_id = {t.id: t for t in logged}
        for turn_id, (user, text) in self.acked.items():
            assert turn_id in by_id, f"acknowledged turn {turn_id} is lost"
            assert (by_id[turn_id].user_id, by_id[turn_id].text) == (user, text)

        # This round's turns are the writer's first n texts, in order, where n is
        # the number acknowledged, or one more (committed, killed before the ack).
        mine = logged[len(self.last_ids):-1]
        assert len(mine) in (len(acks), len(acks) + 1)
        for i, turn in enumerate(mine):
            assert turn.metadata == {"writer": tag, "i": i}
            assert turn.text == writer.text_for(self.kind, tag, i)
        self.unacked_but_logged += len(mine) - len(acks)
        self.last_ids = ids
        assert engine.stats(USER).turns == len(ids)


def _writer_args(store: Path, tag: str, kind: str, durability: str | None,
                 move_every: int | None = None) -> list[str]:
    args = ["write", "--path", str(store), "--tag", tag, "--user", USER, "--kind", kind]
    if move_every:
        args += ["--move-every", str(move_every)]
    return [*args, "--durability", durability] if durability else args


@pytest.mark.parametrize(
    ("kind", "durability", "kills", "move_every"),
    [
        ("varied", None, 30, None),  # emoji, CJK, control chars, long and empty texts
        ("big", None, 12, None),  # 200 KB texts: the kill lands mid-commit more often
        # Deferred durability fsyncs later, but each commit has reached the OS when
        # observe returns: killing the process (not the machine) loses nothing.
        ("varied", "deferred", 15, None),
        # The log's inbox moved to its archive every few turns: kills land mid-move.
        ("varied", None, 20, 4),
    ],
    ids=["varied", "200KB", "deferred", "moving"],
)
def test_sigkill_at_random_moments_loses_no_acknowledged_turn(
        tmp_path: Path, spawn: Spawn, kind: str, durability: str | None, kills: int,
        move_every: int | None) -> None:
    store = tmp_path / "store"
    rnd = random.Random(f"{kind}/{durability}/{move_every}")
    ledger = Ledger(kind)
    for n in range(kills):
        tag = f"r{n}"
        child = spawn(*_writer_args(store, tag, kind, durability, move_every))
        child.expect("ready")
        time.sleep(rnd.uniform(0.020, 0.300))  # the fault: SIGKILL at a random moment
        assert child.kill() == -signal.SIGKILL, child.stderr()
        with MemoryEngine(store) as engine:
            ledger.check_round(engine, tag, child.acks())

    # The kills hit a writer at work: many turns were acknowledged, in most rounds.
    assert len(ledger.acked) > kills * 5
    with MemoryEngine(store) as engine:  # and a last clean reopen sees it all
        assert engine.verify().ok
        assert engine.stats(USER).turns == len(ledger.last_ids)
        if move_every:
            with engine._store.log_read() as view:
                assert view.archived > len(ledger.last_ids) // 2  # the moves did happen


def test_sigkill_while_the_writer_opens_the_store(tmp_path: Path, spawn: Spawn) -> None:
    """Kills spread over start-up: importing, opening the store, first writes."""
    store = tmp_path / "store"
    rnd = random.Random("opening")
    ledger = Ledger("varied")
    started = time.monotonic()
    first = spawn(*_writer_args(store, "r0", "varied", None))
    first.expect("ready")
    ready_after = time.monotonic() - started  # how long start-up takes on this machine
    assert first.kill() == -signal.SIGKILL
    with MemoryEngine(store) as engine:
        ledger.check_round(engine, "r0", first.acks())
    for n in range(1, 10):
        child = spawn(*_writer_args(store, f"r{n}", "varied", None))
        time.sleep(ready_after * rnd.uniform(0.6, 1.4))
        child.kill()  # may have died already on its own: then its stderr says why
        assert child.proc.returncode == -signal.SIGKILL, child.stderr()
        with MemoryEngine(store) as engine:
            ledger.check_round(engine, f"r{n}", child.acks())


def test_sigkill_while_another_process_keeps_the_store_open(tmp_path: Path, spawn: Spawn) -> None:
    """LMDB's writer lock and reader slots held by a killed process must not wedge
    a process that had the store open all along (no reopen here)."""
    store = tmp_path / "store"
    rnd = random.Random("peer")
    ledger = Ledger("varied")
    with MemoryEngine(store) as engine:
        engine.observe("I am the long-lived process.", user_id="peer")
        for n in range(12):
            child = spawn(*_writer_args(store, f"r{n}", "varied", None))
            child.expect("ready")
            time.sleep(rnd.uniform(0.020, 0.300))
            assert child.kill() == -signal.SIGKILL, child.stderr()
            ledger.check_round(engine, f"r{n}", child.acks())
            assert [t.text for t in engine.turns(user_id="peer")] == [
                "I am the long-lived process."]
    with MemoryEngine(store) as engine:
        assert engine.verify().ok
        assert [t.id for t in engine.turns(user_id=USER)] == ledger.last_ids
