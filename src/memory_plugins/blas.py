"""Run numpy's matrix products on one BLAS thread while recall scores its index.

A query's scores are one matrix-vector product over the index (a few thousand
rows). OpenBLAS splits it over every core, and on a machine whose other cores are
busy (the host's speech models, a second process, a build in another thread)
the split waits for a core to come free: on this project's 2-core test machine
the product over 5,025 rows took 8.0 ms with the default threads while another
process kept one core busy, and 0.15 ms on one thread. Torch, for MiniLM, is
already kept to one thread (``embed.py``); this does the same for numpy.

BLAS thread counts are per process, so the limit holds only while some recall
is inside ``one_thread()`` and the host's own setting comes back after the
last one leaves. Without threadpoolctl, or with no BLAS it knows, this does
nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["one_thread"]

_lock = threading.Lock()
_inside = 0  # recalls inside one_thread() now
_saved: list[tuple[Any, int]] = []  # (BLAS library, its threads before the first entered)
_libraries: list[Any] | None = None  # found once: numpy's BLAS is loaded by then


def _blas_libraries() -> list[Any]:
    global _libraries
    if _libraries is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _libraries = []
        else:
            found = ThreadpoolController().select(user_api="blas")
            _libraries = list(found.lib_controllers)
    return _libraries


@contextmanager
def one_thread() -> Iterator[None]:
    global _inside, _saved
    with _lock:
        if _inside == 0:
            _saved = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
            for lib, threads in _saved:
                if threads != 1:
                    lib.set_num_threads(1)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                for lib, threads in _saved:
                    if threads != 1:
                        lib.set_num_threads(threads)
