"""Ours only: what Mem0 has no counterpart for (rule-based infer=True, the extractor
hook, timestamps, our config), AsyncMemory, and bad input that must change nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from memory_plugins_mem0 import AsyncMemory, Memory, MemoryNotFoundError, ValidationError

from memory_plugins import MemoryEngine, MemoryPluginsError


@pytest.fixture
def m(tmp_path: Path) -> Iterator[Memory]:
    config = {"path": str(tmp_path / "memory"), "embedder": "hashing",
              "max_turn_bytes": 65536}
    with Memory.from_config(config) as mem:
        yield mem


def texts(m: Memory, **filters: Any) -> list[str]:
    return [r["memory"] for r in m.get_all(filters=filters, top_k=100)["results"]]


def test_infer_true_extracts_memories_without_an_llm(m: Memory) -> None:
    out = m.add("Hi! I went to a pottery class yesterday. My sister lives in Paris.",
                user_id="bo", metadata={"source": "chat"},
                timestamp=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    assert [r["memory"] for r in out["results"]] == ["I went to a pottery class yesterday.",
                                                    "My sister lives in Paris."]
    assert all(set(r) == {"id", "memory", "event"} and r["event"] == "ADD"
               for r in out["results"])
    item = m.get(out["results"][1]["id"])
    assert item is not None and item["metadata"] == {"source": "chat"}
    assert item["role"] == "user" and item["created_at"].startswith("2026-03-02T09:00")
    found = m.search("Where does my sister live?", filters={"user_id": "bo"}, top_k=1)
    assert found["results"][0]["memory"] == "My sister lives in Paris."
    # the turn itself is in the lossless log, byte-exact
    assert [t.text for t in m.engine.turns(user_id="bo")][-1].startswith("Hi! I went")


def test_a_repeated_fact_reinforces_instead_of_duplicating(m: Memory) -> None:
    m.add("I play the cello.", user_id="cy")
    again = m.add([{"role": "user", "content": "Did I say? I play the cello."}], user_id="cy")
    assert again["results"] == []
    assert texts(m, user_id="cy") == ["I play the cello."]


def test_extractor_hook_stores_its_facts(tmp_path: Path) -> None:
    calls: list[list[Mapping[str, Any]]] = []

    def extractor(messages: Sequence[Mapping[str, Any]], prompt: str | None) -> list[str]:
        calls.append(list(messages))
        return [f"Fact: {msg['content'].lower()}" for msg in messages if msg["role"] == "user"]

    config = {"path": str(tmp_path / "memory"), "embedder": "hashing", "extractor": extractor}
    with Memory.from_config(config) as m:
        conversation = [{"role": "user", "content": "I Like Tea."},
                        {"role": "assistant", "content": "Noted."}]
        out = m.add(conversation, user_id="di")
        assert [r["memory"] for r in out["results"]] == ["Fact: i like tea."]
        conversation.append({"role": "user", "content": "And Scones."})
        m.add(conversation, user_id="di")  # re-sent: the extractor sees the new message only
        assert [[msg["content"] for msg in c] for c in calls] == [
            ["I Like Tea.", "Noted."], ["And Scones."]]
        assert texts(m, user_id="di") == ["Fact: i like tea.", "Fact: and scones."]


def test_a_bad_extractor_result_is_refused(tmp_path: Path) -> None:
    config = {"path": str(tmp_path / "m"), "embedder": "hashing",
              "extractor": lambda messages, prompt: "not a list"}
    with Memory.from_config(config) as m, pytest.raises(ValidationError):
        m.add("Anything.", user_id="ed")


def test_dedupe_survives_reopening_the_store(tmp_path: Path) -> None:
    config = {"path": str(tmp_path / "memory"), "embedder": "hashing"}
    conversation = [{"role": "user", "content": "My cat is called Miso."},
                    {"role": "assistant", "content": "Cute!"}]
    with Memory.from_config(config) as m:
        m.add(conversation, user_id="fa", run_id="r1", infer=False)
        m.add(conversation[:1], user_id="fa", infer=True)
    with Memory.from_config(config) as m:
        assert m.add(conversation, user_id="fa", run_id="r1", infer=False) == {"results": []}
        assert m.add(conversation[:1], user_id="fa", infer=True) == {"results": []}
        assert len(list(m.engine.turns(user_id="fa"))) == 1
        # scopes registered by the first process are found by partial filters
        assert sorted(texts(m, user_id="fa")) == ["Cute!", "My cat is called Miso.",
                                                  "My cat is called Miso."]


def test_deleting_a_memory_lets_the_same_text_be_added_again(m: Memory) -> None:
    memory_id = m.add("Likes jazz.", user_id="gu", infer=False)["results"][0]["id"]
    assert m.add("Likes jazz.", user_id="gu", infer=False) == {"results": []}
    m.delete(memory_id)
    assert [r["memory"] for r in m.add("Likes jazz.", user_id="gu", infer=False)["results"]] \
        == ["Likes jazz."]


def test_memories_of_one_scope_never_reach_another(m: Memory) -> None:
    m.add("Ana's secret is 1234.", user_id="ana", infer=False)
    m.add("Bo's note.", user_id="bo", infer=False)
    m.add("Agent note.", agent_id="ana", infer=False)  # same id, other kind: another scope
    assert texts(m, user_id="bo") == ["Bo's note."]
    found = m.search("secret", filters={"user_id": "bo"})["results"]
    assert all("1234" not in r["memory"] for r in found)
    assert texts(m, agent_id="ana") == ["Agent note."]
    assert texts(m, user_id="user_id=ana") == []  # an id that looks like a scope key


def test_user_scope_is_the_core_user(m: Memory) -> None:
    """A user-only scope is the engine's user: build() sees Mem0-added memories."""
    m.add("My favourite colour is teal.", user_id="hu", infer=False)
    prompt = m.engine.build("What is my favourite colour?", user_id="hu")
    assert "teal" in prompt.text
    m.engine.observe("I grow tomatoes.", user_id="hu")
    assert "I grow tomatoes." in texts(m, user_id="hu")


@pytest.mark.parametrize(("call", "error"), [
    (lambda m: m.add("x", user_id="u", metadata={"bad": object()}), ValidationError),
    (lambda m: m.add("x", user_id="u", metadata="not a dict"), ValidationError),
    (lambda m: m.add([{"role": "user", "content": 3}], user_id="u"), ValidationError),
    (lambda m: m.add("x", user_id="u", memory_type="procedural_memory"), ValidationError),
    (lambda m: m.add("x", user_id="u", expiration_date="soon"), ValidationError),
    (lambda m: m.add("x", user_id="u", timestamp="yesterday"), ValidationError),
    (lambda m: m.add("x", user_id="u", agent_id="new", timestamp=float("nan")),
     ValidationError),
    (lambda m: m.add("x", user_id="u", infer="yes"), ValidationError),
    (lambda m: m.search("x", filters={"user_id": "u", "n": {"regex": "."}}), ValidationError),
    (lambda m: m.search("x", filters="u"), ValidationError),
    (lambda m: m.update("1", text="y"), MemoryNotFoundError),
    (lambda m: m.delete("not-an-id"), MemoryNotFoundError),
    (lambda m: m.update("512", text=7), ValidationError),
    (lambda m: m.add([{"role": "user", "content": "fits"},
                      {"role": "user", "content": "x" * 70_000}], user_id="u"), ValidationError),
    (lambda m: m.add([{"role": "user", "content": "First fact."},
                      {"role": "user", "content": "Second.", "name": "n" * 100_000}],
                     user_id="u"), ValidationError),
    (lambda m: m.add("x", user_id=b"ana"), ValidationError),
    (lambda m: m.add("x", user_id=["ana"]), ValidationError),
    (lambda m: m.delete_all(user_id=True), ValidationError),
    (lambda m: m.search("x", filters={"user_id": "u"}, threshold=float("nan")),
     ValidationError),
    # Each message fits, but not with the metadata stored beside it (found in review:
    # the first message was stored, then the second failed with the core's error).
    (lambda m: m.add([{"role": "user", "content": "fits"},
                      {"role": "user", "content": "x" * 64_000}], user_id="u",
                     metadata={"note": "n" * 2_000}, infer=False), ValidationError),
    (lambda m: m.add([{"role": "user", "content": "fits"},
                      {"role": "user", "content": "x" * 64_000}], user_id="u",
                     metadata={"note": "n" * 2_000}), ValidationError),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(m: Memory, call: Any,
                                                       error: type[Exception]) -> None:
    kept = m.add("Keep me.", user_id="u", infer=False)["results"][0]
    before = list(m.engine.turns(user_id="u"))
    scopes = list(m.engine.turns(user_id="mem0=scopes"))
    with pytest.raises(error) as excinfo:
        call(m)
    assert type(excinfo.value) is error  # Mem0's own class, with its error code
    assert list(m.engine.turns(user_id="mem0=scopes")) == scopes
    assert isinstance(excinfo.value, MemoryPluginsError) and isinstance(excinfo.value,
                                                                        ValueError)
    assert list(m.engine.turns(user_id="u")) == before
    assert m.get(kept["id"])["memory"] == "Keep me."  # type: ignore[index]


def test_expired_memories_are_hidden_unless_asked(m: Memory) -> None:
    m.add("Old coupon.", user_id="iv", infer=False, expiration_date="2001-01-01")
    m.add("Fresh coupon.", user_id="iv", infer=False, expiration_date=dt.date(2999, 1, 1))
    assert texts(m, user_id="iv") == ["Fresh coupon."]
    shown = m.get_all(filters={"user_id": "iv"}, show_expired=True)["results"]
    assert sorted(r["memory"] for r in shown) == ["Fresh coupon.", "Old coupon."]
    assert shown[0]["expiration_date"] in ("2001-01-01", "2999-01-01")


def test_reset_erases_the_store(m: Memory) -> None:
    m.add("Soon gone.", user_id="jo", infer=False)
    m.reset()
    assert texts(m, user_id="jo") == []
    assert m.add("After reset.", user_id="jo", infer=False)["results"]


def test_reset_leaves_the_rest_of_the_directory_alone(tmp_path: Path) -> None:
    """Found in review: reset() deleted the whole directory the store was in."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "src").mkdir()
    with Memory.from_config({"path": str(tmp_path), "embedder": "hashing"}) as m:
        m.add("Soon gone.", user_id="jo", infer=False)
        m.reset()
        assert texts(m, user_id="jo") == []
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "src").is_dir()


def test_a_shared_engine_is_not_erased_by_reset(tmp_path: Path) -> None:
    with MemoryEngine(tmp_path / "shared", embedder="hashing") as engine:
        m = Memory({"engine": engine})
        m.add("Deleted by reset.", user_id="ka", infer=False)
        engine.observe("Observed directly.", user_id="other")
        m.reset()
        assert texts(m, user_id="ka") == []
        assert [t.text for t in engine.turns(user_id="other")] == ["Observed directly."]
        m.close()  # not ours: stays open
        assert engine.stats().turns >= 2


def test_memory_with_no_arguments_uses_the_default_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_PLUGINS_MEM0_DIR", str(tmp_path / "default"))
    with Memory() as m:
        m.add("Default store.", user_id="lu", infer=False)
        assert m.engine.path == str(tmp_path / "default")


def test_mem0_config_keys_are_accepted_and_ignored(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    config = {"path": str(tmp_path / "m"), "embedder": {"provider": "huggingface"},
              "vector_store": {"provider": "qdrant"}, "llm": {"provider": "openai"},
              "warm_units": 512}
    with Memory.from_config(config) as m:
        assert m.engine.settings.warm_units == 512
    assert "ignores Mem0 config keys" in caplog.text


@pytest.mark.parametrize("config", [{"warm_units": -1}, {"no_such_setting": 1},
                                    {"dedupe": "yes"}, {"extractor": 3}, "a string"])
def test_bad_config_is_refused(tmp_path: Path, config: Any) -> None:
    if isinstance(config, dict):
        config = {"path": str(tmp_path / "m"), **config}
    with pytest.raises(MemoryPluginsError):
        Memory.from_config(config)


def test_async_memory_mirrors_memory(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncMemory.from_config({"path": str(tmp_path / "a"),
                                            "embedder": "hashing"}) as m:
            added = await m.add("My dog's name is Potola.", user_id="mo", infer=False)
            memory_id = added["results"][0]["id"]
            assert (await m.get(memory_id))["memory"] == "My dog's name is Potola."  # type: ignore[index]
            found = await m.search("dog", filters={"user_id": "mo"})
            assert found["results"][0]["id"] == memory_id
            await m.update(memory_id, text="My dog is Rex.")
            assert [e["event"] for e in await m.history(memory_id)] == ["ADD", "UPDATE"]
            assert len((await m.get_all(filters={"user_id": "mo"}))["results"]) == 1
            await m.delete(memory_id)
            assert await m.get(memory_id) is None
            with pytest.raises(ValueError, match="Top-level entity parameters"):
                await m.search("dog", user_id="mo")
            await m.delete_all(user_id="mo")
            await m.reset()
    asyncio.run(scenario())


@pytest.mark.parametrize("reinforce", [True, False])
def test_a_search_refreshes_what_it_finds(tmp_path: Path, reinforce: bool) -> None:
    """Memories fade by conversation time; a search is a retrieval and brings what it
    finds back verbatim from the log (unless ``reinforce`` is off)."""
    config = {"path": str(tmp_path / "m"), "embedder": "hashing", "reinforce": reinforce}
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with Memory.from_config(config) as m:
        memory_id = m.add("I went to a pottery class yesterday.", user_id="ny",
                          timestamp=start)["results"][0]["id"]
        m.add("Quiet day.", user_id="ny", timestamp=start + dt.timedelta(days=9))
        faded = "user|went to|pottery class @2026-03-01"
        assert m.get(memory_id)["memory"] == faded  # type: ignore[index]
        found = m.search("pottery class", filters={"user_id": "ny"}, top_k=1)["results"]
        assert found[0]["id"] == memory_id
        expected = "I went to a pottery class yesterday." if reinforce else faded
        assert found[0]["memory"] == expected
        assert m.get(memory_id)["memory"] == expected  # type: ignore[index]
