"""A child process for the crash and multi-process tests (not collected by pytest).

    python tests/_writer.py write --path STORE --tag A --user alice [--user shared]
                                  [--kind varied|big] [--durability sync|deferred]
                                  [--move-every N] [--count N] [--wait-go]
    python tests/_writer.py read --path STORE --user alice --user bob --expect N
    python tests/_writer.py inspect --path STORE --user alice

Protocol, one line per event on stdout, each flushed at once:

    ready                      the engine is open
    ack <turn id> <i> <hash>   observe() of text_for(kind, tag, i) has returned
    done                       --count turns written

A writer observes turn i of its tag with ``metadata={"writer": tag, "i": i}``, as
user ``users[i % len(users)]``; its text is ``text_for(kind, tag, i)``, so the
test can rebuild every text it should find in the store. The ack is printed only
after ``observe`` returns: an acknowledged turn is one the engine said was stored.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from memory_plugins import MemoryEngine, rawlog

_WORDS = (
    "my dog name is Potola she lives in Paris since March 2019 and likes green apples "
    "we met at the station on Tuesday my sister Ana works at the hospital near the river "
    "I prefer tea over coffee the meeting moved to 3 pm next Friday my flight is at 7:45"
).split()


def text_hash(text: str) -> str:
    """The hash a writer acknowledges: BLAKE2b-128 of the text's exact bytes."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _sentences(rnd: random.Random, n_words: int) -> str:
    out: list[str] = []
    for _ in range(n_words):
        out.append(rnd.choice(_WORDS))
        if rnd.random() < 0.08:
            out[-1] += rnd.choice(".!?")
    return " ".join(out) + "."


@functools.lru_cache(maxsize=4)
def _pool(tag: str) -> str:
    return _sentences(random.Random(f"pool:{tag}"), 70_000)


def text_for(kind: str, tag: str, i: int) -> str:
    """The i-th text a writer with this tag observes (deterministic)."""
    rnd = random.Random(f"{kind}:{tag}:{i}")
    if kind == "big":  # 200 KB (a slice of a larger pool, so the writer spends its time in observe)
        start = rnd.randrange(len(_pool(tag)) - 200_000)
        return f"[{tag}:{i}] " + _pool(tag)[start : start + 200_000]
    if kind != "varied":
        raise ValueError(f"unknown kind {kind!r}")
    choice = i % 9
    if choice == 0:
        return ""
    if choice == 1:
        return f"My dog's name is Potola 🐶🇫🇷👨‍👩‍👧‍👦 turn {i} {rnd.random()}"
    if choice == 2:
        return f"我的狗叫波托拉。她住在巴黎。第{i}轮。東京で会いましょう。한국어 {rnd.random()}"
    if choice == 3:  # control characters, NUL, BOM, line separators, a lone surrogate
        return f"\x00\x01\x1b[31mred\x1b[0m\r\n\t\u2028\u2029\ufeff\x7f\ud800 {i}"
    if choice == 4:  # long: many sentences, some dates and numbers
        return _sentences(rnd, rnd.randrange(2_000, 6_000))
    if choice == 5:
        return " \n\t "
    if choice == 6:
        return "".join(chr(rnd.randrange(0x20, 0x2FFF)) for _ in range(rnd.randrange(1, 400)))
    if choice == 7:
        return f"On 2024-03-0{1 + i % 9} I paid $1,234.56 for {i} tickets to Lisbon."
    return _sentences(rnd, rnd.randrange(5, 60))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # one write(2) of < PIPE_BUF bytes: the line arrives whole or not at all


def write(args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {}
    if args.durability is not None:
        settings["durability"] = args.durability
    if args.map_size_mb is not None:
        settings["map_size_mb"] = args.map_size_mb
    if args.move_every is not None:  # move the log's inbox to its archive all the time
        settings["maintenance"] = "inline"
        rawlog.INBOX_MOVE_AT, rawlog.MOVE_BATCH = args.move_every, max(1, args.move_every // 2)
    with MemoryEngine(args.path, **settings) as engine:
        _say("ready")
        if args.wait_go and sys.stdin.readline().strip() != "go":
            return 3
        i = 0
        while args.count is None or i < args.count:
            text = text_for(args.kind, args.tag, i)
            turn_id = engine.observe(text, user_id=args.user[i % len(args.user)],
                                     session_id=f"s-{args.tag}",
                                     metadata={"writer": args.tag, "i": i})
            _say(f"ack {turn_id} {i} {text_hash(text)}")
            i += 1
    _say("done")
    return 0


def read(args: argparse.Namespace) -> int:
    """Iterate the users' turns again and again while writers append; check each pass.

    Each pass must show every user's turns in increasing id order, each writer's
    turns in the order it wrote them, every text byte-exact, and the previous
    pass as a prefix (the log only grows). Stops once ``--expect`` turns are seen.
    """
    seen: dict[str, list[int]] = {u: [] for u in args.user}
    passes = 0
    with MemoryEngine(args.path) as engine:
        _say("ready")
        while sum(map(len, seen.values())) < args.expect:
            passes += 1
            for user in args.user:
                ids: list[int] = []
                last_i: dict[str, int] = {}
                for turn in engine.turns(user_id=user):
                    meta = turn.metadata or {}
                    writer, i = meta.get("writer"), meta.get("i")
                    problem = None
                    if ids and turn.id <= ids[-1]:
                        problem = f"turn {turn.id} came after turn {ids[-1]}"
                    elif turn.user_id != user:
                        problem = f"turn {turn.id} belongs to {turn.user_id!r}"
                    elif not isinstance(writer, str) or not isinstance(i, int):
                        problem = f"turn {turn.id} has metadata {meta!r}"
                    elif i <= last_i.get(writer, -1):
                        problem = f"writer {writer}'s turn {i} came after its turn {last_i[writer]}"
                    elif turn.text != text_for(args.kind, writer, i):
                        problem = f"turn {turn.id} ({writer}, {i}) text differs"
                    if problem is not None:
                        _say(f"error pass {passes} user {user}: {problem}")
                        return 1
                    assert isinstance(writer, str) and isinstance(i, int)
                    ids.append(turn.id)
                    last_i[writer] = i
                if ids[: len(seen[user])] != seen[user]:
                    _say(f"error pass {passes} user {user}: earlier turns changed or vanished")
                    return 1
                seen[user] = ids
            _say(f"pass {passes} {sum(map(len, seen.values()))}")
    _say(f"done {passes}")
    return 0


def inspect(args: argparse.Namespace) -> int:
    """Print what a freshly opened engine reports for each user, as JSON lines."""
    with MemoryEngine(args.path) as engine:
        for user in args.user:
            stats = engine.stats(user)
            _say(json.dumps({
                "user": user,
                "turns": stats.turns,
                "units": stats.units,
                "units_by_level": stats.units_by_level,
                "working_set_tokens": stats.working_set_tokens,
                "oldest": stats.oldest,
                "newest": stats.newest,
                "memories": [[m.id, m.level, m.text] for m in engine.memories(user_id=user)],
            }, ensure_ascii=True))
    return 0


# -- the parent's side: start a child, read its lines, kill it ---------------------


class Child:
    """A running ``_writer.py`` whose stdout lines are collected by a thread."""

    def __init__(self, *args: str, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.endswith(b"\n"):  # a line cut short by the kill was never acknowledged
                line = raw.decode("ascii").rstrip("\n")
                self.lines.append(line)
                self._queue.put(line)
        self._queue.put(None)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def expect(self, word: str, timeout: float = 60.0) -> str:
        """Block until the child prints a line starting with ``word``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {word!r} from the child in {timeout} s; "
                                     f"stderr:\n{self.stderr()}") from None
            if line is None:
                raise AssertionError(f"the child exited (rc {self.proc.wait()}) before "
                                     f"{word!r}; stderr:\n{self.stderr()}")
            if line.split(" ", 1)[0] == word:
                return line
            if line.startswith("error"):
                raise AssertionError(f"the child reported: {line}")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self) -> int:
        """SIGKILL; returns the exit status (-9 unless it had already died)."""
        self.proc.send_signal(signal.SIGKILL)
        return self.finish(timeout=30)

    def finish(self, timeout: float = 60.0) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the child did not finish in {timeout} s") from None
        self._thread.join(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()
        return rc

    def acks(self) -> list[tuple[int, int, str]]:
        """(turn id, i, text hash) of each acknowledged turn, in order."""
        out = []
        for line in self.lines:
            if line.startswith("ack "):
                _ack, turn_id, i, digest = line.split(" ")
                out.append((int(turn_id), int(i), digest))
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["write", "read", "inspect"])
    parser.add_argument("--path", required=True)
    parser.add_argument("--user", action="append", required=True)
    parser.add_argument("--tag", default="w")
    parser.add_argument("--kind", choices=["varied", "big"], default="varied")
    parser.add_argument("--durability", choices=["sync", "deferred"])
    parser.add_argument("--map-size-mb", type=int)
    parser.add_argument("--move-every", type=int,
                        help="move the log's inbox to its archive every N turns")
    parser.add_argument("--count", type=int)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args(argv)
    return {"write": write, "read": read, "inspect": inspect}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
