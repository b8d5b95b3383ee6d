"""An in-process event bus: what the store did, for logs, dashboards and tests.

Events (names from the founding Coda WebSocket protocol):

    conversation_turn  a turn was logged        {turn_id, user_id, session_id, role, timestamp}
    memory_store       memories were added      {user_id, memory_ids, turn_id}
    memory_retrieve    build() chose memories   {user_id, memory_ids, levels, tokens}
    memory_persist     flush() synced the store {path}
    memory_clear       a memory was deleted     {user_id, memory_id}

memory_store's ``memory_ids`` may come from several turns applied together (after a
reopen, or a burst); its ``turn_id`` is then the last of them.

The emitting thread pays one queue put; a dispatcher thread calls the
subscribers, in order. A subscriber that raises is logged and kept. A subscriber
that blocks holds up only the others: the queue keeps at most ``MAX_PENDING``
events (later ones are dropped, with a warning), and ``close()`` waits for the
dispatcher at most ``CLOSE_TIMEOUT_S`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import StoreClosedError, ValidationError

__all__ = ["CLOSE_TIMEOUT_S", "EVENTS", "MAX_PENDING", "EventBus"]

EVENTS = ("conversation_turn", "memory_store", "memory_retrieve", "memory_persist",
          "memory_clear")
log = logging.getLogger("memory_plugins.events")
Handler = Callable[[str, dict[str, Any]], None]


MAX_PENDING = 10_000  # events waiting for a slow subscriber; past it, new ones are dropped
CLOSE_TIMEOUT_S = 2.0  # close() delivers what is queued for this long, then gives up


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[str, list[Handler]] = {name: [] for name in EVENTS}
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._abandoned = False  # close() gave up waiting: deliver nothing more
        self.dropped = 0  # events not delivered: the queue was full, or close() gave up

    def subscribe(self, event: str, handler: Handler) -> None:
        """Call ``handler(event, payload)`` for each ``event`` ("*" for all)."""
        if not callable(handler):
            raise ValidationError(f"handler must be a function (event, payload), got "
                                  f"{handler!r}")
        for name in self._names(event):
            with self._lock:
                if self._closed:
                    raise StoreClosedError("this MemoryEngine is closed; open a new one")
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
        if not self._subs[event]:  # nobody listening: not even a queue put
            return
        with self._lock:  # never queued behind close()'s stop marker
            if self._closed:
                return
            try:
                self._queue.put_nowait((event, payload))
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % MAX_PENDING == 0:
                    log.warning("%d event(s) dropped: a subscriber is too slow to keep up "
                                "with %d queued events", self.dropped, MAX_PENDING)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every event emitted so far has been delivered; False if
        ``timeout`` seconds were not enough (a subscriber is slow or stuck), or if
        called from a subscriber (it would wait for itself)."""
        thread = self._thread
        if thread is None:
            return not self._abandoned
        if thread is threading.current_thread():
            return False
        deadline = time.monotonic() + timeout
        done = threading.Event()
        try:
            self._queue.put(("__drain__", {"done": done}), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Deliver what is queued (for at most CLOSE_TIMEOUT_S in all), then stop."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is None:
            return
        if thread is threading.current_thread():  # a subscriber closed the engine
            self._abandon()  # stop after it returns: what is queued is dropped
            return
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        with contextlib.suppress(queue.Full):  # full: the join below times out anyway
            self._queue.put(None, timeout=CLOSE_TIMEOUT_S)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left = self._abandon()
            log.warning("closing with a subscriber still running: %d queued event(s) not "
                        "delivered", left)

    def _abandon(self) -> int:
        """Stop the dispatcher after the handler it is in; the events dropped."""
        self._abandoned = True
        left = 0
        with contextlib.suppress(queue.Empty):
            while True:
                if self._queue.get_nowait() is not None:
                    left += 1
        self.dropped += left
        self._queue.put_nowait(None)  # emptied, and emit() queues nothing once closed
        return left

    def _names(self, event: str) -> tuple[str, ...]:
        if event == "*":
            return EVENTS
        if event not in EVENTS:
            raise ValidationError(f"unknown event {event!r}; events: {list(EVENTS)}")
        return (event,)

    def _run(self) -> None:
        while not self._abandoned:
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
                if self._abandoned:
                    return
                try:
                    handler(event, payload)
                except BaseException:  # a broken subscriber (even SystemExit) stops nothing
                    log.exception("event handler %r failed on %s", handler, event)
