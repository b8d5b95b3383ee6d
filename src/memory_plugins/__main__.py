"""``memory-plugins`` command line. For now one subcommand: ``demo``.

The demo tells the store's story in a terminal: a dog named Potola is
mentioned once, weeks of other talk pass (simulated time), the memory degrades
level by level, and asking about the dog brings it back verbatim from the log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time

from . import __version__
from .engine import MemoryEngine
from .errors import MemoryPluginsError
from .units import LEVEL_NAMES

_SMALL_TALK = [
    "I tried a new pasta recipe with lemon and basil tonight.",
    "Work was busy, we shipped the quarterly report at last.",
    "I watched a documentary about octopuses, they are clever.",
    "The weather turned cold, so I dug out my winter coat.",
    "I started reading a novel set in Lisbon.",
    "My sister visited and we played board games all evening.",
]


def run_demo(path: str | None) -> int:
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory(prefix="memory-plugins-demo-") as tmp, \
            MemoryEngine(path or tmp, embedder="hashing") as engine:
        print(f"memory-plugins {__version__} demo, store at {engine.path}\n")
        first = engine.observe("My dog's name is Potola.", user_id="demo", timestamp=start)
        potola = first << 8
        print(f"{'day':>4}  {'observe ms':>10}  {'level':<12}  Potola memory")
        day, shown = 0, ""
        for i in range(28):
            day = 6 * (i + 1)
            t0 = time.perf_counter()
            engine.observe(_SMALL_TALK[i % len(_SMALL_TALK)], user_id="demo",
                           timestamp=start + dt.timedelta(days=day))
            ms = (time.perf_counter() - t0) * 1000
            found = [m for m in engine.memories(user_id="demo") if m.id == potola]
            level = LEVEL_NAMES[found[0].level] if found else "gone"
            text = found[0].text if found else "(only in the raw log)"
            if level != shown or i % 7 == 0:  # print level changes and a few rows between
                print(f"{day:>4}  {ms:>10.2f}  {level:<12}  {text}")
                shown = level
        engine.observe("What's my dog's name again?", user_id="demo",
                       timestamp=start + dt.timedelta(days=day + 1))
        back = engine.get(potola)
        print(f"\nday {day + 1}: 'What's my dog's name again?' -> restored from the log at "
              f"level {LEVEL_NAMES[back.level]}: {back.text!r}")
        stats = engine.stats("demo")
        print(f"store: {stats.turns} turns, {stats.units} memories by level "
              f"{stats.units_by_level}, verify ok={engine.verify().ok}")
        t0 = time.perf_counter()
        prompt = engine.build("What's my dog's name again?", user_id="demo")
        ms = (time.perf_counter() - t0) * 1000
        print(f"\nbuild(): {prompt.tokens} tokens of a {prompt.budget.total}-token context "
              f"({ms:.1f} ms, the first call loads the tokenizer)")
        dog = [line for line in prompt.text.splitlines() if "Potola" in line]
        print("the prompt holds:", dog[0] if dog else "(no line about Potola)")
    print("\nA llama.cpp chat on this memory comes with the next release.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memory-plugins", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="watch a memory degrade and come back")
    demo.add_argument("--path", help="store directory (default: a temporary one)")
    args = parser.parse_args(argv)
    try:
        return run_demo(args.path)
    except MemoryPluginsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
