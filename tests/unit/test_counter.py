"""The breaker's counters: one concept, lock-free under the GIL, locked without it."""

from __future__ import annotations

import sys
import threading

import pytest

from pganalytics_core import BreakerConfig, CircuitBreaker, _counter
from pganalytics_core import breaker as breaker_module


@pytest.mark.parametrize("locked", [False, True])
def test_next_counts_one_and_returns_the_count_before(locked: bool) -> None:
    counter = iter(_counter.counts(locked=locked))
    assert _counter.read(counter) == 0
    assert [next(counter) for _ in range(3)] == [0, 1, 2]
    assert _counter.read(counter) == 3
    assert _counter.read(iter(_counter.counts(locked=locked))) == 0  # each iter() is new


def test_the_locked_counter_loses_nothing_under_threads() -> None:
    counter = iter(_counter.counts(locked=True))
    assert isinstance(counter, _counter.LockedCounter)
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(5000):
            next(counter)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert _counter.read(counter) == 40_000


def test_the_kind_follows_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert not _counter.gil_enabled()
    assert isinstance(_counter.counts(), _counter.LockedCounts)
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert _counter.gil_enabled()
    assert isinstance(_counter.counts(), range)
    monkeypatch.delattr(sys, "_is_gil_enabled", raising=False)  # before 3.13: a GIL
    assert _counter.gil_enabled()
    # This interpreter's choice:
    assert isinstance(_counter.COUNTS, range) == _counter.gil_enabled()


def test_a_breaker_with_locked_counters_counts_and_trips_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(breaker_module, "_COUNTS", _counter.counts(locked=True))
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=3))
    assert breaker.call(int) == 0
    for _ in range(3):
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
    m = breaker.metrics()
    assert (m.total_successes, m.total_failures, m.state.value) == (1, 3, "open")
    assert isinstance(breaker._success_total, _counter.LockedCounter)
