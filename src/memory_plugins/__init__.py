"""memory-plugins: memory for LLM apps with a constant-size prompt.

    from memory_plugins import MemoryEngine
    with MemoryEngine(path="./memory") as engine:
        engine.observe("My dog's name is Potola.", user_id="u1")
"""

from importlib.metadata import PackageNotFoundError, version

from .embed import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from .engine import DeepHit, HealthReport, MemoryEngine, MemoryEvent, SearchHit, Stats
from .errors import (
    CorruptionError,
    MemoryPluginsError,
    MissingDependencyError,
    NotFoundError,
    RuntimeFailure,
    StorageError,
    StoreClosedError,
    StoreLockedError,
    UsageError,
    ValidationError,
)
from .events import EVENTS
from .frames import Turn
from .prompt import Budget, Prompt, Source
from .rawlog import BrokenFrame, VerifyReport
from .settings import DEFAULT_SETTINGS, MEMORY_TYPES
from .tokenizers import (
    CallableTokenizer,
    HuggingFaceTokenizer,
    LlamaCppTokenizer,
    TiktokenTokenizer,
    Tokenizer,
)
from .units import LEVEL_NAMES, MemoryUnit

try:
    __version__ = version("memory-plugins")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_SETTINGS",
    "EVENTS",
    "LEVEL_NAMES",
    "MEMORY_TYPES",
    "BrokenFrame",
    "Budget",
    "CallableTokenizer",
    "CorruptionError",
    "DeepHit",
    "Embedder",
    "HashingEmbedder",
    "HealthReport",
    "HuggingFaceTokenizer",
    "LlamaCppTokenizer",
    "MemoryEngine",
    "MemoryEvent",
    "MemoryPluginsError",
    "MemoryUnit",
    "MissingDependencyError",
    "NotFoundError",
    "Prompt",
    "RuntimeFailure",
    "SearchHit",
    "SentenceTransformerEmbedder",
    "Source",
    "Stats",
    "StorageError",
    "StoreClosedError",
    "StoreLockedError",
    "TiktokenTokenizer",
    "Tokenizer",
    "Turn",
    "UsageError",
    "ValidationError",
    "VerifyReport",
    "__version__",
]
