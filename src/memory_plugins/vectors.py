"""Cue vectors kept on disk, so a process that opens a store need not embed again.

Recall indexes every memory by its cue's vector (recall.py). Computing those is
the slow part of a cold start: MiniLM on one thread embeds ~200 cues a second on
the reference machine, so the first build() for a user with a full index (4,096
memories and 2,048 recently forgotten) took about 30 s after every restart of
the host. The vectors are therefore kept in the working set's ``vectors``
database and read back instead:

    user key + unit id (8 bytes) -> fingerprint (8 bytes) + float16 components

The fingerprint hashes the embedder's name and the cue, so a vector made by
another embedder, or for a cue that has since changed (an update; a unit id given
again after the working set was rebuilt), is never used: it is made again and
replaced. Components are stored as float16 (768 bytes for MiniLM); recall uses
the rounded values whether a vector was just made or read back, so a search
scores the same after a restart. Like everything in the working set this is
derived data: losing it costs time, never memories.

Entries go when their units leave the recall index, and an index built from
scratch drops whatever its user has stored beyond it, so the database holds
about one vector per indexed memory.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .embed import Embedder
from .errors import StorageError
from .storage import Env, pack_u64, unpack_u64, user_key

log = logging.getLogger(__name__)

__all__ = ["VectorStore", "rounded"]

_FINGERPRINT = 8


def rounded(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as stored and read back (float16), as float32 for scoring."""
    return np.asarray(vectors, dtype=np.float16).astype(np.float32)


class VectorStore:
    def __init__(self, env: Env, embedder: Embedder) -> None:
        self.env = env
        self.db = env.dbs["vectors"]
        self.name = embedder.name.encode("utf-8", "surrogatepass")
        self.size = _FINGERPRINT + 2 * embedder.dim

    def fingerprint(self, cue: str) -> bytes:
        return hashlib.blake2b(self.name + b"\0" + cue.encode("utf-8", "surrogatepass"),
                               digest_size=_FINGERPRINT).digest()

    def load(self, txn: Any, user_id: str, cues: dict[int, str]) -> dict[int, np.ndarray]:
        """The stored vectors of the units in ``cues`` (unit id -> cue) that were made
        from that cue by this embedder; one pass over the user's entries."""
        found: dict[int, np.ndarray] = {}
        with txn.cursor(db=self.db) as cur:
            for key, value in _entries(cur, user_key(user_id)):
                unit_id = unpack_u64(key, 16)
                cue = cues.get(unit_id)
                if (cue is not None and len(value) == self.size
                        and value[:_FINGERPRINT] == self.fingerprint(cue)):
                    found[unit_id] = np.frombuffer(value, dtype=np.float16,
                                                   offset=_FINGERPRINT).astype(np.float32)
        return found

    def save(self, user_id: str, made: dict[int, tuple[str, np.ndarray]],
             dropped: Iterable[int] = (), keep_only: set[int] | None = None) -> None:
        """Store ``made`` (unit id -> (cue, vector)), delete ``dropped``, and with
        ``keep_only`` every other vector of the user too; one transaction."""
        prefix = user_key(user_id)
        dropped = list(dropped)
        if not made and not dropped and keep_only is None:
            return

        def fn(txn: Any) -> None:
            if keep_only is not None:
                with txn.cursor(db=self.db) as cur:
                    stale = [bytes(key) for key, _value in _entries(cur, prefix)
                             if unpack_u64(key, 16) not in keep_only]
                for key in stale:
                    txn.delete(key, db=self.db)
            for unit_id in dropped:
                txn.delete(prefix + pack_u64(unit_id), db=self.db)
            for unit_id, (cue, vector) in made.items():
                value = self.fingerprint(cue) + np.asarray(vector, dtype=np.float16).tobytes()
                txn.put(prefix + pack_u64(unit_id), value, db=self.db)
        try:
            self.env.write(fn)
        except StorageError as exc:  # a cache of what embed() gives: made again when needed
            log.warning("%s: saving embedding vectors failed: %s", self.env.path, exc)


def _entries(cur: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) pairs under one user's key, in unit id order."""
    if cur.set_range(prefix):
        for key, value in cur:
            if key[:16] != prefix:
                return
            yield key, value
