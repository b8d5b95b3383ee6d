"""An in-process event bus: what the store did, for logs, dashboards and tests.

Events (names from the founding Coda WebSocket protocol):

    conversation_turn  a turn was logged        {turn_id, user_id, session_id, role, timestamp}
    memory_store       memories were added      {user_id, memory_ids, turn_id}
    memory_retrieve    build() chose memories   {user_id, memory_ids, levels, tokens}
    memory_persist     the store was fsynced    {path}
    memory_clear       a memory was deleted     {user_id, memory_id}

The emitting thread pays one queue put; a dispatcher thread calls the
subscribers, in order. A subscriber that raises is logged and kept.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from .errors import ValidationError

__all__ = ["EVENTS", "EventBus"]

EVENTS = ("conversation_turn", "memory_store", "memory_retrieve", "memory_persist",
          "memory_clear")
log = logging.getLogger("memory_plugins.events")
Handler = Callable[[str, dict[str, Any]], None]


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[str, list[Handler]] = {name: [] for name in EVENTS}
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def subscribe(self, event: str, handler: Handler) -> None:
        """Call ``handler(event, payload)`` for each ``event`` ("*" for all)."""
        for name in self._names(event):
            with self._lock:
                self._subs[name].append(handler)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="memory-plugins-events")
                    self._thread.start()

    def unsubscribe(self, event: str, handler: Handler) -> None:
        for name in self._names(event):
            with self._lock:
                if handler in self._subs[name]:
                    self._subs[name].remove(handler)

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        if self._subs[event]:  # nobody listening: not even a queue put
            self._queue.put((event, payload))

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every event emitted so far has been delivered."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(("__drain__", {"done": done}))
        done.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _names(self, event: str) -> tuple[str, ...]:
        if event == "*":
            return EVENTS
        if event not in EVENTS:
            raise ValidationError(f"unknown event {event!r}; events: {list(EVENTS)}")
        return (event,)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event, payload = item
            if event == "__drain__":
                payload["done"].set()
                continue
            with self._lock:
                handlers = list(self._subs[event])
            for handler in handlers:
                try:
                    handler(event, payload)
                except Exception:  # a broken subscriber must not stop the others
                    log.exception("event handler %r failed on %s", handler, event)
