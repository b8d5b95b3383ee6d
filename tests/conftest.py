from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_plugins import MemoryEngine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[MemoryEngine]:
    with MemoryEngine(tmp_path / "memory") as eng:
        yield eng
