"""Hybrid recall over one user's working set: vectors + BM25 keywords + recency x strength.

Each user's working set (at most ``warm_units`` units) has an index in RAM: the
units, the text each shows at its stored level, their word postings and their
embedding rows. It is built once from the store, then kept current from the
changes every write reports (``apply``), so a query costs the working set's size,
never the log's length. An index whose version does not follow the store's
(another process wrote) is dropped and rebuilt.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable

import numpy as np

from .embed import Embedder
from .units import SECONDS_PER_DAY, MemoryUnit
from .workingset import Changes

__all__ = ["Candidate", "Recall", "RecallIndex", "query_words"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset("""
a about after again all also am an and any are as at be been but by can could did do does
for from had has have he her him his how i if in into is it its just me my of on or our
she so than that the their them then there they this to too was we were what when where
which who why will with would you your yours
""".split())

# Fusion weights: semantic similarity, keyword overlap, and how alive the memory is.
W_VECTOR, W_KEYWORD, W_ALIVE = 0.5, 0.45, 0.05
BM25_K1, BM25_B = 1.2, 0.75


def query_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    unit: MemoryUnit
    text: str  # the unit at its stored level (verbatim read from the log at level 0)
    score: float
    vector: float
    keyword: float
    alive: float


class RecallIndex:
    """One user's working set, indexed in RAM."""

    def __init__(self, version: int, dim: int) -> None:
        self.version = version
        self.units: list[MemoryUnit] = []
        self.texts: list[str] = []
        self.tf: list[Counter[str]] = []
        self.pos: dict[int, int] = {}
        self.postings: dict[str, set[int]] = {}
        self.vectors = np.zeros((16, dim), dtype=np.float32)
        self.total_words = 0

    def __len__(self) -> int:
        return len(self.units)

    def upsert(self, unit: MemoryUnit, text: str, vector: np.ndarray | None) -> None:
        i = self.pos.get(unit.id)
        if i is None:
            i = len(self.units)
            self.pos[unit.id] = i
            self.units.append(unit)
            self.texts.append("")
            self.tf.append(Counter())
            if i >= len(self.vectors):
                grown = np.zeros((2 * len(self.vectors), self.vectors.shape[1]), np.float32)
                grown[: len(self.vectors)] = self.vectors
                self.vectors = grown
        self.units[i] = unit
        if text != self.texts[i]:
            self._set_words(i, Counter(query_words(text)))
            self.texts[i] = text
        if vector is not None:
            self.vectors[i] = vector

    def remove(self, unit_id: int) -> None:
        i = self.pos.pop(unit_id, None)
        if i is None:
            return
        self._set_words(i, Counter())
        last = len(self.units) - 1
        if i != last:  # move the last entry into the hole
            for w in self.tf[last]:
                self.postings[w].discard(last)
                self.postings[w].add(i)
            self.units[i], self.texts[i], self.tf[i] = (self.units[last], self.texts[last],
                                                        self.tf[last])
            self.vectors[i] = self.vectors[last]
            self.pos[self.units[i].id] = i
        self.units.pop()
        self.texts.pop()
        self.tf.pop()

    def _set_words(self, i: int, words: Counter[str]) -> None:
        for w in self.tf[i]:
            hits = self.postings.get(w)
            if hits is not None:
                hits.discard(i)
                if not hits:
                    del self.postings[w]
        self.total_words += sum(words.values()) - sum(self.tf[i].values())
        for w in words:
            self.postings.setdefault(w, set()).add(i)
        self.tf[i] = words

    def text_of(self, unit_id: int) -> str | None:
        i = self.pos.get(unit_id)
        return None if i is None else self.texts[i]


class Recall:
    """The per-user indexes of one engine (an LRU over users) and the scoring."""

    def __init__(self, embedder: Embedder, users: int) -> None:
        self.embedder = embedder
        self.users = users
        self.indexes: OrderedDict[str, RecallIndex] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, user_id: str, version: int,
            build: Callable[[], list[tuple[MemoryUnit, str]]]) -> RecallIndex:
        """The user's index at ``version``; ``build`` lists (unit, text) to rebuild it."""
        with self.lock:
            index = self.indexes.get(user_id)
            if index is not None and index.version == version:
                self.indexes.move_to_end(user_id)
                return index
        entries = build()
        index = RecallIndex(version, self.embedder.dim)
        vectors = self.embedder.embed([t for _u, t in entries]) if entries else None
        for n, (unit, text) in enumerate(entries):
            index.upsert(unit, text, None if vectors is None else vectors[n])
        with self.lock:
            self.indexes[user_id] = index
            while len(self.indexes) > self.users:
                self.indexes.popitem(last=False)
        return index

    def apply(self, user_id: str, ch: Changes, text_of: Callable[[MemoryUnit], str]) -> None:
        """Follow a write; an index that missed one (another process) is dropped."""
        with self.lock:
            index = self.indexes.get(user_id)
            if index is None:
                return
            if index.version != ch.since:
                del self.indexes[user_id]
                return
            touched = list(ch.touched())
            texts = [text_of(u) if u.verbatim is None and u.level == 0
                     and index.text_of(u.id) is None else _shown(u, index) for u in touched]
            fresh = [n for n, u in enumerate(touched) if index.text_of(u.id) != texts[n]]
            vectors = self.embedder.embed([texts[n] for n in fresh]) if fresh else None
            rows = dict(zip(fresh, vectors if vectors is not None else [], strict=False))
            for n, unit in enumerate(touched):
                index.upsert(unit, texts[n], rows.get(n))
            for unit_id in ch.forgotten:
                index.remove(unit_id)
            index.version = ch.version

    def score_outside(self, units: list[MemoryUnit], query: str, now: float,
                      query_vector: np.ndarray | None, index: RecallIndex) -> list[Candidate]:
        """Candidates for units outside the index (forgotten ones, from the log),
        scored on the same scale as ``search``'s: keyword weight relative to the
        best possible, vector similarity, and their (restored) strength."""
        words = query_words(query)
        texts = [u.verbatim or "" for u in units]
        vectors = self.embedder.embed(texts) if query_vector is not None else None
        with self.lock:  # the worker may be applying a write to this index
            best = _keyword_overlap(words, " ".join(words), index) or 1.0
            overlaps = [_keyword_overlap(words, text, index) for text in texts]
        out = []
        for n, unit in enumerate(units):
            keyword = min(1.0, overlaps[n] / best)
            vector = (float(np.clip(vectors[n] @ query_vector, 0.0, 1.0))
                      if vectors is not None else 0.0)
            alive = unit.retention(now)
            out.append(Candidate(unit, texts[n], W_VECTOR * vector + W_KEYWORD * keyword
                                 + W_ALIVE * alive, vector, keyword, alive))
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
        words = query_words(query)
        keyword = np.zeros(n, dtype=np.float32)
        if words and index.total_words:
            avg = index.total_words / n
            for w in set(words):
                hits = index.postings.get(w)
                if not hits:
                    continue
                idf = math.log(1 + (n - len(hits) + 0.5) / (len(hits) + 0.5))
                for i in hits:
                    tf = index.tf[i][w]
                    length = sum(index.tf[i].values())
                    keyword[i] += idf * tf * (BM25_K1 + 1) / (
                        tf + BM25_K1 * (1 - BM25_B + BM25_B * length / avg))
            top = float(keyword.max())
            if top > 0:
                keyword /= top
        vector = (np.clip(index.vectors[:n] @ query_vector, 0.0, 1.0)
                  if query_vector is not None else np.zeros(n, dtype=np.float32))
        last = np.array([u.last_reinforced for u in index.units], dtype=np.float64)
        stability = np.array([u.stability_days for u in index.units], dtype=np.float64)
        alive = np.exp(-np.maximum(0.0, now - last) / (stability * SECONDS_PER_DAY))
        score = W_VECTOR * vector + W_KEYWORD * keyword + W_ALIVE * alive
        ids = np.array([u.id for u in index.units])
        order = np.lexsort((ids, -score))[:limit]  # ties broken by id: deterministic
        return [Candidate(index.units[i], index.texts[i], float(score[i]), float(vector[i]),
                          float(keyword[i]), float(alive[i])) for i in order]


def _keyword_overlap(words: list[str], text: str, index: RecallIndex) -> float:
    """BM25-like weight of the query words found in ``text``, IDF from the index."""
    n = max(1, len(index))
    found = set(query_words(text))
    return sum(math.log(1 + (n + 0.5) / (len(index.postings.get(w, ())) + 0.5))
               for w in set(words) if w in found)


def _shown(unit: MemoryUnit, index: RecallIndex) -> str:
    if unit.level == 0:
        return unit.verbatim if unit.verbatim is not None else index.text_of(unit.id) or ""
    return unit.form(unit.level) or ""

