"""Failures that must not stall the store: full maps, an extractor bug."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Overlap

from memory_plugins import MemoryEngine
from memory_plugins import workingset as ws_module


def test_maps_grow_while_the_working_set_catches_up(tmp_path: Path) -> None:
    """Found by the 1M-turn benchmark: a full working-set map inside a log snapshot."""
    with MemoryEngine(tmp_path, map_size_mb=1, maintenance="inline",
                      durability="deferred") as engine:
        for i in range(6000):
            engine.observe(f"My friend number {i} is called Rex{i} and lives in Paris{i}.",
                           user_id=f"u{i % 7}")
        assert engine.stats().turns == 6000
        assert engine.memories(user_id="u3")
        # Maps grow by doubling, so how full one is after growing is luck: not checked.
        checks = engine.health().checks
        assert all(v == "ok" for k, v in checks.items() if not k.endswith("_map")), checks


def test_a_turn_the_extractor_cannot_handle_stays_in_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ws_module.analyze_turn

    def flaky(text: str, **kwargs):  # type: ignore[no-untyped-def]
        if "BOOM" in text:
            raise IndexError("an extractor bug")
        return real(text, **kwargs)

    monkeypatch.setattr(ws_module, "analyze_turn", flaky)
    with MemoryEngine(tmp_path) as engine:
        engine.observe("My dog's name is Potola.", user_id="a")
        bad = engine.observe("BOOM goes the parser.", user_id="b")
        engine.observe("I live in Porto.", user_id="a")
        assert [m.text for m in engine.memories(user_id="a")] == [
            "My dog's name is Potola.", "I live in Porto."]
        assert engine.get_turn(bad).text == "BOOM goes the parser."
        health = engine.health()
        assert not health.ok and f"turn {bad}: IndexError" in health.checks["extraction"]


def test_a_machine_crash_rebuilds_the_working_set_from_the_log(tmp_path: Path) -> None:
    """The working set is not fsynced; after a crash of the machine (another boot id
    while writers were still counted) it is emptied and rebuilt from the log."""
    import lmdb

    with MemoryEngine(tmp_path) as engine:
        engine.observe("My dog's name is Potola.", user_id="a")
        engine.observe("I live in Porto.", user_id="a")
        before = [(m.id, m.text) for m in engine.memories(user_id="a")]
    env = lmdb.open(str(tmp_path / "working_set"), max_dbs=16)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:  # as if a writer was open when another boot began
        txn.put(b"writers", (1).to_bytes(8, "big"), db=meta)
        txn.put(b"boot", b"a-previous-boot", db=meta)
    env.close()
    with MemoryEngine(tmp_path) as engine:
        assert engine._store.rebuilt
        assert [(m.id, m.text) for m in engine.memories(user_id="a")] == before
        assert engine.verify().ok
    with MemoryEngine(tmp_path) as engine:  # a clean close: no second rebuild
        assert not engine._store.rebuilt


def test_the_map_grows_while_other_threads_read(tmp_path: Path) -> None:
    """LMDB remaps on growth: readers in other threads must be kept out meanwhile."""
    import threading

    with MemoryEngine(tmp_path, map_size_mb=1, durability="deferred",
                      embedder="hashing") as engine:
        engine.observe("My dog's name is Potola.", user_id="r")
        stop = threading.Event()
        errors: list[BaseException] = []

        def reader() -> None:
            while not stop.is_set():
                try:
                    assert engine.get_turn(1).text == "My dog's name is Potola."
                    engine.memories(user_id="r")
                except BaseException as exc:  # collected, asserted below
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(3000):  # grows both maps several times over
                engine.observe(f"Fact {i}: the number {i} is written here at length.",
                               user_id=f"w{i % 5}")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == []
        assert engine.stats().turns == 3001 and engine.verify().ok


def test_a_map_resize_waits_for_readers_and_is_not_starved_by_them(
        overlapping: Overlap) -> None:
    """LMDB may be remapped only when no thread is inside a transaction. A thread
    already inside one may open another while a resize waits (else both would
    wait for each other); threads whose reads keep overlapping must still let the
    resize in."""
    import threading
    import time

    from memory_plugins.storage import _SharedExclusive

    lock = _SharedExclusive()
    inside, go_on, nested = threading.Event(), threading.Event(), threading.Event()

    def reader() -> None:
        with lock.shared():
            inside.set()
            go_on.wait(5)  # a resize is queued meanwhile
            with lock.shared():  # nested: does not wait behind it
                nested.set()

    resized = threading.Event()

    def resize() -> None:
        with lock.exclusive():
            resized.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=resize)]
    threads[0].start()
    assert inside.wait(5)
    threads[1].start()
    time.sleep(0.05)
    assert not resized.is_set()  # the reader is inside
    go_on.set()
    assert nested.wait(5) and resized.wait(5)
    for t in threads:
        t.join(5)

    done = threading.Event()
    overlapping(lock.shared)  # three readers overlapping without end
    resizer = threading.Thread(target=lambda: resize() or done.set())
    resizer.start()
    assert done.wait(5)
