"""Where build() spends its time, phase by phase, early and late in one conversation.

    .venv/bin/python benchmarks/build_phases.py                 # turns 100 and 10,000
    .venv/bin/python benchmarks/build_phases.py --embedder minilm --out -

The companion of turn_latency.py, for its flatness row (p50 at turn 10,000 against
turn 100): one user's LoCoMo turns are replayed as there (its ``Talker``), the store
is copied at each checkpoint, and ``--queries`` build() calls per copy are timed in
``--rounds`` rounds, the copies taking turns, with each phase of ``builder.py``
timed on its own: the recent turns, recall (the query's embedding and the index
search inside it), scoring by turn, reading the candidates' source turns, packing
the memories, packing the history ("embed" counts every embedding recall asks
for: the query's, and the cues of forgotten memories found outside the index).
Beside the milliseconds, what each build had to handle: entries in the recall
index, candidates left after the recent turns', the distinct turns they come from,
the lines shown and the turns in the history.

Prints a table and appends it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from results import record
from turn_latency import DATA, ROOT, Talker, load, pct, ready

from memory_plugins import MemoryEngine, builder, recall

PHASES = ["_recent_turns", "recall_candidates", "embed", "_search", "_by_turn", "_turns_of",
          "_pack_memories", "_pack_history"]
LABELS = {"_recent_turns": "recent turns", "recall_candidates": "recall", "embed": "· embed",
          "_search": "· search", "_by_turn": "by turn", "_turns_of": "source turns",
          "_pack_memories": "memories", "_pack_history": "history"}


def unexplained(row: dict[str, Any]) -> float:
    """The mean build's ms outside the top-level phases (embed and search are in recall)."""
    phases: dict[str, float] = row["ms"]
    return float(row["mean"]) - sum(phases.get(p, 0.0) for p in PHASES
                                    if not LABELS[p].startswith("·"))


class Phases:
    """Timers around the phases of build(), and counts of what they handled."""

    def __init__(self) -> None:
        self.ms: Counter[str] = Counter()  # float values: Counter adds them all the same
        self.counts: Counter[str] = Counter()

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms[name] += (time.perf_counter() - t0) * 1000  # type: ignore[assignment]
        return run

    def install(self) -> None:
        for name in ("_recent_turns", "recall_candidates", "_by_turn", "_turns_of",
                     "_pack_history"):
            setattr(builder, name, self.timed(name, getattr(builder, name)))
        recall.Recall._search = self.timed("_search", recall.Recall._search)  # type: ignore[method-assign]
        pack = self.timed("_pack_memories", builder._pack_memories)

        def pack_memories(engine: MemoryEngine, count: Any, candidates: list[Any],
                          turns: dict[int, Any], system_text: str, budget: int) -> Any:
            self.counts["candidates"] += len(candidates)
            self.counts["source turns"] += len(turns)
            chosen, used = pack(engine, count, candidates, turns, system_text, budget)
            self.counts["lines shown"] += len(chosen)
            return chosen, used
        builder._pack_memories = pack_memories

    def clear(self) -> None:
        self.ms.clear()
        self.counts.clear()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default="100,10000")
    ap.add_argument("--embedder", choices=["hashing", "minilm"], default="hashing")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    if args.rounds < 1 or args.queries % args.rounds:
        ap.error("--queries must be a multiple of --rounds")
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    settings: dict[str, Any] = {"embedder": "hashing"} if args.embedder == "hashing" else {}
    turns, questions = load(DATA)
    phases = Phases()
    phases.install()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        talker = Talker(Path(tmp) / "live", turns, **settings)
        copies = []
        for target in checkpoints:
            talker.talk(lambda n=target: talker.done >= n)
            copies.append(talker.copy(Path(tmp) / str(target), args.embedder)["path"])
        talker.engine.close()
        shutil.rmtree(Path(tmp) / "live")
        engines = [MemoryEngine(path, durability="deferred", **settings) for path in copies]
        try:
            for engine in engines:
                ready(engine, questions)
                engine.build(questions[1], user_id="talker")
            times: list[list[float]] = [[] for _ in engines]
            ms: list[Counter[str]] = [Counter() for _ in engines]
            counts: list[Counter[str]] = [Counter() for _ in engines]
            # The engines may share one embedder (MiniLM is loaded once): wrapped once.
            embedders = {id(e): e for e in (en._recall_engine().embedder for en in engines)}
            for e in embedders.values():
                e.embed = phases.timed("embed", e.embed)  # type: ignore[method-assign]
            per_round = args.queries // args.rounds
            for r in range(args.rounds):
                order = range(len(engines)) if r % 2 == 0 else range(len(engines) - 1, -1, -1)
                for i in order:
                    phases.clear()
                    for k in range(r * per_round, (r + 1) * per_round):
                        t0 = time.perf_counter()
                        prompt = engines[i].build(questions[k % len(questions)],
                                                  user_id="talker")
                        times[i].append((time.perf_counter() - t0) * 1000)
                        counts[i]["history turns"] += sum(
                            1 for s in prompt.sources if s.section == "history")
                    ms[i].update(phases.ms)
                    counts[i].update(phases.counts)
            for i, engine in enumerate(engines):
                index = engine._recall_engine().indexes["talker"]
                rows.append({"turns": checkpoints[i], "entries": len(index),
                             "p50": pct(times[i], 0.5), "p95": pct(times[i], 0.95),
                             "mean": sum(times[i]) / len(times[i]),
                             "ms": {k: v / len(times[i]) for k, v in ms[i].items()},
                             "counts": {k: v / len(times[i]) for k, v in counts[i].items()}})
        finally:
            for engine in engines:
                engine.close()

    counted = ["candidates", "source turns", "lines shown", "history turns"]
    first = rows[0]
    lines = [
        f"\n## build() phase by phase, early and late in a conversation — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- machine: {platform.processor() or platform.machine()}, kernel {platform.release()}, "
        f"Python {platform.python_version()}; embedder: {args.embedder}; {args.queries} "
        f"build() calls per store (LoCoMo questions) in {args.rounds} rounds, the stores "
        "taking turns; phases: mean ms per build (recall includes its embed and search; "
        "other: the rest of the mean build: system, current, rendering, checks)\n",
        "| turns | index entries | build p50 ms | build p95 ms | "
        + " | ".join(LABELS[p] for p in PHASES) + " | other | "
        + " | ".join(counted) + " |",
        "|" + "---:|" * (4 + len(PHASES) + 1 + len(counted))]
    for row in rows:
        lines.append(
            f"| {row['turns']:,} | {row['entries']:,} | {row['p50']:.3f} | {row['p95']:.3f} | "
            + " | ".join(f"{row['ms'].get(p, 0.0):.3f}" for p in PHASES)
            + f" | {unexplained(row):.3f} | "
            + " | ".join(f"{row['counts'].get(c, 0.0):.1f}" for c in counted) + " |")
    last = rows[-1]
    growth = ", ".join(
        [f"{LABELS[p]} {last['ms'].get(p, 0.0) - first['ms'].get(p, 0.0):+.3f}"
         for p in PHASES] + [f"other {unexplained(last) - unexplained(first):+.3f}",
                             f"mean build {last['mean'] - first['mean']:+.3f}"])
    lines += ["", f"- p50 at turn {last['turns']:,} / turn {first['turns']:,}: "
              f"{last['p50'] / first['p50']:.2f}x; growth by phase (ms): {growth}"]
    report = "\n".join(lines) + "\n"
    record(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
