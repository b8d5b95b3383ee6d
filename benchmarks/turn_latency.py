"""build() latency and prompt size as a conversation grows, with and without MiniLM.

    .venv/bin/python benchmarks/turn_latency.py          # ~15 min: every row below
    .venv/bin/python benchmarks/turn_latency.py --quick --out -

One user talks: LoCoMo turns replayed in order (one minute apart), and at each
checkpoint the store is copied aside. Two engines run the same stream side by
side: one with the hashing embedder ("no model") and one with all-MiniLM-L6-v2 on
one thread, on ONNX Runtime when installed (query embedding included in the time).
``--queries`` build() calls are timed per row with LoCoMo questions as the current
input (the working set caught up first, so only build() is timed). Rows:

* turns 100, 1,000 and 10,000, from the copies: one embedder's copies open at
  once and timed in ``--rounds`` rounds, taking turns in alternating order. A
  virtual machine can run 1.5-2x slower for minutes at a time, and timed one
  after the other, a slow spell would fall on one checkpoint and make the ratio
  between checkpoints say more about the machine than about the code. (Not
  MiniLM's copies among the others': its model would clear the CPU caches
  between the no-model builds, which a long run on one store keeps warm.)
* turn 10,000 again while another process keeps one of the cores busy (a host's
  own models share the CPU);
* the turn at which 100,000 units have been stored (default capacities: most of
  them forgotten, in the log). The replayed turns repeat after ~1,800 (LoCoMo dev
  is three conversations), and a repeat reinforces a memory instead of adding
  one, so from turn 10,000 on each text gets a distinct suffix ("(note 12345)");
* 100,000 units held in the working set itself (``warm_units`` raised), hashing
  embedder: what build() costs when the capacity is set 16x past its default.

Prints a table, appends it to benchmarks/RESULTS.md, and draws
benchmarks/turn_latency.png: build() p50/p95 and prompt tokens against turns.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from results import record

from memory_plugins import MemoryEngine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "locomo-dev"
START = dt.datetime(2023, 1, 2, 9, 0, tzinfo=dt.UTC)


def load(data: Path) -> tuple[list[tuple[str, str]], list[str]]:
    turns, questions = [], []
    for path in sorted(data.glob("*.json")):
        conv = json.loads(path.read_text())
        keys = sorted((k for k in conv if re.fullmatch(r"session_\d+", k)),
                      key=lambda k: int(k.split("_")[1]))
        for key in keys:
            turns += [(t["speaker"], t["text"]) for t in conv[key]]
        questions += [q["question"] for q in conv["qa"] if q.get("category") in (1, 2, 3, 4)]
    return turns, questions


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def timed_builds(engine: MemoryEngine, questions: list[str], ks: range,
                 times: list[float], tokens: list[int]) -> None:
    """Time build() with questions number ``ks``, appending to ``times``/``tokens``."""
    for k in ks:
        t0 = time.perf_counter()
        prompt = engine.build(questions[k % len(questions)], user_id="talker")
        times.append((time.perf_counter() - t0) * 1000)
        tokens.append(prompt.tokens["total"])


def ready(engine: MemoryEngine, questions: list[str]) -> None:
    engine.stats("talker")  # catch up: only build() is timed
    engine.build(questions[0], user_id="talker")  # index built once, not timed


def summary(engine: MemoryEngine, times: list[float], tokens: list[int]) -> dict[str, float]:
    return {"p50": pct(times, 0.5), "p95": pct(times, 0.95), "tokens": max(tokens),
            "units": engine.stats("talker").units}


def measure(engine: MemoryEngine, questions: list[str], n: int) -> dict[str, float]:
    ready(engine, questions)
    times: list[float] = []
    tokens: list[int] = []
    timed_builds(engine, questions, range(n), times, tokens)
    return summary(engine, times, tokens)


def measure_interleaved(copies: list[dict[str, Any]], questions: list[str], n: int,
                        rounds: int) -> list[dict[str, Any]]:
    """Rows for the stores copied at the checkpoints, timed in ``rounds`` rounds:
    each round times n / rounds builds on every copy, in alternating order."""
    engines = [MemoryEngine(c["path"], durability="deferred", **c["settings"]) for c in copies]
    try:
        for engine in engines:
            ready(engine, questions)
        times: list[list[float]] = [[] for _ in copies]
        tokens: list[list[int]] = [[] for _ in copies]
        bounds = [n * r // rounds for r in range(rounds + 1)]
        for r in range(rounds):
            order = range(len(copies)) if r % 2 == 0 else range(len(copies) - 1, -1, -1)
            for i in order:
                timed_builds(engines[i], questions, range(bounds[r], bounds[r + 1]),
                             times[i], tokens[i])
        rows = []
        for c, engine, ts, toks in zip(copies, engines, times, tokens, strict=True):
            rows.append({"turns": c["turns"], "embedder": c["embedder"], "stored": c["stored"],
                         **summary(engine, ts, toks)})
            print(f"turn {c['turns']:,} {c['embedder']}: p50 {rows[-1]['p50']:.2f} ms, "
                  f"p95 {rows[-1]['p95']:.2f} ms", file=sys.stderr, flush=True)
        return rows
    finally:
        for engine in engines:
            engine.close()


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """Another process keeps one core busy (a host's speech model, say)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()
        spinner.wait()


class Talker:
    """One engine replaying the LoCoMo turns as one user; counts the units it stores."""

    def __init__(self, path: Path, turns: list[tuple[str, str]], **settings: Any) -> None:
        self.path, self.turns, self.settings = path, turns, settings
        self.done = 0
        self.stored = 0  # units ever created (memory_store events), forgotten ones too
        self.engine = self.open()

    def open(self) -> MemoryEngine:
        engine = MemoryEngine(self.path, durability="deferred", **self.settings)
        engine.events.subscribe("memory_store", self._count)
        return engine

    def _count(self, _event: str, payload: dict[str, Any]) -> None:
        self.stored += len(payload["memory_ids"])

    def reopen(self) -> None:
        self.engine.close()
        self.engine = self.open()

    def copy(self, path: Path, embedder: str) -> dict[str, Any]:
        """The store as it is now, copied to ``path`` (closed meanwhile)."""
        self.engine.stats("talker")  # caught up
        self.engine.events.drain()
        self.engine.close()
        shutil.copytree(self.path, path)
        self.engine = self.open()
        return {"turns": self.done, "embedder": embedder, "stored": self.stored, "path": path,
                "settings": self.settings}

    def talk(self, until: Callable[[], bool], *, suffix: bool = False) -> None:
        while not until():
            speaker, text = self.turns[self.done % len(self.turns)]
            if suffix:  # distinct texts: repeats would reinforce, not add
                text = f"{text} (note {self.done})"
            self.engine.observe(text, user_id="talker", speaker=speaker,
                                timestamp=START + dt.timedelta(minutes=self.done))
            self.done += 1
            if self.done % 1000 == 0:
                self.engine.stats("talker")  # let the worker catch up
                self.engine.events.drain()

    def row(self, embedder: str, questions: list[str], queries: int) -> dict[str, Any]:
        m = measure(self.engine, questions, queries)
        self.engine.events.drain()
        row = {"turns": self.done, "embedder": embedder, "stored": self.stored, **m}
        print(f"turn {self.done:,} {embedder}: p50 {m['p50']:.2f} ms, p95 {m['p95']:.2f} ms, "
              f"{m['tokens']} tokens, {m['units']} units, {self.stored} stored",
              file=sys.stderr, flush=True)
        return row


def run(checkpoints: list[int], stored_units: int, queries: int,
        stress_units: int, rounds: int) -> tuple[list[dict[str, Any]], str]:
    """The rows, and what runs MiniLM ("onnx" or "torch")."""
    turns, questions = load(DATA)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        talkers = {"no model": Talker(Path(tmp) / "hash", turns, embedder="hashing"),
                   "MiniLM": Talker(Path(tmp) / "minilm", turns)}
        backend = getattr(talkers["MiniLM"].engine._recall_engine().embedder, "backend", "?")
        try:
            copies = []
            for target in checkpoints:
                for name, talker in talkers.items():
                    talker.talk(lambda t=talker, n=target: t.done >= n)
                    copies.append(talker.copy(Path(tmp) / f"{name}-{target}", name))
            for name in talkers:
                rows += measure_interleaved([c for c in copies if c["embedder"] == name],
                                            questions, queries, rounds)
            rows.sort(key=lambda r: (r["turns"], list(talkers).index(r["embedder"])))
            for copy in copies:
                shutil.rmtree(copy["path"])
            with busy_core():
                for name, talker in talkers.items():
                    rows.append(talker.row(f"{name}, one core busy", questions, queries))
            if stored_units:
                for name, talker in talkers.items():
                    # Reopened: the recall index is built once at the checkpoint (a few
                    # thousand cues) instead of kept current turn by turn, which with
                    # MiniLM on one thread would take the worker ~10 minutes here.
                    talker.reopen()
                    talker.talk(lambda t=talker: t.stored >= stored_units, suffix=True)
                    rows.append(talker.row(name, questions, queries))
        finally:
            for talker in talkers.values():
                talker.engine.close()
        if stress_units:
            stress = Talker(Path(tmp) / "stress", turns, embedder="hashing",
                            warm_units=stress_units, working_set_tokens=10**8,
                            base_stability_days={t: 10_000.0 for t in (
                                "episodic", "semantic", "preference", "procedural",
                                "emotional", "contextual")})
            try:
                stress.talk(lambda: stress.stored >= stress_units, suffix=True)
                rows.append(stress.row(f"no model, {stress_units:,} units in the working set",
                                       questions, queries))
            finally:
                stress.engine.close()
    return rows, backend


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("no model", "MiniLM"):
        pts = [r for r in rows if r["embedder"] == name]
        xs = [r["turns"] for r in pts]
        a.plot(xs, [r["p50"] for r in pts], marker="o", label=f"{name} p50")
        a.plot(xs, [r["p95"] for r in pts], marker="x", linestyle="--", label=f"{name} p95")
        b.plot(xs, [r["tokens"] for r in pts], marker="o", label=name)
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("turns in the conversation")
        ax.legend()
    a.set_ylabel("build() ms")
    b.set_ylabel("prompt tokens (max over queries)")
    b.set_ylim(0, 4200)
    b.axhline(3840, color="grey", linewidth=0.8)
    fig.suptitle("build(): latency and prompt size against conversation length")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="turns 100 and 1,000; no 100k-units rows")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=10,
                    help="rounds the checkpoint rows are timed in, taking turns")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    checkpoints = [100, 1000] if args.quick else [100, 1000, 10000]
    rows, backend = run(checkpoints, 0 if args.quick else 100_000, args.queries,
                        0 if args.quick else 100_000, args.rounds)
    png = ROOT / "benchmarks" / "turn_latency.png"
    plot(rows, png)
    by = {(r["turns"], r["embedder"]): r for r in rows}
    first = {name: by[(checkpoints[0], name)]["p50"] for name in ("no model", "MiniLM")}
    lines = [
        "\n## build() latency against conversation length — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- machine: {platform.processor() or platform.machine()}, 2 cores, Python "
        f"{platform.python_version()}; MiniLM on {backend} (one thread); "
        f"{args.queries} timed build() calls per row (LoCoMo "
        "questions), working set caught up before timing; plot: benchmarks/turn_latency.png",
        f"- method: the rows at turns {', '.join(f'{c:,}' for c in checkpoints)} are timed on "
        "copies of the stores made at those turns, one embedder's copies open at once, in "
        f"{args.rounds} rounds of {args.queries // args.rounds} builds each, the copies "
        "taking turns in alternating order (so that a slow spell of the machine weighs on "
        "every checkpoint alike); the other rows one after the other, on the live stores\n",
        "| turns | embedder | units stored | units in working set | p50 ms | p95 ms | "
        "p50 / p50 at first checkpoint | max prompt tokens |",
        "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = first.get(r["embedder"])
        ratio = f"{r['p50'] / base:.2f}" if base else "-"
        lines.append(f"| {r['turns']:,} | {r['embedder']} | {r['stored']:,} | {r['units']:,} | "
                     f"{r['p50']:.2f} | "
                     f"{r['p95']:.2f} | {ratio} | {r['tokens']:,} |")
    report = "\n".join(lines) + "\n"
    record(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
