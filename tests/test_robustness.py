"""Failures that must not stall the store: full maps, an extractor bug, dead readers,
a failure after a turn is logged, close() racing other threads."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import Overlap

from memory_plugins import MemoryEngine, RuntimeFailure, StorageError, StoreClosedError
from memory_plugins import engine as engine_module
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
        # A map that is nearly full is no alarm: it grows on demand (found in review:
        # health() said not ok for a store opened with map_size_mb=1).
        checks = engine.health().checks
        assert all(v == "ok" for v in checks.values()), checks


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


def _die_inside_a_read(path: Path) -> None:
    """Another process opens the store, begins a read and is SIGKILLed in it."""
    code = ("import os, signal, sys\n"
            "from memory_plugins import MemoryEngine\n"
            "engine = MemoryEngine(sys.argv[1])\n"
            "held = engine._store.inbox.read()\n"
            "txn = held.__enter__()  # inside a read transaction...\n"
            "os.kill(os.getpid(), signal.SIGKILL)  # ...killed\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def test_readers_killed_mid_read_do_not_make_the_store_grow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: each such reader kept its LMDB slot, and with it a snapshot
    whose pages could never be reused: the inbox grew with every turn (280 MB to
    670 MB). Maintenance frees the slots of dead processes."""
    monkeypatch.setattr(engine_module, "_READER_CHECK_S", 0.0)  # every round, not every 10 s
    path = tmp_path / "memory"
    with MemoryEngine(path, maintenance="inline", durability="deferred") as engine:
        engine.observe("before", user_id="u")
        _die_inside_a_read(path)
        for i in range(3000):
            engine.observe(f"turn {i}: my friend {i} lives in Paris.", user_id="u")
        # Without the fix every turn left its pages to the dead snapshot: 72 MB here.
        assert engine._store.inbox.used_bytes() < 4 * 1024 * 1024
        assert engine.stats().turns == 3001 and engine.verify().ok


def test_health_and_reopening_free_the_slots_of_dead_readers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "memory"
    with MemoryEngine(path) as engine:
        engine.observe("hello", user_id="u")
        _die_inside_a_read(path)
        with caplog.at_level(logging.WARNING, logger="memory_plugins"):
            assert engine.health().ok
        assert "freed 1 reader slot(s)" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="memory_plugins"):
            engine.health()
        assert "freed" not in caplog.text
    _die_inside_a_read(path)
    with MemoryEngine(path) as engine:  # the open frees them: none left for health()
        with caplog.at_level(logging.WARNING, logger="memory_plugins"):
            engine.health()
        assert "freed" not in caplog.text
        assert [t.text for t in engine.turns(user_id="u")] == ["hello"]


@pytest.mark.parametrize("maintenance", ["inline", "background"])
def test_observe_returns_the_id_once_the_turn_is_logged_whatever_fails_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, maintenance: str) -> None:
    """Found in review: a failure to apply a logged turn to the working set reached
    the caller, who would log the turn again. The turn is kept; health() says what
    failed; the next read applies it."""
    real = ws_module.WorkingSet.catch_up

    def full_disk(*args: object, **kwargs: object) -> object:
        raise StorageError("write to the working set failed: No space left on device")

    with MemoryEngine(tmp_path, maintenance=maintenance, max_pending_turns=1) as engine:
        monkeypatch.setattr(ws_module.WorkingSet, "catch_up", full_disk)
        first = engine.observe("My dog's name is Potola.", user_id="u")
        second = engine.observe("I live in Porto.", user_id="u")
        assert [t.id for t in engine.turns(user_id="u")] == [first, second]
        health = engine.health()
        assert not health.ok and "No space left" in health.checks["maintenance"]
        monkeypatch.setattr(ws_module.WorkingSet, "catch_up", real)
        assert [m.text for m in engine.memories(user_id="u")] == [
            "My dog's name is Potola.", "I live in Porto."]
        assert engine.health().ok  # the read applied them: nothing left failing
        engine.observe("Tea, please.", user_id="u")
        engine.flush()
        assert engine.health().ok


@pytest.mark.parametrize(("failure", "reported_as"), [
    (StorageError("No space left on device"), StorageError),
    (TimeoutError("the tokenizer service timed out"), RuntimeFailure),
])
def test_add_says_when_it_was_logged_but_not_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception,
        reported_as: type[Exception]) -> None:
    def failing(*args: object, **kwargs: object) -> object:
        raise failure

    with MemoryEngine(tmp_path) as engine:
        monkeypatch.setattr(ws_module.WorkingSet, "catch_up", failing)
        with pytest.raises(reported_as, match=r"was logged .* do not repeat it"):
            engine.add("Prefers tea.", user_id="u")
        monkeypatch.undo()
        assert [m.text for m in engine.memories(user_id="u")] == ["Prefers tea."]


def _observe_until_closed(engine: MemoryEngine, tag: int, start: threading.Barrier,
                          acked: list[int], errors: list[BaseException]) -> None:
    start.wait()
    for i in range(1000):
        try:
            acked.append(engine.observe(f"{tag}-{i}", user_id=f"u{tag}"))
        except StoreClosedError:
            return
        except BaseException as exc:  # the test reports it
            errors.append(exc)
            return


def test_closing_while_other_threads_observe(tmp_path: Path) -> None:
    """Each observe() racing close() either returns (and its turn is stored) or
    raises StoreClosedError; no other error, and no worker is left running."""
    for attempt in range(20):
        engine = MemoryEngine(tmp_path)
        acked: list[int] = []
        errors: list[BaseException] = []
        start = threading.Barrier(3)
        threads = [threading.Thread(target=_observe_until_closed,
                                    args=(engine, tag, start, acked, errors))
                   for tag in range(2)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(0.002 * (attempt % 5))
        engine.close()
        for t in threads:
            t.join()
        assert not errors, errors
        with pytest.raises(StoreClosedError):
            engine.health()
        assert not any(t.name == "memory-plugins-maintainer" and t.is_alive()
                       for t in threading.enumerate())
        with MemoryEngine(tmp_path) as again:
            stored = {t.id for u in ("u0", "u1") for t in again.turns(user_id=u)}
        assert set(acked) <= stored


def test_reads_go_on_while_the_working_set_cannot_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review on a full disk: observe() went on (LMDB reuses free pages in
    the log) but every build() failed applying the new turns. A prompt without the
    newest memories beats none: the turns still show in the history."""
    with MemoryEngine(tmp_path, embedder="hashing", maintenance="inline") as engine:
        engine.observe("My dog's name is Potola.", user_id="u")
        ws = engine._store.ws
        real = ws.write

        def disk_full(fn: object) -> object:
            raise StorageError("mdb_txn_commit: No space left on device")

        monkeypatch.setattr(ws, "write", disk_full)
        engine.observe("I moved to Lisbon last week.", user_id="u")
        prompt = engine.build("What is my dog's name, and where do I live?", user_id="u")
        assert "Potola" in prompt.text and "Lisbon" in prompt.text
        assert engine.search("dog", user_id="u")
        assert [m.text for m in engine.memories(user_id="u")] == ["My dog's name is Potola."]
        assert "No space left" in engine.health().checks["maintenance"]
        monkeypatch.setattr(ws, "write", real)  # space was freed
        assert [m.text for m in engine.memories(user_id="u")] == [
            "My dog's name is Potola.", "I moved to Lisbon last week."]
        assert engine.health().ok


def test_lowering_a_capacity_warns_that_memories_will_leave(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with MemoryEngine(tmp_path, embedder="hashing") as engine:
        for i in range(30):
            engine.observe(f"My friend number {i} is called Rex{i}.", user_id="u")
    with caplog.at_level(logging.WARNING, logger="memory_plugins"), \
            MemoryEngine(tmp_path, embedder="hashing", warm_units=10) as engine:
        engine.observe("One more turn.", user_id="u")
        assert engine.stats("u").units <= 10 and engine.stats("u").turns == 31
    assert "warm_units lowered from 4096 to 10" in caplog.text
