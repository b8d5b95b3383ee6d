"""``memory-plugins demo``: a memory degrades over months and comes back from the log.

A scripted conversation on a temporary store: the user's dog is named Potola
once, then months of other talk pass (simulated time, a turn every ten days),
then the user asks for the dog's name. Turn by turn it shows what build() put
into the prompt: tokens per section (never over the constant budget), how long
the build took, which memories were shown at which fidelity, and where the
Potola memory stands. With llama.cpp installed the replies come from a local
model (Gemma 3 270M) counting with its own tokenizer; without it the replies
are scripted and the demo says how to add it.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from .. import __version__
from ..engine import MemoryEngine
from ..errors import MemoryPluginsError
from ..prompt import Prompt
from ..units import LEVEL_NAMES
from . import llama
from .store import writer_lock

__all__ = ["SCRIPT", "run_demo"]

# (days since the first turn, what the user says, the reply used when no model runs)
SCRIPT: list[tuple[int, str, str]] = [
    (0, "My dog's name is Potola.", "What a lovely name! Tell me about Potola sometime."),
    (9, "I tried a new pasta recipe with lemon and basil tonight.",
     "Lemon and basil is a bright combination. Did it turn out well?"),
    (19, "Work was busy, we shipped the quarterly report at last.",
     "Congratulations on shipping it, that must be a relief."),
    (30, "I watched a documentary about octopuses, they are clever.",
     "They really are: they solve puzzles and open jars."),
    (41, "The weather turned cold, so I dug out my winter coat.",
     "Stay warm! Cold snaps always arrive sooner than expected."),
    (52, "I started reading a novel set in Lisbon.", "Lisbon is a wonderful setting for a novel."),
    (63, "My sister visited and we played board games all evening.",
     "That sounds like a fun evening. Who won?"),
    (74, "I signed up for a pottery class on Thursdays.",
     "Pottery is relaxing, and you get to keep what you make."),
    (85, "We repainted the kitchen a pale green colour.", "Pale green makes a kitchen feel fresh."),
    (96, "I ran five kilometres in the park this morning.", "Nice run! How did it feel?"),
    (107, "My neighbour gave me tomatoes from her garden.",
     "Home-grown tomatoes taste so much better."),
    (118, "I fixed the squeaky door in the hallway with some oil.",
     "A quiet hallway at last."),
    (129, "The library book club picked a mystery novel this month.",
     "Mysteries make for lively book club discussions."),
    (140, "I baked sourdough bread for the first time.", "How was the crust?"),
    (151, "We planned a weekend trip to the mountains in spring.",
     "Mountains in spring are beautiful."),
    (162, "What's my dog's name?", "Your dog is called Potola."),
]
USER = "demo"
REPLY_TOKENS = 48  # the budget allows 256; a demo reads better with short replies


def _potola(engine: MemoryEngine, unit_id: int) -> tuple[str, str]:
    """(level name or "gone", the form the working set holds now)."""
    for memory in engine.memories(user_id=USER):
        if memory.id == unit_id:
            return LEVEL_NAMES[memory.level], memory.text
    return "gone", "(only in the raw log)"


def _shown(prompt: Prompt, unit_id: int, origin: int) -> str:
    for source in prompt.sources:
        if source.section == "memories" and source.id == unit_id:
            return f"shown {LEVEL_NAMES[source.level]}"
        if source.section == "history" and source.id == origin:
            return "its turn shown in the history"
    return "not in the prompt"


class _Replier:
    """The local model, or the script's replies when llama.cpp is not installed."""

    def __init__(self, use_model: bool, model: Path | None, out: TextIO) -> None:
        self.llm: Any = None
        self.note = ""
        if not use_model:
            self.note = "model replies off (--no-model): replies are scripted"
        elif not llama.llama_available():
            self.note = ("llama.cpp is not installed: replies are scripted. For real replies "
                         "from a local model: pip install 'memory-plugins[llama]'")
        else:
            try:
                t0 = time.perf_counter()
                self.llm = llama.load_model(model)
                out.write(f"model: {self.llm.model_path} loaded in "
                          f"{time.perf_counter() - t0:.1f} s\n")
            except MemoryPluginsError as exc:
                self.note = f"no model ({exc}): replies are scripted"

    def tokenizer(self) -> Any:
        return None if self.llm is None else llama.tokenizer_for(self.llm)

    def __call__(self, prompt: Prompt, scripted: str) -> tuple[str, float]:
        if self.llm is None:
            return scripted, 0.0
        t0 = time.perf_counter()
        text = llama.reply(self.llm, prompt, max_tokens=REPLY_TOKENS)
        return " ".join(text.split()), time.perf_counter() - t0


def run_demo(path: str | None = None, *, use_model: bool = True, model: Path | None = None,
             embedder: str | None = None, out: TextIO) -> int:
    replier = _Replier(use_model, model, out)
    with tempfile.TemporaryDirectory(prefix="memory-plugins-demo-") as tmp:
        where = Path(path or tmp)
        with writer_lock(where), MemoryEngine(where, tokenizer=replier.tokenizer(),
                                              embedder=embedder) as engine:
            return _converse(engine, replier, out)


def _converse(engine: MemoryEngine, replier: _Replier, out: TextIO) -> int:
    b = engine.budget
    tok_name = "llama.cpp (the model's own)" if replier.llm is not None else "tiktoken cl100k"
    out.write(f"memory-plugins {__version__} demo, store at {engine.path}\n"
              f"budget: system {b.system} + memories {b.memories} + history {b.history} + "
              f"current {b.current} + response {b.response} = {b.total} tokens, counted "
              f"with {tok_name}\n")
    if replier.note:
        out.write(replier.note + "\n")
    engine.build("warm-up", user_id="demo-warm-up")  # loads tokenizer and embedder
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    out.write(f"\n{'day':>4}  {'the user says':<44} {'sys':>4} {'mem':>4} {'hist':>5} "
              f"{'cur':>4} {'total':>6}  build\n")
    potola_id = origin = 0
    build_ms: list[float] = []
    largest = 0
    for day, said, scripted in SCRIPT:
        when = start + dt.timedelta(days=day, minutes=len(build_ms))
        before = _potola(engine, potola_id) if potola_id else None
        turn_id = engine.observe(said, user_id=USER, session_id=f"day-{day}", timestamp=when)
        if not potola_id:
            origin = turn_id
            potola_id = next(m.id for m in engine.memories(user_id=USER) if "Potola" in m.text)
        after = _potola(engine, potola_id)
        t0 = time.perf_counter()
        prompt = engine.build(said, user_id=USER, session_id=f"day-{day}")
        ms = (time.perf_counter() - t0) * 1000
        build_ms.append(ms)
        t = prompt.tokens
        largest = max(largest, t["total"])
        shown = (said if len(said) <= 44 else said[:43] + "…")
        out.write(f"{day:>4}  {shown:<44} {t['system']:>4} {t['memories']:>4} "
                  f"{t['history']:>5} {t['current']:>4} {t['total']:>6}  {ms:5.1f} ms\n")
        levels = Counter(LEVEL_NAMES[s.level] for s in prompt.sources
                         if s.section == "memories")
        mix = ", ".join(f"{levels[name]} {name}" for name in LEVEL_NAMES if levels[name])
        out.write(f"      memories shown: {mix or 'none'} | Potola: stored {after[0]}"
                  f" ({after[1]}), {_shown(prompt, potola_id, origin)}\n")
        if before is not None and before[0] != "verbatim" and after[0] == "verbatim":
            out.write(f"      >>> Potola restored from the log: {after[1]!r} "
                      f"(it had decayed to {before[0]}: {before[1]})\n")
        text, secs = replier(prompt, scripted)
        who = f"model ({secs:.1f} s)" if replier.llm is not None else "reply (scripted)"
        out.write(f"      {who}: {text}\n")
        engine.observe(text or "(no reply)", role="assistant", user_id=USER,
                       session_id=f"day-{day}", timestamp=when + dt.timedelta(seconds=30))
    stats, report = engine.stats(USER), engine.verify()
    out.write(f"\nEvery prompt fit its {b.prompt} tokens (+{b.response} for the reply = "
              f"{b.total}); the largest used {largest}. build(): median "
              f"{statistics.median(build_ms):.1f} ms, max {max(build_ms):.1f} ms over "
              f"{len(build_ms)} turns.\n"
              f"store: {stats.turns} turns in the log, {stats.units} memories "
              f"({', '.join(f'{n} {k}' for k, n in stats.units_by_level.items())}), "
              f"hash chains verified: {'ok' if report.ok else 'BROKEN'}\n")
    if replier.llm is None and not llama.llama_available():
        out.write("Replies were scripted. For replies from a local model (llama.cpp with "
                  "Gemma 3 270M): pip install 'memory-plugins[llama]'\n")
    return 0 if report.ok else 1
