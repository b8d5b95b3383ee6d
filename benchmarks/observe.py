"""observe() latency (durable) and disk bytes per turn, at growing store sizes.

    .venv/bin/python benchmarks/observe.py                       # 1k, 100k, 1M stored turns
    .venv/bin/python benchmarks/observe.py --quick               # 1k, 10k; 500 samples
    .venv/bin/python benchmarks/observe.py --sizes 1000,100000 --samples 2000 --profile 300

Turns are the real LoCoMo conversations in ``../shared/data/locomo-dev`` replayed in
order, cycling through the three conversations; each replay of a conversation is a new
user (``conv26-pass0``, ``conv30-pass0``, ``conv41-pass0``, ``conv26-pass1``, ...), so a
large store holds many users, as a deployment would. Each turn keeps its speaker,
session id, ``dia_id`` (as metadata) and its session's date (plus the turn's index in
seconds, so that a session's turns are in time order).

For each size, ascending: the store is grown to that many turns by a MemoryEngine opened
with ``durability="deferred"`` (fast bulk load), closed, measured on disk, then reopened
with the default (durable, fsync per commit) settings, and ``--samples`` observe() calls,
continuing the same stream, are timed one by one with ``perf_counter``. No embedding
model is involved: the engine computes none on observe().

Disk bytes per turn: ``data.mdb`` file size (and its allocated blocks) and
``stats().log_bytes`` (LMDB pages in use), each divided by ``stats().turns``. Both
cover the raw log and the working set; the store holds no embeddings.

The table is printed and appended to ``benchmarks/RESULTS.md`` with the command, the
machine and a verdict against the targets of the issue (p95 <= 1 ms at each size, p95
flat across sizes within 20%, <= 512 bytes on disk per turn).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory_plugins import MemoryEngine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "locomo-dev"
PROGRESS_EVERY = 50_000

TARGET_P95_MS = 1.0
TARGET_FLAT = 0.20
TARGET_BYTES = 512


# -- the turn stream ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    user_id: str
    session_id: str
    speaker: str
    timestamp: dt.datetime
    dia_id: str
    text: str


def load_conversations(data_dir: Path) -> list[tuple[str, list[tuple[str, dt.datetime, Any]]]]:
    """[(conversation id, [(session id, session date, turns), ...]), ...] in order."""
    convs = []
    for path in sorted(data_dir.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        numbers = sorted(int(m.group(1)) for k in doc if (m := re.fullmatch(r"session_(\d+)", k)))
        sessions = []
        for n in numbers:
            when = dt.datetime.strptime(doc[f"session_{n}_date_time"], "%I:%M %p on %d %B, %Y")
            sessions.append((f"session_{n}", when.replace(tzinfo=dt.UTC), doc[f"session_{n}"]))
        convs.append((path.stem, sessions))
    if not convs:
        raise SystemExit(f"no LoCoMo conversations (*.json) in {data_dir}")
    return convs


def turn_stream(convs: list[tuple[str, list[tuple[str, dt.datetime, Any]]]]) -> Iterator[Turn]:
    """Every conversation's turns in order, conversations in turn, forever; a user per pass."""
    k = 0
    while True:
        for cid, sessions in convs:
            user_id = f"conv{cid}-pass{k}"
            for session_id, when, turns in sessions:
                for i, t in enumerate(turns):
                    yield Turn(user_id, session_id, t["speaker"], when + dt.timedelta(seconds=i),
                               t["dia_id"], t["text"])
        k += 1


def average_turn_bytes(convs: list[tuple[str, list[tuple[str, dt.datetime, Any]]]]) -> float:
    sizes = [len(t["text"].encode("utf-8")) for _c, ss in convs for _s, _w, ts in ss for t in ts]
    return statistics.fmean(sizes)


# -- measuring -----------------------------------------------------------------------------


@dataclass(slots=True)
class Rejected:
    count: int = 0
    first: str = ""

    def add(self, turn: Turn, exc: Exception) -> None:
        self.count += 1
        if not self.first:
            self.first = (f"{type(exc).__name__}: {exc} (user {turn.user_id}, {turn.dia_id}, "
                          f"text {turn.text[:60]!r}...)")


@dataclass(slots=True)
class Row:
    size: int  # stored turns when timing began
    users: int
    load_rate: float  # turns/s of the deferred bulk load that reached this size (0: none)
    file_bytes: int  # data.mdb size
    alloc_bytes: int  # data.mdb allocated blocks
    log_bytes: int  # stats().log_bytes
    samples: list[float] = field(default_factory=list)  # seconds
    rejected_load: int = 0
    rejected_timed: int = 0

    def pct(self, q: float) -> float:
        s = sorted(self.samples)
        return s[min(len(s) - 1, int(q * len(s)))] * 1e3  # nearest rank, ms


def observe(engine: MemoryEngine, turn: Turn) -> None:
    engine.observe(turn.text, user_id=turn.user_id, session_id=turn.session_id,
                   speaker=turn.speaker, timestamp=turn.timestamp,
                   metadata={"dia_id": turn.dia_id})


def bulk_load(path: Path, stream: Iterator[Turn], count: int, rejected: Rejected) -> tuple[
        float, int]:
    """Observe ``count`` turns with durability="deferred"; (turns/s, rejected)."""
    if count <= 0:
        return 0.0, 0
    before = rejected.count
    engine = MemoryEngine(path, durability="deferred")
    try:
        t0 = last_t = time.perf_counter()
        done = last_done = 0
        while done < count:
            turn = next(stream)
            try:
                observe(engine, turn)
            except Exception as exc:  # counted and reported, never hidden
                rejected.add(turn, exc)
                continue
            done += 1
            if done % PROGRESS_EVERY == 0:
                now = time.perf_counter()
                print(f"  bulk load: {done:,}/{count:,} turns, "
                      f"{(done - last_done) / (now - last_t):,.0f} turns/s now, "
                      f"{done / (now - t0):,.0f} overall", file=sys.stderr, flush=True)
                last_t, last_done = now, done
        elapsed = time.perf_counter() - t0
    finally:
        engine.close()
    return done / elapsed, rejected.count - before


def timed(path: Path, stream: Iterator[Turn], samples: int, rejected: Rejected,
          profile: int) -> tuple[list[float], int, str]:
    """Reopen with default (durable) settings and time ``samples`` observe() calls."""
    before = rejected.count
    out: list[float] = []
    report = ""
    engine = MemoryEngine(path)
    try:
        clock = time.perf_counter
        while len(out) < samples:
            turn = next(stream)
            t0 = clock()
            try:
                observe(engine, turn)
            except Exception as exc:
                rejected.add(turn, exc)
                continue
            out.append(clock() - t0)
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(profile):
                turn = next(stream)
                try:
                    observe(engine, turn)
                except Exception as exc:
                    rejected.add(turn, exc)
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(15)
            report = buf.getvalue()
    finally:
        engine.close()
    return out, rejected.count - before, report


def disk(path: Path) -> tuple[int, int]:
    st = (path / "data.mdb").stat()
    return st.st_size, st.st_blocks * 512


# -- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def filesystem(path: Path) -> str:
    """'<fstype> on <device> (<rotational|ssd|unknown>)' for the mount holding ``path``."""
    best = ("", "unknown", "unknown")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            mnt = mnt.replace("\\040", " ")
            if str(path).startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best[0]):
                best = (mnt, dev, fstype)
    except OSError:
        pass
    kind = "disk type unknown"
    name = Path(best[1]).name
    rot = Path(f"/sys/block/{name}/queue/rotational")
    if rot.exists():
        rotational = rot.read_text().strip() == "1"
        kind = ("rotational flag set (virtual disks often report 1)" if rotational
                else "non-rotational")
    return f"{best[2]} on {best[1]} mounted at {best[0] or '?'}, {kind}"


# -- report --------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    base = rows[0].pct(0.95)
    head = ("| stored turns | users | samples | p50 ms | p95 ms | p99 ms | max ms | p95 / p95@"
            f"{rows[0].size:,} | bulk load turns/s | data.mdb B/turn | allocated B/turn "
            "| log_bytes B/turn |")
    lines = [head, "|" + "---:|" * 12]
    for r in rows:
        lines.append(
            f"| {r.size:,} | {r.users:,} | {len(r.samples):,} | {r.pct(0.50):.3f} | "
            f"{r.pct(0.95):.3f} | {r.pct(0.99):.3f} | {max(r.samples) * 1e3:.3f} | "
            f"{r.pct(0.95) / base:.2f} | {r.load_rate:,.0f} | {r.file_bytes / r.size:,.0f} | "
            f"{r.alloc_bytes / r.size:,.0f} | {r.log_bytes / r.size:,.0f} |")
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> list[str]:
    p95 = [r.pct(0.95) for r in rows]
    worst = max(p95)
    ok = worst <= TARGET_P95_MS
    out = [f"- p95 <= {TARGET_P95_MS:g} ms at every size: **{'PASS' if ok else 'FAIL'}** "
           f"(p95 {', '.join(f'{p:.3f}' for p in p95)} ms; worst {worst:.3f} ms)"]
    ratios = [p / p95[0] for p in p95]
    dev = max(abs(x - 1) for x in ratios)
    ok = dev <= TARGET_FLAT
    out.append(f"- p95 flat across sizes within {TARGET_FLAT:.0%} of p95@{rows[0].size:,}: "
               f"**{'PASS' if ok else 'FAIL'}** (ratios {', '.join(f'{x:.2f}' for x in ratios)}; "
               f"largest deviation {dev:.0%})")
    big = rows[-1]
    for label, value in (("data.mdb file size", big.file_bytes),
                         ("stats().log_bytes (pages in use)", big.log_bytes)):
        per = value / big.size
        out.append(f"- <= {TARGET_BYTES} B on disk per turn, by {label} at {big.size:,} turns: "
                   f"**{'PASS' if per <= TARGET_BYTES else 'FAIL'}** ({per:,.0f} B/turn)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,100000,1000000",
                    help="stored-turn counts to time at, comma-separated")
    ap.add_argument("--samples", type=int, default=2000, help="timed observe() calls per size")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: sizes 1000,10000 and 500 samples")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"),
                    help="markdown file the results are appended to ('-' for none)")
    ap.add_argument("--data", default=str(DATA), help="LoCoMo conversations directory")
    ap.add_argument("--tmpdir", default=str(ROOT.parent),
                    help="where the temporary store goes: a real disk, not tmpfs, so that "
                         "fsync costs what it costs (default: the repository's parent)")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing at each size, cProfile N more observe() calls and print "
                         "the top 15 by cumulative time to stderr")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.samples = "1000,10000", 500
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] <= 0 or args.samples <= 0:
        ap.error("sizes and samples must be positive")

    convs = load_conversations(Path(args.data))
    avg_bytes = average_turn_bytes(convs)
    per_pass = sum(len(ts) for _c, ss in convs for _s, _w, ts in ss)
    tmp_parent = Path(args.tmpdir).resolve()
    fs = filesystem(tmp_parent)
    if fs.startswith("tmpfs") or "tmpfs" in fs.split(" on ")[0]:
        print(f"warning: {tmp_parent} is tmpfs: fsync is free there", file=sys.stderr)
    store = Path(tempfile.mkdtemp(prefix="observe-bench-", dir=tmp_parent))
    print(f"store: {store} ({fs})", file=sys.stderr)
    print(f"LoCoMo: {len(convs)} conversations, {per_pass:,} turns per pass, "
          f"average turn text {avg_bytes:.1f} B", file=sys.stderr)

    stream = turn_stream(convs)
    rejected = Rejected()
    rows: list[Row] = []
    stored = 0
    started = dt.datetime.now(dt.UTC)
    try:
        for size in sizes:
            print(f"size {size:,}: bulk-loading {size - stored:,} turns (deferred)",
                  file=sys.stderr, flush=True)
            rate, bad_load = bulk_load(store, stream, size - stored, rejected)
            with MemoryEngine(store, durability="deferred") as eng:
                st = eng.stats()
            file_bytes, alloc = disk(store)
            if st.turns != max(size, stored):
                print(f"warning: stats().turns is {st.turns:,}, expected {size:,}",
                      file=sys.stderr)
            row = Row(size=st.turns, users=st.users, load_rate=rate, file_bytes=file_bytes,
                      alloc_bytes=alloc, log_bytes=st.log_bytes, rejected_load=bad_load)
            print(f"size {st.turns:,}: timing {args.samples:,} durable observe() calls",
                  file=sys.stderr, flush=True)
            row.samples, row.rejected_timed, prof = timed(store, stream, args.samples,
                                                          rejected, args.profile)
            if prof:
                print(f"--- cProfile of {args.profile} observe() calls at {st.turns:,} turns ---"
                      f"\n{prof}", file=sys.stderr)
            print(f"size {row.size:,}: p50 {row.pct(0.5):.3f} ms, p95 {row.pct(0.95):.3f} ms, "
                  f"{row.file_bytes / row.size:,.0f} B/turn (data.mdb)", file=sys.stderr,
                  flush=True)
            rows.append(row)
            with MemoryEngine(store, durability="deferred") as eng:
                stored = eng.stats().turns
    finally:
        if not args.keep:
            shutil.rmtree(store, ignore_errors=True)
        else:
            print(f"kept the store at {store}", file=sys.stderr)

    command = " ".join([".venv/bin/python", "benchmarks/observe.py", *sys.argv[1:]]) \
        if argv is None else "observe.main(" + repr(argv) + ")"
    total_rejected = sum(r.rejected_load + r.rejected_timed for r in rows)
    md = [
        f"## observe() latency and disk bytes per turn — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"- store filesystem: {fs}",
        f"- data: LoCoMo {', '.join(c for c, _ in convs)} replayed in order, one user per "
        f"conversation pass ({per_pass:,} turns per pass); average turn text "
        f"{avg_bytes:.1f} B (UTF-8)",
        "- method: bulk load with durability=\"deferred\", close, reopen with default "
        "settings (durability=\"sync\": fsync per commit), time each observe() with "
        "perf_counter (no embedding is computed on observe); percentiles nearest-rank",
        "",
        table(rows),
        "",
        *verdicts(rows),
    ]
    if total_rejected:
        md += ["", f"- **{total_rejected} turn(s) raised in observe() and were skipped** "
                   f"(not timed, not stored); first: {rejected.first}"]
    text = "\n".join(md) + "\n"
    print(text)
    if args.out != "-":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        prefix = "" if out.exists() and out.stat().st_size else "# Benchmark results\n\n"
        with out.open("a", encoding="utf-8") as f:
            f.write(prefix + text + "\n")
        print(f"appended to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
