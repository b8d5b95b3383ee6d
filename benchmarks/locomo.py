"""Recall quality on LoCoMo: does the 4096-token prompt hold what a question needs?

    .venv/bin/python benchmarks/locomo.py --data ../shared/data/locomo-dev
    .venv/bin/python benchmarks/locomo.py --data DIR --embedder hashing --out -

Each conversation is ingested turn by turn into a fresh store (speaker, the
session's date as timestamp plus one second per turn, the dia_id as metadata; a
shared photo's caption is part of the turn's text, as the conversation showed it).
Then, for every question of categories 1-4 (multi-hop, temporal, open-domain,
single-hop), ``build(question)`` makes the prompt, and we measure:

* evidence recall: the share of the question's evidence turns present in the
  prompt at level 0 or 1 (verbatim in the history, or a memory shown verbatim or
  compressed whose source turn is the evidence);
* answer containment: the share of the answer's content words found in the
  prompt text (lower-cased words; stopwords left out);
* prompt tokens (cl100k).

Three baselines run on the same data in the same process: plain top-k retrieval
of raw turns, best first until 3,072 tokens, by BM25 and by the engine's own
embedder (cosine similarity), and the whole conversation in the prompt; each turn
prefixed with its session's date and speaker. The table
is printed and appended to benchmarks/RESULTS.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from results import record

from memory_plugins import MemoryEngine
from memory_plugins.cli.progress import Progress
from memory_plugins.tokenizers import TiktokenTokenizer

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
STOP = set("""a an the of to in on at for and or but is are was were be been it its this that
with as by from i you he she they we my your his her their our me him them us do does did
what when where who which how why not no yes so if than then there here""".split())
WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOP]


def sessions(conv: dict[str, Any]) -> list[tuple[str, dt.datetime, list[dict[str, Any]]]]:
    out = []
    for key in conv:
        m = re.fullmatch(r"session_(\d+)", key)
        if m and isinstance(conv[key], list):
            when = dt.datetime.strptime(conv[f"{key}_date_time"], "%I:%M %p on %d %B, %Y")
            out.append((key, when.replace(tzinfo=dt.UTC), conv[key]))
    return sorted(out, key=lambda s: int(s[0].split("_")[1]))


def turn_text(turn: dict[str, Any]) -> str:
    caption = turn.get("blip_caption")
    return f"{turn['text']} [shares {caption}]" if caption else turn["text"]


def bm25_topk(turns: list[tuple[str, str]], question: str, tok: TiktokenTokenizer,
              budget: int) -> tuple[str, set[str]]:
    docs = [Counter(words(t)) for _d, t in turns]
    n = len(docs)
    avg = sum(sum(d.values()) for d in docs) / max(1, n)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    q = set(words(question))
    scores = []
    for i, d in enumerate(docs):
        length = sum(d.values())
        s = 0.0
        for w in q:
            if w in d:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                s += idf * d[w] * 2.2 / (d[w] + 1.2 * (0.25 + 0.75 * length / avg))
        scores.append((-s, i))
    scores.sort()
    return _fill(turns, [i for _s, i in scores], tok, budget)


def dense_topk(turns: list[tuple[str, str]], vectors: Any, query_vector: Any,
               tok: TiktokenTokenizer, budget: int) -> tuple[str, set[str]]:
    """Raw turns by cosine similarity to the question (the engine's embedder), best
    first, until ``budget`` tokens: plain vector retrieval of whole turns."""
    order = sorted(range(len(turns)), key=lambda i: (-float(vectors[i] @ query_vector), i))
    return _fill(turns, order, tok, budget)


def _fill(turns: list[tuple[str, str]], order: list[int], tok: TiktokenTokenizer,
          budget: int) -> tuple[str, set[str]]:
    """Turns taken best first while they fit in ``budget`` tokens, shown in time order."""
    chosen, used = [], 0
    for i in order:
        cost = tok.count(turns[i][1]) + 3
        if used + cost > budget:
            continue
        chosen.append(i)
        used += cost
    return "\n".join(turns[i][1] for i in sorted(chosen)), {turns[i][0] for i in chosen}


def run(data: Path, embedder: str) -> dict[str, Any]:
    tok = TiktokenTokenizer()
    rows: dict[str, dict[str, list[float]]] = {}
    build_ms: list[float] = []
    backend = None
    for path in sorted(data.glob("*.json")):
        conv = json.loads(path.read_text())
        with tempfile.TemporaryDirectory(dir=ROOT) as tmp, \
                MemoryEngine(tmp, embedder=embedder, durability="deferred") as engine:
            user = f"locomo-{path.stem}"
            raw: list[tuple[str, str]] = []
            for key, when, turns in sessions(conv):
                for n, turn in enumerate(turns):
                    text = turn_text(turn)
                    engine.observe(text, user_id=user, speaker=turn["speaker"],
                                   session_id=key, timestamp=when + dt.timedelta(seconds=n),
                                   metadata={"dia_id": turn["dia_id"]})
                    raw.append((turn["dia_id"],
                                f"[{when:%-d %B %Y}] {turn['speaker']}: {text}"))
            whole = "\n".join(t for _d, t in raw)
            embedder_used = engine._recall_engine().embedder  # the engine's own model
            embed = embedder_used.embed
            backend = getattr(embedder_used, "backend", None)
            turn_vectors = embed([t for _d, t in raw])
            engine.build("warm-up", user_id=user)  # loads the index once, not timed
            bar = Progress(sum(qa.get("category") in CATEGORIES for qa in conv["qa"]),
                           label=path.stem, unit="questions")  # drawn on a terminal only
            for qa in conv["qa"]:
                cat = qa.get("category")
                if cat not in CATEGORIES:
                    continue
                bar.advance()
                question, answer = qa["question"], str(qa.get("answer", ""))
                evidence = set(qa.get("evidence", []))
                t0 = time.perf_counter()
                prompt = engine.build(question, user_id=user)
                build_ms.append((time.perf_counter() - t0) * 1000)
                shown = {s.metadata.get("dia_id") for s in prompt.sources
                         if s.metadata and s.level <= 1}
                text = prompt.text.lower()
                base_text, base_ids = bm25_topk(raw, question, tok, 3072)
                dense_text, dense_ids = dense_topk(raw, turn_vectors, embed([question])[0],
                                                   tok, 3072)
                answer_words = words(answer) or [answer.lower()]
                for system, ids, body, tokens in (
                        ("memory-plugins", shown, text, prompt.tokens["total"]),
                        ("top-k turns, BM25 (3,072 tok)", base_ids, base_text.lower(), 3072),
                        ("top-k turns, vectors (3,072 tok)", dense_ids, dense_text.lower(),
                         3072),
                        ("whole conversation", {d for d, _t in raw}, whole.lower(),
                         tok.count(whole))):
                    r = rows.setdefault(system, {})
                    for name in (CATEGORIES[cat], "overall"):
                        r.setdefault(f"{name}/evidence", []).append(
                            len(evidence & ids) / len(evidence) if evidence else 1.0)
                        body_words = set(WORD.findall(body))
                        r.setdefault(f"{name}/contain", []).append(
                            sum(w in body_words for w in answer_words) / len(answer_words))
                        r.setdefault(f"{name}/tokens", []).append(tokens)
            bar.close()
    return {"rows": rows, "build_ms": build_ms, "backend": backend}


def table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    names = [*CATEGORIES.values(), "overall"]
    out = ["| system | " + " | ".join(f"{n} ev / ans" for n in names)
           + " | prompt tokens (median) |",
           "|---|" + "---:|" * (len(names) + 1)]
    for system, r in rows.items():
        cells = [f"{statistics.fmean(r[f'{n}/evidence']):.3f} / "
                 f"{statistics.fmean(r[f'{n}/contain']):.3f}" for n in names]
        out.append(f"| {system} | " + " | ".join(cells)
                   + f" | {statistics.median(r['overall/tokens']):,.0f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "locomo-dev")
    ap.add_argument("--embedder", default="default", choices=["default", "hashing"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"),
                    help="markdown file to append to ('-': print only)")
    args = ap.parse_args()
    t0 = time.time()
    result = run(args.data, args.embedder)
    ms = sorted(result["build_ms"])
    n = len(ms)
    rows = result["rows"]["memory-plugins"]
    questions = len(rows["overall/evidence"])
    report = "\n".join([
        f"\n## LoCoMo recall quality — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; embedder: {args.embedder}"
        + (f" (on {result['backend']})" if result["backend"] else "") + "; "
        f"{questions} questions (categories 1-4) over {args.data.name}",
        "- cells: evidence recall / answer containment (means); method in the script's "
        "docstring",
        f"- build() latency over these questions: p50 {ms[n // 2]:.1f} ms, "
        f"p95 {ms[int(0.95 * n)]:.1f} ms; run took {time.time() - t0:.0f} s\n",
        table(result), ""])
    record(report, args.out, end="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
