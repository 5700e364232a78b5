"""A manual clock for tests: time moves only when the test says so."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A monotonic clock whose time advances only through :meth:`advance` or :meth:`sleep`.

    Safe to share between threads. Pass the instance itself as ``clock=`` (it is callable)
    and its :meth:`sleep` as ``sleep=`` so that code under test never waits for real.

    Args:
        start_s: the initial reading, in seconds.
    """

    __slots__ = ("_lock", "_now", "sleeps")

    def __init__(self, start_s: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start_s)
        #: Every duration passed to :meth:`sleep`, in order.
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self._now

    def now(self) -> float:
        """Return the current reading in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0) and return the new reading."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds
            return self._now

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by it instead of waiting."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    async def async_sleep(self, seconds: float) -> None:
        """Async twin of :meth:`sleep`; returns at once."""
        self.sleep(seconds)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"
