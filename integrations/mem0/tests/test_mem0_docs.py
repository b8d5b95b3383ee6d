"""Every sample in docs/mem0.md and the distribution's README runs as written."""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DOCS = [HERE.parent / "README.md", HERE.parent.parent.parent / "docs" / "mem0.md"]
SAMPLE = re.compile(r"```py\n(.*?)```", re.DOTALL)
samples = [(doc, i, code) for doc in DOCS for i, code in enumerate(SAMPLE.findall(doc.read_text()))]

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-home-"))
with warnings.catch_warnings():  # pipecat imports the deprecated audioop on 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import pipecat.services.mem0.memory as pipecat_mem0


def test_there_are_samples() -> None:
    assert len(samples) >= 8


@pytest.mark.parametrize(("doc", "index", "code"), samples,
                         ids=[f"{d.name}#{i}" for d, i, _ in samples])
def test_doc_sample_runs(doc: Path, index: int, code: str, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # samples use ./memory: each gets a fresh one
    monkeypatch.setenv("MEMORY_PLUGINS_MEM0_DIR", str(tmp_path / "default"))
    monkeypatch.setattr(pipecat_mem0, "Memory", pipecat_mem0.Memory)  # undone afterwards
    exec(compile(code, f"{doc.name}#{index}", "exec"), {"__name__": "__doc_sample__"})
