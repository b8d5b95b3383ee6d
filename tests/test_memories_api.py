"""Explicit memory management: add, get, update, delete, list, history, consolidate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from memory_plugins import MemoryEngine, NotFoundError, StorageError, ValidationError, rawlog
from memory_plugins.frames import Turn

WHEN = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)


def test_add_get_update_history_delete(engine: MemoryEngine) -> None:
    memory = engine.add("Prefers window seats on long flights.", user_id="ana",
                        type="preference", metadata={"source": "onboarding"}, timestamp=WHEN)
    assert memory.level == 0 and memory.type == "preference"
    got = engine.get(memory.id)
    assert got.text == "Prefers window seats on long flights."
    assert got.metadata == {"source": "onboarding"}

    updated = engine.update(memory.id, "Prefers aisle seats on long flights.")
    assert updated.id == memory.id and updated.text == "Prefers aisle seats on long flights."
    assert updated.metadata == {"source": "onboarding"}  # kept when not given

    engine.delete(memory.id)
    events = [(e.event, e.old_memory, e.new_memory) for e in engine.history(memory.id)]
    assert events == [
        ("ADD", None, "Prefers window seats on long flights."),
        ("UPDATE", "Prefers window seats on long flights.", "Prefers aisle seats on long flights."),
        ("DELETE", "Prefers aisle seats on long flights.", None),
    ]
    with pytest.raises(NotFoundError):
        engine.get(memory.id)
    with pytest.raises(NotFoundError, match="already deleted"):
        engine.delete(memory.id)
    # The log keeps provenance of every operation.
    ops = [t.metadata["op"] for t in engine.turns(user_id="ana") if t.metadata]
    assert ops == ["add", "update", "delete"]


def test_list_filters_by_type_level_and_time(engine: MemoryEngine) -> None:
    engine.observe("I love jazz records.", user_id="bo", timestamp=WHEN)
    engine.observe("I went to Porto last Friday.", user_id="bo",
                   timestamp=WHEN + dt.timedelta(days=1))
    engine.observe("I feel anxious about the exam.", user_id="bo",
                   timestamp=WHEN + dt.timedelta(days=2))
    kinds = {m.type: m.text for m in engine.memories(user_id="bo")}
    assert kinds == {"preference": "I love jazz records.",
                     "episodic": "I went to Porto last Friday.",
                     "emotional": "I feel anxious about the exam."}
    assert [m.text for m in engine.memories(user_id="bo", type="preference")] == [
        "I love jazz records."]
    later = engine.memories(user_id="bo", since=(WHEN + dt.timedelta(days=1)).timestamp())
    assert len(later) == 2
    assert len(engine.memories(user_id="bo", limit=1)) == 1
    assert engine.memories(user_id="bo", level=3) == []


def test_observed_memories_carry_their_turns_metadata(engine: MemoryEngine) -> None:
    engine.observe("My sister lives in Oslo.", user_id="cy", metadata={"dia_id": "D1:3"})
    (memory,) = engine.memories(user_id="cy")
    assert memory.metadata == {"dia_id": "D1:3"}
    assert memory.text == "My sister lives in Oslo."
    assert memory.form(1) == "user|sister|lives Oslo"


def test_consolidate_merges_same_facts(engine: MemoryEngine) -> None:
    engine.observe("My dog's name is Potola.", user_id="di", timestamp=WHEN)
    engine.observe("my dog is named Potola", user_id="di", timestamp=WHEN)
    engine.observe("I like tea.", user_id="di", timestamp=WHEN)
    assert len(engine.memories(user_id="di")) == 3
    assert engine.consolidate(user_id="di") == 1
    remaining = engine.memories(user_id="di")
    assert len(remaining) == 2
    dog = next(m for m in remaining if m.relation == "dog")
    assert len(dog.sources) == 2 and dog.reinforcements >= 1
    assert engine.consolidate(user_id="di") == 0


def test_stats_and_health(engine: MemoryEngine) -> None:
    empty = engine.stats()
    assert (empty.users, empty.turns, empty.units, empty.oldest) == (0, 0, 0, None)
    engine.observe("I work as a nurse in Lyon.", user_id="ed", timestamp=WHEN)
    engine.observe("I play the cello.", user_id="fi", timestamp=WHEN + dt.timedelta(hours=1))
    stats = engine.stats()
    assert (stats.users, stats.turns, stats.units) == (2, 2, 2)
    assert stats.units_by_level == {"verbatim": 2, "compressed": 0, "abbreviated": 0,
                                    "trace": 0}
    assert stats.units_by_tier["warm"] == 2 and stats.units_by_tier["hot"] == 2
    assert stats.oldest == WHEN.timestamp() and stats.newest == WHEN.timestamp() + 3600
    assert stats.log_bytes > 0 and stats.working_set_tokens > 0
    mine = engine.stats("ed")
    assert (mine.users, mine.turns, mine.units, mine.oldest) == (1, 1, 1, WHEN.timestamp())
    assert engine.stats("nobody").turns == 0
    health = engine.health()
    assert health.ok, health.checks


@pytest.mark.parametrize(("call", "message"), [
    (lambda e: e.observe(b"bytes", user_id="u"), "text must be a str"),
    (lambda e: e.observe("hi", user_id=""), "user_id must not be empty"),
    (lambda e: e.observe("hi", user_id=7), "user_id must be a str"),
    (lambda e: e.observe("hi", user_id="u" * 5000), "limit is 4096"),
    (lambda e: e.observe("hi", user_id="u", role=""), "role must not be empty"),
    (lambda e: e.observe("hi", user_id="u", timestamp="yesterday"), "timestamp must be"),
    (lambda e: e.observe("hi", user_id="u", timestamp=float("nan")), "not a usable"),
    (lambda e: e.observe("hi", user_id="u", timestamp=True), "timestamp must be"),
    (lambda e: e.observe("hi", user_id="u", metadata={"k": object()}), "JSON"),
    (lambda e: e.observe("hi", user_id="u", metadata={1: "a"}), "str keys"),
    (lambda e: e.observe("hi", user_id="u", metadata={"k": (1, 2)}), "read back unchanged"),
    (lambda e: e.observe("hi", user_id="u", metadata={"k": float("inf")}), "JSON"),
    (lambda e: e.observe("hi", user_id="u", metadata=["a"]), "metadata must be a dict"),
    (lambda e: e.add("   ", user_id="u"), "must not be empty"),
    (lambda e: e.add("x y", user_id="u", type="gossip"), "type must be one of"),
    (lambda e: e.get(0), "positive int"),
    (lambda e: e.get("12"), "positive int"),
    (lambda e: e.memories(user_id="u", level=7), "level must be"),
    (lambda e: e.memories(user_id="u", limit=-1), "limit"),
    (lambda e: e.memories(user_id="u", limit=True), "limit"),
    (lambda e: e.memories(user_id="u", since=float("nan")), "since must be"),
    # Out of what a datetime can hold: stored, it would fail every later read.
    (lambda e: e.observe("hi", user_id="u", timestamp=-9e10), "out of range"),
    (lambda e: e.observe("hi", user_id="u", timestamp=2.6e11), "out of range"),
    (lambda e: e.observe("hi", user_id="u", timestamp=dt.datetime(
        1, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=5)))), "out of range"),
    (lambda e: e.observe("hi", user_id="u", timestamp=dt.datetime.max), "out of range"),
    (lambda e: e.observe("hi", user_id="u", timestamp=10**400), "too large"),
    (lambda e: e.add("Prefers tea.", user_id="u", timestamp=-9e10), "out of range"),
    (lambda e: e.observe("hi", user_id="u", metadata=_nested(5000)), "nested too deeply"),
    (lambda e: e.deep_recall("dog", user_id="u", reconstructor=5), "reconstructor must be"),
])
def test_bad_input_is_refused_and_loses_nothing(engine: MemoryEngine, call, message: str) -> None:  # type: ignore[no-untyped-def]
    kept = engine.observe("My dog's name is Potola.", user_id="u")
    with pytest.raises(ValidationError, match=message):
        call(engine)
    assert [t.text for t in engine.turns(user_id="u")] == ["My dog's name is Potola."]
    assert engine.get_turn(kept).text == "My dog's name is Potola."
    assert engine.verify().ok


def _nested(depth: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for _ in range(depth):
        out = {"k": out}
    return out


def test_oversized_turns_are_refused_by_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with MemoryEngine(tmp_path, max_turn_bytes=1000) as engine:
        with pytest.raises(ValidationError, match="max_turn_bytes"):
            engine.observe("x" * 1001, user_id="u")
        with pytest.raises(ValidationError, match="max_turn_bytes"):  # one frame: one limit
            engine.observe("short", user_id="u", metadata={"blob": "x" * 1000})
        assert engine.stats().turns == 0
        engine.observe("x" * 1000, user_id="u")


def test_a_time_zone_offset_with_seconds_keeps_the_instant(engine: MemoryEngine) -> None:
    """Historical zones (local mean time) have offsets like -5:00:30; the log keeps
    whole minutes, so the offset is rounded and the instant stays exact."""
    odd = dt.timezone(-dt.timedelta(hours=5, seconds=30))
    when = dt.datetime(1880, 3, 1, 12, 0, tzinfo=odd)
    turn = engine.get_turn(engine.observe("hi", user_id="u", timestamp=when))
    assert turn.datetime == when  # the same instant
    assert turn.datetime.utcoffset() == -dt.timedelta(hours=5)


def test_the_edges_of_the_calendar_are_usable(engine: MemoryEngine) -> None:
    for when in (dt.datetime(2, 1, 1, tzinfo=dt.UTC), dt.datetime(9998, 12, 31, 23, 59)):
        engine.observe("Ancient or distant news from 0001-01-01, yesterday.", user_id="u",
                       timestamp=when)
    prompt = engine.build("What happened on 0001-01-01 or in 9999?", user_id="u")
    assert "Ancient or distant news" in prompt.text
    assert [t.datetime.year for t in engine.turns(user_id="u")] == [2, 9998]
    assert engine.search("distant news", user_id="u")


def test_unknown_ids_are_not_found(engine: MemoryEngine) -> None:
    with pytest.raises(NotFoundError):
        engine.get(12345 << 8)
    with pytest.raises(NotFoundError):
        engine.get_turn(99)
    with pytest.raises(NotFoundError):
        engine.update(77 << 8, "new text")
    with pytest.raises(NotFoundError):
        engine.history(5 << 8)


def test_an_updated_memory_comes_back_updated_after_being_forgotten(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found in review: restoring from the log used the original sentence."""
    with MemoryEngine(tmp_path) as engine:
        engine.observe("My dog's name is Potola.", user_id="u", timestamp=WHEN)
        dog = engine.memories(user_id="u")[0].id
        engine.update(dog, "My dog's name is Rex now.")  # at the wall clock's now
        later = engine.get(dog).last_reinforced + 10 * 365 * 86400.0
        engine.observe("Ten years on.", user_id="u", timestamp=later)
        assert engine.stats("u").units == 1  # only "Ten years on.": the dog was removed
        assert all(m.id != dog for m in engine.memories(user_id="u"))  # forgotten
        (back,) = engine.reinforce([dog], user_id="u")
        assert back.text == "My dog's name is Rex now."


def test_made_up_ids_never_become_memories(engine: MemoryEngine) -> None:
    memory = engine.add("Prefers tea.", user_id="u")
    engine.update(memory.id, "Prefers green tea.")
    update_turn = max(t.id for t in engine.turns(user_id="u"))
    for fake in (memory.id | 5, update_turn << 8):
        assert engine.reinforce([fake], user_id="u") == []
        with pytest.raises(NotFoundError):
            engine.update(fake, "something")
    assert [m.text for m in engine.memories(user_id="u")] == ["Prefers green tea."]
    assert engine.stats("u").units == 1


@pytest.mark.parametrize("call", [
    lambda e: e.deep_recall("x", time_budget_ms="5"),
    lambda e: e.deep_recall("x", limit="a"),
    lambda e: e.deep_recall("x", limit=-1),
    lambda e: e.memories(user_id="u", since="yesterday"),
    lambda e: e.memories(user_id="u", until=[1]),
    lambda e: e.reinforce(5, user_id="u"),
    lambda e: e.reinforce(None, user_id="u"),
    lambda e: e.reinforce("256", user_id="u"),
])
def test_more_bad_arguments_get_our_error(engine: MemoryEngine, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        call(engine)


def test_deep_recall_reaches_the_oldest_turn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with MemoryEngine(tmp_path, embedder="hashing") as engine:
        engine.observe("The treasure is buried under the old oak.", user_id="u",
                       timestamp=WHEN)
        for n in range(700):  # several read batches of 256
            engine.observe(f"Filler line {n}.", user_id="u", timestamp=WHEN)
        hits = engine.deep_recall("treasure oak", user_id="u", time_budget_ms=10_000)
        assert isinstance(hits, list) and hits[0].text.startswith("The treasure")
        assert len(list(engine._turns_newest_first("u"))) == 701


def test_search_finds_the_relevant_memory_and_changes_nothing(engine: MemoryEngine) -> None:
    engine.observe("My dog's name is Potola.", user_id="ana", timestamp=WHEN,
                   metadata={"source": "chat"})
    engine.observe("I work as a nurse in Lisbon.", user_id="ana", timestamp=WHEN)
    engine.add("Likes green tea.", user_id="ana", timestamp=WHEN)
    engine.observe("My dog is called Rex.", user_id="bob", timestamp=WHEN)
    before = engine.memories(user_id="ana")

    hits = engine.search("what is my dog called?", user_id="ana", limit=2)
    assert len(hits) == 2
    assert hits[0].memory.text == "My dog's name is Potola."
    assert hits[0].memory.metadata == {"source": "chat"}
    assert hits[0].score > hits[1].score
    assert all(h.memory.user_id == "ana" for h in hits)
    assert engine.memories(user_id="ana") == before
    assert engine.search("dog", user_id="nobody") == []
    with pytest.raises(ValidationError):
        engine.search("dog", user_id="ana", limit=0)
    with pytest.raises(ValidationError):
        engine.search(b"dog", user_id="ana")  # type: ignore[arg-type]


def test_a_turn_stored_with_an_impossible_time_by_an_older_release_still_reads(
        engine: MemoryEngine) -> None:
    """Older releases accepted POSIX times as far out as 1e11 seconds; a turn from
    3000 BC made every later read of its user fail. It reads, clamped to year 2."""
    rawlog.append(engine._store, Turn(id=0, user_id="u", session_id=None, role="user",
                                      speaker=None, text="My dog's name is Potola.",
                                      timestamp=-9e10))
    engine.observe("Where does my dog live?", user_id="u", timestamp=WHEN)
    (old, new) = engine.turns(user_id="u")
    assert old.datetime.year == 2 and new.datetime == WHEN
    assert "Potola" in engine.build("What is my dog's name?", user_id="u").text
    assert engine.search("dog name", user_id="u")
    assert engine.health().ok
    assert engine.memories(user_id="u", until=10**400)  # an int past float's range


def test_an_unknown_embedder_is_refused_before_the_store_opens(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="embedder must be"):
        MemoryEngine(tmp_path / "s", embedder="minilm")  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(("path", "error"), [
    ("", ValidationError),
    ("a\x00b", ValidationError),
    ("bad-\udcff-name", ValidationError),  # not encodable for the file system
    (b"bytes/path", ValidationError),
    ("x" * 300, StorageError),  # a name longer than the file system allows
])
def test_store_paths_the_os_cannot_take_get_our_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: object,
        error: type[Exception]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error):
        MemoryEngine(path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # nothing created, not even in the CWD
