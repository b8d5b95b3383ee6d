"""memory-plugins: memory for LLM apps with a constant-size prompt.

    from memory_plugins import MemoryEngine
    with MemoryEngine(path="./memory") as engine:
        engine.observe("My dog's name is Potola.", user_id="u1")
"""

from importlib.metadata import PackageNotFoundError, version

from .engine import HealthReport, MemoryEngine, MemoryEvent, Stats
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
from .frames import Turn
from .rawlog import BrokenFrame, VerifyReport
from .settings import DEFAULT_SETTINGS, MEMORY_TYPES
from .units import LEVEL_NAMES, MemoryUnit

try:
    __version__ = version("memory-plugins")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_SETTINGS",
    "LEVEL_NAMES",
    "MEMORY_TYPES",
    "BrokenFrame",
    "CorruptionError",
    "HealthReport",
    "MemoryEngine",
    "MemoryEvent",
    "MemoryPluginsError",
    "MemoryUnit",
    "MissingDependencyError",
    "NotFoundError",
    "RuntimeFailure",
    "Stats",
    "StorageError",
    "StoreClosedError",
    "StoreLockedError",
    "Turn",
    "UsageError",
    "ValidationError",
    "VerifyReport",
    "__version__",
]
