"""This process's side of the working set: the hot cache of recently touched
units, and the background worker that applies logged turns."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from .units import MemoryUnit
from .workingset import Changes

if TYPE_CHECKING:
    from .engine import MemoryEngine

__all__ = ["HotCache", "Maintainer", "yield_gil"]

log = logging.getLogger("memory_plugins")


class HotCache:
    """Recently touched units per user, decoded, in RAM (the hot tier).

    Tagged with the user's write version: if another process wrote since, the
    user's cache is dropped rather than trusted.
    """

    def __init__(self, per_user: int, users: int) -> None:
        self.per_user, self.users = per_user, users
        self.data: OrderedDict[str, tuple[int, OrderedDict[int, MemoryUnit]]] = OrderedDict()
        self.lock = threading.Lock()  # the worker and callers both update it

    def apply(self, user_id: str, ch: Changes) -> None:
        with self.lock:
            self._apply(user_id, ch)

    def _apply(self, user_id: str, ch: Changes) -> None:
        entry = self.data.pop(user_id, None)
        units = entry[1] if entry is not None and entry[0] == ch.since else OrderedDict()
        for unit in ch.touched():
            units.pop(unit.id, None)
            units[unit.id] = unit
        for unit_id in (*ch.forgotten, *ch.deleted):
            units.pop(unit_id, None)
        while len(units) > self.per_user:
            units.popitem(last=False)
        self.data[user_id] = (ch.version, units)
        while len(self.data) > self.users:
            self.data.popitem(last=False)

    def get(self, user_id: str, version: int) -> list[MemoryUnit]:
        with self.lock:
            entry = self.data.get(user_id)
            if entry is None or entry[0] != version:
                self.data.pop(user_id, None)
                return []
            return list(entry[1].values())


def yield_gil() -> None:
    # A real (if tiny) sleep: sleep(0) releases the GIL but usually takes it straight
    # back, leaving a caller's observe() waiting out the 5 ms switch interval.
    time.sleep(0.0002)


class Maintainer(threading.Thread):
    """The background worker that applies logged turns to the working set.

    It works in the gaps: after a wake-up it waits until no turn has arrived for
    ``idle_s`` (a chat has seconds between turns), then applies everything pending
    in one transaction. During a burst of observe() calls it stays out of their
    way (Python runs one thread at a time); if the burst leaves more than
    ``max_pending_turns`` unapplied, observe() applies them itself.
    """

    def __init__(self, engine: MemoryEngine, *, idle_s: float = 0.002) -> None:
        super().__init__(name="memory-plugins-maintainer", daemon=True)
        self.engine = engine
        self.idle_s = idle_s
        self.wake = threading.Event()
        self.stopping = False
        self.error: BaseException | None = None

    def notify(self) -> None:
        self.wake.set()

    def run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            while not self.stopping and self.wake.wait(self.idle_s):
                self.wake.clear()  # another turn arrived: wait for a gap
            if self.stopping:
                return
            try:
                self.engine._maintain()
                self.error = None
            except Exception as exc:  # kept for health(); the next read retries
                if self.error is None:  # once until it works again, not every round
                    log.warning("working-set maintenance failed: %s", exc)
                self.error = exc

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        self.join()
