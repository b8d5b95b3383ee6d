"""The one exception hierarchy of memory-plugins.

Two families, so callers can tell "you called it wrong" from "something broke":

    MemoryPluginsError
    ├── UsageError                 misuse: fix the call, retrying won't help
    │   ├── ValidationError        a bad argument (type, value, size)
    │   ├── NotFoundError          an id that names nothing (or something deleted)
    │   └── StoreClosedError       the engine was closed
    └── RuntimeFailure             the environment failed: the call may work later
        ├── StorageError           the disk or LMDB failed (full disk, permissions, ...)
        │   └── StoreLockedError   another process holds what we need
        ├── CorruptionError        stored bytes fail their checksum or hash chain
        └── MissingDependencyError an optional package is not installed

Every message says what to do next. Nothing here is raised for a condition we
can recover from ourselves (a full LMDB map is grown, not reported).
"""

from __future__ import annotations

__all__ = [
    "CorruptionError",
    "MemoryPluginsError",
    "MissingDependencyError",
    "NotFoundError",
    "RuntimeFailure",
    "StorageError",
    "StoreClosedError",
    "StoreLockedError",
    "UsageError",
    "ValidationError",
]


class MemoryPluginsError(Exception):
    """Base class of every error this library raises on purpose."""


class UsageError(MemoryPluginsError):
    """The call itself is wrong; retrying it unchanged will fail again."""


class ValidationError(UsageError, ValueError):
    """An argument has the wrong type, value or size."""


class NotFoundError(UsageError, KeyError):
    """An id names no memory or turn (or one that was deleted)."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else "not found"


class StoreClosedError(UsageError):
    """The engine was closed; open a new MemoryEngine."""


class RuntimeFailure(MemoryPluginsError):
    """The environment failed; the same call may succeed later."""


class StorageError(RuntimeFailure, OSError):
    """The store could not be read or written (disk full, permissions, LMDB error)."""


class StoreLockedError(StorageError):
    """Another process holds a lock this call needs."""


class CorruptionError(RuntimeFailure):
    """Stored bytes fail their CRC32 or hash-chain check.

    ``seq`` is the global number of the first bad frame when known.
    """

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class MissingDependencyError(RuntimeFailure, ImportError):
    """An optional dependency is missing; the message names the pip command."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package. Install it with: "
            f"pip install 'memory-plugins[{extra}]'"
        )
        self.package = package
        self.extra = extra
