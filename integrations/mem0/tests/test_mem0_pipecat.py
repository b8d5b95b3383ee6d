"""Our backend inside Pipecat's own Mem0MemoryService, driven by pipecat's ``run_test``.

The service builds its client itself (``Memory.from_config(local_config)`` with the
``Memory`` its module imported from mem0). The documented way in (docs/mem0.md) is to
point that name at ours before building the service; here ``monkeypatch`` does it, so
the patch is undone after the test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-home-"))

with warnings.catch_warnings():  # pipecat imports the deprecated audioop on 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import pipecat.services.mem0.memory as pipecat_mem0
    from pipecat.frames.frames import LLMContextFrame
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.services.mem0.memory import Mem0MemoryService
    from pipecat.tests.utils import SleepFrame, run_test

import memory_plugins_mem0

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SYSTEM = {"role": "system", "content": "You are a friendly voice assistant."}
TURN_1 = [{"role": "user", "content": "I just moved to Lisbon with my dog Potola."},
          {"role": "assistant", "content": "Welcome to Lisbon! How is Potola settling in?"}]
TURN_2 = [{"role": "user", "content": "She loves the beach at Cascais."},
          {"role": "assistant", "content": "Cascais is a great beach for dogs."}]
QUESTION = {"role": "user", "content": "Where did I move with my dog?"}


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """The service stores in a background task (a worker thread): give it time."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the service's background store did not happen in time")
        time.sleep(0.05)


ServiceFactory = Callable[[], Mem0MemoryService]


@pytest.fixture
def make_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceFactory:
    """Builds services the way a bot does; a service runs in one pipeline only."""
    monkeypatch.setattr(pipecat_mem0, "Memory", memory_plugins_mem0.Memory)

    def make() -> Mem0MemoryService:
        built = Mem0MemoryService(local_config={"path": str(tmp_path / "memory")},
                                  user_id="ana", run_id="call-1")
        assert isinstance(built.memory_client, memory_plugins_mem0.Memory)
        return built

    return make


def test_the_service_stores_and_recalls_through_our_backend(
        make_service: ServiceFactory) -> None:
    service = make_service()
    memory = service.memory_client
    assert isinstance(memory, memory_plugins_mem0.Memory)
    # Each turn Pipecat sends the whole conversation so far: four context frames.
    contexts = [
        LLMContext(messages=[SYSTEM, TURN_1[0]]),
        LLMContext(messages=[SYSTEM, *TURN_1]),
        LLMContext(messages=[SYSTEM, *TURN_1, TURN_2[0]]),
        LLMContext(messages=[SYSTEM, *TURN_1, *TURN_2]),
    ]
    frames = []  # each store is a task the pipeline's end would cancel: leave it time
    for context in contexts:
        frames += [LLMContextFrame(context=context), SleepFrame(sleep=2.0)]
    down, _up = asyncio.run(run_test(service, frames_to_send=frames,
                                     expected_down_frames=[LLMContextFrame] * 4))
    engine = memory.engine

    def logged() -> list[str]:
        return [t.text for t in engine.turns(user_id="run_id=call-1&user_id=ana")]

    # The store grows by the new messages only: four, not 1 + 2 + 3 + 4.
    wait_for(lambda: len(logged()) >= 4)
    assert logged() == [TURN_1[0]["content"], TURN_1[1]["content"], TURN_2[0]["content"],
                        TURN_2[1]["content"]]
    stored = memory.get_all(filters={"user_id": "ana", "run_id": "call-1"})["results"]
    assert any("Lisbon" in r["memory"] for r in stored)
    assert all(r["metadata"] == {"platform": "pipecat"} for r in stored)

    memory.close()

    # The next call: a new pipeline searches our store and puts what it recalls into the
    # context, where the LLM will read it.
    service = make_service()
    asked = LLMContext(messages=[SYSTEM, *TURN_1, *TURN_2, QUESTION])
    down, _up = asyncio.run(run_test(service, frames_to_send=[LLMContextFrame(context=asked)],
                                     expected_down_frames=[LLMContextFrame]))
    messages = down[0].context.get_messages()
    recalled = [m for m in messages if m.get("role") == "developer"]
    assert len(recalled) == 1 and messages.index(recalled[0]) == 1
    assert recalled[0]["content"].startswith("Based on previous conversations, I recall:")
    assert "Lisbon" in recalled[0]["content"]
    service.memory_client.close()


def test_get_memories_uses_our_get_all(make_service: ServiceFactory) -> None:
    service = make_service()
    memory = service.memory_client
    memory.add("I prefer window seats.", user_id="ana", run_id="call-1", infer=False)
    memory.add("Someone else's memory.", user_id="bo", infer=False)
    found = asyncio.run(service.get_memories())
    assert [r["memory"] for r in found] == ["I prefer window seats."]
    memory.close()
