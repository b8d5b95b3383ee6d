"""Export a store's log as JSONL, and import it into a new store: a lossless round trip.

The log is the store's only truth (memories are derived from it), so an export is
the log, one turn per line, between a header line and an end line:

    {"format": "memory-plugins-export", "version": 2}
    {"id": 1, "user_id": "u1", "session_id": "s1", "role": "user", "speaker": null,
     "text": "My dog's name is Potola.", "timestamp": 1772442000.0,
     "utc_offset_minutes": 60, "metadata": {"channel": "web"}}
    {"end": "memory-plugins-export", "turns": 1}

The end line tells a whole file from one cut at a line boundary (a full disk, a
killed export, ``head``): an import refuses a version 2 file without it. Version 1
files (no end line) are still read, as they are.

Every field is kept exactly: text byte for byte, timestamps as the float the log
holds (JSON floats round-trip), explicit memory operations (role "memory", from
add/update/delete) with their metadata. Importing replays the lines into an
*empty* store, which derives the same memories from them; exporting that store
again gives the same file.

Strings are written as UTF-8. Python strings may hold surrogate code points,
and the log keeps them; a lone one is written as a JSON ``\\udXXX`` escape. Two of
them side by side (a high then a low surrogate) would read back as one character
if escaped, so those are written as raw ``surrogatepass`` bytes, and the reader
accepts them: the only case where the file is not strict UTF-8.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, TextIO

from ..engine import MemoryEngine
from ..errors import CorruptionError, NotFoundError, ValidationError
from ..frames import Turn
from .progress import Progress

__all__ = ["FORMAT", "VERSION", "export_lines", "import_lines", "read_records"]

FORMAT, VERSION = "memory-plugins-export", 2
READS = (1, 2)  # version 1: the same, without the end line
FIELDS = ("id", "user_id", "session_id", "role", "speaker", "text", "timestamp",
          "utc_offset_minutes", "metadata")
_MEMORY_ROLE = "memory"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_PAIR = re.compile(r"[\ud800-\udbff][\udc00-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def dump_line(record: dict[str, Any]) -> str:
    """One JSON line (no newline) that reads back as exactly ``record``."""
    text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    if not _SURROGATE.search(text):
        return text
    # Escape lone surrogates; keep adjacent high+low pairs raw (see the module doc).
    out, pos = [], 0
    for pair in _PAIR.finditer(text):
        out.append(_SURROGATE.sub(_escape, text[pos:pair.start()]))
        out.append(pair.group(0))
        pos = pair.end()
    out.append(_SURROGATE.sub(_escape, text[pos:]))
    return "".join(out)


def turn_record(turn: Turn) -> dict[str, Any]:
    return {name: getattr(turn, name) for name in FIELDS}


def _all_turns(engine: MemoryEngine) -> Iterator[Turn]:
    # Turn ids are assigned 1, 2, 3, ... by the log, so ids 1..count are every turn.
    count = engine.stats().turns
    for turn_id in range(1, count + 1):
        try:
            yield engine.get_turn(turn_id)
        except NotFoundError:
            raise CorruptionError(f"turn {turn_id} is missing from the log", seq=turn_id) from None


def export_lines(engine: MemoryEngine, *, user_id: str | None = None) -> Iterator[str]:
    """The export, line by line (with newlines): every turn, or one user's."""
    yield dump_line({"format": FORMAT, "version": VERSION}) + "\n"
    turns: Iterable[Turn] = (_all_turns(engine) if user_id is None
                             else engine.turns(user_id=user_id))
    count = 0
    for turn in turns:
        yield dump_line(turn_record(turn)) + "\n"
        count += 1
    yield dump_line({"end": FORMAT, "turns": count}) + "\n"


def _check_record(n: int, obj: Any) -> dict[str, Any]:
    where = f"line {n}"
    if not isinstance(obj, dict):
        raise ValidationError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in FIELDS if f not in obj]
    extra = sorted(set(obj) - set(FIELDS))
    if missing or extra:
        raise ValidationError(f"{where}: missing fields {missing}, unknown fields {extra}")
    tid = obj["id"]
    if isinstance(tid, bool) or not isinstance(tid, int) or tid <= 0:
        raise ValidationError(f"{where}: id must be a positive int, got {tid!r}")
    ts, off = obj["timestamp"], obj["utc_offset_minutes"]
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise ValidationError(f"{where}: timestamp must be POSIX seconds, got {ts!r}")
    if isinstance(off, bool) or not isinstance(off, int) or not -1440 < off < 1440:
        raise ValidationError(f"{where}: utc_offset_minutes must be an int within a day, "
                              f"got {off!r}")
    if obj["role"] == _MEMORY_ROLE:
        meta = obj["metadata"]
        if not isinstance(meta, dict) or meta.get("op") not in ("add", "update", "delete"):
            raise ValidationError(f"{where}: a 'memory' turn needs metadata with an op "
                                  "(add, update or delete)")
    return obj


def read_records(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each turn of an export, after checking its header
    (and, once all are read, its end line)."""
    seen_header = False
    version: Any = 0
    count = 0
    end: int | None = None  # the end line's number, once read
    for n, raw in enumerate(stream, start=1):
        if end is not None:
            raise ValidationError(f"line {n}: nothing may follow the end line (line {end})")
        try:
            line = raw.decode("utf-8", "surrogatepass")
            obj = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValidationError(f"line {n} is not JSON: {exc}") from None
        except RecursionError:
            raise ValidationError(f"line {n} is nested too deeply to be a turn") from None
        if not seen_header:
            if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                raise ValidationError(f"not a memory-plugins export: line 1 must be "
                                      f'{{"format": "{FORMAT}", ...}}')
            version = obj.get("version")
            if isinstance(version, bool) or version not in READS:
                raise ValidationError(f"export format version {version!r} is not "
                                      f"supported (this release reads versions 1 and 2)")
            seen_header = True
            continue
        if version >= 2 and isinstance(obj, dict) and "end" in obj and set(obj) <= {
                "end", "turns"}:
            turns = obj.get("turns")
            if obj.get("end") != FORMAT or isinstance(turns, bool) or not isinstance(
                    turns, int):
                raise ValidationError(f'line {n}: a malformed end line (expected '
                                      f'{{"end": "{FORMAT}", "turns": N}})')
            if turns != count:
                raise ValidationError(f"line {n}: the end line says {turns} turns, the "
                                      f"file holds {count}")
            end = n
            continue
        yield n, _check_record(n, obj)
        count += 1
    if not seen_header:
        raise ValidationError("the export is empty (no header line)")
    if version >= 2 and end is None:
        raise ValidationError(
            f"the export is cut short: it ends after {count} turns without its end line "
            "(the export was interrupted or the file truncated); export it again")


def _make_turn(engine: MemoryEngine, rec: dict[str, Any], ids: dict[int, int], n: int) -> Turn:
    """The turn a record describes, checked as observe() checks its arguments.

    Memory operations name memories by id (turn id << 8 | index); the turn ids of
    the importing store may differ, so they are mapped through ``ids``.
    """
    meta = rec["metadata"]
    if rec["role"] == _MEMORY_ROLE and "memory_id" in meta:
        old = meta["memory_id"]
        if isinstance(old, bool) or not isinstance(old, int) or (old >> 8) not in ids:
            raise ValidationError(f"line {n}: memory_id {old!r} names no memory added or "
                                  "observed earlier in this file")
        meta = {**meta, "memory_id": ids[old >> 8] << 8 | (old & 0xFF)}
    # No public method appends a turn exactly as given (role "memory", the timestamp
    # float and the UTC offset kept as they are): this uses the engine's own checks
    # and append. Proposed to the core as MemoryEngine.import_turn().
    try:
        turn = engine._make_turn(rec["text"], rec["role"], rec["user_id"], rec["session_id"],
                                 rec["speaker"], rec["timestamp"], meta)
    except ValidationError as exc:
        raise ValidationError(f"line {n}: {exc}") from None
    return dataclasses.replace(turn, utc_offset_minutes=rec["utc_offset_minutes"])


def import_lines(engine: MemoryEngine, stream: IO[bytes], *,
                 progress: TextIO | None = None) -> int:
    """Replay an export into ``engine``'s store, which must be empty; returns the
    number of turns imported.

    The whole file is checked first (a bad line is reported and nothing is
    written); ``stream`` must be seekable for that.
    """
    existing = engine.stats().turns
    if existing:
        raise ValidationError(
            f"store {engine.path!r} already holds {existing} turns; import into a new, "
            "empty store (a merge would renumber turns and interleave conversations)")
    start = stream.tell()
    # Pass 1: check every line, and that the memory ids it refers to resolve.
    ids: dict[int, int] = {}
    deleted: dict[int, int] = {}  # memory id -> the line that deleted it
    last = 0
    for n, rec in read_records(stream):
        if rec["id"] <= last:
            raise ValidationError(f"line {n}: turn ids must increase (id {rec['id']} after "
                                  f"{last})")
        last = rec["id"]
        _make_turn(engine, rec, ids, n)
        if rec["role"] == _MEMORY_ROLE and "memory_id" in rec["metadata"]:
            # As update() and delete() refuse a deleted memory, so does the file.
            memory_id, op = rec["metadata"]["memory_id"], rec["metadata"]["op"]
            if memory_id in deleted:
                raise ValidationError(f"line {n}: an {op} of memory {memory_id}, which line "
                                      f"{deleted[memory_id]} deleted")
            if op == "delete":
                deleted[memory_id] = n
        ids[rec["id"]] = len(ids) + 1  # its id in the (empty) store, if all goes in
    stream.seek(start)
    # Pass 2: append, with a progress bar on a terminal.
    count = 0
    with Progress(len(ids), label="import", unit="turns", stream=progress) as bar:
        mapping: dict[int, int] = {}
        for n, rec in read_records(stream):
            new_id = engine._append(_make_turn(engine, rec, mapping, n))
            engine._wake_maintainer()  # memories follow, as for observe()
            mapping[rec["id"]] = new_id
            count += 1
            bar.advance()
    engine.flush()  # apply every turn to the working set, fsync every environment
    return count
