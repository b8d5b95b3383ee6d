"""The LMDB environments behind a store, their sub-databases, keys and transactions.

    <path>/log/            the raw log's archive: every turn but the newest
    <path>/inbox/          the raw log's newest turns, durable when observe() returns
    <path>/working_set/    memories derived from the log: units, schedules, indexes

The log (archive and inbox, see rawlog.py) is the only source of truth. The
working set is derived from it turn by turn, in log order, and records the last
turn it applied, in the same transaction as the changes; so after any crash it
is brought up to date by applying the turns it had not seen. Keeping them apart
makes the durable part of observe() small (a commit costs per page it dirties)
and lets the working set be updated by a background worker without blocking the
log's writer.

LMDB gives one writer and many readers across processes; maps grow by doubling.

User ids never become file or key material as given: a user's key is the
BLAKE2b-128 of the id.

Formats. The log's ``meta/format`` is ``STORE_FORMAT``: "4". Format 2 added
version-2 frames (frames.py); a format-1 store opens as is (its version-1 frames
still read, its turn index is rewritten with 5-byte seqs). Format 3 dropped the
``chains`` database: a user's chain head is read through the user's turn index, so
that a durable commit touches one B-tree fewer. Format 4 added the inbox: new turns
are committed there and moved to the log in batches (rawlog.py); an older release
would not see them. Older stores open (with an empty inbox) and are marked "4".

The working set's ``meta/format`` is ``WORKING_SET_FORMAT``; a working set of
another format (or none: written before it was recorded) is emptied on open and
rebuilt from the log, as after a crash of the machine, since everything in it is
derived from the log.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from .errors import StorageError, StoreClosedError, StoreLockedError, ValidationError

__all__ = ["ENVIRONMENTS", "LogView", "Store", "check_store_path", "erase_store", "pack_u64",
           "term_key", "unpack_u64", "user_key"]

T = TypeVar("T")
STORE_FORMAT = b"4"
# Format 1: every frame is a version-1 frame; formats 1-2 kept each user's chain head
# in a "chains" database (dropped when the store is opened).
READABLE_FORMATS = (b"1", b"2", b"3", b"4")
WORKING_SET_FORMAT = b"2"  # "1" (never recorded): units keyed by id, one key per entry
_U64 = struct.Struct(">Q")

# name -> (dupsort, dupfixed). Keys are big-endian so LMDB's byte order is numeric order.
LOG_DATABASES: dict[str, tuple[bool, bool]] = {
    "meta": (False, False),  # b"format", b"settings"
    "turns": (False, False),  # seq -> frame
    "user_turns": (True, True),  # user_key -> seq (dups, sorted; 5 bytes, 8 in format 1)
}
# The inbox: the same two databases, for the turns not yet moved to the log.
INBOX_DATABASES: dict[str, tuple[bool, bool]] = {
    "turns": LOG_DATABASES["turns"], "user_turns": LOG_DATABASES["user_turns"]}
WORKING_SET_DATABASES: dict[str, tuple[bool, bool]] = {
    "meta": (False, False),  # b"applied": the last log turn applied
    "users": (False, False),  # user_key -> per-user working-set state
    # user_key -> unit_id (6 bytes) + unit record, one duplicate per unit, sorted by id
    # (new units are appended: pages stay full); records over LMDB's 511-byte cap on a
    # duplicate are kept in big_units (user_key + unit_id -> record).
    "units": (True, False),
    "big_units": (False, False),
    # One key per user with three fixed-size duplicates per unit (packed without
    # per-entry headers, so an entry costs its 12 bytes):
    # user_key -> b"d" + due time + unit_id: next degradation, soonest first;
    #             b"e" + forget time + unit_id: weakest first (one per unit: the
    #             user's working set). Times in whole seconds (5 bytes), ids in 6;
    #             b"f" + sentence fingerprint (5 bytes) + unit_id: duplicate detection.
    # One database: a durable commit costs per page it dirties.
    "schedule": (True, True),
    # user_key -> term hash (5) + unit_id (6) + span (3), one fixed-size duplicate per
    # entry, sorted by term then unit: the restore index (only ever added to).
    "mentions": (True, True),
    "tombstones": (False, False),  # user_key + unit_id -> deletion record
    "history": (False, False),  # user_key + unit_id + seq -> ADD/UPDATE/DELETE event
    # user_key + unit_id -> cue fingerprint + float16 vector: recall's, kept so that
    # a process opening the store need not embed every cue again (vectors.py)
    "vectors": (False, False),
}


def pack_u64(n: int) -> bytes:
    return _U64.pack(n)


def unpack_u64(b: bytes, offset: int = 0) -> int:
    """The big-endian number in the 8 bytes at ``offset`` (struct.error if cut short)."""
    return int(_U64.unpack_from(b, offset)[0])


@functools.lru_cache(maxsize=4096)  # hashed on every index access of the write path
def user_key(user_id: str) -> bytes:
    return hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def term_key(term: str) -> bytes:
    """5 bytes naming a term within one user's mention index: a hint (a collision costs
    a lookup or a reinforced neighbour, never another user's data: entries sit under
    the full user key)."""
    return hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=5).digest()


_inside = threading.local()  # .depth: transactions this thread has open, any environment


def _depth() -> int:
    return int(getattr(_inside, "depth", 0))


class _SharedExclusive:
    """Transactions (``shared``) against map resizes (``exclusive``), in this process;
    one per store, for all its environments. A resize waits until no thread is
    inside any transaction. A thread that opens its first transaction waits while
    a resize is queued (else readers that keep overlapping would starve it); one
    already inside a transaction never waits (the resize is waiting for it). So a
    resize is only ever asked for by a thread inside none (see ``Remap``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._shared = 0
        self._queued = 0  # exclusive() callers waiting

    def enter(self) -> int:
        """Enter ``shared``; returns the thread's depth before, for ``leave``."""
        depth = _depth()
        with self._cond:
            while self._queued and not depth:
                self._cond.wait()
            self._shared += 1
        _inside.depth = depth + 1
        return depth

    def leave(self, depth: int) -> None:
        _inside.depth = depth
        with self._cond:
            self._shared -= 1
            if not self._shared:
                self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = self.enter()
        try:
            yield
        finally:
            self.leave(depth)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if _depth():
            raise RuntimeError("a map resize asked for inside a transaction would wait "
                               "for itself")
        with self._cond:  # held throughout: no new transaction starts meanwhile
            self._queued += 1
            try:
                while self._shared:
                    self._cond.wait()
                yield
            finally:
                self._queued -= 1
                self._cond.notify_all()


class _Read:
    """``Env.read()``: a class, not a generator, since build() opens dozens."""

    __slots__ = ("depth", "env", "txn")

    def __init__(self, env: Env) -> None:
        self.env = env

    def __enter__(self) -> Any:
        env = self.env
        for _attempt in range(2):
            depth = env._in_use.enter()
            try:
                self.txn = env.env.begin(write=False)
            except lmdb.MapResizedError:  # another process grew the map: adopt it, retry
                env._in_use.leave(depth)
                if depth:  # inside another transaction: resize outside it
                    raise Remap(env, 0) from None
                env._set_mapsize(0)
                continue
            except BaseException as exc:
                env._in_use.leave(depth)
                env._check_open()  # closed by another thread meanwhile
                if isinstance(exc, lmdb.Error):
                    raise StorageError(f"read from {str(env.path)!r} failed: {exc}") from exc
                raise
            self.depth = depth
            return self.txn
        raise StorageError(f"read from {str(env.path)!r} failed: the map keeps changing")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        try:
            self.txn.abort()
        finally:
            self.env._in_use.leave(self.depth)
        if isinstance(exc, lmdb.Error) and not isinstance(
                exc, (lmdb.MapFullError, lmdb.MapResizedError)):
            raise StorageError(f"read from {str(self.env.path)!r} failed: {exc}") from exc


class Remap(StorageError):
    """A map must be resized (grown, or adopted at the size another process set)
    while this thread is inside a transaction: raised out to the outermost one,
    which leaves every transaction, resizes and tries again (``Env.write`` and
    ``Store.ws_log_read``); elsewhere it reaches the caller, who may call again."""

    def __init__(self, env: Env, size: int) -> None:
        super().__init__(f"the store {str(env.path)!r} grew (here or in another process) "
                         "while this call read it; call it again")
        self.env, self.size = env, size

    def resize(self) -> None:
        self.env._set_mapsize(self.size)


class Env:
    """One LMDB environment with its named sub-databases."""

    def __init__(self, path: Path, databases: dict[str, tuple[bool, bool]], *, durable: bool,
                 map_size: int, flush_interval_ms: int | None, in_use: _SharedExclusive,
                 derived_format: bytes | None = None) -> None:
        """``durable``: fsync every commit. Otherwise fsync every ``flush_interval_ms``,
        or (None) only on ``flush()`` and ``close()``. ``derived_format``: the
        environment holds only data derived from the log, in this format: if it holds
        another (``reset`` is then True), every database but ``meta`` is dropped."""
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            self.env = lmdb.open(
                str(path), map_size=map_size, max_dbs=len(databases) + 2,
                sync=durable, metasync=durable, readahead=False, max_readers=254,
            )
        except lmdb.LockError as exc:
            raise StoreLockedError(f"store {str(path)!r} is locked: {exc}") from exc
        except (lmdb.Error, OSError) as exc:
            raise StorageError(f"cannot open store {str(path)!r}: {exc}") from exc
        self.durable = durable
        self.flush_interval = math.inf if flush_interval_ms is None else flush_interval_ms / 1e3
        self._last_flush = time.monotonic()
        self._write_lock = threading.Lock()
        self._in_use = in_use  # the store's: transactions vs. map resizes
        self.closed = False
        self.dbs: dict[str, Any] = {}
        self.reset = False
        try:
            with self.env.begin(write=True) as txn:
                if derived_format is not None:
                    self.reset = self._check_derived_format(txn, derived_format)
                for name, (dupsort, dupfixed) in databases.items():
                    self.dbs[name] = self.env.open_db(name.encode(), txn=txn,
                                                      dupsort=dupsort, dupfixed=dupfixed)
        except lmdb.Error as exc:
            self.env.close()
            raise StorageError(
                f"cannot open the databases of {str(path)!r}: {exc}. If this is the "
                "working_set directory, delete it: it is rebuilt from the log") from exc
        try:
            self.clear_stale_readers()
        except StorageError:
            self.env.close()
            raise

    def clear_stale_readers(self) -> int:
        """Free the reader slots of processes that died inside a read (SIGKILL, a
        crash); returns how many. Until freed, each pins the pages its snapshot saw,
        and the data file grows with every write instead of reusing them."""
        try:
            return int(self.env.reader_check())
        except lmdb.Error as exc:
            self._check_open()
            raise StorageError(f"cannot check the readers of {str(self.path)!r}: {exc}"
                               ) from exc

    def _check_derived_format(self, txn: Any, fmt: bytes) -> bool:
        """Drop every database but ``meta`` (their flags may differ from this format's)
        and forget what was applied, unless the environment is new or in ``fmt``."""
        meta = self.env.open_db(b"meta", txn=txn)
        if txn.get(b"format", db=meta) == fmt:
            return False
        with txn.cursor() as cur:  # the main database: one key per named database
            names = [bytes(k) for k in cur.iternext(values=False) if bytes(k) != b"meta"]
        for name in names:
            txn.drop(self.env.open_db(name, txn=txn, create=False), delete=True)
        for key in (b"applied", b"skipped", b"first_skipped"):
            txn.delete(key, db=meta)
        txn.put(b"format", fmt, db=meta)
        return bool(names)

    def _check_open(self) -> None:
        if self.closed:
            raise StoreClosedError("this MemoryEngine is closed; open a new one")

    def write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(txn)`` in one write transaction, committed durably.

        ``fn`` may run more than once (after a map is resized), so it must not
        have side effects outside the transaction before it returns.
        """
        self._check_open()
        with self._write_lock:
            self._check_open()  # close() holds the lock while it closes
            for _attempt in range(40):
                try:
                    try:
                        with self._in_use.shared(), self.env.begin(write=True) as txn:
                            result = fn(txn)
                        break
                    except lmdb.MapFullError:
                        raise Remap(self, self.env.info()["map_size"] * 2) from None
                    except lmdb.MapResizedError:
                        raise Remap(self, 0) from None  # another process grew it: adopt
                    except lmdb.Error as exc:
                        raise StorageError(f"write to {str(self.path)!r} failed: {exc}"
                                           f"{_disk_full_hint(self.path)}") from exc
                except Remap as remap:  # this map's, or another's read inside ``fn``
                    if _depth():
                        raise
                    remap.resize()
            else:
                raise StorageError(f"store {str(self.path)!r} cannot grow its map further")
            if not self.durable and time.monotonic() - self._last_flush >= self.flush_interval:
                self.flush()
            return result

    def read(self) -> _Read:
        """A read-only snapshot (a context manager giving the transaction); readers
        never block the writer or each other."""
        self._check_open()
        return _Read(self)

    def _set_mapsize(self, size: int) -> None:
        """Grow the map (0: adopt the size another process set). LMDB remaps the file,
        so no other thread of this process may be inside a transaction meanwhile: wait
        for them to leave (they are short), and let none in until it is done."""
        with self._in_use.exclusive():
            try:
                self.env.set_mapsize(size)
            except lmdb.Error as exc:
                raise StorageError(f"cannot resize the map of {str(self.path)!r}: {exc}") from exc

    def flush(self) -> None:
        try:
            self.env.sync(True)
        except lmdb.Error as exc:
            raise StorageError(f"fsync of {str(self.path)!r} failed: {exc}") from exc
        self._last_flush = time.monotonic()

    def used_bytes(self) -> int:
        """Bytes of the data file in use (LMDB's high-water mark of pages)."""
        info = self.env.info()
        return int((info["last_pgno"] + 1) * self.env.stat()["psize"])

    def close(self) -> None:
        if self.closed:
            return
        with self._write_lock:
            if not self.durable:
                self.env.sync(True)
            self.env.close()
            self.closed = True


class LogView:
    """A read of the raw log: a snapshot of the inbox, then one of the archive
    (``Store.log_read``). Which of the two holds a turn: see rawlog.py."""

    __slots__ = ("_archived", "archive", "archive_dbs", "inbox", "inbox_dbs")

    def __init__(self, archive: Any, inbox: Any, archive_dbs: dict[str, Any],
                 inbox_dbs: dict[str, Any]) -> None:
        self.archive, self.inbox = archive, inbox
        self.archive_dbs, self.inbox_dbs = archive_dbs, inbox_dbs
        self._archived: int | None = None

    @property
    def archived(self) -> int:
        """The id of the archive's last turn (0: none); newer ones are the inbox's."""
        if self._archived is None:
            with self.archive.cursor(db=self.archive_dbs["turns"]) as cur:
                self._archived = unpack_u64(cur.key()) if cur.last() else 0
        return self._archived

    def holder(self, seq: int) -> tuple[Any, dict[str, Any]]:
        """The transaction and databases to read turn ``seq`` from."""
        if seq <= self.archived:
            return self.archive, self.archive_dbs
        return self.inbox, self.inbox_dbs

    def parts(self, start: int) -> list[tuple[Any, dict[str, Any], int, int]]:
        """Where the ids from ``start`` on are: (transaction, databases, first id,
        last id) for the archive's part, then the inbox's, in id order."""
        archived = self.archived
        out = [(self.archive, self.archive_dbs, start, archived)] if start <= archived else []
        out.append((self.inbox, self.inbox_dbs, max(start, archived + 1), 2**64 - 1))
        return out


class Store:
    """A store directory: the raw log and the working set, each its own environment."""

    def __init__(self, path: str | os.PathLike[str], *, durable: bool, map_size: int,
                 flush_interval_ms: int) -> None:
        self.path = check_store_path(path)
        try:
            if self.path.exists() and not self.path.is_dir():
                raise ValidationError(
                    f"store path {str(self.path)!r} exists and is not a directory")
            bare = (self.path / "data.mdb").exists()
        except OSError as exc:  # a name too long, a directory we may not enter
            raise StorageError(f"cannot open store {str(self.path)!r}: {exc}") from exc
        if bare:
            raise StorageError(f"{str(self.path)!r} is a bare LMDB environment, not a "
                               "memory-plugins store; choose another path")
        self._in_use = _SharedExclusive()
        self.log = Env(self.path / "log", LOG_DATABASES, durable=durable, map_size=map_size,
                       flush_interval_ms=flush_interval_ms, in_use=self._in_use)
        try:
            self._check_format()
            self.inbox = Env(self.path / "inbox", INBOX_DATABASES, durable=durable,
                             map_size=map_size, flush_interval_ms=flush_interval_ms,
                             in_use=self._in_use)
            # The working set is derived from the log, so its commits need no fsync of
            # their own (which would queue behind, and delay, the log's). A process
            # crash cannot hurt it (the OS still writes what it was given); only a
            # machine crash can, and _open_working_set detects that and rebuilds it.
            boot = _boot_id()
            self.ws = Env(self.path / "working_set", WORKING_SET_DATABASES,
                          durable=boot is None and durable, map_size=map_size,
                          flush_interval_ms=None if boot else flush_interval_ms,
                          in_use=self._in_use, derived_format=WORKING_SET_FORMAT)
            self.upgraded = self.ws.reset  # another format: rebuilt from the log
            self.rebuilt = self._open_working_set(boot)
        except BaseException:
            self.close()
            raise

    def _check_format(self) -> None:
        def fn(txn: Any) -> None:
            meta = self.log.dbs["meta"]
            fmt = txn.get(b"format", db=meta)
            if fmt == b"1":
                self._upgrade_format_1(txn)
            if fmt is None or (fmt != STORE_FORMAT and fmt in READABLE_FORMATS):
                self._drop_chains(txn)
                txn.put(b"format", STORE_FORMAT, db=meta)
            elif fmt != STORE_FORMAT:
                raise StorageError(
                    f"store {str(self.path)!r} has format {bytes(fmt)!r}, this release reads "
                    f"{STORE_FORMAT!r}; export it with the release that wrote it")
        self.log.write(fn)

    def _drop_chains(self, txn: Any) -> None:
        """Formats 1-2 kept each user's chain head in ``chains``; format 3 reads it
        through the user's turn index (rawlog._chain_head)."""
        try:
            chains = self.log.env.open_db(b"chains", txn=txn, create=False)
        except lmdb.NotFoundError:
            return
        txn.drop(chains, delete=True)

    def _upgrade_format_1(self, txn: Any) -> None:
        """Format 1 indexed a user's turns by 8-byte seqs; format 2 by 5 (its frames
        are unchanged: version-1 frames stay readable). One pass over the index."""
        db = self.log.dbs["user_turns"]
        with txn.cursor(db=db) as cur:
            users = [bytes(k) for k in cur.iternext_nodup(keys=True, values=False)]
            if not users or len(cur.get(users[0]) or b"") != 8:
                return  # empty, or already rewritten
        for key in users:  # one user's seqs in memory at a time
            with txn.cursor(db=db) as cur:
                cur.set_key(key)
                seqs = [bytes(v) for v in cur.iternext_dup(keys=False)]
            txn.delete(key, db=db)  # every duplicate of the key
            with txn.cursor(db=db) as cur:
                for value in seqs:
                    if value[:3] != bytes(3):
                        raise StorageError(
                            f"turn {unpack_u64(value)} is past what format 2 numbers")
                    cur.put(key, value[3:], dupdata=True)

    def _open_working_set(self, boot: bytes | None) -> bool:
        """Count this process as a writer of the working set. If writers were still
        counted when the machine last went down (another boot id), their unsynced
        pages may be torn: empty the working set, to be rebuilt from the log."""
        def fn(txn: Any) -> bool:
            meta = self.ws.dbs["meta"]
            writers = unpack_u64(txn.get(b"writers", db=meta) or bytes(8))
            stale = boot is not None and writers > 0 and txn.get(b"boot", db=meta) != boot
            if stale:
                for name, db in self.ws.dbs.items():
                    if name != "meta":
                        txn.drop(db, delete=False)
                txn.delete(b"applied", db=meta)
                writers = 0
            txn.put(b"writers", pack_u64(writers + 1), db=meta)
            if boot is not None:
                txn.put(b"boot", boot, db=meta)
            return stale
        rebuilt = self.ws.write(fn)
        self.ws.flush()  # the writer count itself must survive a crash
        return rebuilt

    def _close_working_set(self) -> None:
        """fsync what this process wrote, then stop counting it as a writer."""
        self.ws.flush()

        def fn(txn: Any) -> None:
            meta = self.ws.dbs["meta"]
            writers = unpack_u64(txn.get(b"writers", db=meta) or bytes(8))
            txn.put(b"writers", pack_u64(max(0, writers - 1)), db=meta)
        self.ws.write(fn)
        self.ws.flush()

    @contextmanager
    def log_read(self) -> Iterator[LogView]:
        """A read of the raw log; the inbox first (see rawlog.py for why)."""
        with self.ws_log_read(ws=False) as (_ws, view):
            yield view

    @contextmanager
    def ws_log_read(self, *, ws: bool = True) -> Iterator[tuple[Any, LogView]]:
        """A read of the working set (None if not ``ws``) and one of the raw log. If
        a map must be resized meanwhile, all are left, it is resized and they are
        opened again (or, inside another transaction, the outermost one does it).
        Written out, not with an ExitStack: build() opens a dozen of these."""
        for _attempt in range(8):
            opened = False
            try:
                with (self.ws.read() if ws else nullcontext()) as ws_txn, \
                        self.inbox.read() as inbox_txn, self.log.read() as archive_txn:
                    opened = True
                    yield ws_txn, LogView(archive_txn, inbox_txn, self.log.dbs, self.inbox.dbs)
                return
            except Remap as remap:
                if opened or _depth():
                    raise
                remap.resize()
        raise StorageError(f"reading {str(self.path)!r} failed: its maps keep changing")

    @property
    def closed(self) -> bool:
        return self.log.closed

    def check_open(self) -> None:
        self.log._check_open()

    def clear_stale_readers(self) -> int:
        """``Env.clear_stale_readers`` for each environment; the slots freed."""
        return sum(env.clear_stale_readers() for env in (self.log, self.inbox, self.ws))

    def used_bytes(self) -> int:
        return self.log.used_bytes() + self.inbox.used_bytes() + self.ws.used_bytes()

    def flush(self) -> None:
        self.inbox.flush()
        self.log.flush()
        self.ws.flush()

    def close(self) -> None:
        try:
            ws = getattr(self, "ws", None)
            if ws is not None and not ws.closed:
                try:
                    self._close_working_set()
                finally:
                    ws.close()
        finally:
            try:
                inbox = getattr(self, "inbox", None)
                if inbox is not None:
                    inbox.close()
            finally:
                self.log.close()


def _disk_full_hint(path: Path) -> str:
    """Why a write may have failed: LMDB reports a short write on a full disk as
    "Input/output error" as often as "No space left on device"."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return ""
    return f" (the disk is full: {free // 1024} KiB free)" if free < 1024 * 1024 else ""


ENVIRONMENTS = ("log", "inbox", "working_set")  # a store's directories: nothing else is ours


def erase_store(path: str | os.PathLike[str]) -> None:
    """Delete the store at ``path`` (closed first, by every process): its own
    directories only; the directory itself too if nothing else is left in it."""
    root = check_store_path(path)
    try:
        for name in ENVIRONMENTS:
            if (root / name).is_dir():
                shutil.rmtree(root / name)
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
    except OSError as exc:
        raise StorageError(f"cannot erase the store at {str(root)!r}: {exc}") from exc


def check_store_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, if the OS can take it as a directory name."""
    raw = os.fspath(path)
    if isinstance(raw, bytes) or not raw:
        raise ValidationError("path must be a non-empty str or PathLike (the store's "
                              f"directory), got {raw!r}")
    if "\0" in raw:
        raise ValidationError(f"path {raw!r} contains a NUL character")
    try:
        raw.encode("utf-8")  # LMDB takes paths as UTF-8; a non-UTF-8 file name fails there
    except UnicodeEncodeError as exc:
        raise ValidationError(f"path {raw!r} is not valid UTF-8: {exc}") from None
    return Path(raw)


def _boot_id() -> bytes | None:
    """This boot's id (Linux); None where the OS gives none."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read().strip() or None
    except OSError:
        return None
