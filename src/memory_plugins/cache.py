"""A small thread-safe LRU map, for what build() reads again and again: decoded
log turns (immutable, so never stale) and prompt lines with their token counts."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["LRU"]


class LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        # No lock: each OrderedDict call is atomic on its own, and build() makes
        # hundreds of these per prompt (the lock doubled their cost). A key that
        # another thread evicts in between is simply not moved.
        value = self._data.get(key)
        if value is not None:
            try:  # noqa: SIM105 (suppress() costs more than this whole call)
                self._data.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
