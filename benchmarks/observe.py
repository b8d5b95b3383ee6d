"""observe() latency (durable) and disk bytes per turn, at growing store sizes.

    .venv/bin/python benchmarks/observe.py                       # 1k, 100k, 1M stored turns
    .venv/bin/python benchmarks/observe.py --quick               # 1k, 10k; 500 samples, 5 rounds
    .venv/bin/python benchmarks/observe.py --sizes 1000,100000 --samples 2000 --profile 300
    .venv/bin/python benchmarks/observe.py --snapshots ../snap   # keep/reuse the loaded stores

Turns are the real LoCoMo conversations in ``../shared/data/locomo-dev`` replayed in
order, cycling through the three conversations; each replay of a conversation is a new
user (``conv26-pass0``, ``conv30-pass0``, ``conv41-pass0``, ``conv26-pass1``, ...), so a
large store holds many users, as a deployment would. Each turn keeps its speaker,
session id, ``dia_id`` (as metadata) and its session's date (plus the turn's index in
seconds, so that a session's turns are in time order).

For each size, ascending: the store is grown to that many turns by a MemoryEngine opened
with ``durability="deferred"`` (fast bulk load), closed, measured on disk and copied
aside (a snapshot). Then timing, in ``--rounds`` rounds, the sizes taking turns (in
alternating order) so that the machine's drift (a busy neighbour, the disk's cache)
weighs on every size alike: each measurement opens a fresh copy of the size's snapshot
(once the disk has finished writing the copy: see ``wait_for_quiet_disk``) with the
default (durable, fsync per commit) settings, makes ``--warmup`` untimed calls (the
first calls after opening pay one-time costs; the maximum column still shows the
worst timed call), then times ``--samples / --rounds`` observe() calls one by one with
``perf_counter``, continuing the stream where the snapshot left it: back to back
(sustained ingest), then paced (``--pace-ms`` idle after each call, as in a chat), then
back to back with ``durability="deferred"`` (the CPU part, no fsync). Timing starts
with the working set caught up with the log. No embedding model is involved: the engine
computes none on observe().

Disk bytes per turn: the ``data.mdb`` file sizes (raw log and working set, reported apart
when the store keeps them in separate environments) and ``stats().log_bytes`` (LMDB pages
in use), each divided by ``stats().turns``. The store holds no embeddings.

The table is printed and appended to ``benchmarks/RESULTS.md`` with the command, the
machine and a verdict against the targets of the issue (p95 <= 1 ms at each size, p95
flat across sizes within 20%, <= 512 bytes on disk per turn).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import itertools
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb

from memory_plugins import MemoryEngine
from memory_plugins.settings import DEFAULT_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "locomo-dev"
PROGRESS_EVERY = 50_000
MAX_FAILURES_IN_A_ROW = 50  # observe() keeps raising: the store is stuck, stop measuring
EXTRA_SETTINGS: dict[str, Any] = {}  # given to every MemoryEngine (--map-size-mb)

PENDING = int(DEFAULT_SETTINGS["max_pending_turns"])  # the engine's default
BENCH_META = "bench.json"  # in a kept snapshot (--snapshots): how it was built

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


def stream_at(convs: list[tuple[str, list[tuple[str, dt.datetime, Any]]]], start: int
              ) -> Iterator[Turn]:
    """The turn stream from its ``start``-th turn: what follows a store of that size."""
    return itertools.islice(turn_stream(convs), start, None)


def average_turn_bytes(convs: list[tuple[str, list[tuple[str, dt.datetime, Any]]]]) -> float:
    sizes = [len(t["text"].encode("utf-8")) for _c, ss in convs for _s, _w, ts in ss for t in ts]
    return statistics.fmean(sizes)


# -- measuring -----------------------------------------------------------------------------


@dataclass(slots=True)
class Rejected:
    count: int = 0
    first: str = ""
    in_a_row: int = 0

    def ok(self) -> None:
        self.in_a_row = 0

    def add(self, turn: Turn, exc: Exception) -> None:
        self.count += 1
        self.in_a_row += 1
        if self.in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise RuntimeError(f"observe() raised {self.in_a_row} times in a row; the store "
                               f"looks stuck. Last: {type(exc).__name__}: {exc}") from exc
        if not self.first:
            self.first = (f"{type(exc).__name__}: {exc} (user {turn.user_id}, {turn.dia_id}, "
                          f"text {turn.text[:60]!r}...)")


PHASES = ("durable", "paced", "deferred")


@dataclass(slots=True)
class Row:
    size: int  # stored turns when timing began
    users: int
    load_rate: float  # turns/s of the deferred bulk load that reached this size (0: none)
    files: dict[str, tuple[int, int]]  # environment dir -> (data.mdb size, allocated bytes)
    used_bytes: int  # stats().log_bytes: LMDB high-water mark of pages, all environments
    live: int  # B-tree pages holding data, all environments (free pages left out)
    samples: dict[str, list[float]] = field(default_factory=dict)  # phase -> seconds
    rounds: dict[str, list[float]] = field(default_factory=dict)  # phase -> each round's p95
    rejected_load: int = 0
    rejected_timed: int = 0
    settle_s: list[float] = field(default_factory=list)  # waits for a quiet disk, per phase

    def pct(self, q: float, phase: str = "durable") -> float:
        return percentile(self.samples[phase], q)

    def bytes_of(self, part: str) -> int:
        """data.mdb bytes of the raw log ("log": its archive and inbox), the rest
        ("ws") or all ("all")."""
        return sum(size for env, (size, _alloc) in self.files.items()
                   if part == "all" or (env in ("log", "inbox")) == (part == "log"))


def percentile(seconds: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` of ``seconds``, in ms."""
    s = sorted(seconds)
    return s[min(len(s) - 1, int(q * len(s)))] * 1e3


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
    engine = MemoryEngine(path, **{**EXTRA_SETTINGS, "durability": "deferred"})
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
            rejected.ok()
            done += 1
            if done % PROGRESS_EVERY == 0:
                now = time.perf_counter()
                print(f"  bulk load: {done:,}/{count:,} turns, "
                      f"{(done - last_done) / (now - last_t):,.0f} turns/s now, "
                      f"{done / (now - t0):,.0f} overall", file=sys.stderr, flush=True)
                last_t, last_done = now, done
        engine.stats()  # the working set caught up: part of the load's cost
        elapsed = time.perf_counter() - t0
    finally:
        engine.close()
    return done / elapsed, rejected.count - before


def read_meta(snapshot: Path) -> dict[str, Any] | None:
    """What a kept snapshot was built with (None: not there, or never completed)."""
    try:
        meta: dict[str, Any] = json.loads((snapshot / BENCH_META).read_text())
        return meta
    except (OSError, ValueError):
        return None


def write_meta(snapshot: Path, meta: dict[str, Any]) -> None:
    (snapshot / BENCH_META).write_text(json.dumps(meta))  # last: marks it complete


def copy_store(src: Path, dst: Path) -> Path:
    """A copy of the closed store ``src`` at ``dst`` (replacing it), flushed with
    ``os.sync()``; a virtual disk may still be writing it afterwards, which is why the
    timing waits for a quiet disk (``wait_for_quiet_disk``) after each copy."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("lock.mdb", BENCH_META))
    os.sync()
    return dst


def settle(path: Path) -> Any:
    """Open, let the working set catch up with the log (stats() does), close; the stats."""
    with MemoryEngine(path, **{**EXTRA_SETTINGS, "durability": "deferred"}) as engine:
        st = engine.stats()
        engine.flush()
    return st


def untimed(engine: MemoryEngine, stream: Iterator[Turn], count: int, rejected: Rejected,
            pace: float = 0.0) -> None:
    """``count`` observe() calls, not timed (a turn it rejects is recorded)."""
    for _ in range(count):
        turn = next(stream)
        try:
            observe(engine, turn)
        except Exception as exc:
            rejected.add(turn, exc)
        if pace:
            time.sleep(pace)


def timed(path: Path, stream: Iterator[Turn], samples: int, rejected: Rejected,
          profile: int = 0, pace: float = 0.0, warmup: int = 0, **settings: Any
          ) -> tuple[list[float], int, str]:
    """Reopen (default settings: durable) and time ``samples`` observe() calls, with
    ``pace`` seconds of idle time after each (0: back to back), after ``warmup``
    untimed calls (the first calls after opening pay one-time costs: the worker
    thread starting, the map's pages faulting in)."""
    settle(path)
    before = rejected.count
    out: list[float] = []
    report = ""
    engine = MemoryEngine(path, **{**EXTRA_SETTINGS, **settings})
    try:
        clock = time.perf_counter
        untimed(engine, stream, warmup, rejected, pace)
        engine.flush()  # the timed calls start with the working set caught up
        while len(out) < samples:
            turn = next(stream)
            t0 = clock()
            try:
                observe(engine, turn)
            except Exception as exc:
                rejected.add(turn, exc)
                continue
            out.append(clock() - t0)
            rejected.ok()
            if pace:
                time.sleep(pace)
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            untimed(engine, stream, profile, rejected)
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(15)
            report = buf.getvalue()
    finally:
        engine.close()
    return out, rejected.count - before, report


def commit_floor(directory: Path, pace: float, n: int = 500) -> tuple[float, float]:
    """p50, p95 ms of what the disk alone makes a durable commit cost: two 4 KiB
    pwrite+fdatasync in a row (LMDB's commit syncs its data pages, then its meta
    page), ``pace`` seconds apart from the previous pair (a virtual disk may answer
    the first sync after an idle gap more slowly)."""
    fd, name = tempfile.mkstemp(prefix="fsync-", dir=directory)
    out = []
    try:
        block = b"x" * 4096
        for i in range(n):
            t0 = time.perf_counter()
            os.pwrite(fd, block, (i % 64) * 4096)
            os.fdatasync(fd)
            os.pwrite(fd, block, 64 * 4096)
            os.fdatasync(fd)
            out.append(time.perf_counter() - t0)
            if pace:
                time.sleep(pace)
    finally:
        os.close(fd)
        os.unlink(name)
    return percentile(out, 0.5), percentile(out, 0.95)


def wait_for_quiet_disk(directory: Path, floor_ms: float, limit_s: float = 5.0) -> float:
    """Seconds spent waiting until the disk commits about as fast as when the run
    began: copying a snapshot (450 MB at 1M turns) can leave a virtual disk writing
    behind ``os.sync()``, which would slow the next measurement's fsyncs for reasons
    of the benchmark's own making. Probes of 20 back-to-back commits until their p50
    is within 1.5x ``floor_ms``, or ``limit_s`` has passed."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        if commit_floor(directory, 0.0, 20)[0] <= 1.5 * floor_ms:
            break
        time.sleep(0.1)
    return time.perf_counter() - t0


_MDB_DB = struct.Struct("<IHHQQQQQ")  # LMDB's MDB_db record: pad, flags, depth, pages...


def live_bytes(path: Path) -> int:
    """Bytes of the B-tree pages holding data, all environments (free pages left out):
    read from each environment's main database, whose values are the named databases'
    MDB_db records."""
    total = 0
    for f in sorted(path.rglob("data.mdb")):
        env = lmdb.open(str(f.parent), readonly=True, lock=False, max_dbs=64)
        try:
            st = env.stat()
            total += (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]) * st["psize"]
            with env.begin() as txn:
                for _name, raw in txn.cursor():
                    if len(raw) == _MDB_DB.size:
                        _pad, _flags, _depth, branch, leaf, overflow, _n, _root = \
                            _MDB_DB.unpack(bytes(raw))
                        total += (branch + leaf + overflow) * st["psize"]
        finally:
            env.close()
    return total


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" with uncommitted changes in src/" if dirty else " (src/ clean)")


def disk(path: Path) -> dict[str, tuple[int, int]]:
    """Each LMDB environment under the store (its directory relative to the store, "."
    for a single-environment store) -> (data.mdb size, allocated bytes)."""
    out = {}
    for f in sorted(path.rglob("data.mdb")):
        st = f.stat()
        out[str(f.parent.relative_to(path))] = (st.st_size, st.st_blocks * 512)
    if not out:
        raise SystemExit(f"no data.mdb under {path}: the store layout changed?")
    return out


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


def table(rows: list[Row], pace_ms: float) -> str:
    base = rows[0].pct(0.95)
    split = any("log" in r.files for r in rows)
    head = ["stored turns", "users", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms",
            f"p95 / p95@{rows[0].size:,}", "p95 by round ms",
            f"paced ({pace_ms:g} ms gap) p50 / p95 ms",
            "deferred p50 / p95 ms", "bulk load turns/s"]
    if split:
        head += ["log B/turn", "working set B/turn"]
    head += ["data.mdb total B/turn", "stats().log_bytes B/turn", "live pages B/turn"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        n = r.size
        cells = [f"{n:,}", f"{r.users:,}", f"{len(r.samples['durable']):,}",
                 f"{r.pct(0.50):.3f}", f"{r.pct(0.95):.3f}", f"{r.pct(0.99):.3f}",
                 f"{max(r.samples['durable']) * 1e3:.3f}", f"{r.pct(0.95) / base:.2f}",
                 " ".join(f"{p:.2f}" for p in r.rounds["durable"]),
                 f"{r.pct(0.5, 'paced'):.3f} / {r.pct(0.95, 'paced'):.3f}",
                 f"{r.pct(0.5, 'deferred'):.3f} / {r.pct(0.95, 'deferred'):.3f}",
                 f"{r.load_rate:,.0f}" if r.load_rate else "-"]
        if split:
            cells += [f"{r.bytes_of('log') / n:,.0f}", f"{r.bytes_of('ws') / n:,.0f}"]
        cells += [f"{r.bytes_of('all') / n:,.0f}", f"{r.used_bytes / n:,.0f}",
                  f"{r.live / n:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> list[str]:
    out = []
    for phase, label in (("durable", "back to back"), ("paced", "paced")):
        p95 = [r.pct(0.95, phase) for r in rows]
        worst = max(p95)
        ok = worst <= TARGET_P95_MS
        out.append(f"- p95 <= {TARGET_P95_MS:g} ms at every size, durable, {label}: "
                   f"**{'PASS' if ok else 'FAIL'}** (p95 {', '.join(f'{p:.3f}' for p in p95)} "
                   f"ms; worst {worst:.3f} ms)")
        ratios = [p / p95[0] for p in p95]
        dev = max(abs(x - 1) for x in ratios)
        ok = dev <= TARGET_FLAT
        out.append(f"- p95 (durable, {label}) flat across sizes within {TARGET_FLAT:.0%} of "
                   f"p95@{rows[0].size:,}: **{'PASS' if ok else 'FAIL'}** (ratios "
                   f"{', '.join(f'{x:.2f}' for x in ratios)}; largest deviation {dev:.0%})")
    big = rows[-1]
    for label, value in (("data.mdb file sizes, log + working set", big.bytes_of("all")),
                         ("live B-tree pages (free pages left out)", big.live)):
        per = value / big.size
        out.append(f"- <= {TARGET_BYTES} B on disk per turn, by {label}, at {big.size:,} "
                   f"turns: **{'PASS' if per <= TARGET_BYTES else 'FAIL'}** ({per:,.0f} B/turn)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,100000,1000000",
                    help="stored-turn counts to time at, comma-separated")
    ap.add_argument("--samples", type=int, default=3000,
                    help="timed observe() calls per size and phase")
    ap.add_argument("--rounds", type=int, default=40,
                    help="split each size's samples into this many rounds, sizes taking "
                         "turns (default 40: a slow spell of the machine, which can last a "
                         "round, then weighs on every size alike and on few samples)")
    ap.add_argument("--warmup", type=int, default=200,
                    help="untimed observe() calls after each reopen, before timing")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: sizes 1000,10000 and 500 samples")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"),
                    help="markdown file the results are appended to ('-' for none)")
    ap.add_argument("--data", default=str(DATA), help="LoCoMo conversations directory")
    ap.add_argument("--tmpdir", default=str(ROOT.parent),
                    help="where the temporary store goes: a real disk, not tmpfs, so that "
                         "fsync costs what it costs (default: the repository's parent)")
    ap.add_argument("--pace-ms", type=float, default=5.0,
                    help="idle time after each call in the paced phase (default 5 ms)")
    ap.add_argument("--map-size-mb", type=int, default=0,
                    help="initial LMDB map size given to every engine (default: the "
                         "engine's own). Address space only; a per-process setting")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--snapshots", default="", metavar="DIR",
                    help="keep each size's bulk-loaded snapshot in DIR (at-SIZE) and reuse "
                         "it in later runs instead of loading again (the 1M load takes "
                         "~13 min); the table says which revision built a reused one")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing at each size, cProfile N more observe() calls and print "
                         "the top 15 by cumulative time to stderr")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.samples, args.rounds = "1000,10000", 500, 5
    if args.map_size_mb:
        EXTRA_SETTINGS["map_size_mb"] = args.map_size_mb
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] <= 0 or args.samples <= 0 or args.rounds <= 0:
        ap.error("sizes, samples and rounds must be positive")

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

    floors = [commit_floor(tmp_parent, pace) for pace in (0.0, args.pace_ms / 1000)]
    rejected = Rejected()
    rows: list[Row] = []
    snapshots: dict[int, Path] = {}  # row size -> a closed copy of the store at that size
    reused: dict[int, str] = {}  # row size -> the revision that built the reused snapshot
    kept = Path(args.snapshots).resolve() if args.snapshots else None
    stored = 0  # turns in the largest snapshot so far
    at = 0  # turns in the working store
    started = dt.datetime.now(dt.UTC)
    revision = git_revision()  # now: src/ may change while this runs
    stopped = ""
    per_round = -(-args.samples // args.rounds)
    try:
        for size in sizes:
            snap = (kept / f"at-{size}") if kept else store.parent / f"{store.name}-at-{size}"
            meta = read_meta(snap) if kept else None
            if meta is not None:
                print(f"size {size:,}: reusing {snap} (built by {meta['revision']})",
                      file=sys.stderr, flush=True)
                rate, bad_load, measured = meta["load_rate"], meta["rejected"], snap
                st = settle(snap)
                reused[st.turns] = meta["revision"]
            else:
                if at != stored:  # the smaller snapshot was reused: continue from it
                    copy_store(snapshots[stored], store)
                print(f"size {size:,}: bulk-loading {size - stored:,} turns (deferred)",
                      file=sys.stderr, flush=True)
                rate, bad_load = bulk_load(store, stream_at(convs, stored), size - stored,
                                           rejected)
                st = settle(store)
                at, measured = st.turns, store
                copy_store(store, snap)
                if kept:
                    write_meta(snap, {"load_rate": rate, "rejected": bad_load,
                                      "revision": revision, "turns": st.turns})
            if st.turns != max(size, stored):
                print(f"warning: stats().turns is {st.turns:,}, expected {size:,}",
                      file=sys.stderr)
            rows.append(Row(size=st.turns, users=st.users, load_rate=rate,
                            files=disk(measured), used_bytes=st.log_bytes,
                            live=live_bytes(measured), rejected_load=bad_load,
                            samples={phase: [] for phase in PHASES},
                            rounds={phase: [] for phase in PHASES}))
            snapshots[st.turns] = snap
            stored = st.turns
        work = store.parent / f"{store.name}-timed"
        for r in range(args.rounds):
            # Sizes alternate direction from round to round, so that a drift in the
            # machine's speed (another tenant, the disk's cache) weighs on all alike.
            for row in rows if r % 2 == 0 else rows[::-1]:
                for phase in PHASES:
                    print(f"round {r + 1}/{args.rounds}, size {row.size:,}: timing "
                          f"{per_round:,} observe() calls, {phase}", file=sys.stderr,
                          flush=True)
                    copy_store(snapshots[row.size], work)
                    row.settle_s.append(wait_for_quiet_disk(tmp_parent, floors[0][0]))
                    try:
                        timings, bad, prof = timed(
                            work, stream_at(convs, row.size), per_round, rejected,
                            profile=args.profile if phase == "durable" and r == 0 else 0,
                            pace=args.pace_ms / 1000 if phase == "paced" else 0.0,
                            warmup=args.warmup,
                            **({"durability": "deferred"} if phase == "deferred" else {}))
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                    row.samples[phase] += timings
                    row.rounds[phase].append(percentile(timings, 0.95))
                    row.rejected_timed += bad
                    if prof:
                        print(f"--- cProfile of {args.profile} observe() calls (calling "
                              f"thread only) at {row.size:,} turns ---\n{prof}",
                              file=sys.stderr)
        for row in rows:
            print(f"size {row.size:,}: durable p50 {row.pct(0.5):.3f} ms, p95 "
                  f"{row.pct(0.95):.3f} ms; paced p95 {row.pct(0.95, 'paced'):.3f} ms; "
                  f"{row.bytes_of('all') / row.size:,.0f} B/turn (data.mdb)", file=sys.stderr)
    except Exception as exc:  # keep the rows measured so far, say why it stopped
        stopped = f"stopped before every row was complete: {type(exc).__name__}: {exc}"
        print(stopped, file=sys.stderr)
        rows = [row for row in rows if all(row.samples.values())]
        if not rows:
            raise
    finally:
        for path in (store, *([] if kept else snapshots.values())):
            if not args.keep:
                shutil.rmtree(path, ignore_errors=True)
            else:
                print(f"kept the store at {path}", file=sys.stderr)

    command = " ".join([".venv/bin/python", "benchmarks/observe.py", *sys.argv[1:]]) \
        if argv is None else "observe.main(" + repr(argv) + ")"
    total_rejected = sum(r.rejected_load + r.rejected_timed for r in rows)
    md = [
        f"## observe() latency and disk bytes per turn — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command}`",
        f"- code: {revision}",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"- store filesystem: {fs}. The disk's own share of a durable commit there (two "
        "4 KiB pwrite+fdatasync in a row: LMDB syncs its data pages, then its meta page), "
        f"p50 / p95: {floors[0][0]:.3f} / {floors[0][1]:.3f} ms back to back, "
        f"{floors[1][0]:.3f} / {floors[1][1]:.3f} ms after {args.pace_ms:g} ms idle (the "
        "paced phase's gap)",
        f"- data: LoCoMo {', '.join(c for c, _ in convs)} replayed in order, one user per "
        f"conversation pass ({per_pass:,} turns per pass); average turn text "
        f"{avg_bytes:.1f} B (UTF-8)",
        "- method: bulk load with durability=\"deferred\" (rate includes the working set "
        "catching up), close, copy aside (a snapshot per size). Then "
        f"{args.rounds} rounds, sizes taking turns in alternating order: each phase of each "
        "round opens a fresh copy of the size's snapshot (so every measurement starts at "
        "exactly that size; after copying, it waits until a probe of 20 back-to-back "
        "commits runs within 1.5x of the back-to-back p50 above, so that the copy's "
        "write-back does not slow the measurement: "
        + ", ".join(f"{r.size:,}: median {statistics.median(r.settle_s):.2f} s, max "
                    f"{max(r.settle_s):.2f} s" for r in rows if r.settle_s)
        + f"), makes {args.warmup} untimed calls (one-time costs after "
        "opening), then times each observe() with perf_counter, with the working set "
        "caught up at the start: durable (durability=\"sync\", fsync per commit) back to "
        "back (sustained ingest); durable paced, "
        f"{args.pace_ms:g} ms idle after each call (a chat's pace: the background worker "
        "keeps up between calls); deferred (no fsync per commit: the CPU part). "
        + (f"A round's {per_round:,} back-to-back calls leave fewer than max_pending_turns "
           f"({PENDING}) turns unapplied, so they leave out the one call in {PENDING} that "
           "applies the backlog itself in a longer burst (earlier runs with rounds of 400 "
           "calls had it: their max column, 170-195 ms). " if per_round < PENDING else
           "Past max_pending_turns unapplied turns, a back-to-back call applies them "
           "itself (the max column). ")
        + "A size's percentiles pool its rounds' samples; the 'p95 by round' column shows "
        "the spread. No embedding is computed on observe(). "
        "Percentiles nearest-rank",
        *([f"- every engine opened with map_size_mb={args.map_size_mb} (LMDB address "
            "space; not persisted)"] if args.map_size_mb else []),
        "- bytes: data.mdb file sizes (the log and the working set; no embeddings are "
        "stored), stats().log_bytes (LMDB's high-water mark of pages) and the B-tree pages "
        "holding data (free pages left out), each divided by the turns stored; measured "
        "right after the deferred bulk load",
        "- stored turns counts what each snapshot holds; the timed turns go to its copies",
        *([f"- snapshots reused from {kept}: " + ", ".join(
            f"{n:,} turns built by {rev}" for n, rev in sorted(reused.items()))
           + " (load rate and bytes are those of that build)"] if reused else []),
        "",
        table(rows, args.pace_ms),
        "",
        *verdicts(rows),
    ]
    if total_rejected:
        md += ["", f"- **{total_rejected} turn(s) raised in observe() and were skipped** "
                   f"(not timed; the turn may still have been logged); first: {rejected.first}"]
    if stopped:
        md += ["", f"- **{stopped}**"]
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
