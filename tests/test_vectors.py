"""Recall's cue vectors are kept in the store: a process that opens it embeds only
what is new, scores exactly as the one that made them, and never uses a vector
made by another embedder or for another text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from memory_plugins import HashingEmbedder, MemoryEngine
from memory_plugins.storage import user_key

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
SAID = ["My dog's name is Potola.", "I started painting landscapes in May.",
        "Our team won the hackathon in Porto.", "I am allergic to peanuts.",
        "My sister Ana lives in Lisbon.", "I run five kilometres every morning."]


class CountingEmbedder:
    """The hashing embedder, counting the texts it is asked to embed."""

    def __init__(self, dim: int = 512) -> None:
        self.inner = HashingEmbedder(dim)
        self.name, self.dim = self.inner.name, dim
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return self.inner.embed(texts)


def _talk(path: Path) -> None:
    with MemoryEngine(path, embedder="hashing") as engine:
        for n, text in enumerate(SAID):
            engine.observe(text, user_id="u1", timestamp=START + dt.timedelta(hours=n))


def _stored(engine: MemoryEngine, user_id: str) -> set[int]:
    prefix = user_key(user_id)
    with engine._store.ws.read() as txn, txn.cursor(db=engine._store.ws.dbs["vectors"]) as cur:
        return {int.from_bytes(k[16:], "big") for k in cur.iternext(values=False)
                if k[:16] == prefix}


def test_a_reopened_store_embeds_only_the_question(tmp_path: Path) -> None:
    _talk(tmp_path / "m")
    first = CountingEmbedder()
    with MemoryEngine(tmp_path / "m", embedder=first) as engine:
        before = engine.build("What is my dog called?", user_id="u1")
        memories = {m.id for m in engine.memories(user_id="u1")}
        assert _stored(engine, "u1") == memories  # one vector per indexed memory
    assert len(first.texts) == len(memories) + 1  # every cue, and the question

    again = CountingEmbedder()
    with MemoryEngine(tmp_path / "m", embedder=again) as engine:
        after = engine.build("What is my dog called?", user_id="u1")
    assert again.texts == ["What is my dog called?"]
    assert after.text == before.text  # the same scores, read back or just made


def test_another_embedders_vectors_are_not_used(tmp_path: Path) -> None:
    _talk(tmp_path / "m")
    with MemoryEngine(tmp_path / "m", embedder=CountingEmbedder(512)) as engine:
        engine.build("dog", user_id="u1")
    other = CountingEmbedder(256)
    with MemoryEngine(tmp_path / "m", embedder=other) as engine:
        prompt = engine.build("dog", user_id="u1")
        n = len(engine.memories(user_id="u1"))
    assert len(other.texts) == n + 1  # made again, for this embedder
    assert "Potola" in prompt.text


def test_an_updated_memory_gets_a_new_vector_and_a_deleted_one_loses_its_own(
        tmp_path: Path) -> None:
    _talk(tmp_path / "m")
    embedder = CountingEmbedder()
    with MemoryEngine(tmp_path / "m", embedder=embedder) as engine:
        engine.build("dog", user_id="u1")  # the index exists: writes now keep it current
        dog = next(m for m in engine.memories(user_id="u1") if "Potola" in m.text)
        peanuts = next(m for m in engine.memories(user_id="u1") if "peanuts" in m.text)
        engine.update(dog.id, "My dog's name is Bolacha.")
        engine.delete(peanuts.id)
        engine.build("dog", user_id="u1")
        assert peanuts.id not in _stored(engine, "u1")
        assert dog.id in _stored(engine, "u1")

    fresh = CountingEmbedder()
    with MemoryEngine(tmp_path / "m", embedder=fresh) as engine:
        prompt = engine.build("What is my dog called?", user_id="u1")
    assert fresh.texts == ["What is my dog called?"]  # the new text's vector was kept
    assert "Bolacha" in prompt.text


def test_one_users_vectors_are_never_read_for_another(tmp_path: Path) -> None:
    _talk(tmp_path / "m")
    with MemoryEngine(tmp_path / "m", embedder="hashing") as engine:
        engine.observe("My dog's name is Potola.", user_id="u2")  # the same words
        engine.build("dog", user_id="u1")
    counting = CountingEmbedder()
    with MemoryEngine(tmp_path / "m", embedder=counting) as engine:
        engine.build("dog", user_id="u2")
        assert _stored(engine, "u2") == {m.id for m in engine.memories(user_id="u2")}
    assert len(counting.texts) == 2  # u2's own memory, and the question
