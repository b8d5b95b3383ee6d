"""The raw log: every observed turn, lossless, append-only, hash-chained per user.

All functions take the log's ``Env`` and an open transaction on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from .errors import CorruptionError, StorageError
from .frames import ZERO_HASH, Turn, decode_frame, encode_frame, frame_hash, read_header
from .storage import Env, pack_u64, unpack_u64, user_key

__all__ = ["BrokenFrame", "VerifyReport", "append", "get_turn", "iter_after", "iter_user_turns",
           "last_seq", "verify"]

SEQ_BYTES = 5  # a seq in the user_turns index (store format 2): turn ids below 2**40
MAX_SEQ = (1 << (8 * SEQ_BYTES)) - 1


def pack_seq(seq: int) -> bytes:
    return seq.to_bytes(SEQ_BYTES, "big")


def unpack_seq(raw: bytes) -> int:
    """A seq of the user_turns index (exactly ``SEQ_BYTES`` long)."""
    if len(raw) != SEQ_BYTES:
        raise CorruptionError(f"a user_turns entry is {len(raw)} bytes, not {SEQ_BYTES}")
    return int.from_bytes(raw, "big")


def append(log: Env, txn: Any, turn: Turn) -> Turn:
    """Append ``turn`` (its id is assigned here) and return it with its id."""
    dbs = log.dbs
    with txn.cursor(db=dbs["turns"]) as cur:
        seq = unpack_u64(cur.key()) + 1 if cur.last() else 1
    if seq > MAX_SEQ:
        raise StorageError(f"the log holds {MAX_SEQ:,} turns, as many as it can number")
    turn = dataclasses.replace(turn, id=seq)
    ukey = user_key(turn.user_id)
    frame = encode_frame(turn, _chain_head(log, txn, ukey))
    txn.put(pack_u64(seq), frame, db=dbs["turns"], append=True)
    # Appended after the user's last (seqs only grow): pages of the index stay full.
    if not txn.put(ukey, pack_seq(seq), db=dbs["user_turns"], dupdata=True, append=True):
        txn.put(ukey, pack_seq(seq), db=dbs["user_turns"], dupdata=True)
    return turn


def _chain_head(log: Env, txn: Any, ukey: bytes) -> bytes:
    """The hash of the user's last frame (ZERO_HASH before the first), found through
    the user's turn index: a commit then touches two B-trees, not a third for heads
    (store format 3; formats 1-2 kept each head in a ``chains`` database)."""
    with txn.cursor(db=log.dbs["user_turns"]) as cur:
        if not cur.set_key(ukey):
            return ZERO_HASH
        cur.last_dup()
        seq = unpack_seq(bytes(cur.value()))
    frame = txn.get(pack_u64(seq), db=log.dbs["turns"])
    if frame is None:
        raise CorruptionError(f"turn {seq}, the user's last in the index, is missing from the "
                              "log; run verify() and restore the store from a backup")
    return frame_hash(bytes(frame))


def get_turn(log: Env, txn: Any, seq: int) -> Turn | None:
    raw = txn.get(pack_u64(seq), db=log.dbs["turns"])
    return None if raw is None else decode_frame(bytes(raw))


def last_seq(log: Env, txn: Any) -> int:
    """The id of the newest turn (0 for an empty log)."""
    with txn.cursor(db=log.dbs["turns"]) as cur:
        return unpack_u64(cur.key()) if cur.last() else 0


def iter_after(log: Env, txn: Any, after: int, limit: int) -> Iterator[Turn]:
    """Up to ``limit`` turns with ids above ``after``, in log order (any user)."""
    with txn.cursor(db=log.dbs["turns"]) as cur:
        if not cur.set_range(pack_u64(after + 1)):
            return
        for n, value in enumerate(cur.iternext(keys=False)):
            if n >= limit:
                return
            yield decode_frame(bytes(value))


def iter_user_turns(log: Env, txn: Any, user_id: str, *, reverse: bool = False,
                    after: int = 0, before: int = 0) -> Iterator[Turn]:
    """A user's turns in log order (or, ``reverse``, newest first), checked against
    the user id; ``after`` / ``before`` (0: no bound) skip to a turn without reading
    the ones in between."""
    for seq in iter_user_seqs(log, txn, user_id, reverse=reverse, after=after, before=before):
        turn = get_turn(log, txn, seq)
        if turn is None:
            raise CorruptionError(f"turn {seq} is indexed but missing", seq=seq)
        if turn.user_id == user_id:  # a BLAKE2b collision must not leak data
            yield turn


def iter_user_seqs(log: Env, txn: Any, user_id: str, *, reverse: bool = False,
                   after: int = 0, before: int = 0) -> Iterator[int]:
    """The ids of a user's turns, as ``iter_user_turns`` orders them, unread (the
    caller reads them, e.g. through a cache, and must check each turn's user id)."""
    ukey = user_key(user_id)
    with txn.cursor(db=log.dbs["user_turns"]) as cur:
        if not cur.set_key(ukey):
            return
        if reverse:
            if not before or before > MAX_SEQ or not cur.set_range_dup(ukey,
                                                                         pack_seq(before)):
                cur.last_dup()  # no bound, or every turn is below it
            elif not cur.prev_dup():
                return  # nothing below ``before``
            seqs = cur.iterprev_dup(keys=False)
        else:
            if after and (after >= MAX_SEQ
                          or not cur.set_range_dup(ukey, pack_seq(after + 1))):
                return
            seqs = cur.iternext_dup(keys=False)
        for raw_seq in seqs:
            yield int.from_bytes(raw_seq, "big")


@dataclasses.dataclass(frozen=True, slots=True)
class BrokenFrame:
    seq: int
    user_id: str | None  # None when the frame itself cannot be decoded
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify()`` found. ``first_broken`` is the earliest bad frame, if any."""

    ok: bool
    frames: int
    users: int
    first_broken: BrokenFrame | None
    problems: tuple[BrokenFrame, ...]


def verify(log: Env, txn: Any, *, max_problems: int = 100) -> VerifyReport:
    """Walk every frame once, checking CRCs and each user's hash chain; then check
    that each user's turn index ends at the user's last frame and counts them all."""
    dbs = log.dbs
    last: dict[bytes, tuple[int, bytes, int, str]] = {}  # user_key -> seq, hash, count, id
    problems: list[BrokenFrame] = []
    frames = 0
    with txn.cursor(db=dbs["turns"]) as cur:
        for key, value in cur:
            frames += 1
            seq, frame = unpack_u64(key), bytes(value)
            try:
                if read_header(frame)[0] != seq:
                    raise CorruptionError(f"frame stored under turn {seq} says it is another")
                turn = decode_frame(frame)
            except CorruptionError as exc:
                problems.append(BrokenFrame(seq, None, str(exc)))
                continue
            ukey = user_key(turn.user_id)
            prev_seq, prev_hash, count, _uid = last.get(ukey, (0, ZERO_HASH, 0, turn.user_id))
            if read_header(frame)[1] != prev_hash:
                # Named at the frame where the chain breaks: either it or the frame
                # it should link to was altered (an undecodable frame in between
                # has already been reported at its own, earlier, seq).
                problems.append(BrokenFrame(
                    seq, turn.user_id,
                    f"hash chain broken: frame {seq} does not link to frame {prev_seq}"
                    if prev_seq else f"frame {seq} is the user's first but links to another"))
            last[ukey] = (seq, frame_hash(frame), count + 1, turn.user_id)
    index: dict[bytes, tuple[int, int]] = {}  # user_key -> last seq, seqs, in user_turns
    with txn.cursor(db=dbs["user_turns"]) as cur:
        found = cur.first()
        while found:
            ukey, count = bytes(cur.key()), cur.count()
            cur.last_dup()
            index[ukey] = (unpack_seq(bytes(cur.value())), count)
            found = cur.next_nodup()
    for ukey, (seq, _digest, count, uid) in last.items():
        listed = index.pop(ukey, None)
        if listed is None:
            problems.append(BrokenFrame(seq, uid, "the user's turn index is missing"))
        elif listed != (seq, count):
            # If the index names a later frame, that frame is the one that failed to read.
            problems.append(BrokenFrame(
                max(seq, listed[0]), uid, f"the user's turn index lists {listed[1]} turns "
                f"up to {listed[0]}; the log has {count} up to {seq}"))
    for seq, _count in index.values():
        problems.append(BrokenFrame(seq, None, "the turn index names frames the log lacks"))
    problems.sort(key=lambda p: p.seq)
    return VerifyReport(ok=not problems, frames=frames, users=len(last),
                        first_broken=problems[0] if problems else None,
                        problems=tuple(problems[:max_problems]))
