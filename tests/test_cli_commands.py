"""The memory-plugins command: each subcommand as a user runs it, and its errors."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memory_plugins import MemoryEngine, rawlog
from memory_plugins.cli import main
from memory_plugins.cli.store import writer_lock
from memory_plugins.frames import Turn

CLI = [sys.executable, "-m", "memory_plugins"]


def run(*args: str, env: dict[str, str] | None = None,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, input=stdin,
                          env={**os.environ, **(env or {})}, timeout=300)


def one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("memory-plugins: error: ") and done.stderr.count("\n") == 1
    return done.stderr


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "memory"
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with MemoryEngine(path, embedder="hashing") as engine:
        engine.observe("My dog's name is Potola.", user_id="ana", timestamp=start)
        engine.observe("I went to a pottery class yesterday.", user_id="ana",
                       timestamp=start + dt.timedelta(days=1))
        for day in range(2, 60, 4):
            engine.observe(f"Quiet day number {day}.", user_id="ana",
                           timestamp=start + dt.timedelta(days=day))
        engine.observe("I play the cello.", user_id="bo", timestamp=start)
    return path


def test_demo_tells_the_story_in_a_constant_budget(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-model", "--embedder", "hashing"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^ {0,3}(\d+)  .{44} +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +[\d.]+ ms$", out,
                      re.MULTILINE)
    assert len(rows) == 19  # one row per user turn
    for _day, *sections, total in rows:
        assert sum(map(int, sections)) == int(total) <= 3840
    assert "= 4096 tokens" in out
    assert "stored compressed: user|dog|Potola" in out and "stored trace: user|dog;" in out
    assert "Potola: gone from the working set, only in the raw log" in out
    assert ">>> Potola restored from the log, verbatim" in out
    assert re.search(r"memories: \d+ shown verbatim", out)  # fidelity of what was shown
    assert "hash chains verified: ok" in out


def test_demo_without_llama_cpp_says_how_to_add_it(tmp_path: Path) -> None:
    # llama_cpp made unimportable, as on a machine with only `pip install -e .`
    code = ("import sys; sys.modules['llama_cpp'] = None; from memory_plugins.cli import main; "
            "sys.exit(main(['demo', '--embedder', 'hashing', '--path', sys.argv[1]]))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "llama.cpp is not installed: replies are scripted" in done.stdout
    assert "pip install 'memory-plugins[llama]'" in done.stdout
    assert "reply (scripted): Your dog is called Potola." in done.stdout


def test_demo_refuses_to_run_twice_in_one_store(tmp_path: Path) -> None:
    args = ("demo", "--no-model", "--embedder", "hashing", "--path", str(tmp_path / "d"))
    assert run(*args).returncode == 0
    assert "already holds a demo conversation" in one_line_error(run(*args), 2)


def test_chat_refuses_a_reply_cap_below_one(tmp_path: Path) -> None:
    done = run("chat", "--path", str(tmp_path / "m"), "--max-tokens", "0")
    assert "--max-tokens must be at least 1" in one_line_error(done, 2)


def test_inspect_groups_memories_by_tier_and_fidelity(store: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--path", str(store), "--user", "ana"]) == 0
    out = capsys.readouterr().out
    assert "warm / compressed" in out and "user|dog|Potola" in out
    assert "cold / trace" in out or "cold / abbreviated" in out
    assert "cello" not in out  # another user's
    assert main(["inspect", "--path", str(store), "--user", "ana", "--json", "--level", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all('"level": 1' in line for line in lines)


def test_stats_and_verify(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--path", str(store)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"users +2\n +turns +18 \(first logged 2026-03-02, last ", out)
    assert main(["stats", "--path", str(store), "--user", "bo", "--json"]) == 0
    assert '"turns": 1' in capsys.readouterr().out
    assert main(["verify", "--path", str(store)]) == 0
    assert capsys.readouterr().out.startswith("ok: 18 frames, 2 users")


def test_stats_of_a_store_holding_an_impossible_time(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Older releases stored POSIX times down to -1e11 (3000 BC); such a store still
    reads (those times clamped to the year 2)."""
    with MemoryEngine(tmp_path / "old") as engine:
        rawlog.append(engine._store, Turn(id=0, user_id="u", session_id=None, role="user",
                                          speaker=None, text="Long ago.", timestamp=-9e10))
    assert main(["stats", "--path", str(tmp_path / "old")]) == 0
    assert "turns 1 (first logged 0002-01-01, last 0002-01-01)" in " ".join(
        capsys.readouterr().out.split())


def test_recall_explains_what_build_includes(store: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recall", "What's my dog's name?", "--path", str(store), "--user", "ana",
                 "--deep"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("build(\"What's my dog's name?\") for user 'ana'\ntokens: system ")
    assert "memories section:" in out and "history section:" in out
    assert "Potola" in out
    assert re.search(r"deep recall \(the whole raw log, slow path\): [1-9]", out)
    assert "turn 1 (2026-03-02), score" in out
    # Each memory shown says the level it is stored at, search hit or not (found in
    # review: those beyond --limit were all called forgotten).
    assert main(["recall", "What's my dog's name?", "--path", str(store), "--user", "ana",
                 "--limit", "1"]) == 0
    shown = re.findall(r"\(stored ([a-z ()]+)\)", capsys.readouterr().out)
    kept = [level for level in shown if level != "forgotten (rebuilt from the log)"]
    assert len(kept) >= 2, shown  # more than the one search hit


def test_reading_a_store_that_does_not_exist(tmp_path: Path) -> None:
    done = run("stats", "--path", str(tmp_path / "nowhere"))
    assert "no store at" in one_line_error(done, 2)
    assert not (tmp_path / "nowhere").exists()  # a typo creates nothing


def test_a_store_locked_by_another_writer(store: Path, tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"format": "memory-plugins-export", "version": 1}\n')
    with writer_lock(store):  # as a running `memory-plugins chat` holds it
        done = run("import", str(tmp_path / "x.jsonl"), "--path", str(store))
        err = one_line_error(done, 1)
        assert f"in use by another memory-plugins writer (pid {os.getpid()})" in err
        assert run("stats", "--path", str(store)).returncode == 0  # readers are not held up
    assert "already holds 18 turns" in one_line_error(
        run("import", str(tmp_path / "x.jsonl"), "--path", str(store)), 2)


def test_store_paths_that_cannot_be_stores(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a store")
    (tmp_path / "x.jsonl").write_text('{"format": "memory-plugins-export", "version": 1}\n')
    for path, status in ((tmp_path / "afile", 1), (tmp_path / "afile" / "sub", 1), ("", 2)):
        done = run("import", str(tmp_path / "x.jsonl"), "--path", str(path))
        one_line_error(done, status)
    assert (tmp_path / "afile").read_text() == "not a store"


def test_closed_or_full_standard_streams(store: Path) -> None:
    for redirect in (">&-", "<&- >&-"):  # started with stdout (and stdin) closed
        done = subprocess.run(f'"{sys.executable}" -m memory_plugins stats --path "{store}" '
                              f"{redirect}", shell=True, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    if Path("/dev/full").exists():
        done = subprocess.run(f'"{sys.executable}" -m memory_plugins export --path "{store}" '
                              "> /dev/full", shell=True, capture_output=True, text=True,
                              timeout=300)
        assert "No space left on device" in one_line_error(done, 1)


def test_texts_with_lone_surrogates_print(tmp_path: Path) -> None:
    """The log keeps lone surrogates (what undecodable input became); printing one
    raised UnicodeEncodeError halfway through the output."""
    with MemoryEngine(tmp_path / "s", embedder="hashing") as engine:
        engine.observe("My name is \udcff Bob.", user_id="u")
    done = run("inspect", "--path", str(tmp_path / "s"), "--user", "u")
    assert done.returncode == 0 and "My name is \\udcff Bob." in done.stdout, done.stderr


def test_a_corrupt_store(store: Path) -> None:
    # The turn is in the log's inbox, or in its archive if it has been moved there.
    data = next(f for f in (store / "inbox" / "data.mdb", store / "log" / "data.mdb")
                if b"I play the cello." in f.read_bytes())
    raw = data.read_bytes()
    at = raw.index(b"I play the cello.")  # short turns are stored uncompressed
    data.write_bytes(raw[:at] + b"I play the banjo." + raw[at + 17:])
    done = run("verify", "--path", str(store))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert re.search(r"BROKEN: \d problem\(s\) in 18 frames; the first at turn \d+: frame \d+ "
                     r"fails its CRC32 check", done.stdout)
    err = one_line_error(run("export", "--path", str(store)), 1)
    assert "fails its CRC32 check (run: memory-plugins verify --path" in err


def test_chat_with_a_missing_model(tmp_path: Path) -> None:
    done = run("chat", "--path", str(tmp_path / "m"), "--model", str(tmp_path / "no.gguf"))
    assert "model file" in one_line_error(done, 2) and "does not exist" in done.stderr
    assert not (tmp_path / "m").exists()  # the model is checked before the store is made


def test_chat_without_llama_cpp_names_the_install_command(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['llama_cpp'] = None; from memory_plugins.cli import main; "
            "sys.exit(main(['chat', '--path', sys.argv[1]]))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True,
                          text=True, timeout=60)
    assert "needs the 'llama-cpp-python' package. Install it with: pip install " \
           "'memory-plugins[llama]'" in one_line_error(done, 1)


def test_wrong_calls_exit_2_with_usage() -> None:
    done = run("inspect", "--level", "7")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    assert run("frobnicate").returncode == 2


def test_the_library_never_imports_the_cli_or_llama_cpp() -> None:
    code = ("import sys, memory_plugins; assert 'memory_plugins.cli' not in sys.modules; "
            "from memory_plugins.cli import main; main(['stats', '--help']) if False else None; "
            "print(sorted(m for m in sys.modules if m.startswith(('llama_cpp', 'vcr'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
