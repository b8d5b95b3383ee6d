"""Opening a store from the command line.

Two guards the library leaves to its host, because only the host knows them:

* commands that read (inspect, stats, verify, export, recall) refuse a path that
  holds no store, so a typo never creates an empty store and reports on it;
* commands that write a conversation (chat, import, demo --path) hold an
  exclusive lock file for as long as they run. LMDB itself lets several
  processes write one store safely, so this is not about safety: two chats on one
  store would interleave their turns, and an import must find the store as empty
  at the end as at the start. The second writer gets StoreLockedError at once
  instead of a muddled conversation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..engine import MemoryEngine
from ..errors import NotFoundError, StorageError, StoreLockedError
from ..storage import check_store_path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; LMDB still keeps the store safe
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "open_store", "writer_lock"]

LOCK_NAME = "cli-writer.lock"


def is_store(path: Path) -> bool:
    return (path / "log" / "data.mdb").is_file()


@contextmanager
def writer_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``<path>/cli-writer.lock`` exclusively, or raise StoreLockedError."""
    path = check_store_path(path)
    lock_path = path / LOCK_NAME
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot create the lock file {str(lock_path)!r}: {exc}") from exc
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
                raise StoreLockedError(
                    f"store {str(path)!r} is in use by another memory-plugins writer "
                    f"({holder}); wait for it to finish or stop it, then retry") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race)


@contextmanager
def open_store(path: str | os.PathLike[str], *, create: bool = False, writer: bool = False,
               **kwargs: Any) -> Iterator[MemoryEngine]:
    """A MemoryEngine on ``path``; ``create`` allows a new store, ``writer`` takes the
    writer lock first."""
    where = check_store_path(path)
    if not create and not is_store(where):
        raise NotFoundError(f"no store at {str(where)!r} (give its directory with --path)")
    if writer:
        with writer_lock(where), MemoryEngine(where, **kwargs) as engine:
            yield engine
    else:
        with MemoryEngine(where, **kwargs) as engine:
            yield engine
