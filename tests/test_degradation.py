"""Memories degrade with time and come back, whole, when they matter again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from memory_plugins import MemoryEngine, NotFoundError

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
SMALL_TALK = ["The weather was grey all week.", "We tried the new ramen place downtown.",
              "Work meetings ran long again.", "I watched a film about sailing boats."]


def day(n: float) -> dt.datetime:
    return START + dt.timedelta(days=n)


def potola_level(engine: MemoryEngine, memory_id: int) -> tuple[int, str] | None:
    for memory in engine.memories(user_id="me"):
        if memory.id == memory_id:
            return memory.level, memory.text
    return None


def test_potola_walks_down_every_level_and_comes_back(engine: MemoryEngine) -> None:
    turn = engine.observe("My dog's name is Potola.", user_id="me", timestamp=day(0))
    potola = engine.memories(user_id="me")[0]
    assert (potola.id >> 8, potola.level, potola.text) == (turn, 0, "My dog's name is Potola.")
    assert potola.type == "semantic"

    seen: list[tuple[int, str] | None] = []
    for n in range(1, 200):  # one unrelated turn a day, with time passing
        engine.observe(SMALL_TALK[n % len(SMALL_TALK)], user_id="me", timestamp=day(n))
        state = potola_level(engine, potola.id)
        if not seen or seen[-1] != state:
            seen.append(state)
    assert seen == [
        (0, "My dog's name is Potola."),
        (1, "user|dog|Potola"),
        (2, "user|dog|P"),
        (3, "user|dog"),
        None,  # out of the working set
    ]
    with pytest.raises(NotFoundError, match="still in the log"):
        engine.get(potola.id)
    assert engine.get_turn(turn).text == "My dog's name is Potola."  # the log never degrades

    engine.observe("What's my dog's name again?", user_id="me", timestamp=day(200))
    back = engine.get(potola.id)
    assert (back.level, back.text) == (0, "My dog's name is Potola.")
    assert back.reinforcements == 1 and back.stability_days > potola.stability_days
    assert engine.verify().ok


def test_a_degraded_memory_is_restored_when_its_value_is_mentioned(engine: MemoryEngine) -> None:
    engine.observe("My dog's name is Potola.", user_id="me", timestamp=day(0))
    memory_id = engine.memories(user_id="me")[0].id
    engine.observe("Nothing much happened.", user_id="me", timestamp=day(80))
    assert engine.get(memory_id).level == 2
    engine.observe("Potola chewed my shoes today!", user_id="me", timestamp=day(81))
    assert engine.get(memory_id).text == "My dog's name is Potola."


def test_retrieval_reinforces_and_restores(engine: MemoryEngine) -> None:
    engine.observe("I went to a pottery class yesterday.", user_id="me", timestamp=day(0))
    memory_id = engine.memories(user_id="me")[0].id
    engine.observe("Quiet day at home.", user_id="me", timestamp=day(9))
    degraded = engine.get(memory_id)
    assert degraded.level == 1 and degraded.verbatim is None
    assert degraded.text == "user|went to|pottery class @2026-01-04"  # the date made absolute
    (restored,) = engine.reinforce([memory_id], user_id="me")
    assert restored.level == 0 and restored.text == "I went to a pottery class yesterday."
    assert restored.access_count == 1


def test_a_forgotten_memory_comes_back_by_id(engine: MemoryEngine) -> None:
    engine.observe("I had a dentist appointment this morning.", user_id="me", timestamp=day(0))
    memory_id = engine.memories(user_id="me")[0].id
    engine.observe("Another day.", user_id="me", timestamp=day(60))
    assert potola_level(engine, memory_id) is None
    (back,) = engine.reinforce([memory_id], user_id="me")
    assert back.id == memory_id and back.text == "I had a dentist appointment this morning."


def test_a_deleted_memory_is_never_restored(engine: MemoryEngine) -> None:
    engine.observe("My dog's name is Potola.", user_id="me", timestamp=day(0))
    memory_id = engine.memories(user_id="me")[0].id
    engine.delete(memory_id)
    engine.observe("What's my dog's name?", user_id="me", timestamp=day(1))
    assert engine.reinforce([memory_id], user_id="me") == []
    assert all(m.id != memory_id for m in engine.memories(user_id="me"))
    with pytest.raises(NotFoundError, match="deleted"):
        engine.get(memory_id)


def test_capacity_in_units_is_never_exceeded(tmp_path: Path) -> None:
    with MemoryEngine(tmp_path, warm_units=10) as engine:
        for n in range(60):
            # No shared words: a shared word would be a mention, and reinforce.
            engine.observe(f"I collected badge{n} and medal{n}.", user_id="me",
                           timestamp=day(n / 10))
            assert engine.stats("me").units <= 10
        kept = engine.memories(user_id="me")
        assert len(kept) == 10
        # The weakest (oldest) went first: the newest ten remain.
        assert [m.verbatim for m in kept] == [
            f"I collected badge{n} and medal{n}." for n in range(50, 60)]
        assert engine.stats("me").turns == 60  # all still in the log


def test_token_capacity_degrades_before_it_forgets(tmp_path: Path) -> None:
    with MemoryEngine(tmp_path, working_set_tokens=120) as engine:
        for n in range(30):
            engine.observe(f"My friend number {n} lives in a town called Place{n}.",
                           user_id="me", timestamp=day(n / 100))
            assert engine.stats("me").working_set_tokens <= 120
        levels = engine.stats("me").units_by_level
        assert levels["verbatim"] > 0 and sum(levels.values()) > levels["verbatim"]


def test_degradation_work_per_turn_is_bounded(tmp_path: Path) -> None:
    """Fifty memories due at once degrade over several turns, at most N per turn."""
    with MemoryEngine(tmp_path, decay_steps_per_turn=8) as engine:
        for n in range(50):
            engine.observe(f"I visited museum number {n} in the old city.", user_id="me",
                           timestamp=day(0))
        before = engine.stats("me").units_by_level["verbatim"]
        engine.observe("Later.", user_id="me", timestamp=day(30))
        after = engine.stats("me").units_by_level["verbatim"]
        assert before == 50 and after == 42
        for _ in range(6):
            engine.observe("Later.", user_id="me", timestamp=day(30))
        assert engine.stats("me").units_by_level["verbatim"] == 0


def test_repeated_sentences_reinforce_one_memory(engine: MemoryEngine) -> None:
    for n in range(5):
        engine.observe("I love hiking in the mountains.", user_id="me", timestamp=day(n))
    (memory,) = engine.memories(user_id="me")
    assert memory.type == "preference" and memory.reinforcements == 4
    assert len(memory.sources) == 5 and engine.stats("me").turns == 5


def test_same_input_gives_the_same_memories(tmp_path: Path) -> None:
    def run(path: Path) -> list[tuple[int, int, str, float]]:
        with MemoryEngine(path) as engine:
            for n in range(40):
                engine.observe(f"{SMALL_TALK[n % 4]} Also, my plant number {n} is a fern.",
                               user_id="me", timestamp=day(n * 2))
            return [(m.id, m.level, m.text, m.strength) for m in engine.memories(user_id="me")]
    assert run(tmp_path / "a") == run(tmp_path / "b")


def test_a_forgotten_memory_is_found_by_a_question_that_matches_it(tmp_path: Path) -> None:
    """Recall indexes a unit by its whole sentence, whatever its level: a question
    that matches a forgotten memory (without naming its mention terms) finds it,
    and the prompt shows it verbatim from the log, with its relative date resolved."""
    with MemoryEngine(tmp_path / "m", embedder="hashing") as engine:
        engine.observe("I ran a charity race for mental health last Saturday.",
                       user_id="me", timestamp=day(0))
        race = engine.memories(user_id="me")[0]
        for n in range(1, 200):
            engine.observe(SMALL_TALK[n % len(SMALL_TALK)], user_id="me", timestamp=day(n))
        assert race.id not in {m.id for m in engine.memories(user_id="me")}  # forgotten

        hits = engine.search("charity race", user_id="me", limit=1)
        assert [(h.memory.id, h.memory.level) for h in hits] == [(race.id, 0)]
        prompt = engine.build("Which charity race did I run?", user_id="me")
        shown = [s for s in prompt.sources if s.id == race.id]
        assert shown and shown[0].level == 0
        saturday = (day(0) - dt.timedelta(days=(day(0).weekday() - 5) % 7 or 7))
        assert f"last Saturday ({saturday.day} {saturday:%B} {saturday.year})" in prompt.text
