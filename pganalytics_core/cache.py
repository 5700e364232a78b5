"""The prediction cache: a thread-safe LRU with a time-to-live.

Keys are :class:`~pganalytics_core.models.PredictionRequest` values (query hash, scenario
and canonical parameters), values are :class:`~pganalytics_core.models.Prediction`. Only
successful predictions go in: the client never caches an error.

One ``threading.Lock`` guards an ``OrderedDict`` kept in recency order, so a lookup is a
dict probe and a ``move_to_end``; the lock is held for that bookkeeping only.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pganalytics_core.errors import ConfigError
from pganalytics_core.models import Prediction, PredictionRequest

__all__ = ["CacheStats", "PredictionCache"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """A snapshot of a :class:`PredictionCache`'s counters.

    Attributes:
        hits: lookups answered from the cache.
        misses: lookups not answered (absent or expired).
        evictions: live entries dropped to make room (least recently used first).
        expirations: entries dropped because their time-to-live had passed.
        size: entries held now (some may have expired but not been dropped yet).
    """

    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int

    @property
    def hit_rate(self) -> float | None:
        """hits / (hits + misses), or None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


class PredictionCache:
    """A thread-safe LRU cache of predictions with a time-to-live.

    The clients put only successful predictions from the service's database here:
    errors and answers marked ``"source": "mock"`` (the service's stand-in while its
    database is down) are never cached, so they cannot outlive an outage.

    Args:
        max_entries: the most entries held; putting one more evicts the least recently
            used.
        ttl_s: seconds an entry stays valid after it was put.
        clock: a monotonic clock returning seconds (inject a fake one in tests).

    Raises:
        ConfigError: ``max_entries < 1`` or ``ttl_s`` not a positive finite number.
    """

    __slots__ = (
        "_clock",
        "_entries",
        "_evictions",
        "_expirations",
        "_hits",
        "_lock",
        "_max_entries",
        "_misses",
        "_ttl_s",
    )

    def __init__(
        self,
        max_entries: int = 10_000,
        ttl_s: float = 900.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int):
            raise ConfigError("max_entries", f"must be an int, got {type(max_entries).__name__}")
        if max_entries < 1:
            raise ConfigError("max_entries", f"must be >= 1, got {max_entries}")
        if (
            isinstance(ttl_s, bool)
            or not isinstance(ttl_s, int | float)
            or not 0 < ttl_s < float("inf")
        ):
            raise ConfigError("ttl_s", f"must be a finite number of seconds > 0, got {ttl_s!r}")
        self._max_entries = max_entries
        self._ttl_s = float(ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (expires_at, prediction), least recently used first.
        self._entries: OrderedDict[PredictionRequest, tuple[float, Prediction]] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0

    @property
    def max_entries(self) -> int:
        """The most entries held."""
        return self._max_entries

    @property
    def ttl_s(self) -> float:
        """Seconds an entry stays valid."""
        return self._ttl_s

    def get(self, key: PredictionRequest) -> Prediction | None:
        """Return the cached prediction for ``key``, or None when absent or expired.

        A hit makes the entry the most recently used; an expired entry is dropped.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            if entry[0] <= now:
                del self._entries[key]
                self._expirations += 1
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[1]

    def put(self, key: PredictionRequest, prediction: Prediction) -> None:
        """Store ``prediction`` under ``key`` for ``ttl_s`` seconds, evicting if full."""
        now = self._clock()
        expires_at = now + self._ttl_s
        with self._lock:
            entries = self._entries
            if key in entries:
                entries.move_to_end(key)
                entries[key] = (expires_at, prediction)
                return
            entries[key] = (expires_at, prediction)
            if len(entries) > self._max_entries:
                _, (oldest_expiry, _) = entries.popitem(last=False)
                if oldest_expiry <= now:
                    self._expirations += 1
                else:
                    self._evictions += 1

    def discard(self, key: PredictionRequest) -> bool:
        """Drop the entry for ``key``; return True when there was one."""
        with self._lock:
            return self._entries.pop(key, None) is not None

    def clear(self) -> None:
        """Drop every entry; the counters are kept."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """True when ``key`` has an entry that has not expired (not counted as a lookup)."""
        if not isinstance(key, PredictionRequest):
            return False
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        return entry is not None and entry[0] > now

    def stats(self) -> CacheStats:
        """Return a consistent snapshot of the counters."""
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                size=len(self._entries),
            )

    def __repr__(self) -> str:
        return (
            f"<PredictionCache size={len(self._entries)} max_entries={self._max_entries} "
            f"ttl_s={self._ttl_s:g}>"
        )
