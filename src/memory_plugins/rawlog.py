"""The raw log: every observed turn, lossless, append-only, hash-chained per user.

The log is two LMDB environments (storage.py): the **archive** holds every turn
but the newest, and the **inbox** receives each new turn. observe() commits to
the inbox only, and the inbox stays small (its turns are moved to the archive in
batches, by the background worker in the gaps between turns), so a durable
commit costs the same at a thousand stored turns and at a million: its B-trees
are one or two pages deep and its pages sit close together in a small file,
where a commit to one large tree writes a deeper path of pages scattered over a
large file (at 1M turns: 9 pages in 7 runs, against 6 in 5 at 1k turns; each
fsync took about 0.1 ms longer).

A turn moves in two durable commits: copied into the archive, then dropped from
the inbox. A reader opens the inbox first and the archive second (a ``LogView``):
whatever the mover did in between, every turn is in one of the two snapshots; a
turn is read from the archive if its id is at most the archive's last, else from
the inbox (which, between the two commits, may still hold a copy). With
durability="deferred" the inbox is fsynced before the archive takes its turns,
and append() numbers and chains after the archive's last turn if the inbox is
ever behind it (a machine crash between the two commits).

All read functions take a ``LogView``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from .errors import CorruptionError, StorageError
from .frames import ZERO_HASH, Turn, decode_frame, encode_frame, frame_hash, read_header
from .storage import LogView, Store, pack_u64, unpack_u64, user_key

__all__ = ["BrokenFrame", "VerifyReport", "append", "get_turn", "iter_after", "iter_user_turns",
           "last_seq", "move_to_archive", "verify"]

SEQ_BYTES = 5  # a seq in the user_turns index (store format 2): turn ids below 2**40
MAX_SEQ = (1 << (8 * SEQ_BYTES)) - 1
# The background worker moves the inbox's turns to the archive once it holds this
# many, MOVE_BATCH per pair of commits (it yields in between); in a burst with no
# gaps for the worker, observe() moves a batch itself past INBOX_MAX. Kept small:
# an inbox that once held 4,096 turns left its commits a page more, spread over
# twice the distance (6 pages within ~170, against 5 within ~75 at 1,000).
INBOX_MOVE_AT = 256
INBOX_MAX = 1024
MOVE_BATCH = 256


def pack_seq(seq: int) -> bytes:
    return seq.to_bytes(SEQ_BYTES, "big")


def unpack_seq(raw: bytes) -> int:
    """A seq of the user_turns index (exactly ``SEQ_BYTES`` long)."""
    if len(raw) != SEQ_BYTES:
        raise CorruptionError(f"a user_turns entry is {len(raw)} bytes, not {SEQ_BYTES}")
    return int.from_bytes(raw, "big")


def _last_key(txn: Any, db: Any) -> int:
    with txn.cursor(db=db) as cur:
        return unpack_u64(cur.key()) if cur.last() else 0


# -- writing ------------------------------------------------------------------------


def append(store: Store, turn: Turn) -> Turn:
    """Append ``turn`` (its id is assigned here) in one commit to the inbox; return
    it with its id."""
    inbox, archive = store.inbox.dbs, store.log.dbs

    def fn(txn: Any) -> Turn:
        last = _last_key(txn, inbox["turns"])
        ukey = user_key(turn.user_id)
        with store.log.read() as archive_txn:
            archived = _last_key(archive_txn, archive["turns"])
            # The inbox holds every turn after the archive's last. At or below it the
            # inbox holds only copies, or, after a machine crash in deferred mode, an
            # older state than the archive's: the archive then numbers and chains.
            head = None
            if last > archived:
                head = _chain_head(txn, inbox, ukey, after=archived)
            if head is None:
                last = max(last, archived)
                head = _chain_head(archive_txn, archive, ukey) or ZERO_HASH
        seq = last + 1
        if seq > MAX_SEQ:
            raise StorageError(f"the log holds {MAX_SEQ:,} turns, as many as it can number")
        made = dataclasses.replace(turn, id=seq)
        txn.put(pack_u64(seq), encode_frame(made, head), db=inbox["turns"], append=True)
        _index(txn, inbox["user_turns"], ukey, pack_seq(seq))
        return made
    return store.inbox.write(fn)


def _index(txn: Any, db: Any, ukey: bytes, seq: bytes) -> None:
    # Appended after the user's last (seqs only grow): pages of the index stay full.
    if not txn.put(ukey, seq, db=db, dupdata=True, append=True):
        txn.put(ukey, seq, db=db, dupdata=True)


def _chain_head(txn: Any, dbs: dict[str, Any], ukey: bytes, after: int = 0) -> bytes | None:
    """The hash of the user's last frame in one environment (None: it has none with
    an id above ``after``), found through the user's turn index (store format 3
    keeps no table of heads)."""
    with txn.cursor(db=dbs["user_turns"]) as cur:
        if not cur.set_key(ukey):
            return None
        cur.last_dup()
        seq = unpack_seq(bytes(cur.value()))
    if seq <= after:
        return None
    frame = txn.get(pack_u64(seq), db=dbs["turns"])
    if frame is None:
        raise CorruptionError(f"turn {seq}, the user's last in the index, is missing from the "
                              "log; run verify() and restore the store from a backup")
    return frame_hash(bytes(frame))


def inbox_size(store: Store) -> int:
    """Turns in the inbox (some may already be in the archive, mid-move)."""
    with store.inbox.read() as txn:
        return int(txn.stat(store.inbox.dbs["turns"])["entries"])


def move_to_archive(store: Store, limit: int = MOVE_BATCH) -> tuple[int, int]:
    """Move up to ``limit`` of the inbox's oldest turns into the archive: a durable
    commit that copies them, then one that drops them from the inbox. Safe to
    repeat or to interrupt at any point, and from several processes at once (a
    turn already copied is not copied again). Returns (turns moved, the id of the
    archive's last turn)."""
    archive, inbox = store.log.dbs, store.inbox.dbs
    with store.log.read() as txn:
        start = _last_key(txn, archive["turns"])
    # The batch is read first, in a short snapshot of the inbox, and not while the
    # archive commits: a snapshot held across that commit (and, from the worker,
    # across the caller's observe() calls it yields to) keeps every page those
    # calls free from being reused, so the inbox file grows and each commit's pages
    # spread wider (3,000 turns observed back to back, deferred: 773 pages, 300
    # this way, 81 with no worker).
    frames: list[tuple[bytes, bytes]] = []
    seqs: list[tuple[bytes, bytes]] = []
    with store.inbox.read() as src:
        with src.cursor(db=inbox["turns"]) as cur:
            if cur.set_range(pack_u64(start + 1)):
                for key, frame in cur:
                    if len(frames) >= limit:
                        break
                    frames.append((bytes(key), bytes(frame)))
        if frames:
            upto = unpack_u64(frames[-1][0])
            with src.cursor(db=inbox["user_turns"]) as cur:
                for ukey, raw in cur.iternext():  # every user's seqs, in order
                    if start < int.from_bytes(raw, "big") <= upto:
                        seqs.append((bytes(ukey), bytes(raw)))
    if frames and not store.inbox.durable:
        # Deferred mode: the inbox's copies must be on disk before the archive
        # holds them, or a machine crash could leave the archive ahead of the inbox
        # (append() copes, but numbers them twice).
        store.inbox.flush()

    def copy(txn: Any) -> tuple[int, int]:
        archived = _last_key(txn, archive["turns"])  # another process may have moved some
        upto = archived
        for key, frame in frames:
            seq = unpack_u64(key)
            if seq > archived:
                txn.put(key, frame, db=archive["turns"], append=True)
                upto = seq
        for ukey, raw in seqs:
            if archived < int.from_bytes(raw, "big") <= upto:
                _index(txn, archive["user_turns"], ukey, raw)
        return archived, upto

    archived, upto = store.log.write(copy)
    if not store.log.durable:
        store.log.flush()  # the archive must hold them before the inbox lets go

    def drop(txn: Any) -> None:
        with txn.cursor(db=inbox["turns"]) as cur:
            cur.first()
            key = cur.key()  # b"": the inbox is empty, or the cursor passed its end
            while key and unpack_u64(key) <= upto:
                cur.delete()  # and moves to the next turn
                key = cur.key()
        with txn.cursor(db=inbox["user_turns"]) as cur:
            users = [bytes(k) for k in cur.iternext_nodup(keys=True, values=False)]
        for ukey in users:
            with txn.cursor(db=inbox["user_turns"]) as cur:
                cur.set_key(ukey)
                while cur.key() == ukey and int.from_bytes(cur.value(), "big") <= upto:
                    if not cur.delete():
                        break
    if upto:
        store.inbox.write(drop)
    return upto - archived, upto


# -- reading ------------------------------------------------------------------------


def get_turn(view: LogView, seq: int) -> Turn | None:
    txn, dbs = view.holder(seq)
    raw = txn.get(pack_u64(seq), db=dbs["turns"])
    return None if raw is None else decode_frame(bytes(raw))


def last_seq(view: LogView) -> int:
    """The id of the newest turn (0 for an empty log)."""
    # The inbox's snapshot is the older one: a move between the two may have
    # emptied it of turns the archive's snapshot holds.
    return max(_last_key(view.inbox, view.inbox_dbs["turns"]), view.archived)


def iter_after(view: LogView, after: int, limit: int) -> Iterator[Turn]:
    """Up to ``limit`` turns with ids above ``after``, in log order (any user)."""
    n = 0
    for txn, dbs, start, end in view.parts(after + 1):
        with txn.cursor(db=dbs["turns"]) as cur:
            if not cur.set_range(pack_u64(start)):
                continue
            for key, value in cur:
                if n >= limit or unpack_u64(key) > end:
                    break
                n += 1
                yield decode_frame(bytes(value))
        if n >= limit:
            return


def iter_user_turns(view: LogView, user_id: str, *, reverse: bool = False,
                    after: int = 0, before: int = 0) -> Iterator[Turn]:
    """A user's turns in log order (or, ``reverse``, newest first), checked against
    the user id; ``after`` / ``before`` (0: no bound) skip to a turn without reading
    the ones in between."""
    for seq in iter_user_seqs(view, user_id, reverse=reverse, after=after, before=before):
        turn = get_turn(view, seq)
        if turn is None:
            raise CorruptionError(f"turn {seq} is indexed but missing", seq=seq)
        if turn.user_id == user_id:  # a BLAKE2b collision must not leak data
            yield turn


def iter_user_seqs(view: LogView, user_id: str, *, reverse: bool = False,
                   after: int = 0, before: int = 0) -> Iterator[int]:
    """The ids of a user's turns, as ``iter_user_turns`` orders them, unread (the
    caller reads them, e.g. through a cache, and must check each turn's user id)."""
    ukey = user_key(user_id)
    parts = view.parts(after + 1)
    for txn, dbs, start, end in (reversed(parts) if reverse else parts):
        yield from _seqs(txn, dbs["user_turns"], ukey, reverse, start - 1,
                         min(before, end + 1) if before else end + 1)


def _seqs(txn: Any, db: Any, ukey: bytes, reverse: bool, after: int, before: int
          ) -> Iterator[int]:
    """One environment's ids of a user, strictly between ``after`` and ``before``."""
    if before <= after + 1:
        return
    with txn.cursor(db=db) as cur:
        if not cur.set_key(ukey):
            return
        if reverse:
            if before > MAX_SEQ or not cur.set_range_dup(ukey, pack_seq(before)):
                cur.last_dup()  # every turn is below the bound
            elif not cur.prev_dup():
                return  # nothing below ``before``
            seqs = cur.iterprev_dup(keys=False)
        else:
            if after and (after >= MAX_SEQ
                          or not cur.set_range_dup(ukey, pack_seq(after + 1))):
                return
            seqs = cur.iternext_dup(keys=False)
        for raw_seq in seqs:
            seq = int.from_bytes(raw_seq, "big")
            if seq <= after if reverse else seq >= before:
                return
            yield seq


def counts(view: LogView, user_id: str | None) -> tuple[int, int, int, int]:
    """(users, turns, first id, last id) of the whole log (``user_id`` None) or of
    one user (users: 1 if the user has turns). The archive's are counted by LMDB;
    the inbox's newer turns (a few hundred) one by one."""
    archive, inbox = view.archive_dbs, view.inbox_dbs
    newer = pack_seq(view.archived + 1) if view.archived < MAX_SEQ else None
    if user_id is None:
        keys: set[bytes] = set()
        for txn, db in ((view.archive, archive["user_turns"]), (view.inbox, inbox["user_turns"])):
            with txn.cursor(db=db) as cur:
                keys.update(bytes(k) for k in cur.iternext_nodup(keys=True, values=False))
        with view.archive.cursor(db=archive["turns"]) as cur:
            first = unpack_u64(cur.key()) if cur.first() else 0
        added = 0
        with view.inbox.cursor(db=inbox["turns"]) as cur:
            if cur.set_range(pack_u64(view.archived + 1)):
                first = first or unpack_u64(cur.key())
                added = sum(1 for _ in cur.iternext(keys=True, values=False))
        turns = view.archive.stat(archive["turns"])["entries"] + added
        return len(keys), turns, first, last_seq(view)
    ukey = user_key(user_id)
    with view.archive.cursor(db=archive["user_turns"]) as cur:
        if cur.set_key(ukey):
            turns, first = cur.count(), unpack_seq(bytes(cur.value()))
            cur.last_dup()
            last = unpack_seq(bytes(cur.value()))
        else:
            turns = first = last = 0
    with view.inbox.cursor(db=inbox["user_turns"]) as cur:
        if newer is not None and cur.set_range_dup(ukey, newer):
            first = first or unpack_seq(bytes(cur.value()))
            for raw in cur.iternext_dup(keys=False):
                turns, last = turns + 1, int.from_bytes(raw, "big")
    return (1 if turns else 0), turns, first, last


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


def verify(view: LogView, *, max_problems: int = 100) -> VerifyReport:
    """Walk every frame once, in id order (the archive's, then the inbox's newer),
    checking CRCs and each user's hash chain; then check that each user's turn
    index ends at the user's last frame and counts them all."""
    last: dict[bytes, tuple[int, bytes, int, str]] = {}  # user_key -> seq, hash, count, id
    problems: list[BrokenFrame] = []
    frames = 0
    index: dict[bytes, tuple[int, int]] = {}  # user_key -> last seq, seqs, in user_turns
    for txn, dbs, start, end in view.parts(1):
        with txn.cursor(db=dbs["turns"]) as cur:
            found = cur.set_range(pack_u64(start))
            while found and unpack_u64(cur.key()) <= end:
                frames += 1
                seq, frame = unpack_u64(cur.key()), bytes(cur.value())
                found = cur.next()
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
        with txn.cursor(db=dbs["user_turns"]) as cur:
            if dbs is view.archive_dbs:  # all of it is in range: one step per user
                found = cur.first()
                while found:
                    ukey, count = bytes(cur.key()), cur.count()
                    cur.last_dup()
                    index[ukey] = (unpack_seq(bytes(cur.value())), count)
                    found = cur.next_nodup()
                continue
            for ukey_raw, raw in cur.iternext():  # the inbox: its newer turns only
                seq = unpack_seq(bytes(raw))
                if start <= seq <= end:
                    ukey = bytes(ukey_raw)
                    index[ukey] = (seq, index.get(ukey, (0, 0))[1] + 1)
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
