"""``AsyncMemory``: Mem0's asynchronous API, the same calls awaited.

Each call runs ``Memory``'s in a worker thread (``asyncio.to_thread``), so the event
loop never waits on the disk or the embedding model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from memory_plugins import MemoryEngine

from .exceptions import ValidationError
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

    async def add(self, messages: Any, *, user_id: str | None = None,
                  agent_id: str | None = None, run_id: str | None = None,
                  metadata: dict[str, Any] | None = None, timestamp: Any = None,
                  expiration_date: Any = None, infer: bool = True,
                  memory_type: str | None = None, prompt: str | None = None,
                  llm: Any = None) -> dict[str, Any]:
        if llm is not None:  # Mem0 uses it for procedural memories only
            raise ValidationError("llm is only used for Mem0's procedural memories, which "
                                  "are not supported; see the extractor config key",
                                  "VALIDATION_002")
        return await asyncio.to_thread(
            self.sync.add, messages, user_id=user_id, agent_id=agent_id, run_id=run_id,
            metadata=metadata, timestamp=timestamp, expiration_date=expiration_date,
            infer=infer, memory_type=memory_type, prompt=prompt)

    async def get(self, memory_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.sync.get, memory_id)

    async def get_all(self, *, filters: dict[str, Any] | None = None, top_k: int = 20,
                      show_expired: bool = False, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.get_all, filters=filters, top_k=top_k,
                                       show_expired=show_expired, **kwargs)

    async def search(self, query: str, *, top_k: int = 20,
                     filters: dict[str, Any] | None = None, threshold: float = 0.1,
                     rerank: bool = False, explain: bool = False, reference_date: Any = None,
                     show_expired: bool = False, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(
            self.sync.search, query, top_k=top_k, filters=filters, threshold=threshold,
            rerank=rerank, explain=explain, reference_date=reference_date,
            show_expired=show_expired, **kwargs)

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
