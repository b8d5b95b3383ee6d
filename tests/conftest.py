from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import _writer as writer  # tests/ is on sys.path under pytest
import pytest

from memory_plugins import MemoryEngine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[MemoryEngine]:
    with MemoryEngine(tmp_path / "memory") as eng:
        yield eng


Spawn = Callable[..., Any]  # spawn(*args) -> a running _writer.Child


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start ``_writer.py`` children; any still running at the end are killed."""
    children: list[Any] = []

    def start(*args: str) -> Any:
        child = writer.Child(*args, stderr_path=tmp_path / f"child-{len(children)}.err")
        children.append(child)
        return child

    yield start
    for child in children:
        if child.proc.returncode is None:
            child.kill()


Overlap = Callable[[Callable[[], AbstractContextManager[Any]]], None]


@pytest.fixture
def overlapping() -> Iterator[Overlap]:
    """``overlapping(enter)``: three threads enter ``enter()`` over and over, each
    staying a millisecond, so that one is always inside, until the test ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(enter: Callable[[], AbstractContextManager[Any]]) -> None:
        def loop() -> None:
            while not stop.is_set():
                with enter():
                    time.sleep(0.001)
        for _ in range(3):
            threads.append(threading.Thread(target=loop))
            threads[-1].start()
        time.sleep(0.05)

    yield start
    stop.set()
    for t in threads:
        t.join(5)
