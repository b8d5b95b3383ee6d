"""MemoryEngine: the public face of a store.

    with MemoryEngine(path="./memory") as engine:
        engine.observe("My dog's name is Potola.", user_id="u1")
        for turn in engine.turns(user_id="u1"):
            print(turn.text)

observe() makes the turn durable in the raw log and returns; the working set
(memories) is derived from the log by a background worker, in log order. Every
call that reads memories first applies whatever that worker has not applied
yet, so reads always see every turn observed before them (read-your-writes);
if they cannot be applied (a full disk), reads go on without them.
With ``maintenance="inline"`` observe() applies its turn itself before
returning.

Thread-safe within a process; several processes may share one store (LMDB
serialises writers and never blocks readers).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from . import rawlog
from .builder import build_prompt, recall_candidates
from .cache import LRU
from .embed import Embedder, HashingEmbedder, default_embedder
from .errors import (
    CorruptionError,
    NotFoundError,
    RuntimeFailure,
    StorageError,
    StoreClosedError,
    ValidationError,
)
from .events import EventBus
from .frames import Turn
from .lines import PromptLines
from .maintenance import HotCache, Maintainer, yield_gil
from .prompt import Budget, Prompt
from .rawlog import VerifyReport
from .recall import Recall, query_words
from .settings import MEMORY_TYPES, PROCESS_ONLY, Settings
from .storage import Store
from .tokenizers import Tokenizer, resolve_tokenizer
from .units import GONE, LEVEL_NAMES, MemoryUnit
from .validation import check_id, check_int_id, check_metadata, checked_metadata, to_timestamp
from .vectors import VectorStore
from .workingset import Changes, Tx, UserState, WorkingSet, caller_metadata, cue

__all__ = ["DeepHit", "HealthReport", "MemoryEngine", "MemoryEvent", "Stats"]

T = TypeVar("T")
log = logging.getLogger("memory_plugins")
_SETTINGS_KEY = b"settings"
_CATCH_UP_BATCH = 64  # turns per working-set transaction: short log snapshots
_CAPACITIES = ("warm_units", "working_set_tokens")  # per user: lowering one forgets
_READER_CHECK_S = 10.0  # how often maintenance frees the reader slots of dead processes
_shared: dict[str, Any] = {}  # process-wide tokenizer and embedder (loading costs seconds)
_shared_lock = threading.Lock()


def _shared_default(name: str, make: Callable[[], Any]) -> Any:
    with _shared_lock:
        if name not in _shared:
            _shared[name] = make()
        return _shared[name]
_MEMORY_ROLE = "memory"  # the role of turns logged by add/update/delete


def added_metadata(type: str | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """What add() logs as its turn's metadata: the operation around the caller's (so a
    caller can tell the size it will have against max_turn_bytes before adding)."""
    return {"op": "add", "type": type, "metadata": metadata}


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """Counts and sizes of a store, or of one user in it."""

    users: int
    turns: int
    units: int
    units_by_level: dict[str, int]  # verbatim / compressed / abbreviated / trace
    units_by_tier: dict[str, int]  # hot (this process's RAM), warm (levels 0-1), cold (2-3)
    working_set_tokens: int  # estimated
    log_bytes: int  # bytes of the LMDB files in use (log and working set)
    oldest: float | None  # timestamps of the first and last turn logged (POSIX seconds;
    # in log order: a back-dated turn logged later does not move oldest)
    newest: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class HealthReport:
    ok: bool
    checks: dict[str, str]  # name -> "ok" or what is wrong and what to do


@dataclasses.dataclass(frozen=True, slots=True)
class DeepHit:
    """A turn found by ``deep_recall`` in the raw log, at full fidelity."""

    turn_id: int
    text: str
    speaker: str | None
    timestamp: float
    score: float
    metadata: dict[str, Any] | None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchHit:
    """A memory found by ``search``, shown the way ``get`` shows it, with its
    relevance (0..1: vector and keyword similarity and strength, fused)."""

    memory: MemoryUnit
    score: float


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryEvent:
    """One entry of a memory's history, the way Mem0 reports it."""

    memory_id: int
    event: str  # ADD, UPDATE or DELETE
    old_memory: str | None
    new_memory: str | None
    turn_id: int  # the log frame that recorded it
    timestamp: float


class MemoryEngine:
    """Opens (or creates) a store at ``path`` and gives it a memory API.

    Keyword settings override the store's persisted ones (see
    ``memory_plugins.settings.DEFAULT_SETTINGS``).
    """

    def __init__(self, path: str | os.PathLike[str] = "./memory", *,
                 budget: Budget | None = None,
                 tokenizer: Tokenizer | str | Callable[[str], Any] | None = None,
                 embedder: Embedder | str | None = None, **settings: Any) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ValidationError(f"path must be a str or PathLike, got {type(path).__name__}")
        if budget is not None and not isinstance(budget, Budget):
            raise ValidationError(f"budget must be a Budget, got {type(budget).__name__}")
        if embedder is not None and not (embedder in ("default", "hashing")
                                         or isinstance(embedder, Embedder)):
            raise ValidationError(f"embedder must be an Embedder, 'hashing' or 'default', "
                                  f"got {embedder!r}")
        self.budget = budget or Budget()
        self._tokenizer_spec = tokenizer
        self._tokenizer: Tokenizer | None = None  # resolved on first use
        self._embedder_spec = embedder
        self.events = EventBus()
        given = Settings.from_mapping(settings)  # validate before touching the disk
        self._store = Store(path, durable=given.durability == "sync",
                            map_size=given.map_size_mb * 1024 * 1024,
                            flush_interval_ms=given.flush_interval_ms)
        try:
            self.settings = self._load_settings(settings)
        except BaseException:
            self._store.close()
            raise
        if self._store.upgraded:
            log.warning("%s: the working set was written in an older format; it is rebuilt "
                        "from the log as it is next read", self.path)
        elif self._store.rebuilt:
            log.warning("%s: the machine went down while the store was open; the working "
                        "set is rebuilt from the log as it is next read", self.path)
        self._ws = WorkingSet(self._store, self.settings)
        self._hot = HotCache(self.settings.hot_units, self.settings.cached_users)
        self._recall: Recall | None = None
        # build() reads the same turns and lines again and again: keep them in RAM.
        self._turns: LRU[int, Turn] = LRU(8192)
        self._lines = PromptLines(lambda: self.tokenizer)
        self._applied_hint = 0  # last turn this process saw applied (a lower bound)
        with self._store.log_read() as view:  # where the log's inbox stands (rawlog.py)
            self._archived_hint = view.archived  # last turn seen in the log's archive
            self._newest_hint = rawlog.last_seq(view)  # last turn seen logged
        self._move_error: StorageError | None = None  # the last inline move's, if it failed
        self._apply_error: Exception | None = None  # the last after-append apply's, if failed
        self._readers_checked = time.monotonic()  # the store's open checked them
        self._maintainer: Maintainer | None = None
        self._maintainer_lock = threading.Lock()
        self._closing = False

    def _load_settings(self, given: dict[str, Any]) -> Settings:
        meta = self._store.log.dbs["meta"]

        def fn(txn: Any) -> Settings:
            raw = txn.get(_SETTINGS_KEY, db=meta)
            stored = {} if raw is None else json.loads(bytes(raw))
            merged = Settings.from_mapping({**stored, **given})
            for name in _CAPACITIES:  # lowered: the next turn of each user trims to it
                before = stored.get(name)
                if before is not None and getattr(merged, name) < before:
                    log.warning("%s: %s lowered from %d to %d: at each user's next turn the "
                                "weakest memories past it leave the working set (they stay "
                                "in the log)", self._store.path, name, before,
                                getattr(merged, name))
            if raw is None or any(k not in PROCESS_ONLY for k in given):
                txn.put(_SETTINGS_KEY, merged.to_json().encode(), db=meta)
            return merged
        return self._store.log.write(fn)

    @property
    def path(self) -> str:
        return str(self._store.path)

    # -- transactions ---------------------------------------------------------

    def _ws_write(self, fn: Callable[[Tx], tuple[T, dict[str, Changes]]]) -> T:
        """A working-set write (with a log snapshot); then refresh the hot cache."""
        def run(txn: Any) -> tuple[T, dict[str, Changes]]:
            with self._store.log_read() as log_txn:
                return fn(Tx(txn, log_txn))
        result, changes = self._store.ws.write(run)
        for user_id, ch in changes.items():
            self._hot.apply(user_id, ch)
            if self._recall is not None:  # build() is in use: keep its indexes ready
                self._recall.apply(user_id, ch, self._cue)
                self._warm_lines(list(ch.touched()))
            if ch.added:
                self.events.emit("memory_store", {
                    "user_id": user_id, "memory_ids": [u.id for u in ch.added],
                    "turn_id": ch.added[-1].origin})
        return result

    def _warm_lines(self, units: list[MemoryUnit]) -> None:
        with self._store.log_read() as txn:
            self._lines.warm(units, lambda turn_id: self._turn(txn, turn_id))

    def _cue(self, unit: MemoryUnit) -> str:
        with self._store.log_read() as txn:
            return self._cue_in(txn, unit)

    def _cue_in(self, txn: Any, unit: MemoryUnit) -> str:
        """``unit``'s cue (workingset.cue), read in the log transaction ``txn``."""
        return cue(unit, self._turn(txn, unit.origin), lambda turn: self._turn_before(txn, turn))

    # -- the tokenizer, the embedder and the recall indexes (loaded on first use) ----

    @property
    def tokenizer(self) -> Tokenizer:
        tok = self._tokenizer
        if tok is None:
            if self._tokenizer_spec is None:
                tok = _shared_default("tokenizer", lambda: resolve_tokenizer(None))
            else:
                tok = resolve_tokenizer(self._tokenizer_spec)
            self._tokenizer = tok
        return tok

    def _recall_engine(self) -> Recall:
        if self._recall is None:
            spec = self._embedder_spec
            if spec is None or spec == "default":
                embedder: Embedder = _shared_default("embedder", default_embedder)
            elif spec == "hashing":
                embedder = HashingEmbedder()
            else:
                assert not isinstance(spec, str)  # __init__ refused any other name
                embedder = spec
            self._recall = Recall(embedder, self.settings.cached_users,
                                  self.settings.recall_forgotten_units,
                                  VectorStore(self._store.ws, embedder))
        return self._recall

    @contextmanager
    def _ws_read(self) -> Iterator[Tx]:
        with self._store.ws_log_read() as (ws_txn, log_txn):
            yield Tx(ws_txn, log_txn)

    def _catch_up(self, *, background: bool = False) -> None:
        """Apply every logged turn the working set has not seen (read-your-writes)."""
        with self._ws_read() as tx:  # most reads find nothing pending: no write, no fsync
            if self._ws.applied(tx) >= rawlog.last_seq(tx.log):
                self._applied_all()
                return
        # The worker applies one turn per transaction and yields between them, never
        # inside one: its log snapshot, held across a yield, would pin every page the
        # caller's observe() calls free meanwhile, and LMDB then carries them in its
        # free list, rewritten at every later commit (a burst of 3,000 turns left 576
        # free pages where 21 are usual, and each durable commit wrote them out).
        batch = 1 if background else _CATCH_UP_BATCH
        while True:
            left = self._ws_write(lambda tx: self._catch_up_batch(tx, batch))
            if left <= 0:
                self._applied_all()
                return
            if background:
                yield_gil()

    def _applied_all(self) -> None:
        """Every logged turn is applied: earlier failures to apply them are over."""
        self._apply_error = None
        worker = self._maintainer
        if worker is not None:
            worker.error = None

    def _catch_up_to_read(self) -> None:
        """``_catch_up`` before a read. If the pending turns cannot be applied (a
        full disk), the read is served from the working set as it stands, without
        them (build() still shows them in the history: it reads those from the log):
        a prompt without the latest memories is better than none. health() says why."""
        try:
            self._catch_up()
        except StorageError as exc:
            self._apply_failed(exc)

    def _apply_failed(self, exc: Exception) -> None:
        """Applying logged turns failed: logged once until it works again (not every
        turn or read), kept for health(). The turns stay in the log."""
        if self._apply_error is None:
            log.warning("%s: applying logged turns to the working set failed (they stay in "
                        "the log; reads go on without their memories and retry): %s",
                        self.path, exc, exc_info=not isinstance(exc, StorageError))
        self._apply_error = exc

    def _catch_up_batch(self, tx: Tx, limit: int) -> tuple[int, dict[str, Changes]]:
        changes, left = self._ws.catch_up(tx, limit)
        self._applied_hint = max(self._applied_hint, self._ws.applied(tx))
        return left, changes

    def _maintain(self, *, background: bool = True) -> None:
        """Apply pending turns to the working set, then move the log's inbox to its
        archive if it has grown (rawlog.py): the background worker's round, or
        each observe()'s with maintenance="inline"."""
        self._catch_up(background=background)
        if time.monotonic() - self._readers_checked >= _READER_CHECK_S:
            try:
                self._clear_stale_readers()
            except StorageError as exc:  # health() reports it too; the round goes on
                log.warning("%s: %s", self.path, exc)
        while self._newest_hint - self._archived_hint >= rawlog.INBOX_MOVE_AT:
            if not self._move_inbox():
                return
            if background:
                yield_gil()

    def _move_inbox(self) -> int:
        """Move a batch of the log's inbox to its archive; the turns moved. Called
        after a turn is durable, so a failure (a full disk) must not make the caller
        think it was lost and log it again: reads see the inbox as usual, health()
        says why it grows, and the next call tries again."""
        try:
            moved, self._archived_hint = rawlog.move_to_archive(self._store)
        except StorageError as exc:
            self._move_error = exc
            log.warning("%s: moving the log's inbox to its archive failed: %s", self.path, exc)
            return 0
        self._move_error = None
        return moved

    def _clear_stale_readers(self) -> None:
        self._readers_checked = time.monotonic()
        cleared = self._store.clear_stale_readers()
        if cleared:
            log.warning("%s: freed %d reader slot(s) left by processes that died while "
                        "reading", self.path, cleared)

    def _wake_maintainer(self) -> None:
        """Apply a durable turn's memories now or soon. A failure here must not
        reach the caller (who would take the turn for lost and log it again): the
        turn is in the log, health() says what failed, and the next read applies it."""
        try:
            if self.settings.maintenance == "inline":
                self._maintain(background=False)
            elif self._newest_hint - self._applied_hint > self.settings.max_pending_turns:
                self._catch_up()  # the worker fell too far behind: help it
            else:
                self._notify_maintainer()
        except StoreClosedError:  # close() raced this call: the next open applies it
            pass
        except Exception as exc:
            self._apply_failed(exc)

    def _notify_maintainer(self) -> None:
        with self._maintainer_lock:
            if self._closing:  # close() ran after this turn was logged
                return
            if self._maintainer is None:
                self._maintainer = Maintainer(self)
                self._maintainer.start()
            self._maintainer.notify()

    # -- the write path -------------------------------------------------------

    def _make_turn(self, text: object, role: object, user_id: object, session_id: object,
                   speaker: object, timestamp: object, metadata: object) -> Turn:
        if not isinstance(text, str):
            raise ValidationError(f"text must be a str, got {type(text).__name__}")
        meta, meta_size = checked_metadata(metadata)  # in the same frame: the same limit
        size = len(text.encode("utf-8", "surrogatepass")) + meta_size
        if size > self.settings.max_turn_bytes:
            raise ValidationError(
                f"text and metadata are {size} bytes; the limit is "
                f"{self.settings.max_turn_bytes} (setting max_turn_bytes)")
        check_id("role", role)
        if isinstance(role, str) and len(role) > 64:
            raise ValidationError("role must be at most 64 characters")
        check_id("user_id", user_id)
        check_id("session_id", session_id, optional=True)
        check_id("speaker", speaker, optional=True)
        ts, offset = to_timestamp(timestamp)
        assert isinstance(role, str) and isinstance(user_id, str)
        return Turn(id=0, user_id=user_id, session_id=session_id,  # type: ignore[arg-type]
                    role=role, speaker=speaker, text=text,  # type: ignore[arg-type]
                    timestamp=ts, utc_offset_minutes=offset, metadata=meta)

    def _append(self, turn: Turn) -> int:
        """Make ``turn`` durable in the log; returns its id."""
        turn_id = rawlog.append(self._store, turn).id
        self._newest_hint = max(self._newest_hint, turn_id)
        if turn_id - self._archived_hint > rawlog.INBOX_MAX:  # a burst with no gaps
            self._move_inbox()
        return turn_id

    def observe(self, text: str, *, role: str = "user", user_id: str = "default",
                session_id: str | None = None, speaker: str | None = None,
                timestamp: dt.datetime | float | None = None,
                metadata: dict[str, Any] | None = None) -> int:
        """Log one turn; returns its id. Durable when it returns (unless the store
        runs with durability="deferred"); the user's memories follow from it."""
        if role == _MEMORY_ROLE:
            raise ValidationError("role 'memory' is reserved for add/update/delete")
        turn = self._make_turn(text, role, user_id, session_id, speaker, timestamp, metadata)
        turn_id = self._append(turn)
        self.events.emit("conversation_turn", {
            "turn_id": turn_id, "user_id": turn.user_id, "session_id": turn.session_id,
            "role": turn.role, "timestamp": turn.timestamp})
        self._wake_maintainer()
        return turn_id

    async def aobserve(self, text: str, **kwargs: Any) -> int:
        """``observe`` off the event loop (the fsync runs in a worker thread)."""
        return await asyncio.to_thread(self.observe, text, **kwargs)

    async def abuild(self, current: str, **kwargs: Any) -> Prompt:
        """``build`` off the event loop."""
        return await asyncio.to_thread(self.build, current, **kwargs)

    # -- the read path: constant-size prompts ------------------------------------

    def build(self, current: str, *, user_id: str = "default", session_id: str | None = None,
              system: str | None = None) -> Prompt:
        """The prompt for ``current``: system, memories, history and current input,
        each inside its budget, the whole never over ``budget.prompt`` tokens."""
        if not isinstance(current, str):
            raise ValidationError(f"current must be a str, got {type(current).__name__}")
        if system is not None and not isinstance(system, str):
            raise ValidationError(f"system must be a str or None, got {type(system).__name__}")
        check_id("user_id", user_id)
        check_id("session_id", session_id, optional=True)
        self._catch_up_to_read()
        return build_prompt(self, current, user_id, system)

    def search(self, query: str, *, user_id: str = "default", limit: int = 10
               ) -> list[SearchHit]:
        """The user's memories most relevant to ``query``, best first: the same
        hybrid recall ``build()`` uses, over the working set and the forgotten
        memories the query names (shown verbatim from the log). Changes nothing."""
        if not isinstance(query, str):
            raise ValidationError(f"query must be a str, got {type(query).__name__}")
        check_id("user_id", user_id)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a positive int, got {limit!r}")
        self._catch_up_to_read()
        candidates = recall_candidates(self, user_id, query)
        hits: list[SearchHit] = []
        with self._ws_read() as tx:
            now = self._ws.state(tx, user_id).now
            for c in candidates:
                if len(hits) >= limit:
                    break
                shown = None if c.forgotten else self._present(tx, c.unit, now)
                if shown is None:  # forgotten: shown as it was said, from the log
                    full = self._ws.rebuild(tx, c.unit)
                    if full is None:
                        continue
                    turn = self._turn(tx.log, full.origin)
                    shown = full.evolve(metadata=caller_metadata(full, turn))
                hits.append(SearchHit(shown, round(c.score, 6)))
        return hits

    def deep_recall(self, query: str, *, user_id: str = "default", time_budget_ms: float = 500,
                    limit: int = 10,
                    reconstructor: Callable[[str, list[DeepHit]], str] | None = None
                    ) -> list[DeepHit] | str:
        """The slow path: search the whole raw log (newest first, within the time
        budget) for turns about ``query``, at full fidelity. With a
        ``reconstructor(query, hits) -> str`` (e.g. a small local model), return its
        note instead, its input capped at the memories budget and its output too."""
        if not isinstance(query, str):
            raise ValidationError(f"query must be a str, got {type(query).__name__}")
        check_id("user_id", user_id)
        if isinstance(time_budget_ms, bool) or not isinstance(time_budget_ms, int | float) \
                or not time_budget_ms >= 0:
            raise ValidationError(
                f"time_budget_ms must be a number >= 0, got {time_budget_ms!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a positive int, got {limit!r}")
        if reconstructor is not None and not callable(reconstructor):
            raise ValidationError(f"reconstructor must be a function (query, hits) -> str, "
                                  f"got {reconstructor!r}")
        words = set(query_words(query))
        deadline = time.perf_counter() + max(0.0, time_budget_ms) / 1000.0
        hits: list[DeepHit] = []
        for turn in self._turns_newest_first(user_id, cached=False, deadline=deadline):
            if time.perf_counter() > deadline:
                break
            if turn.role == _MEMORY_ROLE or not words:
                continue
            found = words & set(query_words(turn.text))
            if found:
                score = len(found) / len(words)
                hits.append(DeepHit(turn.id, turn.text, turn.speaker, turn.timestamp, score,
                                    turn.metadata))
        hits.sort(key=lambda h: (-h.score, -h.turn_id))
        hits = hits[:limit]
        if reconstructor is None:
            return hits
        tok = self.tokenizer
        kept, used = [], 0
        for hit in hits:  # the reconstructor's input stays inside the memories budget
            room = self.budget.memories - used - 1
            if room <= 0:
                break
            text = tok.truncate(hit.text, room)  # a long turn: its beginning
            if not text and hit.text:  # not even its first character fits
                break
            if text != hit.text:
                hit = dataclasses.replace(hit, text=text)
            kept.append(hit)
            used += tok.count(text) + 1
        note = reconstructor(query, kept)
        if not isinstance(note, str):
            raise ValidationError("a reconstructor must return a str")
        return tok.truncate(note, self.budget.memories)

    def _turn(self, txn: Any, turn_id: int, *, cached: bool = True) -> Turn | None:
        """A decoded turn; recently read ones come from RAM (the log never changes
        a turn, so the cache is never stale)."""
        turn = self._turns.get(turn_id) if cached else None
        if turn is None:
            turn = rawlog.get_turn(txn, turn_id)
            if turn is not None and cached:
                self._turns.put(turn_id, turn)
        return turn

    def _turn_before(self, txn: Any, turn: Turn) -> Turn | None:
        """The user's turn just before ``turn`` (one index lookup), if any."""
        seqs = list(itertools.islice(rawlog.iter_user_seqs(
            txn, turn.user_id, reverse=True, before=turn.id), 1))
        prev = self._turn(txn, seqs[0]) if seqs else None
        return prev if prev is not None and prev.user_id == turn.user_id else None

    def _turns_newest_first(self, user_id: str, *, cached: bool = True,
                            deadline: float = math.inf) -> Iterator[Turn]:
        """The user's turns, newest first: short read transactions, each resuming
        where the last stopped, in batches that grow (most callers stop early).
        Past ``deadline`` (perf_counter) a batch stops decoding after one turn."""
        before, size = 0, 16  # before 0: from the newest
        while True:
            with self._store.log_read() as txn:
                seqs = list(itertools.islice(rawlog.iter_user_seqs(
                    txn, user_id, reverse=True, before=before), size))
                batch: list[Turn | None] = []
                for seq in seqs:  # big turns take long to decode: mind the deadline
                    if batch and time.perf_counter() > deadline:
                        seqs = seqs[:len(batch)]
                        break
                    batch.append(self._turn(txn, seq, cached=cached))
            for seq, turn in zip(seqs, batch, strict=True):
                if turn is None:
                    raise CorruptionError(f"turn {seq} is indexed but missing", seq=seq)
                if turn.user_id == user_id:  # a BLAKE2b collision must not leak data
                    yield turn
            if len(seqs) < size:  # the oldest reached (or the deadline cut the batch:
                return  # the caller stops there anyway)
            before, size = seqs[-1], min(256, size * 4)

    # -- reading the log ------------------------------------------------------

    def turns(self, *, user_id: str, session_id: str | None = None) -> Iterator[Turn]:
        """A user's turns in order, byte-exact (optionally one session's)."""
        check_id("user_id", user_id)
        check_id("session_id", session_id, optional=True)
        after = 0
        while True:  # short read transactions, so a long loop never pins old pages
            with self._store.log_read() as txn:
                batch = []
                for turn in rawlog.iter_user_turns(txn, user_id, after=after):
                    batch.append(turn)
                    if len(batch) >= 256:
                        break
            for turn in batch:
                if session_id is None or turn.session_id == session_id:
                    yield turn
            if len(batch) < 256:
                return
            after = batch[-1].id

    def get_turn(self, turn_id: int) -> Turn:
        with self._store.log_read() as txn:
            turn = rawlog.get_turn(txn, check_int_id("turn_id", turn_id))
        if turn is None:
            raise NotFoundError(f"no turn {turn_id} in this store")
        return turn

    def verify(self) -> VerifyReport:
        """Check every frame's CRC32 and every user's hash chain (reads the whole log)."""
        with self._store.log_read() as txn:
            return rawlog.verify(txn)

    # -- explicit memory management --------------------------------------------

    def add(self, text: str, *, user_id: str = "default", type: str | None = None,
            session_id: str | None = None, timestamp: dt.datetime | float | None = None,
            metadata: dict[str, Any] | None = None) -> MemoryUnit:
        """Store ``text`` as one memory, as given (logged first, like any turn)."""
        if type is not None and type not in MEMORY_TYPES:
            raise ValidationError(f"type must be one of {list(MEMORY_TYPES)}, got {type!r}")
        if isinstance(text, str) and not text.strip():
            raise ValidationError("a memory's text must not be empty")
        meta = check_metadata(metadata)
        turn = self._make_turn(text, _MEMORY_ROLE, user_id, session_id, None, timestamp,
                               added_metadata(type, meta))
        turn_id = self._append(turn)
        self._apply_logged(turn_id)
        try:
            return self.get(turn_id << 8)
        except NotFoundError:  # stored, then evicted at once (a tiny capacity): say so
            raise NotFoundError(
                f"memory {turn_id << 8} was stored (turn {turn_id}) but pushed out of the "
                "working set at once by its capacity (warm_units / working_set_tokens); "
                "it stays in the log") from None

    def _apply_logged(self, turn_id: int) -> None:
        """Apply a memory operation just logged; if that fails, say it was logged
        (done again, it would be done twice) and that the next read applies it."""
        try:
            self._catch_up()
        except StoreClosedError:
            raise StoreClosedError(
                f"this MemoryEngine was closed after the operation was logged (turn "
                f"{turn_id}); the store applies it when next opened: do not repeat it"
                ) from None
        except Exception as exc:
            kind = StorageError if isinstance(exc, StorageError) else RuntimeFailure
            raise kind(
                f"the operation was logged (turn {turn_id}) but not yet applied to the "
                f"working set: {exc}. The next read applies it; do not repeat it") from exc

    def _owner(self, tx: Tx, memory_id: int) -> str:
        turn = rawlog.get_turn(tx.log, memory_id >> 8)
        if turn is None:
            raise NotFoundError(f"no memory {memory_id} in this store")
        return turn.user_id

    def _check_live(self, tx: Tx, memory_id: int) -> MemoryUnit:
        user_id = self._owner(tx, memory_id)
        if self._ws.is_deleted(tx, user_id, memory_id):
            raise NotFoundError(f"memory {memory_id} was deleted")
        unit = self._unit_or_forgotten(tx, user_id, memory_id)
        if unit is None:
            raise NotFoundError(
                f"memory {memory_id} is not in the working set (forgotten); its turn is "
                "still in the log: reinforce([id]) brings it back")
        return unit

    def _unit_or_forgotten(self, tx: Tx, user_id: str, memory_id: int) -> MemoryUnit | None:
        """The memory's unit, or None if it was forgotten (its turn still holds it);
        NotFoundError if the id never named a memory."""
        unit = self._ws.load(tx, user_id, memory_id)
        if unit is None and not self._ws.original_text(
                tx, rawlog.get_turn(tx.log, memory_id >> 8), memory_id):
            raise NotFoundError(f"no memory {memory_id} in this store")
        return unit

    def _present(self, tx: Tx, unit: MemoryUnit, now: float) -> MemoryUnit | None:
        """A unit as callers see it: at the level the forgetting curve gives it now
        (even while its record waits for its scheduled degradation), its sentence
        read from the log, its strength and its source turn's metadata. None if
        the curve says it is gone."""
        level = unit.level_at(now, self.settings.level_thresholds)
        if level >= GONE:
            return None
        turn = rawlog.get_turn(tx.log, unit.origin)
        meta = caller_metadata(unit, turn)
        verbatim = turn.text[unit.span[0]:unit.span[1]] if turn is not None and not level else None
        return unit.degraded_to(level).evolve(verbatim=verbatim, metadata=meta,
                                             strength=unit.retention(now))

    def get(self, memory_id: int, *, user_id: str | None = None) -> MemoryUnit:
        """One memory by id; with ``user_id``, only if it is that user's."""
        memory_id = check_int_id("memory_id", memory_id)
        check_id("user_id", user_id, optional=True)
        self._catch_up_to_read()
        with self._ws_read() as tx:
            unit = self._check_live(tx, memory_id)
            if user_id is not None and unit.user_id != user_id:
                raise NotFoundError(f"no memory {memory_id} for this user")
            shown = self._present(tx, unit, self._ws.state(tx, unit.user_id).now)
            if shown is None:
                raise NotFoundError(f"memory {memory_id} has been forgotten; its turn is "
                                    "still in the log: reinforce([id]) brings it back")
            return shown

    def memories(self, *, user_id: str, type: str | None = None, level: int | None = None,
                 since: float | None = None, until: float | None = None,
                 limit: int | None = None) -> list[MemoryUnit]:
        """A user's memories in the working set, oldest first, optionally filtered."""
        check_id("user_id", user_id)
        if type is not None and type not in MEMORY_TYPES:
            raise ValidationError(f"type must be one of {list(MEMORY_TYPES)}, got {type!r}")
        if level is not None and level not in (0, 1, 2, 3):
            raise ValidationError(f"level must be 0..3, got {level!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise ValidationError(f"limit must be a non-negative int, got {limit!r}")
        for name, bound in (("since", since), ("until", until)):
            if bound is not None and (isinstance(bound, bool)
                                      or not isinstance(bound, int | float)
                                      or bound != bound):  # NaN
                raise ValidationError(f"{name} must be POSIX seconds or None, got {bound!r}")
        self._catch_up_to_read()
        with self._ws_read() as tx:
            now = self._ws.state(tx, user_id).now
            shown = [self._present(tx, u, now) for u in self._ws.iter_units(tx, user_id)
                     if (type is None or u.type == type)
                     and (since is None or u.created_at >= since)
                     and (until is None or u.created_at <= until)]
        found = [u for u in shown if u is not None and (level is None or u.level == level)]
        found.sort(key=lambda u: (u.created_at, u.id))
        return found[:limit]

    def _logged_op(self, memory_id: int, op: dict[str, Any], text: str) -> None:
        """Log an update or delete of a live memory, then apply it."""
        self._catch_up()
        with self._ws_read() as tx:
            user_id = self._owner(tx, memory_id)
            if self._ws.is_deleted(tx, user_id, memory_id):
                raise NotFoundError(f"memory {memory_id} was already deleted")
            self._unit_or_forgotten(tx, user_id, memory_id)
        self._apply_logged(
            self._append(self._make_turn(text, _MEMORY_ROLE, user_id, None, None, None, op)))

    def update(self, memory_id: int, text: str, *,
               metadata: dict[str, Any] | None = None) -> MemoryUnit:
        """Replace a memory's text (and metadata); the old text stays in its history."""
        memory_id = check_int_id("memory_id", memory_id)
        if isinstance(text, str) and not text.strip():
            raise ValidationError("a memory's text must not be empty")
        meta = check_metadata(metadata)
        self._logged_op(memory_id, {"op": "update", "memory_id": memory_id, "metadata": meta},
                        text)
        return self.get(memory_id)

    def delete(self, memory_id: int) -> None:
        """Delete a memory: gone from the working set, never restored; the log keeps it."""
        memory_id = check_int_id("memory_id", memory_id)
        self._logged_op(memory_id, {"op": "delete", "memory_id": memory_id}, "")
        with self._ws_read() as tx:
            user_id = self._owner(tx, memory_id)
        self.events.emit("memory_clear", {"user_id": user_id, "memory_id": memory_id})

    def history(self, memory_id: int) -> list[MemoryEvent]:
        """ADD, then every UPDATE and DELETE, oldest first."""
        memory_id = check_int_id("memory_id", memory_id)
        self._catch_up_to_read()
        with self._ws_read() as tx:
            origin = rawlog.get_turn(tx.log, memory_id >> 8)
            if origin is None:
                raise NotFoundError(f"no memory {memory_id} in this store")
            events = [MemoryEvent(memory_id=memory_id, **e)
                      for e in self._ws.events(tx, origin.user_id, memory_id)]
            if not events or events[0].event != "ADD":  # observed, not added: from the log
                first = self._ws.original_text(tx, origin, memory_id)
                if first is None:
                    raise NotFoundError(f"no memory {memory_id} in this store")
                events.insert(0, MemoryEvent(memory_id, "ADD", None, first, origin.id,
                                             origin.timestamp))
            return events

    def reinforce(self, memory_ids: Iterable[int], *, user_id: str) -> list[MemoryUnit]:
        """Count a retrieval: each memory grows stronger and returns to verbatim.

        Forgotten memories are restored from the log; deleted ones are skipped.
        """
        check_id("user_id", user_id)
        if isinstance(memory_ids, str | bytes) or not isinstance(memory_ids, Iterable):
            raise ValidationError(f"memory_ids must be an iterable of ints, got {memory_ids!r}")
        ids = [check_int_id("memory_id", m) for m in memory_ids]
        self._catch_up()

        def fn(tx: Tx) -> tuple[list[int], dict[str, Changes]]:
            ch = self._ws.reinforce_ids(tx, user_id, ids)
            return [u.id for u in (*ch.reinforced, *ch.restored)], {user_id: ch}

        touched = set(self._ws_write(fn))
        with self._ws_read() as tx:
            now = self._ws.state(tx, user_id).now
            shown = [self._present(tx, u, now) for u in
                     (self._ws.load(tx, user_id, i) for i in ids if i in touched) if u]
        return [u for u in shown if u is not None]

    def consolidate(self, *, user_id: str) -> int:
        """Merge near-duplicate memories (same compressed form); returns how many went."""
        check_id("user_id", user_id)
        self._catch_up()

        def fn(tx: Tx) -> tuple[int, dict[str, Changes]]:
            merged, ch = self._ws.consolidate(tx, user_id)
            return merged, {user_id: ch}

        return self._ws_write(fn)

    # -- health and numbers -----------------------------------------------------

    def stats(self, user_id: str | None = None) -> Stats:
        """Counts per level and tier, tokens, bytes, and the time span of the log."""
        check_id("user_id", user_id, optional=True)
        self._catch_up_to_read()
        with self._ws_read() as tx:
            if user_id is None:
                with tx.ws.cursor(db=self._store.ws.dbs["users"]) as cur:
                    states = [UserState.from_bytes(bytes(v)) for _k, v in cur]
            else:
                states = [self._ws.state(tx, user_id)]
            users, turns, first, last = rawlog.counts(tx.log, user_id)
            ends = [rawlog.get_turn(tx.log, seq) if seq else None
                    for seq in (first, last)]
        hot = sum(len(self._hot.get(s.user_id, s.version)) for s in states)
        levels = [sum(s.levels[i] for s in states) for i in range(4)]
        return Stats(
            users=users, turns=turns, units=sum(levels),
            units_by_level=dict(zip(LEVEL_NAMES, levels, strict=True)),
            units_by_tier={"hot": hot, "warm": levels[0] + levels[1],
                           "cold": levels[2] + levels[3]},
            working_set_tokens=sum(s.tokens for s in states),
            log_bytes=self._store.used_bytes(),
            oldest=ends[0].timestamp if ends[0] else None,
            newest=ends[1].timestamp if ends[1] else None)

    def health(self) -> HealthReport:
        """Quick checks (no full log walk; ``verify()`` does that)."""
        self._store.check_open()
        checks: dict[str, str] = {}
        try:
            self._clear_stale_readers()  # before num_readers is read below
        except StorageError as exc:
            checks["readers"] = f"cannot check for readers that died: {exc}"
        try:
            with self._ws_read() as tx:
                newest = rawlog.last_seq(tx.log)
                rawlog.get_turn(tx.log, newest)  # decodes: raises if it is corrupt
                lag = newest - self._ws.applied(tx)
                waiting = newest - tx.log.archived
                skipped, first = self._ws.skipped(tx)
            checks["last_frame"] = "ok"
            error = self._move_error
            checks["inbox"] = "ok" if waiting <= 2 * rawlog.INBOX_MAX and error is None else (
                f"{waiting} turns wait in the log's inbox to move to its archive (they "
                f"read as usual); the last move " + (f"failed: {error}" if error else "worked"))
            checks["working_set"] = "ok" if lag <= self.settings.max_pending_turns else (
                f"{lag} turns not yet applied to the working set; reads will apply them")
            if skipped:
                checks["extraction"] = (
                    f"{skipped} turn(s) kept in the log without memories because extraction "
                    f"failed (first: {first}); please report it")
        except Exception as exc:  # reported, not raised: this is the health check
            checks["last_frame"] = f"{type(exc).__name__}: {exc}; run verify() for details"
        worker = self._maintainer
        if worker is not None and worker.error is not None:
            checks["maintenance"] = f"background maintenance failed: {worker.error}"
        elif self._apply_error is not None:
            checks["maintenance"] = (f"applying logged turns to the working set failed: "
                                     f"{self._apply_error}; the next read retries")
        for name, env in (("log", self._store.log), ("inbox", self._store.inbox),
                          ("working_set", self._store.ws)):
            # (No check of how full each map is: a full map is grown on demand, and
            # the data file grows with pages written, which the disk check covers.)
            readers = env.env.info()["num_readers"]
            checks[f"{name}_readers"] = "ok" if readers < 200 else (
                f"{readers} reader slots in use: a crashed process may hold some; reopen")
        free = shutil.disk_usage(self._store.path).free
        checks["disk"] = "ok" if free > 256 * 1024 * 1024 else (
            f"only {free // (1024 * 1024)} MiB free on the store's disk: free some space")
        return HealthReport(ok=all(v == "ok" for v in checks.values()), checks=checks)

    # -- lifecycle ------------------------------------------------------------

    def flush(self) -> None:
        """Apply pending turns to the working set and fsync the store's environments now."""
        self._catch_up()
        self._store.flush()
        self.events.emit("memory_persist", {"path": self.path})

    def close(self) -> None:
        """Stop the background worker and close the store (pending turns stay in the
        log and are applied by whoever opens it next)."""
        with self._maintainer_lock:
            worker, self._maintainer = self._maintainer, None
            self._closing = True
        try:
            if worker is not None:
                worker.stop()
            self.events.close()
        finally:
            self._store.close()

    def __enter__(self) -> MemoryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryEngine(path={self.path!r})"
