"""Every Python sample in the README and docs/ runs as written; every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memory_plugins import DEFAULT_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SAMPLE = re.compile(r"```python\n(.*?)```", re.DOTALL)

samples = [(doc, i, code) for doc in DOCS for i, code in enumerate(SAMPLE.findall(doc.read_text()))]


@pytest.mark.parametrize(("doc", "index", "code"), samples,
                         ids=[f"{d.name}#{i}" for d, i, _ in samples])
def test_doc_sample_runs(doc: Path, index: int, code: str, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # samples use ./memory: each gets a fresh one
    exec(compile(code, f"{doc.name}#{index}", "exec"), {"__name__": "__doc_sample__"})


def test_every_setting_is_documented() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in DEFAULT_SETTINGS if f"`{name}`" not in reference]
    assert missing == []
