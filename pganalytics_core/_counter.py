"""Counters that never lose a count, chosen once for the interpreter.

A counter is an iterator: ``next(counter)`` counts one and returns the count before it
(so a run of failures learns its length from the same call), and :func:`read` returns
the count without counting. Fresh counters come from ``iter(COUNTS)``.

* With the GIL (CPython's default build), a counter is an iterator over
  ``range(sys.maxsize)``: its ``next()`` runs in C without releasing the GIL, so it is
  atomic and no count is lost, and ``operator.length_hint`` reads it. This is the
  breaker's lock-free fast path: measured in ``docs/performance.md``, a counted success
  costs one ``next()``.
* Without the GIL (a free-threaded build where ``sys._is_gil_enabled()`` is false),
  that ``next()`` is not atomic and counts could be lost silently; a counter there is a
  :class:`LockedCounter`, whose ``next()`` takes a lock.

:data:`COUNTS` is chosen at import; :func:`counts` builds either kind (the tests run the
breaker's concurrency suite against both).
"""

from __future__ import annotations

import operator
import sys
import threading
from collections.abc import Iterable, Iterator

#: How far a counter counts (a Python int never overflows; an iterator's range does).
LIMIT = sys.maxsize


class LockedCounter:
    """A counter for interpreters without the GIL: ``next()`` under a lock."""

    __slots__ = ("_count", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def __iter__(self) -> LockedCounter:
        return self

    def __next__(self) -> int:
        with self._lock:
            count = self._count
            self._count = count + 1
        return count

    def __length_hint__(self) -> int:
        """What is left to count, as a range iterator says (so :func:`read` reads both)."""
        return LIMIT - self._count


class LockedCounts:
    """``iter()`` of it is a fresh :class:`LockedCounter` (as ``iter(range(...))`` is a
    fresh range iterator)."""

    __slots__ = ()

    def __iter__(self) -> Iterator[int]:
        return LockedCounter()


def gil_enabled() -> bool:
    """False only on a free-threaded CPython running without its GIL."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def counts(*, locked: bool | None = None) -> Iterable[int]:
    """Where counters come from: lock-free where the GIL makes that safe, else locked."""
    if locked is None:
        locked = not gil_enabled()
    return LockedCounts() if locked else range(LIMIT)


#: This interpreter's source of counters: ``iter(COUNTS)`` is a fresh counter at 0.
COUNTS: Iterable[int] = counts()

_length_hint = operator.length_hint


def read(counter: Iterator[int]) -> int:
    """The number of ``next()`` calls ``counter`` has had."""
    return LIMIT - _length_hint(counter)
