"""``AsyncMemory``: Mem0's asynchronous API, the same calls awaited.

Each call runs ``Memory``'s in a worker thread (``asyncio.to_thread``), so the event
loop never waits on the disk or the embedding model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from memory_plugins import MemoryEngine

from .memory import _UNSET, Memory

__all__ = ["AsyncMemory"]


class AsyncMemory:
    """Mem0's ``AsyncMemory`` API (mem0ai 2.x) on a memory-plugins store."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.sync = Memory(config)

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> AsyncMemory:
        return cls(config_dict)

    @property
    def engine(self) -> MemoryEngine:
        """The memory-plugins engine underneath."""
        return self.sync.engine

    async def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.add, messages, **kwargs)

    async def get(self, memory_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.sync.get, memory_id)

    async def get_all(self, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.get_all, **kwargs)

    async def search(self, query: str, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.search, query, **kwargs)

    async def update(self, memory_id: str, text: str | None = None,
                     metadata: dict[str, Any] | None = None, expiration_date: Any = _UNSET,
                     data: str | None = None) -> dict[str, str]:
        return await asyncio.to_thread(self.sync.update, memory_id, text, metadata,
                                       expiration_date, data)

    async def delete(self, memory_id: str) -> dict[str, str]:
        return await asyncio.to_thread(self.sync.delete, memory_id)

    async def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None) -> dict[str, str]:
        return await asyncio.to_thread(self.sync.delete_all, user_id, agent_id, run_id)

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.history, memory_id)

    async def reset(self) -> None:
        await asyncio.to_thread(self.sync.reset)

    def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        return f"AsyncMemory(path={self.sync.engine.path!r})"
