"""export / import: the log as JSONL, a lossless round trip through a new store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memory_plugins import MemoryEngine
from memory_plugins.cli import main
from memory_plugins.cli.progress import Progress

ODD_TEXTS = [
    "My dog's name is Potola. 🐕 She loves 🦴 bones.",
    "Lone surrogates: \ud800 and \udfff, kept as the log keeps them.",
    "A split pair \ud83d\udc36 is two code points, not one emoji.",
    "Tabs\tand\r\nnewlines\x00and a NUL, ‘quotes’, 日本語, مرحبا.",
    "",
]


def fill(path: Path) -> dict[str, int]:
    """A store with every kind of turn: odd text, speakers, sessions, offsets,
    metadata, and add/update/delete (role "memory")."""
    tz = dt.timezone(dt.timedelta(hours=5, minutes=30))
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=tz)
    with MemoryEngine(path, embedder="hashing") as engine:
        for i, text in enumerate(ODD_TEXTS):
            engine.observe(text, user_id="ana", session_id=f"s{i % 2}", speaker="Ana",
                           timestamp=start + dt.timedelta(days=i), metadata={"i": i, "😀": [1.5]})
            engine.observe(f"Reply {i}.", role="assistant", user_id="ana", session_id=f"s{i % 2}",
                           timestamp=start + dt.timedelta(days=i, seconds=0.123456789))
        engine.observe("I play the cello.", user_id="bo\ud800🎻", timestamp=1772442000.987654321)
        kept = engine.add("Prefers window seats.", user_id="ana", type="preference",
                          metadata={"source": "form"}, timestamp=start + dt.timedelta(days=9))
        gone = engine.add("Allergic to peanuts.", user_id="ana", type="semantic")
        engine.update(kept.id, "Prefers aisle seats.", metadata={"source": "call"})
        engine.delete(gone.id)
        return {"kept": kept.id, "gone": gone.id}


def export(path: Path, *extra: str) -> bytes:
    out = path.parent / f"{path.name}-{len(extra)}.jsonl"
    assert main(["export", "--path", str(path), "-o", str(out), *extra]) == 0
    return out.read_bytes()


def snapshot(path: Path, users: list[str]) -> dict[str, object]:
    with MemoryEngine(path) as engine:
        return {user: ([dataclasses.asdict(t) for t in engine.turns(user_id=user)],
                       [dataclasses.asdict(m) for m in engine.memories(user_id=user)])
                for user in users}


def test_export_import_export_is_identical(tmp_path: Path) -> None:
    ids = fill(tmp_path / "a")
    first = export(tmp_path / "a")
    (tmp_path / "first.jsonl").write_bytes(first)
    assert main(["import", str(tmp_path / "first.jsonl"), "--path", str(tmp_path / "b")]) == 0
    assert export(tmp_path / "b") == first  # byte for byte
    users = ["ana", "bo\ud800🎻"]
    assert snapshot(tmp_path / "b", users) == snapshot(tmp_path / "a", users)
    with MemoryEngine(tmp_path / "b") as engine:
        assert engine.verify().ok
        assert [e.event for e in engine.history(ids["kept"])] == ["ADD", "UPDATE"]
        assert engine.get(ids["kept"]).text == "Prefers aisle seats."
        assert ids["gone"] not in {m.id for m in engine.memories(user_id="ana")}
        turn = next(iter(engine.turns(user_id="ana")))
        assert turn.utc_offset_minutes == 330 and turn.speaker == "Ana"


def test_export_is_readable_json_lines(tmp_path: Path) -> None:
    fill(tmp_path / "a")
    lines = export(tmp_path / "a").decode("utf-8", "surrogatepass").splitlines()
    assert json.loads(lines[0]) == {"format": "memory-plugins-export", "version": 2}
    assert json.loads(lines[-1]) == {"end": "memory-plugins-export", "turns": 15}
    lines = lines[:-1]
    first = json.loads(lines[1])
    assert first["text"] == ODD_TEXTS[0] and "🐕" in lines[1]  # emoji written as themselves
    assert first["utc_offset_minutes"] == 330 and first["metadata"] == {"i": 0, "😀": [1.5]}
    lone = next(line for line in lines if "Lone surrogates" in line)
    lone.encode("utf-8")  # lone surrogates are escaped: the line is plain UTF-8
    assert json.loads(lone)["text"] == ODD_TEXTS[1]
    roles = [json.loads(line)["role"] for line in lines[1:]]
    assert roles.count("memory") == 4  # add, add, update, delete


def test_one_users_export_imports_on_its_own(tmp_path: Path) -> None:
    ids = fill(tmp_path / "a")
    data = export(tmp_path / "a", "--user", "ana")
    (tmp_path / "ana.jsonl").write_bytes(data)
    assert main(["import", str(tmp_path / "ana.jsonl"), "--path", str(tmp_path / "b")]) == 0
    with MemoryEngine(tmp_path / "a") as a, MemoryEngine(tmp_path / "b") as b:
        assert [t.text for t in b.turns(user_id="ana")] == [t.text for t in a.turns(user_id="ana")]
        assert b.stats().users == 1
        # Turn ids are renumbered; the update and delete follow their memory.
        texts = {m.text for m in b.memories(user_id="ana")}
        assert "Prefers aisle seats." in texts and "Allergic to peanuts." not in texts
        kept = next(m for m in b.memories(user_id="ana") if m.text == "Prefers aisle seats.")
        assert kept.id != ids["kept"]
        assert [e.event for e in b.history(kept.id)] == ["ADD", "UPDATE"]


def test_import_refuses_a_store_that_is_not_empty(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path / "a")
    (tmp_path / "x.jsonl").write_bytes(export(tmp_path / "a"))
    before = export(tmp_path / "a")
    assert main(["import", str(tmp_path / "x.jsonl"), "--path", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "already holds 15 turns" in err and err.count("\n") == 1
    assert export(tmp_path / "a") == before  # nothing added, nothing lost


_HEAD = b'{"format": "memory-plugins-export", "version": 1}\n'
_HEAD2 = b'{"format": "memory-plugins-export", "version": 2}\n'


def _record(**fields: object) -> bytes:
    record = {"id": 1, "user_id": "u", "session_id": None, "role": "user", "speaker": None,
              "text": "hi", "timestamp": 1.7e9, "utc_offset_minutes": 0, "metadata": None}
    return json.dumps({**record, **fields}).encode() + b"\n"


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the export is empty"),
    (b'{"format": "something-else"}\n', "not a memory-plugins export"),
    (b'{"format": "memory-plugins-export", "version": 9}\n', "version 9 is not supported"),
    (b'{"format": "memory-plugins-export", "version": true}\n', "version True is not supported"),
    (b'{"format": "memory-plugins-export", "version": 1}\n{"id": 1,\n', "line 2 is not JSON"),
    (b'{"format": "memory-plugins-export", "version": 1}\n[1, 2]\n', "expected a JSON object"),
    (b'{"format": "memory-plugins-export", "version": 1}\n{"id": 1}\n', "missing fields"),
    (_HEAD + _record(text=5), "line 2: text must be a str"),
    (_HEAD + b"[" * 200_000 + b"\n", "line 2 is nested too deeply"),
    (_HEAD + _record(timestamp=10**400), "line 2: timestamp is an int too large"),
    (_HEAD + _record(timestamp=10**300), "line 2: timestamp 1e+300 is out of range"),
    (_HEAD + _record(timestamp=-9e10), "line 2: timestamp -90000000000.0 is out of range"),
])
def test_bad_files_are_refused_with_the_line(tmp_path: Path, content: bytes, message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.jsonl").write_bytes(content)
    assert main(["import", str(tmp_path / "bad.jsonl"), "--path", str(tmp_path / "s")]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_line_anywhere_means_nothing_is_imported(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path / "a")
    lines = export(tmp_path / "a").splitlines(keepends=True)
    record = json.loads(lines[-2])  # the last turn (then the end line)
    record["metadata"]["memory_id"] = 999 << 8  # a delete of a memory the file never made
    (tmp_path / "bad.jsonl").write_bytes(b"".join(lines[:-2]) + json.dumps(record).encode()
                                         + b"\n" + lines[-1])
    assert main(["import", str(tmp_path / "bad.jsonl"), "--path", str(tmp_path / "b")]) == 2
    assert (f"line {len(lines) - 1}: memory_id {999 << 8} names no memory"
            in capsys.readouterr().err)
    with MemoryEngine(tmp_path / "b") as engine:
        assert engine.stats().turns == 0


def test_an_export_cut_short_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path / "a")
    lines = export(tmp_path / "a").splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_bytes(b"".join(lines[:-3]))  # as `head` would leave it
    assert main(["import", str(tmp_path / "cut.jsonl"), "--path", str(tmp_path / "b")]) == 2
    assert ("the export is cut short: it ends after 13 turns without its end line"
            in capsys.readouterr().err)
    with MemoryEngine(tmp_path / "b") as engine:
        assert engine.stats().turns == 0  # nothing imported
    # The end line must count the turns, and nothing may follow it.
    (tmp_path / "lying.jsonl").write_bytes(b"".join(lines[:-3] + lines[-1:]))
    assert main(["import", str(tmp_path / "lying.jsonl"), "--path", str(tmp_path / "b")]) == 2
    assert "line 15: the end line says 15 turns, the file holds 13" in capsys.readouterr().err
    for end, message in ((b'{"end": "other", "turns": 15}', "line 17: a malformed end line"),
                         (b'{"end": "memory-plugins-export", "turns": "15"}',
                          "line 17: a malformed end line"),
                         (_record(end=True).strip(), "line 17: missing fields [], unknown "
                                                     "fields ['end']")):
        (tmp_path / "odd.jsonl").write_bytes(b"".join(lines[:-1]) + end + b"\n")
        assert main(["import", str(tmp_path / "odd.jsonl"), "--path", str(tmp_path / "b")]) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "more.jsonl").write_bytes(b"".join(lines + lines[1:2]))
    assert main(["import", str(tmp_path / "more.jsonl"), "--path", str(tmp_path / "b")]) == 2
    assert "line 18: nothing may follow the end line (line 17)" in capsys.readouterr().err


def test_a_version_1_export_still_imports(tmp_path: Path) -> None:
    # Version 1, written by earlier releases, had no end line.
    (tmp_path / "v1.jsonl").write_bytes(_HEAD + _record(text="My dog is Potola."))
    assert main(["import", str(tmp_path / "v1.jsonl"), "--path", str(tmp_path / "b")]) == 0
    with MemoryEngine(tmp_path / "b") as engine:
        assert [t.text for t in engine.turns(user_id="u")] == ["My dog is Potola."]


def test_an_operation_on_a_deleted_memory_is_refused(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # The API refuses it (NotFoundError); a hand-edited file may still hold one.
    add = _record(role="memory", text="Likes tea.", metadata={"op": "add", "type": None,
                                                              "metadata": None})
    delete = _record(id=2, role="memory", text="", metadata={"op": "delete",
                                                             "memory_id": 1 << 8})
    update = _record(id=3, role="memory", text="Likes coffee.", metadata={
        "op": "update", "memory_id": 1 << 8, "metadata": None})
    end = b'{"end": "memory-plugins-export", "turns": 3}\n'
    (tmp_path / "x.jsonl").write_bytes(_HEAD2 + add + delete + update + end)
    assert main(["import", str(tmp_path / "x.jsonl"), "--path", str(tmp_path / "b")]) == 2
    assert "line 4: an update of memory 256, which line 3 deleted" in capsys.readouterr().err
    with MemoryEngine(tmp_path / "b") as engine:
        assert engine.stats().turns == 0


def test_import_from_stdin_and_export_to_stdout(tmp_path: Path) -> None:
    fill(tmp_path / "a")
    cli = [sys.executable, "-m", "memory_plugins"]
    data = subprocess.run([*cli, "export", "--path", str(tmp_path / "a")], check=True,
                          capture_output=True).stdout
    done = subprocess.run([*cli, "import", "-", "--path", str(tmp_path / "b")], input=data,
                          check=True, capture_output=True)
    assert done.stdout.decode().startswith("imported 15 turns")
    assert export(tmp_path / "b") == data


def test_import_shows_progress_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with Progress(200, label="import", unit="turns", stream=screen) as bar:
        for _ in range(200):
            bar.advance()
    assert "import [##############################] 100% 200/200 turns" in screen.getvalue()
    quiet = io.StringIO()  # a pipe or a log file: no bar
    with Progress(5, stream=quiet) as bar:
        bar.advance(5)
    assert quiet.getvalue() == ""
