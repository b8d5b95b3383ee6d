"""memory-plugins-mem0: Mem0's ``Memory`` / ``AsyncMemory`` API on memory-plugins.

    from memory_plugins_mem0 import Memory      # instead of: from mem0 import Memory
"""

from importlib.metadata import PackageNotFoundError, version

from ._config import Extractor
from .async_memory import AsyncMemory
from .exceptions import MemoryNotFoundError, ValidationError
from .memory import Memory

try:
    __version__ = version("memory-plugins-mem0")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["AsyncMemory", "Extractor", "Memory", "MemoryNotFoundError", "ValidationError",
           "__version__"]
