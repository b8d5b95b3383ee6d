from __future__ import annotations

from collections.abc import Callable, Iterator
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
