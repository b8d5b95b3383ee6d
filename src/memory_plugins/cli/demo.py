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
from ..errors import MemoryPluginsError, ValidationError
from ..prompt import Prompt
from ..units import LEVEL_NAMES
from . import llama
from .store import writer_lock

__all__ = ["SCRIPT", "run_demo"]

# (days since the first turn, what the user says, the reply used when no model runs)
SCRIPT: list[tuple[int, str, str]] = [
    (0, "My dog's name is Potola.", "What a lovely name! Tell me about Potola sometime."),
    (8, "I tried a new pasta recipe with lemon and basil tonight. My partner Sam loved it "
        "and asked for it again on Friday.",
     "Lemon and basil is a bright combination; no wonder Sam wants it again."),
    (17, "Work was busy, we shipped the quarterly report at last. My manager Ines took the "
         "whole team out for lunch to celebrate.",
     "Congratulations on shipping it, and a team lunch is a nice way to celebrate."),
    (26, "I watched a documentary about octopuses. They can open jars and recognise faces.",
     "They really are clever animals."),
    (35, "The weather turned cold, so I dug out my winter coat. The heating in our flat "
         "broke the same day.", "Bad timing! I hope the heating is fixed soon."),
    (44, "I started reading a novel set in Lisbon. It is about a bookseller who finds an "
         "old map.", "A bookseller and an old map sounds like a good mystery."),
    (53, "My sister Marta visited from Porto and we played board games all evening. She "
         "won every single game.", "Marta sounds like a formidable player."),
    (62, "I signed up for a pottery class on Thursdays. The teacher says my first bowl is "
         "lopsided but charming.", "Every potter's first bowl is lopsided."),
    (71, "We repainted the kitchen a pale green colour. It took the whole weekend and two "
         "tins of paint.", "Pale green makes a kitchen feel fresh."),
    (80, "I ran five kilometres in the park this morning. My time was twenty-eight minutes.",
     "Under thirty minutes is a good pace."),
    (89, "My neighbour gave me tomatoes from her garden. I made a big pot of soup with them.",
     "Home-grown tomatoes make the best soup."),
    (98, "I fixed the squeaky door in the hallway with some oil. It had been squeaking for "
         "months.", "A quiet hallway at last."),
    (107, "The library book club picked a mystery novel this month. We meet on the first "
          "Tuesday.", "Mysteries make for lively book club discussions."),
    (116, "I baked sourdough bread for the first time. The crust came out dark and crunchy.",
     "A dark, crunchy crust is what bakers aim for."),
    (125, "We booked a weekend trip to the mountains in May. The cabin has a wood stove.",
     "A cabin with a wood stove sounds cosy."),
    (134, "I bought a new bicycle for commuting. It is a blue one with a basket.",
     "A basket is handy for groceries."),
    (143, "My cousin Leo got married last Saturday. The party went on until two in the "
          "morning.", "Congratulations to Leo!"),
    (152, "I started learning Italian with an app. I practise fifteen minutes every day.",
     "Fifteen minutes a day adds up quickly."),
    (162, "What's my dog's name?", "Your dog is called Potola."),
]
USER = "demo"
REPLY_TOKENS = 32  # the budget allows 256; a demo reads better with short replies


def _potola(engine: MemoryEngine, unit_id: int) -> tuple[str, str]:
    """(level name or "gone", how the working set holds it now)."""
    for memory in engine.memories(user_id=USER):
        if memory.id == unit_id:
            return LEVEL_NAMES[memory.level], f"stored {LEVEL_NAMES[memory.level]}: {memory.text}"
    return "gone", "gone from the working set, only in the raw log"


def _shown(prompt: Prompt, unit_id: int, origin: int) -> str:
    for source in prompt.sources:
        if source.section == "memories" and source.id == unit_id:
            return f"shown {LEVEL_NAMES[source.level]}"
        if source.section == "history" and source.id == origin:
            return "its turn shown in the history"
    return "not in the prompt"


def _mix(engine: MemoryEngine, prompt: Prompt) -> str:
    """How many memories the prompt shows at each level, and at which level the
    working set holds them (a degraded or forgotten one may be shown verbatim,
    read back from the log, when the memories budget has room)."""
    stored = {m.id: LEVEL_NAMES[m.level] for m in engine.memories(user_id=USER)}
    shown = [s for s in prompt.sources if s.section == "memories"]
    if not shown:
        return "none shown (the history already holds the turns they came from)"
    at = Counter(LEVEL_NAMES[s.level] for s in shown)
    held = Counter(stored.get(s.id, "gone") for s in shown)
    order = (*LEVEL_NAMES, "gone")
    return (", ".join(f"{at[k]} shown {k}" for k in order if at[k]) + "; stored as "
            + ", ".join(f"{held[k]} {k}" for k in order if held[k]))


class _Replier:
    """The local model, or the script's replies when llama.cpp is not installed."""

    def __init__(self, use_model: bool, model: Path | None, out: TextIO, *,
                 every_turn: bool = False) -> None:
        self.llm: Any = None
        self.every_turn = every_turn
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

    def __call__(self, prompt: Prompt, scripted: str, use_model: bool) -> tuple[str, float]:
        if self.llm is None or not use_model:
            return scripted, 0.0
        t0 = time.perf_counter()
        text = llama.reply(self.llm, prompt, max_tokens=REPLY_TOKENS)
        return " ".join(text.split()), time.perf_counter() - t0


def run_demo(path: str | None = None, *, use_model: bool = True, model: Path | None = None,
             embedder: str | None = None, every_turn: bool = False, out: TextIO) -> int:
    """The demo; returns the exit status. By default the model answers the first
    turn and the question (a 270M model is quick there but rambles over small talk,
    and its rambling then fills the history); ``every_turn`` asks it every time."""
    replier = _Replier(use_model, model, out, every_turn=every_turn)
    with tempfile.TemporaryDirectory(prefix="memory-plugins-demo-") as tmp:
        where = Path(path or tmp)
        with writer_lock(where), MemoryEngine(where, tokenizer=replier.tokenizer(),
                                              embedder=embedder) as engine:
            return _converse(engine, replier, out)


def _converse(engine: MemoryEngine, replier: _Replier, out: TextIO) -> int:
    if engine.stats(USER).turns:  # its simulated time would run backwards
        raise ValidationError(f"store {engine.path!r} already holds a demo conversation; "
                              "give a new --path (or none, for a temporary store)")
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
    for n, (day, said, scripted) in enumerate(SCRIPT):
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
        out.write(f"      memories: {_mix(engine, prompt)}\n      Potola: {after[1]}; "
                  f"{_shown(prompt, potola_id, origin)}\n")
        if before is not None and before[0] != "verbatim" and after[0] == "verbatim":
            out.write(f"      >>> Potola restored from the log, verbatim (it was {before[1]})\n")
        ask_model = replier.every_turn or n in (0, len(SCRIPT) - 1)
        text, secs = replier(prompt, scripted, ask_model)
        who = f"model ({secs:.1f} s)" if replier.llm is not None and ask_model \
            else "reply (scripted)"
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
