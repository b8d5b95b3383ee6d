"""Hybrid recall over one user's memories: vectors + BM25 keywords + recency x strength.

Each user has an index in RAM holding the working set (at most ``warm_units``
units) and the most recently forgotten units (at most ``recall_forgotten_units``).
Every entry is indexed by its *cue*: the whole sentence and who said it, read
from the log, whatever level the unit has decayed to. Degradation changes what a
memory shows and how much it weighs, not whether a matching question can bring
it back (that is what restoration from the log is for).

The index is built once from the store, then kept current from the changes every
write reports (``apply``): a unit's cue is embedded once, when it first appears
or its text is updated, never when it merely decays. A query costs the index's
size, never the log's length. An index whose version does not follow the store's
(another process wrote) is dropped and rebuilt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .blas import one_thread
from .dates import find_dates
from .embed import Embedder
from .units import SECONDS_PER_DAY, MemoryUnit
from .vectors import VectorStore, rounded
from .workingset import Changes

__all__ = ["Candidate", "Entry", "Recall", "RecallIndex", "embed_cues", "query_words"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset("""
a about after again all also am an and any are as at be been but by can could did do does
for from had has have he her him his how i if in into is it its just me my of on or our
she so than that the their them then there they this to too was we were what when where
which who why will with would you your yours
""".split())

# Fusion weights: semantic similarity, keyword overlap, and how alive the memory is
# (tuned on LoCoMo dev: evidence within the top 50 rises from 0.745 to 0.776 vs 0.5/0.45).
# Aliveness only breaks near-ties: questions about a long past should not lose
# old memories to recent small talk (LoCoMo dev evidence 0.917 -> 0.921 at 0.035
# vs 0.05; 0.1: 0.907; 0: 0.921 but no forgetting curve in recall at all).
W_VECTOR, W_KEYWORD, W_ALIVE = 0.7, 0.25, 0.035
# Added for a memory said within a date the query names ("on 7 July, 2023", "in
# August 2023"): what was said then is likely what the question is about.
W_DATE = 0.1
BM25_K1, BM25_B = 1.2, 0.75


def query_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def date_windows(query: str, now: float) -> list[tuple[float, float]]:
    """The spans of time (POSIX seconds) the dates named in ``query`` cover: a day
    (with a day's slack either side, for time zones), a week or a month. Years are
    left out: too wide to tell memories apart."""
    try:
        reference = dt.datetime.fromtimestamp(now, dt.UTC)
    except (OverflowError, OSError, ValueError):  # no turn yet
        reference = dt.datetime.now(dt.UTC)
    out = []
    for mention in find_dates(query, reference):
        try:
            window = _window(mention.date, mention.granularity)
        except OverflowError:  # a day at the very edge of the calendar (0001-01-01)
            continue
        if window is not None:
            out.append(window)
    return out


def _window(day: dt.date, granularity: str) -> tuple[float, float] | None:
    """The span (POSIX seconds) one resolved date covers; None for a year."""
    if granularity == "day":
        start = dt.datetime.combine(day, dt.time(), dt.UTC) - dt.timedelta(days=1)
        end = start + dt.timedelta(days=3)
    elif granularity == "week":  # "two weeks ago": that Monday-to-Sunday week
        start = dt.datetime.combine(day - dt.timedelta(days=day.weekday()), dt.time(), dt.UTC)
        end = start + dt.timedelta(days=7)
    elif granularity == "month":  # "a month ago": that calendar month
        start = dt.datetime.combine(day.replace(day=1), dt.time(), dt.UTC)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    else:
        return None
    return start.timestamp(), end.timestamp()


def within(created: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    """Which of the times ``created`` fall in any of ``windows``."""
    out = np.zeros(len(created), dtype=bool)
    for start, end in windows:
        out |= (created >= start) & (created < end)
    return out


def keyword_terms(text: str) -> list[str]:
    """The words BM25 matches on: query words, stemmed ("researching" finds "research")."""
    return [stem(w) for w in query_words(text)]


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English suffix stripper: plurals, then -ing or -ed, then a final e
    or y, so that the forms a question and an answer use of one word meet:
    run/runs/running, dance/danced/dancing, painting/paintings/painted,
    study/studies/studied, movie/movies.

    Not a full stemmer (Porter's would also merge -ation, -ness...), and its stems
    need not be words: they are only compared with each other.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif len(word) > 4 and (word.endswith(("sses", "xes", "zes", "ches", "shes"))):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "ls":
        word = word[:-1]  # running -> runn -> run
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # dance -> danc, like dancing -> danc
    elif len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"  # study -> studi, like studies -> study -> studi
    return word


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """A unit to index: its record, its cue, and whether it is forgotten."""

    unit: MemoryUnit
    cue: str
    forgotten: bool = False


class Candidate(NamedTuple):  # a tuple: made by the hundred per build
    unit: MemoryUnit  # as last seen: a forgotten unit keeps its last record
    cue: str  # the sentence (with its speaker) it was found by
    forgotten: bool  # out of the working set: showing it restores it from the log
    score: float
    vector: float
    keyword: float
    alive: float


class RecallIndex:
    """One user's recall entries, in RAM: parallel lists and arrays by position."""

    def __init__(self, version: int, dim: int, forgotten_limit: int) -> None:
        self.version = version
        self.forgotten_limit = forgotten_limit
        self.units: list[MemoryUnit] = []
        self.cues: list[str] = []
        self.tf: list[Counter[str]] = []
        self.pos: dict[int, int] = {}
        self.postings: dict[str, dict[int, int]] = {}  # word -> position -> count
        # One column per entry: a query that touches few dimensions (the hashing
        # embedder's: ~40 of 512) reads only those rows, not the whole matrix.
        self.vectors = np.zeros((dim, 16), dtype=np.float32)
        self.lengths = np.zeros(16, dtype=np.float32)  # words per cue
        self.last = np.zeros(16, dtype=np.float64)  # last reinforced (POSIX seconds)
        self.created = np.zeros(16, dtype=np.float64)  # when it was said (POSIX seconds)
        self.stability = np.ones(16, dtype=np.float64)  # days
        self.gone = np.zeros(16, dtype=bool)  # forgotten: alive counts as 0
        self.ids = np.zeros(16, dtype=np.int64)
        self.subjects: Counter[str] = Counter()  # who the entries are about
        self.forgotten: OrderedDict[int, None] = OrderedDict()  # oldest first
        self.total_words = 0
        self.removed: list[int] = []  # since the last apply: their stored vectors go
        # What BM25 reads each query, kept between queries until an entry changes:
        # a word's postings as arrays, and every entry's length normalisation.
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._norm: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.units)

    def has_cue_for(self, unit: MemoryUnit) -> bool:
        """Is ``unit`` indexed by its current sentence (same origin turn and span)?"""
        i = self.pos.get(unit.id)
        return i is not None and (self.units[i].origin, self.units[i].span) == (
            unit.origin, unit.span)

    def upsert(self, unit: MemoryUnit, cue: str | None, vector: np.ndarray | None,
               *, forgotten: bool = False) -> None:
        """Add or refresh an entry; ``cue``/``vector`` None keep the indexed ones."""
        i = self.pos.get(unit.id)
        if i is None:
            if cue is None or vector is None:
                raise ValueError("a new entry needs its cue and vector")
            i = len(self.units)
            self.pos[unit.id] = i
            self._norm = None  # the average length changes with the count
            self.units.append(unit)
            self.cues.append("")
            self.tf.append(Counter())
            if i >= len(self.ids):
                self._grow()
            self.ids[i] = unit.id
        else:
            self.subjects[self.units[i].subject] -= 1
        self.subjects[unit.subject] += 1
        self.units[i] = unit
        if cue is not None and cue != self.cues[i]:
            self._set_words(i, Counter(keyword_terms(cue)))
            self.cues[i] = cue
        if vector is not None:
            self.vectors[:, i] = vector
        self.last[i], self.stability[i] = unit.last_reinforced, unit.stability_days
        self.created[i] = unit.created_at
        self.gone[i] = forgotten
        if forgotten:
            self.forgotten[unit.id] = None
            self.forgotten.move_to_end(unit.id)
            while len(self.forgotten) > self.forgotten_limit:
                self.remove(next(iter(self.forgotten)))
        else:
            self.forgotten.pop(unit.id, None)

    def forget(self, unit_id: int) -> None:
        """The unit left the working set: kept, as forgotten, while there is room."""
        i = self.pos.get(unit_id)
        if i is not None:
            self.upsert(self.units[i], None, None, forgotten=True)

    def remove(self, unit_id: int) -> None:
        i = self.pos.pop(unit_id, None)
        if i is None:
            return
        self.removed.append(unit_id)
        self.forgotten.pop(unit_id, None)
        self._set_words(i, Counter())
        self.subjects[self.units[i].subject] -= 1
        if self.subjects[self.units[i].subject] <= 0:
            del self.subjects[self.units[i].subject]
        last = len(self.units) - 1
        if i != last:  # move the last entry into the hole
            for w, count in self.tf[last].items():
                self._arrays.pop(w, None)
                hits = self.postings[w]
                del hits[last]
                hits[i] = count
            self.units[i], self.cues[i], self.tf[i] = self.units[last], self.cues[last], \
                self.tf[last]
            self.vectors[:, i] = self.vectors[:, last]
            for array in (self.lengths, self.last, self.created, self.stability, self.gone,
                          self.ids):
                array[i] = array[last]
            self.pos[self.units[i].id] = i
        self.units.pop()
        self.cues.pop()
        self.tf.pop()

    def _grow(self) -> None:
        size = 2 * len(self.ids)
        vectors = np.zeros((len(self.vectors), size), dtype=np.float32)
        vectors[:, : len(self.ids)] = self.vectors
        self.vectors = vectors
        for name in ("lengths", "last", "created", "stability", "gone", "ids"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def posting_arrays(self, word: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The positions of the entries holding ``word`` and its counts there."""
        made = self._arrays.get(word)
        if made is None:
            hits = self.postings.get(word)
            if not hits:
                return None
            made = (np.fromiter(hits.keys(), dtype=np.int64, count=len(hits)),
                    np.fromiter(hits.values(), dtype=np.float32, count=len(hits)))
            self._arrays[word] = made
        return made

    def length_norm(self) -> np.ndarray:
        """BM25's per-entry term ``k1 * (1 - b + b * length / average length)``."""
        if self._norm is None:
            n = len(self.units)
            avg = self.total_words / n
            self._norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[:n] / avg)
        return self._norm

    def _set_words(self, i: int, words: Counter[str]) -> None:
        self._norm = None
        for w in self.tf[i]:
            self._arrays.pop(w, None)
            hits = self.postings.get(w)
            if hits is not None:
                hits.pop(i, None)
                if not hits:
                    del self.postings[w]
        self.total_words += sum(words.values()) - sum(self.tf[i].values())
        for w, count in words.items():
            self.postings.setdefault(w, {})[i] = count
            self._arrays.pop(w, None)
        self.tf[i] = words
        self.lengths[i] = sum(words.values())


class Recall:
    """The per-user indexes of one engine (an LRU over users) and the scoring."""

    def __init__(self, embedder: Embedder, users: int, forgotten_limit: int,
                 vectors: VectorStore | None = None) -> None:
        self.embedder = embedder
        self.users = users
        self.forgotten_limit = forgotten_limit
        self.vectors = vectors  # where cue vectors are kept across processes (None: not)
        self.indexes: OrderedDict[str, RecallIndex] = OrderedDict()
        self.lock = threading.Lock()
        # Vectors made while building an index, saved once the caller's read ends
        # (``save``): by user, (unit id -> (cue, vector), the index's unit ids).
        self._unsaved: dict[str, tuple[dict[int, tuple[str, np.ndarray]], set[int]]] = {}

    def _embed(self, cues: list[str]) -> np.ndarray:
        return rounded(embed_cues(self.embedder, cues))  # as stored: see vectors.py

    def get(self, user_id: str, version: int, build: Callable[[], list[Entry]],
            txn: Any = None) -> RecallIndex:
        """The user's index at ``version``; ``build`` lists the entries to rebuild it,
        and their vectors are read from ``txn`` (the working set's) where stored."""
        with self.lock:
            index = self.indexes.get(user_id)
            if index is not None and index.version == version:
                self.indexes.move_to_end(user_id)
                return index
        entries = build()
        cues = {e.unit.id: e.cue for e in entries}
        stored = (self.vectors.load(txn, user_id, cues)
                  if self.vectors is not None and txn is not None else {})
        missing = [unit_id for unit_id in cues if unit_id not in stored]
        made = dict(zip(missing, self._embed([cues[u] for u in missing]), strict=True)
                    ) if missing else {}
        index = RecallIndex(version, self.embedder.dim, self.forgotten_limit)
        # Forgotten entries go in oldest first, so the limit keeps the newest.
        for entry in sorted(entries, key=lambda e: e.unit.id):
            unit_id = entry.unit.id
            index.upsert(entry.unit, entry.cue, stored.get(unit_id, made.get(unit_id)),
                         forgotten=entry.forgotten)
        index.removed.clear()
        with self.lock:
            self.indexes[user_id] = index
            while len(self.indexes) > self.users:
                self.indexes.popitem(last=False)
            if self.vectors is not None:
                self._unsaved[user_id] = ({u: (cues[u], v) for u, v in made.items()
                                           if u in index.pos}, set(index.pos))
        return index

    def save(self, user_id: str) -> None:
        """Store the vectors ``get`` made for ``user_id`` (outside any read of the
        working set: a write inside one could wait on itself to grow the map)."""
        with self.lock:
            unsaved = self._unsaved.pop(user_id, None)
        if unsaved is not None and self.vectors is not None:
            made, indexed = unsaved
            self.vectors.save(user_id, made, keep_only=indexed)

    def apply(self, user_id: str, ch: Changes, cue_of: Callable[[MemoryUnit], str]) -> None:
        """Follow a write; an index that missed one (another process) is dropped."""
        with self.lock:
            index = self.indexes.get(user_id)
            if index is None:
                return
            if index.version != ch.since:
                del self.indexes[user_id]
                return
            touched = list(ch.touched())
            fresh = {u.id: u for u in touched if not index.has_cue_for(u)}
        # Reading the log and embedding happen outside the lock (searches go on).
        cues = {unit_id: cue_of(u) for unit_id, u in fresh.items()}
        vectors = dict(zip(cues, self._embed(list(cues.values())), strict=True)
                       ) if cues else {}
        with self.lock:
            if self.indexes.get(user_id) is not index or index.version != ch.since:
                self.indexes.pop(user_id, None)  # raced with another write: rebuild later
                return
            for unit in touched:  # a new or re-worded unit brings its cue and vector
                index.upsert(unit, cues.get(unit.id), vectors.get(unit.id))
            for unit_id in ch.forgotten:
                index.forget(unit_id)
            for unit_id in ch.deleted:
                index.remove(unit_id)
            index.version = ch.version
            removed, index.removed = index.removed, []
        if self.vectors is not None:
            self.vectors.save(user_id, {u: (cues[u], vectors[u]) for u in cues
                                        if u not in removed}, removed)

    def score_outside(self, units: list[MemoryUnit], cues: list[str], query: str, now: float,
                      query_vector: np.ndarray | None, index: RecallIndex) -> list[Candidate]:
        """Candidates for forgotten units outside the index (found by the mention
        index, rebuilt from the log), scored on the same scale as ``search``'s:
        keyword weight relative to the best possible, vector similarity; they
        count as not alive, like the index's forgotten entries."""
        words = keyword_terms(query)
        windows = date_windows(query, now)
        vectors = embed_cues(self.embedder, cues) if query_vector is not None and cues else None
        with self.lock:  # the worker may be applying a write to this index
            best = _keyword_overlap(words, set(words), index) or 1.0
            overlaps = [_keyword_overlap(words, set(keyword_terms(cue)), index)
                        for cue in cues]
        said_then = within(np.array([u.created_at for u in units], dtype=np.float64), windows)
        out = []
        for n, unit in enumerate(units):
            keyword = min(1.0, overlaps[n] / best)
            vector = (float(np.clip(vectors[n] @ query_vector, 0.0, 1.0))
                      if vectors is not None else 0.0)
            out.append(Candidate(unit, cues[n], True, W_VECTOR * vector + W_KEYWORD * keyword
                                 + W_DATE * bool(said_then[n]), vector, keyword, 0.0))
        return out

    def search(self, index: RecallIndex, query: str, now: float, limit: int,
               query_vector: np.ndarray | None) -> list[Candidate]:
        with self.lock:  # the worker may be applying a write to this index
            return self._search(index, query, now, limit, query_vector)

    def _search(self, index: RecallIndex, query: str, now: float, limit: int,
                query_vector: np.ndarray | None) -> list[Candidate]:
        n = len(index)
        if n == 0:
            return []
        keyword = np.zeros(n, dtype=np.float32)
        if index.total_words:
            norm = index.length_norm()
            for w in set(keyword_terms(query)):
                arrays = index.posting_arrays(w)
                if arrays is None:
                    continue
                at, tf = arrays
                idf = math.log(1 + (n - len(at) + 0.5) / (len(at) + 0.5))
                keyword[at] += idf * tf * (BM25_K1 + 1) / (tf + norm[at])
            top = float(keyword.max())
            if top > 0:
                keyword /= top
        vector = (np.clip(_similarities(index, query_vector, n), 0.0, 1.0)
                  if query_vector is not None else np.zeros(n, dtype=np.float32))
        alive = np.exp(-np.maximum(0.0, now - index.last[:n])
                       / (index.stability[:n] * SECONDS_PER_DAY))
        alive[index.gone[:n]] = 0.0
        score = W_VECTOR * vector + W_KEYWORD * keyword + W_ALIVE * alive
        windows = date_windows(query, now)
        if windows:
            score += W_DATE * within(index.created[:n], windows)
        order = _best(score, index.ids[:n], limit)
        units, cues = index.units, index.cues  # plain lists: far cheaper per item than arrays
        return [Candidate(units[i], cues[i], g, s, v, k, a) for i, g, s, v, k, a in zip(
            order.tolist(), index.gone[order].tolist(), score[order].tolist(),
            vector[order].tolist(), keyword[order].tolist(), alive[order].tolist(), strict=True)]


def _best(score: np.ndarray, ids: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the ``limit`` highest scores, best first, ties by id.

    Only entries that can make the cut are sorted: a bound taken from every
    ``step``-th score (about 4 x ``limit`` entries expected above it) keeps a
    few hundred of a large index (at 100,000 entries: 0.8 ms for a full
    selection, ~0.15 ms this way). Exact: when fewer than ``limit`` pass the
    bound, everything is sorted."""
    n = len(score)
    step = n // (16 * limit)
    if step >= 2:
        sample = score[::step]
        k = 4 * limit // step + 1
        bound = np.partition(sample, len(sample) - k)[len(sample) - k]
        passed = np.flatnonzero(score >= bound)
        if len(passed) >= limit:
            return passed[np.lexsort((ids[passed], -score[passed]))[:limit]]
    if limit < n:
        best = np.flatnonzero(score >= np.partition(score, n - limit)[n - limit])
        return best[np.lexsort((ids[best], -score[best]))[:limit]]
    return np.lexsort((ids, -score))


def _similarities(index: RecallIndex, query_vector: np.ndarray, n: int) -> np.ndarray:
    """Cosine of ``query_vector`` with the first ``n`` entries: memory-bound (at
    5,025 entries the matrix is 10 MB, mostly out of cache by the next build), so a
    sparse query reads only its non-zero rows (10 MB -> 0.8 MB; 0.88 -> 0.16 ms)."""
    dims = np.flatnonzero(query_vector)
    with one_thread():  # see blas.py: 50x slower split across busy cores
        if 4 * len(dims) < len(query_vector):
            return query_vector[dims] @ index.vectors[dims, :n]
        return query_vector @ index.vectors[:, :n]


def embed_cues(embedder: Embedder, cues: list[str]) -> np.ndarray:
    """The vectors of ``cues``. A cue of several lines is a sentence (its last line)
    under its context (the question it answers): its vector is the mean of the
    sentence's own and the whole cue's, so the context adds a meaning without
    drowning the sentence's (LoCoMo dev evidence 0.915 -> 0.918 vs the whole
    cue's vector alone)."""
    said = {n: cue.rsplit("\n", 1)[1] for n, cue in enumerate(cues) if "\n" in cue}
    vectors = embedder.embed([*cues, *said.values()])
    out = vectors[: len(cues)]
    for k, n in enumerate(said):
        mean = out[n] + vectors[len(cues) + k]
        norm = float(np.linalg.norm(mean))
        if norm > 0:
            out[n] = mean / norm
    return out


def _keyword_overlap(words: list[str], found: set[str], index: RecallIndex) -> float:
    """BM25-like weight of the query terms ``words`` among ``found``, IDF from the index."""
    n = max(1, len(index))
    return sum(math.log(1 + (n + 0.5) / (len(index.postings.get(w, ())) + 0.5))
               for w in set(words) if w in found)
