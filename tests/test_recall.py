"""The recall index: its scores stay true cosines as it grows and shrinks, and its
matrix products leave the host's BLAS threads as they were."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from memory_plugins import HashingEmbedder
from memory_plugins.blas import _blas_libraries, one_thread
from memory_plugins.recall import Recall, RecallIndex, _best
from memory_plugins.units import MemoryUnit

TOPICS = ["painting", "the dog Potola", "a hiking trip", "job interviews", "the guitar",
          "a support group", "camping", "baking bread"]


def _unit(i: int) -> MemoryUnit:
    return MemoryUnit(id=i, user_id="u1", type="episodic", level=0, verbatim=None,
                      subject="user", relation="said", value=f"item {i}", created_at=0.0,
                      last_reinforced=0.0, stability_days=1.0, reinforcements=0,
                      access_count=0, origin=i, span=(0, 1), sources=(i,))


@pytest.mark.parametrize("query", [
    "When did Caroline talk about the dog?",  # a few words: the sparse product
    " ".join(f"word{k} {TOPICS[k % 8]}" for k in range(300)),  # most dimensions: dense
])
def test_scores_are_cosines_through_growth_and_removal(query: str) -> None:
    embedder = HashingEmbedder()
    recall = Recall(embedder, users=1, forgotten_limit=10)
    index = RecallIndex(version=0, dim=embedder.dim, forgotten_limit=10)
    cues = {i: f"Caroline: item {i} was about {TOPICS[i % 8]}, {i * 7} times" for i in range(40)}
    for i, vector in zip(cues, embedder.embed(list(cues.values())), strict=True):
        index.upsert(_unit(i), cues[i], vector)  # 40 entries: the arrays grow twice
    for i in range(0, 40, 3):
        index.remove(i)  # each hole is filled by moving the last entry into it
    query_vector = embedder.embed([query])[0]

    found = recall.search(index, query, now=0.0, limit=100, query_vector=query_vector)

    assert sorted(c.unit.id for c in found) == [i for i in range(40) if i % 3]
    for c in found:
        expected = float(np.clip(embedder.embed([cues[c.unit.id]])[0] @ query_vector, 0, 1))
        assert c.cue == cues[c.unit.id]
        assert c.vector == pytest.approx(expected, abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["add", "reword", "forget", "remove", "search"]),
                                st.integers(0, 24), st.integers(0, 7)), max_size=60))
def test_keyword_scores_follow_every_change(steps: list[tuple[str, int, int]]) -> None:
    """BM25's arrays are kept between queries: after any changes, a query scores
    as it would on an index built afresh from the same entries."""
    embedder = HashingEmbedder()
    recall = Recall(embedder, users=1, forgotten_limit=5)
    index = RecallIndex(version=0, dim=embedder.dim, forgotten_limit=5)

    def cue(i: int, topic: int) -> str:
        return f"item {i} was about {TOPICS[topic]} and {TOPICS[(topic * 3) % 8]}"

    def scores(ix: RecallIndex, query: str) -> dict[int, float]:
        return {c.unit.id: c.keyword for c in recall.search(ix, query, 0.0, 1000, None)}

    for op, i, topic in steps:
        if op == "add" or (op == "reword" and i in index.pos):
            index.upsert(_unit(i), cue(i, topic), embedder.embed([cue(i, topic)])[0])
        elif op == "forget":
            index.forget(i)
        elif op == "remove":
            index.remove(i)
        query = f"what about {TOPICS[topic]}?"
        found = scores(index, query)
        fresh = RecallIndex(version=0, dim=embedder.dim, forgotten_limit=5)
        for k, unit in enumerate(index.units):
            fresh.upsert(unit, index.cues[k], index.vectors[:, k].copy(),
                         forgotten=bool(index.gone[k]))
        expected = scores(fresh, query)
        assert found.keys() == expected.keys()
        for unit_id, keyword in expected.items():
            assert found[unit_id] == pytest.approx(keyword, abs=1e-6)


def _blas_threads() -> list[int]:
    """Threads of the BLAS libraries numpy had loaded when recall first ran (another
    library's, torch's say, may be loaded later: recall's products never use it)."""
    return [lib.get_num_threads() for lib in _blas_libraries()]


def test_one_thread_gives_the_hosts_blas_threads_back() -> None:
    np.ones((64, 64)) @ np.ones(64)  # numpy's BLAS is loaded
    assert _blas_libraries(), "numpy's BLAS not found: one_thread() would do nothing"
    with threadpool_limits(2, user_api="blas"):  # what the host chose
        host = _blas_threads()
        with one_thread():
            assert set(_blas_threads()) <= {1}
            with one_thread():  # nested: still one thread
                assert set(_blas_threads()) <= {1}
            assert set(_blas_threads()) <= {1}
        assert _blas_threads() == host

        barrier = threading.Barrier(4)

        def overlap() -> None:  # several builds at once: the last one out restores
            with one_thread():
                barrier.wait()  # all four inside together
            for _ in range(50):
                with one_thread():
                    np.ones((64, 64)) @ np.ones(64)
        threads = [threading.Thread(target=overlap) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _blas_threads() == host


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60_000), st.integers(1, 300), st.integers(0, 2**32 - 1),
       st.sampled_from([3, 1000, None]))
def test_the_best_are_the_fully_sorted_first(n: int, limit: int, seed: int,
                                             levels: int | None) -> None:
    rng = np.random.default_rng(seed)
    score = rng.random(n) if levels is None else rng.integers(0, levels, n) / levels  # ties
    ids = rng.permutation(n).astype(np.int64)
    expected = np.lexsort((ids, -score))[:limit]
    assert _best(score, ids, limit).tolist() == expected.tolist()
