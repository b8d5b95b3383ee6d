"""Storage formats: older stores open, records round-trip exactly, indexes stay right."""

from __future__ import annotations

import json
import struct
import tarfile
import zlib
from pathlib import Path

import lz4.block
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_plugins import MemoryEngine, rawlog
from memory_plugins.frames import Turn, decode_frame, read_header
from memory_plugins.settings import MEMORY_TYPES
from memory_plugins.storage import STORE_FORMAT
from memory_plugins.units import MemoryUnit

DATA = Path(__file__).parent / "data"


def _frame_v1(turn: Turn, prev: bytes, *, compress: bool) -> bytes:
    """A version-1 frame, as the format-1 release wrote it (its layout, by hand)."""
    raw = bytearray()
    fields = [turn.role, turn.speaker, turn.user_id, turn.session_id, turn.text,
              None if turn.metadata is None else json.dumps(turn.metadata)]
    for i, field in enumerate(fields):
        data = None if field is None else field.encode("utf-8", "surrogatepass")
        n = 0 if data is None else len(data) + (1 if i in (1, 3, 5) else 0)
        while n >= 0x80:
            raw.append(n & 0x7F | 0x80)
            n >>= 7
        raw.append(n)
        raw += data or b""
    payload = lz4.block.compress(bytes(raw), store_size=False) if compress else bytes(raw)
    head = struct.pack("<4sBBhQd16sIII", b"MPLF", 1, int(compress), turn.utc_offset_minutes,
                       turn.id, turn.timestamp, prev, len(payload), len(raw), 0)[:48]
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


@pytest.mark.parametrize("compress", [False, True])
def test_version_1_frames_still_read(compress: bool) -> None:
    turn = Turn(id=42, user_id="ünï 🐶", session_id=None, role="assistant", speaker="Mel",
                text="the same words again " * 20 + "\ud800\x00", timestamp=1_700_000_000.25,
                utc_offset_minutes=60, metadata={"k": [1, None]})
    frame = _frame_v1(turn, bytes(range(16)), compress=compress)
    assert decode_frame(frame) == turn
    assert read_header(frame) == (42, bytes(range(16)))


def _open_fixture(tmp_path: Path, fmt: int) -> tuple[Path, dict[str, object]]:
    """The store that the format-``fmt`` release (format 1: commit 7d8579b; 2: 10a1c84)
    wrote with tests/data/make_store_fixture.py, and what it read back then."""
    with tarfile.open(DATA / f"store-format{fmt}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "store", json.loads((tmp_path / "expected.json").read_text("utf-8"))


def _memories(engine: MemoryEngine, user: str) -> list[list[object]]:
    return sorted([m.id, m.level, m.text, m.type, m.created_at, m.last_reinforced,
                   m.stability_days, list(m.sources), m.metadata]
                  for m in engine.memories(user_id=user))


@pytest.mark.parametrize("fmt", [1, 2])
def test_an_older_store_opens_and_reads_as_it_did(tmp_path: Path, fmt: int) -> None:
    store, expected = _open_fixture(tmp_path, fmt)
    with MemoryEngine(store, embedder="hashing") as engine:
        # Format 1's working set is rebuilt from the log; format 2's is kept.
        assert engine._store.upgraded == (fmt == 1)
        turns = [[t.id, t.user_id, t.text, t.role, t.speaker, t.session_id, t.timestamp,
                  t.metadata] for u in ("alice", "bob", "çé 用户") for t in engine.turns(user_id=u)]
        assert turns == expected["turns"]
        for user in ("alice", "bob", "çé 用户"):  # the per-user index, rewritten with 5-byte ids
            mine = [t[0] for t in turns if t[1] == user]
            assert engine.stats(user).turns == len(mine)
            with engine._store.log_read() as view:
                assert list(rawlog.iter_user_seqs(view, user, after=mine[5])) == mine[6:]
                assert list(rawlog.iter_user_seqs(view, user, reverse=True,
                                                  before=mine[5])) == mine[4::-1]
        memories = expected["memories"]
        assert isinstance(memories, dict)
        for user, listed in memories.items():
            assert _memories(engine, user) == listed
        history = expected["history"]
        assert isinstance(history, dict)
        for memory_id, events in history.items():
            assert [[h.event, h.old_memory, h.new_memory]
                    for h in engine.history(int(memory_id))] == events
        assert engine.verify().ok
        # New turns are version-2 frames chained onto the older ones.
        new = engine.observe("My dog's name is Potola.", user_id="alice")
        assert engine.get_turn(new).text == "My dog's name is Potola."
        report = engine.verify()
        assert report.ok and report.frames == len(turns) + 1
    with MemoryEngine(store) as engine:  # upgraded once: a plain reopen after that
        assert not engine._store.upgraded and not engine._store.rebuilt
        with engine._store.log.read() as txn:
            assert txn.get(b"format", db=engine._store.log.dbs["meta"]) == STORE_FORMAT
            names = [bytes(k) for k, _v in txn.cursor()]  # the main database: one per name
        assert b"chains" not in names  # chain heads are read through the turn index
        assert engine.verify().ok


def test_a_newer_store_format_is_refused(tmp_path: Path) -> None:
    from memory_plugins import StorageError

    with MemoryEngine(tmp_path) as engine:
        engine.observe("hello", user_id="u")
        with engine._store.log.env.begin(write=True) as txn:
            txn.put(b"format", b"9", db=engine._store.log.dbs["meta"])
    with pytest.raises(StorageError, match="has format b'9'"):
        MemoryEngine(tmp_path)


times = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1_683_446_400.0, 1_683_446_400.5, 2.0**53, -(2.0**60)])
ids = st.integers(0, 2**40 - 1)


@settings(max_examples=300, deadline=None)
@given(turn=ids, index=st.integers(0, 255), level=st.integers(0, 3),
       kind=st.sampled_from(MEMORY_TYPES), created=times, last=times,
       stability=st.floats(min_value=1e-300, max_value=1e300) | st.sampled_from([7.0, 56.25]),
       counts=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
       origin=st.none() | ids, span=st.tuples(st.integers(0, 2**30), st.integers(0, 2**20)),
       sources=st.none() | st.lists(ids, max_size=16),
       texts=st.tuples(st.text(), st.text(), st.none() | st.text()),
       metadata=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text()),
       fp=st.sampled_from(["", "00" * 8, "0123456789abcdef"]))
def test_unit_records_round_trip_exactly(
        turn: int, index: int, level: int, kind: str, created: float, last: float,
        stability: float, counts: tuple[int, int], origin: int | None, span: tuple[int, int],
        sources: list[int] | None, texts: tuple[str, str, str | None],
        metadata: dict[str, object] | None, fp: str) -> None:
    unit_id = turn << 8 | index
    origin = turn if origin is None else origin
    unit = MemoryUnit(
        id=unit_id, user_id="u", type=kind, level=level, verbatim=None, subject=texts[0],
        relation=texts[1], value=texts[2], created_at=created, last_reinforced=last,
        stability_days=stability, reinforcements=counts[0], access_count=counts[1],
        origin=origin, span=(span[0], span[0] + span[1]),
        sources=(origin,) if sources is None else tuple(sources), metadata=metadata,
        fingerprint=fp)
    back = MemoryUnit.from_record(unit_id, "u", unit.to_record())
    assert back == unit
    assert [str(t) for t in (back.created_at, back.last_reinforced)] == [str(created), str(last)]


def test_a_memory_far_into_a_long_turn_is_restored_by_mention(engine: MemoryEngine) -> None:
    """The mention index keeps short spans; one past them is found again from the turn."""
    import datetime as dt

    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    filler = " " * 17_000  # the sentence starts past what a mention entry holds
    turn = engine.observe(filler + "My dog's name is Potola.", user_id="me", timestamp=start)
    potola = [m for m in engine.memories(user_id="me") if "Potola" in m.text]
    assert potola and potola[0].span[0] > 16_383 and potola[0].id >> 8 == turn
    engine.observe("Nothing much happened.", user_id="me", timestamp=start + dt.timedelta(days=80))
    assert engine.get(potola[0].id).level >= 2
    engine.observe("Potola chewed my shoes today!", user_id="me",
                   timestamp=start + dt.timedelta(days=81))
    assert engine.get(potola[0].id).text == "My dog's name is Potola."


def test_a_memory_with_long_metadata_is_kept_apart_and_round_trips(engine: MemoryEngine) -> None:
    """A unit is a duplicate under its user's key, capped by LMDB at 511 bytes; a
    longer record is stored apart, and follows the memory through updates."""
    big = {"notes": "é" * 400, "tags": list(range(50))}
    memory = engine.add("I am allergic to peanuts.", user_id="u", metadata=big)
    assert engine.get(memory.id).metadata == big
    engine.update(memory.id, "I am allergic to peanuts and shellfish.", metadata={"n": 1})
    assert engine.get(memory.id).metadata == {"n": 1}
    engine.update(memory.id, "I am allergic to shellfish.", metadata=big)
    assert engine.get(memory.id).metadata == big
    assert engine.get(memory.id).text == "I am allergic to shellfish."
    engine.delete(memory.id)
    with engine._store.ws.read() as txn:
        assert txn.stat(engine._store.ws.dbs["big_units"])["entries"] == 0


def test_compacting_a_users_units_changes_nothing_they_show(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once as many units have gone as are left, the user's units are rewritten onto
    full pages: the same memories, the same records, fewer pages."""
    import datetime as dt

    from memory_plugins import workingset

    compactions: list[int] = []
    real = workingset.WorkingSet._compact

    def counted(self: workingset.WorkingSet, tx: workingset.Tx,
                st: workingset.UserState) -> None:
        compactions.append(st.units)
        real(self, tx, st)

    monkeypatch.setattr(workingset.WorkingSet, "_compact", counted)
    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    with MemoryEngine(tmp_path, embedder="hashing", maintenance="inline") as engine:
        for n in range(400):
            engine.observe(f"Today I met my colleague number {n} at the station {n % 7}.",
                           user_id="me", timestamp=start + dt.timedelta(hours=6 * n))
        assert compactions  # units went (episodic, a few days' stability), so it ran
        before = [(m.id, m.level, m.text, m.stability_days) for m in engine.memories(user_id="me")]
        ws, store = engine._ws, engine._store

        def fn(txn: object) -> None:
            with store.log_read() as log_txn:
                tx = workingset.Tx(txn, log_txn)
                ws._compact(tx, ws.state(tx, "me"))
        store.ws.write(fn)
        engine._hot = type(engine._hot)(16, 4)  # read back from the store, not RAM
        after = [(m.id, m.level, m.text, m.stability_days) for m in engine.memories(user_id="me")]
        assert after == before
