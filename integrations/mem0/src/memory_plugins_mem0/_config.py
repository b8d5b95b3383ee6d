"""``Memory.from_config`` / ``Memory(config)``: our settings, and Mem0's keys.

Our keys: ``path`` (the store's directory), ``embedder`` (``"default"`` MiniLM,
``"hashing"``, or an ``memory_plugins.Embedder``), ``engine`` (an open
``MemoryEngine`` to share), ``extractor`` (an optional LLM fact extractor for
``infer=True``), ``dedupe`` (skip re-sent messages, default True), ``reinforce``
(a search counts as a retrieval and refreshes what it finds, default True), and any
``MemoryEngine`` setting (``durability``, ``warm_units``, ...; the engine validates
them). Mem0's own keys (``vector_store``, ``llm``, ``embedder`` as a provider dict,
``history_db_path``, ...) configure machinery we do not have: they are accepted so
that an existing Mem0 config still works, and ignored with a log line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from memory_plugins import Embedder, MemoryEngine

from .exceptions import ValidationError

__all__ = ["DEFAULT_DIR_ENV", "Config", "Extractor", "default_path", "parse_config"]

log = logging.getLogger("memory_plugins_mem0")
DEFAULT_DIR_ENV = "MEMORY_PLUGINS_MEM0_DIR"
MEM0_KEYS = frozenset({"vector_store", "llm", "graph_store", "history_db_path", "version",
                       "reranker", "custom_instructions", "custom_fact_extraction_prompt",
                       "custom_update_memory_prompt", "enable_graph"})
# extractor(messages, prompt) -> the facts to store, each as one memory
Extractor = Callable[[Sequence[Mapping[str, Any]], str | None], Sequence[str]]


def default_path() -> Path:
    """``$MEMORY_PLUGINS_MEM0_DIR``, else ``~/.memory_plugins/mem0`` (Mem0 uses ~/.mem0)."""
    env = os.environ.get(DEFAULT_DIR_ENV)
    return Path(env) if env else Path.home() / ".memory_plugins" / "mem0"


@dataclasses.dataclass
class Config:
    path: Path
    embedder: Embedder | str | None = None
    engine: MemoryEngine | None = None
    extractor: Extractor | None = None
    dedupe: bool = True
    reinforce: bool = True
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)


def parse_config(config: object) -> Config:
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ValidationError(f"config must be a dict, got {type(config).__name__}",
                              "CONFIG_001")
    settings = dict(config)
    ignored = sorted(k for k in settings if k in MEM0_KEYS)
    embedder = settings.pop("embedder", None)
    if isinstance(embedder, Mapping):  # Mem0's {"provider": ..., "config": ...}
        ignored.append("embedder")
        embedder = None
    for key in ignored:
        settings.pop(key, None)
    if ignored:
        log.warning("memory-plugins ignores Mem0 config keys %s: it uses its own store and "
                    "embedder (see the 'path' and 'embedder' keys)", ignored)
    if embedder is not None and not (embedder in ("default", "hashing")
                                     or isinstance(embedder, Embedder)):
        raise ValidationError("embedder must be 'default', 'hashing' or an Embedder, "
                              f"got {embedder!r}", "CONFIG_002")
    path = settings.pop("path", None)
    if path is not None and (not isinstance(path, str | os.PathLike) or not os.fspath(path)):
        raise ValidationError(f"path must be a non-empty str or PathLike, got {path!r}",
                              "CONFIG_003")
    engine = settings.pop("engine", None)
    if engine is not None and not isinstance(engine, MemoryEngine):
        raise ValidationError(f"engine must be a MemoryEngine, got {engine!r}", "CONFIG_004")
    extractor = settings.pop("extractor", None)
    if extractor is not None and not callable(extractor):
        raise ValidationError(f"extractor must be callable, got {extractor!r}", "CONFIG_005")
    dedupe = settings.pop("dedupe", True)
    if not isinstance(dedupe, bool):
        raise ValidationError(f"dedupe must be a bool, got {dedupe!r}", "CONFIG_006")
    reinforce = settings.pop("reinforce", True)
    if not isinstance(reinforce, bool):
        raise ValidationError(f"reinforce must be a bool, got {reinforce!r}", "CONFIG_008")
    if engine is not None and (settings or path is not None or embedder is not None):
        raise ValidationError("give either an open 'engine' or the settings to open one "
                              "('path', 'embedder', engine settings), not both", "CONFIG_007")
    return Config(path=Path(path) if path is not None else default_path(), embedder=embedder,
                  engine=engine, extractor=extractor, dedupe=dedupe, reinforce=reinforce,
                  settings=settings)
