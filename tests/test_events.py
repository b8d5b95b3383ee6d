"""The event bus: subscribers that block, raise or misbehave never hold up or
break the store (found in review: a blocked subscriber made close() hang forever,
with the store left open, and events queued without limit)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from memory_plugins import MemoryEngine, StoreClosedError, ValidationError
from memory_plugins import events as events_module


def test_a_stuck_subscriber_neither_blocks_close_nor_fills_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "MAX_PENDING", 100)
    monkeypatch.setattr(events_module, "CLOSE_TIMEOUT_S", 0.3)
    stuck = threading.Event()
    engine = MemoryEngine(tmp_path, embedder="hashing", durability="deferred")
    engine.events.subscribe("*", lambda name, payload: stuck.wait())
    for i in range(500):
        engine.observe(f"turn {i}", user_id="u")
    assert engine.events.dropped > 0  # the queue stayed at its bound
    assert not engine.events.drain(timeout=0.1)
    started = time.monotonic()
    engine.close()
    assert time.monotonic() - started < 5
    with pytest.raises(StoreClosedError):
        engine.stats()
    stuck.set()
    with MemoryEngine(tmp_path, embedder="hashing") as again:  # the deferred fsync happened
        assert again.stats().turns == 500 and again.verify().ok


def test_a_subscriber_that_raises_even_systemexit_stops_nothing(tmp_path: Path) -> None:
    seen: list[int] = []

    def rude(name: str, payload: dict[str, object]) -> None:
        if payload["turn_id"] == 2:
            raise SystemExit("bye")

    with MemoryEngine(tmp_path, embedder="hashing") as engine:
        engine.events.subscribe("conversation_turn", rude)
        engine.events.subscribe("conversation_turn",
                                lambda name, payload: seen.append(payload["turn_id"]))
        for i in range(4):
            engine.observe(f"turn {i}", user_id="u")
        assert engine.events.drain()
    assert seen == [1, 2, 3, 4]


def test_a_subscriber_may_close_the_engine(tmp_path: Path) -> None:
    engine = MemoryEngine(tmp_path, embedder="hashing")
    closed = threading.Event()

    def close_on_first(name: str, payload: dict[str, object]) -> None:
        engine.close()
        closed.set()

    engine.events.subscribe("conversation_turn", close_on_first)
    engine.observe("hello", user_id="u")
    assert closed.wait(10)
    with pytest.raises(StoreClosedError):
        engine.observe("after close", user_id="u")


def test_subscribing_wrongly_or_too_late_is_refused(tmp_path: Path) -> None:
    engine = MemoryEngine(tmp_path, embedder="hashing")
    with pytest.raises(ValidationError, match="handler must be a function"):
        engine.events.subscribe("conversation_turn", None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown event"):
        engine.events.subscribe("turn", lambda name, payload: None)
    engine.close()
    with pytest.raises(StoreClosedError):
        engine.events.subscribe("conversation_turn", lambda name, payload: None)
    assert not any(t.name == "memory-plugins-events" and t.is_alive()
                   for t in threading.enumerate())


def test_close_gives_up_on_a_slow_subscriber_once_and_the_dispatcher_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: with the queue full and a subscriber slow for between one
    and two timeouts, close() took twice its timeout and left the dispatcher
    waiting on an empty queue forever."""
    monkeypatch.setattr(events_module, "MAX_PENDING", 20)
    monkeypatch.setattr(events_module, "CLOSE_TIMEOUT_S", 0.3)
    slow = threading.Event()
    engine = MemoryEngine(tmp_path, embedder="hashing", durability="deferred")
    engine.events.subscribe("conversation_turn", lambda name, payload: slow.wait(0.45))
    for i in range(100):
        engine.observe(f"turn {i}", user_id="u")
    started = time.monotonic()
    engine.close()
    assert time.monotonic() - started < 1.0
    deadline = time.monotonic() + 5
    while any(t.name == "memory-plugins-events" and t.is_alive()
              for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the dispatcher never ended"
        time.sleep(0.05)
    assert engine.events.dropped > 0


def test_drain_from_a_subscriber_returns_at_once(tmp_path: Path) -> None:
    answers: list[bool] = []
    with MemoryEngine(tmp_path, embedder="hashing") as engine:
        engine.events.subscribe("conversation_turn",
                                lambda name, payload: answers.append(engine.events.drain(5)))
        engine.observe("hello", user_id="u")
        assert engine.events.drain(5)
    assert answers == [False]  # it would have waited for itself
