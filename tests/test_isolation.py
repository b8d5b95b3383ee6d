"""One user's memories never reach another user, whatever the ids look like."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_plugins import MemoryEngine, NotFoundError

ODD_IDS = ["../../etc/passwd", "a/b\\c", "🐶", "用户", "\x00nul", " ", "CON", "x" * 4096,
           "\ud800", "Robert'); DROP TABLE users;--"]

user_ids = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=40)
sentences = st.sampled_from([
    "My dog's name is Potola.", "I love hiking in the Alps.", "My sister lives in Oslo.",
    "I went to Lisbon yesterday.", "What's my dog's name?", "Potola is a good dog.",
])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alice=user_ids, bob=user_ids, said=st.lists(st.tuples(st.booleans(), sentences),
                                                   min_size=1, max_size=12))
def test_no_call_for_one_user_returns_anothers_data(engine: MemoryEngine, alice: str, bob: str,
                                                   said: list[tuple[bool, str]]) -> None:
    if alice == bob:
        return
    mine: dict[str, set[int]] = {alice: set(), bob: set()}
    for by_alice, text in said:
        user = alice if by_alice else bob
        mine[user].add(engine.observe(text, user_id=user, metadata={"owner": user}))
    for user in (alice, bob):
        assert {t.id for t in engine.turns(user_id=user)} >= mine[user]
        assert all(t.user_id == user for t in engine.turns(user_id=user))
        for memory in engine.memories(user_id=user):
            assert memory.user_id == user and set(memory.sources) <= {
                t.id for t in engine.turns(user_id=user)}
            assert memory.metadata is None or memory.metadata["owner"] == user
            other = bob if user == alice else alice
            with pytest.raises(NotFoundError):
                engine.get(memory.id, user_id=other)
            # Reinforcing someone else's memory id restores nothing for you.
            assert engine.reinforce([memory.id], user_id=other) == []
        assert all(m.user_id == user for m in engine.reinforce(
            [m.id for m in engine.memories(user_id=user)], user_id=user))


@pytest.mark.parametrize("user_id", ODD_IDS)
def test_odd_user_ids_work_and_never_become_file_names(tmp_path: Path, user_id: str) -> None:
    with MemoryEngine(tmp_path) as engine:
        engine.observe("My dog's name is Potola.", user_id=user_id)
        engine.observe("I like tea.", user_id="someone else")
        assert [t.text for t in engine.turns(user_id=user_id)] == ["My dog's name is Potola."]
        assert [m.text for m in engine.memories(user_id=user_id)] == ["My dog's name is Potola."]
        assert engine.stats(user_id).turns == 1
    assert sorted(os.listdir(tmp_path)) == ["inbox", "log", "working_set"]
    for part in ("inbox", "log", "working_set"):
        assert sorted(os.listdir(tmp_path / part)) == ["data.mdb", "lock.mdb"]
