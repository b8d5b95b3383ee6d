"""A sentence-transformers model's forward pass on ONNX Runtime.

The query embedding is most of build()'s time with MiniLM. Torch spends much of
it on per-operator overhead for a one-sentence batch; ONNX Runtime runs the same
graph 2.2-2.6x faster on one thread (300 LoCoMo questions on 2-core test VMs:
7.1 against 15.4 ms and 10.2 against 26.0 ms at p50, ``benchmarks/embed_latency.py``),
and its vectors match ``encode()``'s within 3e-7.

How it stays the same model:

* only models made of a Transformer, mean pooling and (optionally) Normalize are
  taken (all-MiniLM-L6-v2 is); the texts are prepared by sentence-transformers'
  own ``preprocess`` (its truncation, stripping and special tokens), and the
  pooling is the same arithmetic in numpy;
* the graph is exported once by ``torch.onnx`` into a cache file named after the
  weights and the library versions (``MEMORY_PLUGINS_CACHE``, else
  ``$XDG_CACHE_HOME/memory-plugins``, else ``~/.cache/memory-plugins``; in memory
  only if that cannot be written), so a later process loads it in well under a
  second instead of exporting again;
* before first use its vectors are compared with ``encode()``'s on probe texts
  (empty, emoji and CJK, past the length limit): a graph that differs by more
  than ``TOLERANCE`` is exported again, and if it still differs it is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # ImportError here: the caller keeps torch

__all__ = ["TOLERANCE", "OnnxEncoder", "UnsupportedModel", "cache_dir"]

TOLERANCE = 1e-5  # largest difference from encode()'s vectors we accept, per component
FORMAT = 1  # bump when the exported graph's inputs or outputs change
BATCH = 32  # texts per run, as encode()'s default
PROBES = ["My dog's name is Potola.", "", "  spaced   out  ",
          "🐶 naïve café — 日本語のテキスト", "word " * 300]  # past 256 tokens: cut


class UnsupportedModel(Exception):
    """This model (or these library versions) cannot run on ONNX Runtime as-is."""


def cache_dir() -> Path | None:
    """Where exported graphs are kept across processes (None: nowhere, as with no
    home directory: never a relative path that would land in the working directory)."""
    given = os.environ.get("MEMORY_PLUGINS_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "memory-plugins" if os.path.isabs(base) else None


class OnnxEncoder:
    """``encode(texts)``: L2-normalised float32 rows, as ``model.encode(texts,
    normalize_embeddings=True)`` makes them. Raises ``UnsupportedModel`` when the
    model cannot run this way (the caller then keeps torch)."""

    def __init__(self, model: Any, *, threads: int = 1) -> None:
        self._model = model
        self._threads = threads
        names = [type(module).__name__ for module in model]
        if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise UnsupportedModel(f"modules {names}: only Transformer + Pooling (+ Normalize)")
        if not _mean_pooling(model[1]):
            raise UnsupportedModel("only mean pooling is supported")
        if getattr(model, "default_prompt_name", None):  # encode() would prepend a prompt
            raise UnsupportedModel("models with a default prompt are not supported")
        self.inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids")
                       if k in self._features(["probe"])]
        if self.inputs[:2] != ["input_ids", "attention_mask"]:
            raise UnsupportedModel(f"model inputs {self.inputs}")
        folder = cache_dir()
        self.path: Path | None = None if folder is None else folder / f"{_fingerprint(model)}.onnx"
        self.exported = False  # made by this process (False: read from the cache)
        expected = model.encode(PROBES, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        self.dim = int(expected.shape[1])
        self._session: Any = None
        with contextlib.suppress(Exception):  # unreadable, damaged, stale: export again
            if self.path is not None and self.path.is_file():
                self._use(str(self.path), expected)
        if self._session is None:
            graph = self._export()
            self.exported = True
            try:
                matches = self._use(graph, expected)
            except Exception as exc:
                raise UnsupportedModel(f"the exported graph failed: {exc}") from exc
            if not matches:
                raise UnsupportedModel("ONNX Runtime's vectors differ from torch's")
            self._save(graph)  # only a graph that passed

    def encode(self, texts: list[str]) -> np.ndarray:
        # Sorted by length as encode() does, so a batch pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            out[rows] = self._run([texts[i] for i in rows])
        return out

    def _features(self, texts: list[str]) -> dict[str, Any]:
        prepare = getattr(self._model, "preprocess", None) or self._model.tokenize
        return dict(prepare(texts))

    def _run(self, texts: list[str]) -> np.ndarray:
        features = self._features(texts)
        feed = {name: np.asarray(features[name].numpy(), dtype=np.int64) for name in self.inputs}
        (tokens,) = self._session.run(None, feed)
        mask = feed["attention_mask"][..., None].astype(np.float32)
        mean = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return np.asarray(mean / norms, dtype=np.float32)

    def _use(self, graph: str | bytes, expected: np.ndarray) -> bool:
        """Run on ``graph`` (a path or the bytes) if its vectors for the probes match
        ``expected`` (torch's); else keep no session. Raises if it cannot run at all."""
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # No spin-waiting: the host's other work may need the cores (see embed.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(graph, options,
                                                     providers=["CPUExecutionProvider"])
        matches = False
        try:  # encode() runs on self._session
            matches = bool(np.abs(self.encode(PROBES) - expected).max() <= TOLERANCE)
        finally:
            if not matches:  # differs, or cannot even run: not kept
                self._session = None
        return matches

    def _export(self) -> bytes:
        import onnx  # noqa: F401  (torch.onnx's exporter needs it: ImportError if missing)
        import torch

        transformer = self._model[0].auto_model
        inputs = self.inputs
        example = self._features(["an example sentence to trace"])

        class Forward(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, *tensors: Any) -> Any:
                return self.transformer(**dict(zip(inputs, tensors, strict=True)),
                                        return_dict=True).last_hidden_state

        dynamic = {name: {0: "batch", 1: "tokens"} for name in [*inputs, "tokens"]}
        try:
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), \
                    torch.no_grad():
                warnings.simplefilter("ignore")  # tracer notes on the model's Python branches
                out = Path(tmp) / "model.onnx"
                # The TorchScript exporter: torch >= 2.9 would otherwise pick the
                # dynamo one, which needs onnxscript; before 2.5 there is no choice.
                legacy: dict[str, Any] = ({"dynamo": False} if "dynamo" in inspect.signature(
                    torch.onnx.export).parameters else {})
                torch.onnx.export(Forward().eval(), tuple(example[n] for n in inputs), out,
                                  input_names=inputs, output_names=["tokens"],
                                  dynamic_axes=dynamic, opset_version=17, **legacy)
                return out.read_bytes()
        except Exception as exc:  # an exporter that changed, a model it cannot trace...
            raise UnsupportedModel(f"export failed: {type(exc).__name__}: {exc}") from exc

    def _save(self, graph: bytes) -> None:
        """Keep the graph for later processes, written whole or not at all."""
        if self.path is None:
            return
        with contextlib.suppress(OSError):  # a read-only home: export again next time
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would hide it from others
                    f.write(graph)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


def _mean_pooling(pooling: Any) -> bool:
    mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers >= 6
    if mode is not None:
        return bool(mode == "mean")
    flags = {k: v for k, v in vars(pooling).items() if k.startswith("pooling_mode_")}
    return bool(flags.get("pooling_mode_mean_tokens")) and sum(map(bool, flags.values())) == 1


def _fingerprint(model: Any) -> str:
    """Names the export: a sample of every weight, the model's settings and the
    versions of what exports it (a change in any gives a new file)."""
    import torch
    import transformers

    digest = hashlib.blake2b(digest_size=12)
    for value in (FORMAT, torch.__version__, transformers.__version__,
                  getattr(model[0], "max_seq_length", None),
                  model[0].auto_model.config.to_json_string()):
        digest.update(repr(value).encode())
    for name, tensor in model[0].auto_model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[::101].float().numpy().tobytes())
    return digest.hexdigest()
