"""The raw log keeps every turn byte-exact and detects any change to it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from conftest import Overlap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_plugins import CorruptionError, MemoryEngine, rawlog
from memory_plugins.frames import HEAD_SIZE, Turn, decode_frame, encode_frame, read_header
from memory_plugins.storage import pack_u64

# Any Python str, lone surrogates included: the log must not care what it is given.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=any_text, role=st.sampled_from(["user", "assistant", "system", "tool"]),
       speaker=st.none() | any_text.filter(bool), session=st.none() | any_text.filter(bool),
       metadata=st.none() | st.dictionaries(st.text(max_size=10), json_values, max_size=4),
       user=any_text.filter(bool))
def test_every_turn_reads_back_exactly(engine: MemoryEngine, text: str, role: str,
                                       speaker: str | None, session: str | None,
                                       metadata: dict[str, object] | None, user: str) -> None:
    turn_id = engine.observe(text, role=role, user_id=user, session_id=session,
                             speaker=speaker, timestamp=1_700_000_000.25, metadata=metadata)
    turn = engine.get_turn(turn_id)
    assert (turn.text, turn.role, turn.user_id, turn.session_id, turn.speaker, turn.metadata) == (
        text, role, user, session, speaker, metadata)
    assert turn.timestamp == 1_700_000_000.25
    assert list(engine.turns(user_id=user))[-1] == turn


@pytest.mark.parametrize("text", [
    "", "🐶🐕‍🦺 Potola 🇵🇹", "我的狗叫波托拉。", "tab\tnul\x00bell\x07\r\n", "a" * 1_000_000,
    "é" * 600_000, "\ud800 lone surrogate",
])
def test_edge_texts_round_trip(engine: MemoryEngine, text: str) -> None:
    turn_id = engine.observe(text, user_id="u1")
    assert engine.get_turn(turn_id).text == text
    assert engine.verify().ok


def test_turns_filter_by_session_and_keep_order(engine: MemoryEngine) -> None:
    for i in range(600):  # more than one read batch
        engine.observe(f"turn {i}", user_id="u1", session_id=f"s{i % 3}")
    texts = [t.text for t in engine.turns(user_id="u1")]
    assert texts == [f"turn {i}" for i in range(600)]
    s1 = [t.text for t in engine.turns(user_id="u1", session_id="s1")]
    assert s1 == [f"turn {i}" for i in range(1, 600, 3)]


def test_timestamps_keep_their_utc_offset(engine: MemoryEngine) -> None:
    lisbon_summer = dt.timezone(dt.timedelta(hours=1))
    when = dt.datetime(2023, 5, 8, 13, 56, tzinfo=lisbon_summer)
    turn = engine.get_turn(engine.observe("hello", user_id="u1", timestamp=when))
    assert turn.datetime == when and turn.datetime.utcoffset() == dt.timedelta(hours=1)
    naive = engine.get_turn(engine.observe("hi", user_id="u1",
                                           timestamp=dt.datetime(2023, 5, 8, 13, 56)))
    assert naive.datetime == dt.datetime(2023, 5, 8, 13, 56, tzinfo=dt.UTC)


def _holder(engine: MemoryEngine, seq: int) -> tuple[Any, Any]:
    """The LMDB environment and database holding turn ``seq``: the log's inbox or
    its archive (rawlog.py)."""
    with engine._store.log_read() as view:
        env = engine._store.log if seq <= view.archived else engine._store.inbox
    return env.env, env.dbs["turns"]


def _flip(engine: MemoryEngine, seq: int, offset: int) -> None:
    env, db = _holder(engine, seq)
    with env.begin(write=True) as txn:
        frame = bytearray(txn.get(pack_u64(seq), db=db))
        frame[offset % len(frame)] ^= 0x01
        txn.put(pack_u64(seq), bytes(frame), db=db)


@settings(max_examples=60, deadline=None)
@given(victim=st.integers(1, 12), offset=st.integers(0, 10_000), archived=st.integers(0, 12))
def test_verify_names_the_frame_with_a_flipped_bit(tmp_path_factory: pytest.TempPathFactory,
                                                   victim: int, offset: int,
                                                   archived: int) -> None:
    with MemoryEngine(tmp_path_factory.mktemp("flip")) as engine:
        for i in range(12):
            engine.observe(f"turn number {i} " * (i + 1), user_id=f"user{i % 3}")
        rawlog.move_to_archive(engine._store, archived)  # the first ones, in the archive
        assert engine.verify().ok
        _flip(engine, victim, offset)
        report = engine.verify()
        assert not report.ok
        assert report.first_broken is not None and report.first_broken.seq == victim
        with pytest.raises(CorruptionError):
            engine.get_turn(victim)


def test_verify_catches_a_rewritten_frame_with_a_valid_crc(engine: MemoryEngine) -> None:
    """Forging a frame (new text, correct CRC) still breaks the hash chain."""
    ids = [engine.observe(f"I paid {n} euros.", user_id="alice") for n in (10, 20, 30)]
    env, db = _holder(engine, ids[1])
    with env.begin(write=True) as txn:
        raw = bytes(txn.get(pack_u64(ids[1]), db=db))
        original = decode_frame(raw)
        prev = read_header(raw)[1]
        forged = Turn(**{**{f: getattr(original, f) for f in original.__slots__},
                         "text": "I paid 2000 euros."})
        txn.put(pack_u64(ids[1]), encode_frame(forged, prev), db=db)
    report = engine.verify()
    assert not report.ok
    assert report.first_broken is not None and report.first_broken.seq == ids[2]
    assert "does not link" in report.first_broken.reason
    assert engine.get_turn(ids[1]).text == "I paid 2000 euros."  # readable, but caught


def test_verify_catches_a_lost_last_frame_and_observe_refuses_to_chain_past_it(
        engine: MemoryEngine) -> None:
    ids = [engine.observe(f"turn {n}", user_id=u) for n, u in enumerate("abab")]
    env, db = _holder(engine, ids[3])
    with env.begin(write=True) as txn:  # b's last frame goes missing
        txn.delete(pack_u64(ids[3]), db=db)
    report = engine.verify()
    assert not report.ok
    assert report.first_broken is not None and report.first_broken.seq == ids[3]
    assert "turn index lists 2 turns" in report.first_broken.reason
    with pytest.raises(CorruptionError, match="missing from the log"):
        engine.observe("turn 4", user_id="b")
    engine.observe("turn 5", user_id="a")  # other users go on
    assert [t.text for t in engine.turns(user_id="a")] == ["turn 0", "turn 2", "turn 5"]


def test_frames_compress_and_have_a_fixed_head() -> None:
    turn = Turn(id=7, user_id="u", session_id=None, role="user", speaker=None,
                text="the same words again " * 50, timestamp=0.0)
    frame = encode_frame(turn, bytes(16))
    assert frame[:3] == b"MP\x02" and len(frame) < HEAD_SIZE + len(turn.text) // 4
    assert decode_frame(frame) == turn


def test_a_short_english_turn_is_compressed_against_the_dictionary() -> None:
    text = "I have been thinking about going back to school to study something different."
    turn = Turn(id=123_456, user_id="conv26-pass3", session_id="session_12", role="assistant",
                speaker="Caroline", text=text, timestamp=1_683_446_400.0,
                metadata={"dia_id": "D12:7"})
    frame = encode_frame(turn, bytes(range(16)))
    assert frame[3] & 1 and frame[3] & 4  # LZ4, against the dictionary
    # Version 1 took 186 bytes: a 52-byte header and the 134-byte payload, uncompressed.
    assert len(frame) <= 130
    assert decode_frame(frame) == turn


@pytest.mark.parametrize("timestamp", [0.0, -0.0, 1.5, -86_400.0, 1e300, 2.0**53, -1.25e-7])
def test_timestamps_round_trip_exactly(timestamp: float) -> None:
    turn = Turn(id=1, user_id="u", session_id="s", role="odd role ✓", speaker="", text="",
                timestamp=timestamp, utc_offset_minutes=-720)
    back = decode_frame(encode_frame(turn, bytes(16)))
    assert back == turn and str(back.timestamp) == str(timestamp)  # -0.0 keeps its sign


def test_a_newer_frame_version_is_refused_clearly() -> None:
    frame = bytearray(encode_frame(Turn(id=1, user_id="u", session_id=None, role="user",
                                        speaker=None, text="hi", timestamp=0.0), bytes(16)))
    frame[2] = 9
    with pytest.raises(CorruptionError, match="upgrade memory-plugins"):
        decode_frame(bytes(frame))


def test_the_store_survives_reopening(tmp_path: Path) -> None:
    with MemoryEngine(tmp_path) as engine:
        first = engine.observe("My dog's name is Potola.", user_id="u1")
    with MemoryEngine(tmp_path) as engine:
        assert engine.get_turn(first).text == "My dog's name is Potola."
        second = engine.observe("And my cat is Miso.", user_id="u1")
        assert second == first + 1
        assert engine.verify().ok


def _reads(engine: MemoryEngine, ids: dict[str, list[int]]) -> list[object]:
    """Everything the log answers about its turns, through each way of reading it."""
    out: list[object] = [engine.stats().turns]
    with engine._store.log_read() as view:
        out.append([t.id for t in rawlog.iter_after(view, 100, 50)])
        out.append(rawlog.last_seq(view))
    for user, mine in ids.items():
        mid = mine[len(mine) // 2]
        with engine._store.log_read() as view:
            out.append([list(rawlog.iter_user_seqs(view, user, reverse=True)),
                        list(rawlog.iter_user_seqs(view, user, after=mid)),
                        list(rawlog.iter_user_seqs(view, user, reverse=True, before=mid)),
                        rawlog.counts(view, user)])
        out.append([(t.id, t.text) for t in engine.turns(user_id=user)])
        out.append(engine.get_turn(mid).text)
    report = engine.verify()
    assert report.ok
    out.append((report.frames, report.users))
    return out


def test_turns_read_the_same_in_the_inbox_or_the_archive(engine: MemoryEngine) -> None:
    """New turns go to the log's inbox and move to its archive in batches: every
    read answers the same before, between and after the moves."""
    ids: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    for n in range(300):
        user = "abc"[n % 3] if n % 7 else "a"
        ids[user].append(engine.observe(f"turn {n}", user_id=user))
    before = _reads(engine, ids)
    assert before[0] == 300
    for limit in (0, 1, 120, 1000):  # none, one, a batch that splits each user, the rest
        rawlog.move_to_archive(engine._store, limit)
        assert _reads(engine, ids) == before
    assert rawlog.inbox_size(engine._store) == 0
    ids["b"].append(engine.observe("after the move", user_id="b"))
    assert engine.get_turn(ids["b"][-1]).text == "after the move"
    assert engine.verify().ok


def test_a_move_cut_short_between_its_commits_loses_and_repeats_nothing(
        engine: MemoryEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(50):
        engine.observe(f"turn {n}", user_id=f"u{n % 2}")

    def killed(fn: object) -> None:
        raise KeyboardInterrupt  # the process dies once the archive holds the copies
    monkeypatch.setattr(engine._store.inbox, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        rawlog.move_to_archive(engine._store, 30)
    monkeypatch.undo()
    assert rawlog.inbox_size(engine._store) == 50  # 30 of them in both places, read once
    assert [t.text for t in engine.turns(user_id="u0")] == [f"turn {n}" for n in range(0, 50, 2)]
    assert engine.stats().turns == 50 and engine.verify().frames == 50
    engine.observe("one more", user_id="u0")  # chained onto its user's newest frame
    assert rawlog.move_to_archive(engine._store, 1000) == (21, 51)
    assert rawlog.inbox_size(engine._store) == 0
    report = engine.verify()
    assert report.ok and report.frames == 51


def test_a_mover_overtaken_by_another_copies_only_what_is_left(
        engine: MemoryEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mover reads its batch, then another (process) moves part of it before the
    first one's copy commits: nothing is copied twice or skipped."""
    for n in range(40):
        engine.observe(f"turn {n}", user_id=f"u{n % 3}")
    store = engine._store
    real_write = store.log.write
    overtaken: list[tuple[int, int] | None] = []

    def write(fn: Any) -> Any:
        if not overtaken:  # the first mover's copy is about to begin: another moves 10
            overtaken.append(None)  # first, since the other mover's write comes here too
            overtaken[0] = rawlog.move_to_archive(store, 10)
        return real_write(fn)
    monkeypatch.setattr(store.log, "write", write)
    assert rawlog.move_to_archive(store, 25) == (15, 25)  # its batch was turns 1-25
    monkeypatch.undo()
    assert overtaken == [(10, 10)]
    with store.log.read() as txn:
        archived = [int.from_bytes(k, "big") for k, _ in txn.cursor(db=store.log.dbs["turns"])]
    assert archived == list(range(1, 26))
    assert rawlog.move_to_archive(store, 1000) == (15, 40)
    assert [t.text for t in engine.turns(user_id="u1")] == [f"turn {n}" for n in range(1, 40, 3)]
    report = engine.verify()
    assert report.ok and report.frames == 40 and rawlog.inbox_size(store) == 0


def test_the_inbox_stays_small(tmp_path: Path) -> None:
    with MemoryEngine(tmp_path / "inline", maintenance="inline", embedder="hashing") as engine:
        for n in range(rawlog.INBOX_MOVE_AT + 10):
            engine.observe(f"turn {n}", user_id="u")
        assert rawlog.inbox_size(engine._store) < rawlog.INBOX_MOVE_AT
    # A burst that leaves the background worker no gap: observe() moves a batch itself.
    with MemoryEngine(tmp_path / "burst", durability="deferred", embedder="hashing") as engine:
        for n in range(rawlog.INBOX_MAX + 50):
            engine.observe(f"turn {n}", user_id=f"u{n % 5}")
        assert rawlog.inbox_size(engine._store) <= rawlog.INBOX_MAX
        assert engine.stats().turns == rawlog.INBOX_MAX + 50 and engine.verify().ok


def test_a_failed_move_loses_no_turn_and_health_says_why(
        engine: MemoryEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    from memory_plugins import StorageError

    real = rawlog.move_to_archive

    def full_disk(*args: object, **kwargs: object) -> tuple[int, int]:
        raise StorageError("write to the archive failed: No space left on device")
    monkeypatch.setattr(rawlog, "INBOX_MAX", 3)
    monkeypatch.setattr(rawlog, "move_to_archive", full_disk)
    ids = [engine.observe(f"turn {n}", user_id="u") for n in range(10)]  # none raises
    assert [t.id for t in engine.turns(user_id="u")] == ids
    health = engine.health()
    assert not health.ok and "No space left on device" in health.checks["inbox"]
    monkeypatch.setattr(rawlog, "move_to_archive", real)
    engine.observe("turn 10", user_id="u")  # moves a batch again
    assert engine.health().checks["inbox"] == "ok" and engine.verify().ok


def test_an_inbox_left_behind_its_archive_by_a_machine_crash(tmp_path: Path) -> None:
    """Deferred durability: if the machine goes down after a move reached the
    archive's disk but not the inbox's, the inbox comes back older than the
    archive; the turns observed next are numbered and chained after the archive."""
    import shutil

    path = tmp_path / "memory"
    with MemoryEngine(path, durability="deferred") as engine:
        for n in range(5):
            engine.observe(f"turn {n}", user_id="u")
        engine.flush()
        shutil.copytree(path / "inbox", tmp_path / "inbox-on-disk")
        for n in range(5, 10):
            engine.observe(f"turn {n}", user_id="u")
        rawlog.move_to_archive(engine._store, 1000)
    shutil.rmtree(path / "inbox")
    shutil.copytree(tmp_path / "inbox-on-disk", path / "inbox")  # the crash
    with MemoryEngine(path) as engine:
        new = engine.observe("after the crash", user_id="u")
        assert new == 11
        texts = [f"turn {n}" for n in range(10)] + ["after the crash"]
        assert [t.text for t in engine.turns(user_id="u")] == texts
        assert engine.verify().ok and engine.stats().turns == 11
        rawlog.move_to_archive(engine._store, 1000)
        assert [t.text for t in engine.turns(user_id="u")] == texts
        assert engine.verify().ok and rawlog.inbox_size(engine._store) == 0


def test_a_view_whose_inbox_is_older_than_its_archive(engine: MemoryEngine) -> None:
    from memory_plugins.storage import LogView

    store = engine._store
    engine.observe("first", user_id="u")
    with store.inbox.read() as inbox_txn:  # then turns arrive and move on
        for n in range(3):
            engine.observe(f"turn {n}", user_id="u")
        rawlog.move_to_archive(store, 1000)
        with store.log.read() as archive_txn:
            view = LogView(archive_txn, inbox_txn, store.log.dbs, store.inbox.dbs)
            assert rawlog.last_seq(view) == 4
            assert rawlog.counts(view, None) == (1, 4, 1, 4)
            assert list(rawlog.iter_user_seqs(view, "u")) == [1, 2, 3, 4]


def test_explicit_memories_move_too(engine: MemoryEngine,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rawlog, "INBOX_MAX", 8)
    for n in range(30):
        engine.add(f"My locker number is {n}.", user_id="u")
    assert rawlog.inbox_size(engine._store) <= 8 + rawlog.MOVE_BATCH
    with engine._store.log_read() as view:
        assert view.archived > 0
    assert engine.verify().ok


def test_a_resize_of_any_map_gets_past_overlapping_log_reads(
        engine: MemoryEngine, overlapping: Overlap) -> None:
    """Reads of the log hold the inbox, then the archive: threads that keep them
    overlapping must still let a resize of either in."""
    import threading

    engine.observe("hello", user_id="u")
    store = engine._store
    overlapping(store.log_read)
    done: list[str] = []

    def resize() -> None:
        for env in (store.log, store.inbox, store.ws):
            env._set_mapsize(env.env.info()["map_size"] * 2)
            done.append(str(env.path))
    resizer = threading.Thread(target=resize)
    resizer.start()
    resizer.join(10)
    assert len(done) == 3
    assert engine.get_turn(1).text == "hello"
