"""build() latency and prompt size as a conversation grows, with and without MiniLM.

    .venv/bin/python benchmarks/turn_latency.py                 # turns 100, 1,000, 10,000
    .venv/bin/python benchmarks/turn_latency.py --quick --out -

One user talks: LoCoMo turns replayed in order (one minute apart), and at each
checkpoint ``--queries`` build() calls are timed with LoCoMo questions as the
current input (the working set caught up first, so only build() is timed).
Two engines run the same stream side by side: one with the hashing embedder
("no model") and one with all-MiniLM-L6-v2 on one torch thread (query embedding
included in the time). A last row stresses the working set itself: 100,000 units
(``warm_units`` raised to hold them), hashing embedder.

Prints a table, appends it to benchmarks/RESULTS.md, and draws
benchmarks/turn_latency.png: build() p50/p95 and prompt tokens against turns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def measure(engine: MemoryEngine, questions: list[str], n: int) -> dict[str, float]:
    engine.stats("talker")  # catch up: only build() is timed
    engine.build(questions[0], user_id="talker")  # index built once, not timed
    times, tokens = [], []
    for k in range(n):
        t0 = time.perf_counter()
        prompt = engine.build(questions[k % len(questions)], user_id="talker")
        times.append((time.perf_counter() - t0) * 1000)
        tokens.append(prompt.tokens["total"])
    return {"p50": pct(times, 0.5), "p95": pct(times, 0.95), "tokens": max(tokens),
            "units": engine.stats("talker").units}


def run(checkpoints: list[int], queries: int, stress_units: int) -> list[dict[str, Any]]:
    turns, questions = load(DATA)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        engines = {
            "no model": MemoryEngine(Path(tmp) / "hash", embedder="hashing",
                                     durability="deferred"),
            "MiniLM": MemoryEngine(Path(tmp) / "minilm", durability="deferred"),
        }
        try:
            done = 0
            for target in checkpoints:
                for name, engine in engines.items():
                    for i in range(done, target):
                        speaker, text = turns[i % len(turns)]
                        engine.observe(text, user_id="talker", speaker=speaker,
                                       timestamp=START + dt.timedelta(minutes=i))
                    m = measure(engine, questions, queries)
                    rows.append({"turns": target, "embedder": name, **m})
                    print(f"turn {target:,} {name}: p50 {m['p50']:.2f} ms, "
                          f"p95 {m['p95']:.2f} ms, {m['tokens']} tokens, {m['units']} units",
                          file=sys.stderr, flush=True)
                done = target
        finally:
            for engine in engines.values():
                engine.close()
        if stress_units:
            with MemoryEngine(Path(tmp) / "stress", embedder="hashing", durability="deferred",
                              warm_units=stress_units, working_set_tokens=10**8,
                              base_stability_days={t: 10_000.0 for t in (
                                  "episodic", "semantic", "preference", "procedural",
                                  "emotional", "contextual")}) as engine:
                i = 0
                while engine.stats("talker").units < stress_units:
                    for _ in range(5000):
                        speaker, text = turns[i % len(turns)]
                        engine.observe(f"{text} (note {i})", user_id="talker",
                                       speaker=speaker, timestamp=START + dt.timedelta(minutes=i))
                        i += 1
                m = measure(engine, questions, queries)
                rows.append({"turns": i, "embedder": f"no model, {m['units']:,} units", **m})
    return rows


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
    ap.add_argument("--quick", action="store_true", help="turns 100 and 1,000; no stress row")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    checkpoints = [100, 1000] if args.quick else [100, 1000, 10000]
    rows = run(checkpoints, args.queries, 0 if args.quick else 100_000)
    png = ROOT / "benchmarks" / "turn_latency.png"
    plot(rows, png)
    by = {(r["turns"], r["embedder"]): r for r in rows}
    first = {name: by[(checkpoints[0], name)]["p50"] for name in ("no model", "MiniLM")}
    lines = [
        "\n## build() latency against conversation length — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- machine: {platform.processor() or platform.machine()}, 2 cores, Python "
        f"{platform.python_version()}; {args.queries} timed build() calls per row (LoCoMo "
        "questions), working set caught up before timing; plot: benchmarks/turn_latency.png\n",
        "| turns | embedder | units in working set | p50 ms | p95 ms | p50 / p50 at first "
        "checkpoint | max prompt tokens |",
        "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = first.get(r["embedder"])
        ratio = f"{r['p50'] / base:.2f}" if base else "-"
        lines.append(f"| {r['turns']:,} | {r['embedder']} | {r['units']:,} | {r['p50']:.2f} | "
                     f"{r['p95']:.2f} | {ratio} | {r['tokens']:,} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out != "-":
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
