"""Concurrency tests of the circuit breaker with real threads: exact totals and invariants.

Every test runs twice: with the counters this interpreter uses (lock-free under the GIL)
and with the locked counters a free-threaded build without the GIL uses
(``pganalytics_core._counter``), forced here.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pganalytics_core import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from pganalytics_core import breaker as breaker_module
from pganalytics_core._counter import counts
from pganalytics_core.testing import FakeClock

THREADS = 8


@pytest.fixture(autouse=True, params=["lock-free", "locked"])
def counters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The breaker's counters of one kind, for the breakers the test creates."""
    monkeypatch.setattr(breaker_module, "_COUNTS", counts(locked=request.param == "locked"))
    return str(request.param)


def run_threads(n: int, target: Callable[[int], None]) -> None:
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            start.wait()
            target(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_no_lost_counts_under_contention() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=10**9), clock=FakeClock())
    per_thread = 5_000

    def work(i: int) -> None:
        for k in range(per_thread):
            if (i + k) % 3 == 0:
                with pytest.raises(ValueError, match="x"):
                    b.call(_raise_value_error)
            else:
                assert b.call(int, "7") == 7

    run_threads(THREADS, work)
    m = b.metrics()
    total = THREADS * per_thread
    expected_failures = sum(
        1 for i in range(THREADS) for k in range(per_thread) if (i + k) % 3 == 0
    )
    assert m.total_failures == expected_failures
    assert m.total_successes == total - expected_failures
    assert m.state is State.CLOSED


def test_no_lost_counts_with_sliding_window() -> None:
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=10**9, failure_rate_threshold=1.0, window_size=50),
        clock=FakeClock(),
    )

    def work(i: int) -> None:
        for _ in range(3_000):
            assert b.allow_request()
            b.record_success()

    run_threads(THREADS, work)
    m = b.metrics()
    assert m.total_successes == THREADS * 3_000
    assert m.window_calls == 50
    assert m.failure_rate == 0.0


def _raise_value_error() -> None:
    raise ValueError("x")


@pytest.mark.parametrize("max_calls", [1, 3])
def test_eight_threads_on_fresh_half_open_only_max_calls_run(max_calls: int) -> None:
    clock = FakeClock()
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=1, open_timeout_s=5, half_open_max_calls=max_calls),
        clock=clock,
    )
    b.record_failure()
    clock.advance(5)
    ran = []
    rejected_while_probing: list[bool] = []
    probe_done = threading.Event()
    lock = threading.Lock()

    def guarded() -> None:
        with lock:
            ran.append(1)
        time.sleep(0.05)
        probe_done.set()

    def work(i: int) -> None:
        try:
            b.call(guarded)
        except CircuitOpenError:
            # Rejected at once, never queued: the probe is still running.
            with lock:
                rejected_while_probing.append(not probe_done.is_set())

    run_threads(8, work)
    assert len(ran) == max_calls
    assert rejected_while_probing == [True] * (8 - max_calls)
    m = b.metrics()
    assert m.total_rejections == 8 - max_calls
    assert m.total_successes == max_calls
    assert m.half_open_in_flight == 0


def test_half_open_never_exceeds_probe_budget() -> None:
    clock = FakeClock()
    max_calls = 2
    b = CircuitBreaker(
        BreakerConfig(
            failure_threshold=1, success_threshold=10**6, open_timeout_s=1, half_open_max_calls=2
        ),
        clock=clock,
    )
    b.record_failure()
    clock.advance(1)
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def probe() -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.0005)
        with lock:
            in_flight -= 1

    def work(i: int) -> None:
        for _ in range(200):
            with contextlib.suppress(CircuitOpenError):
                b.call(probe)

    run_threads(THREADS, work)
    assert 1 <= peak <= max_calls
    m = b.metrics()
    assert m.half_open_in_flight == 0
    assert m.total_successes + m.total_rejections == THREADS * 200


def test_open_breaker_never_admits_before_timeout() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerConfig(failure_threshold=1, open_timeout_s=10), clock=clock)
    b.record_failure()
    admitted_early = []
    stop = threading.Event()

    def advance() -> None:
        for _ in range(99):
            clock.advance(0.1)  # 9.9 s in all: never reaches the timeout

    def work(i: int) -> None:
        if i == 0:
            advance()
            stop.set()
            return
        while not stop.is_set():
            if b.allow_request():
                admitted_early.append(clock())

    run_threads(4, work)
    assert admitted_early == []
    assert b.state is State.OPEN


def test_stale_success_cannot_close_a_breaker_that_opened_meanwhile() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerConfig(failure_threshold=3), clock=clock)
    entered = threading.Event()
    release = threading.Event()

    def slow_success() -> str:
        entered.set()
        release.wait(10)
        return "ok"

    result: list[str] = []
    t = threading.Thread(target=lambda: result.append(b.call(slow_success)))
    t.start()
    assert entered.wait(10)
    for _ in range(3):
        b.record_failure()
    assert b.state is State.OPEN
    release.set()
    t.join(10)
    assert result == ["ok"]
    m = b.metrics()
    assert m.state is State.OPEN  # the stale success did not touch the open state
    assert m.total_successes == 1  # but it is still counted


def test_stale_probe_outcome_after_reopen_is_ignored() -> None:
    clock = FakeClock()
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=1, open_timeout_s=1, half_open_max_calls=2),
        clock=clock,
    )
    b.record_failure()
    clock.advance(1)
    entered = threading.Event()
    release = threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(10)

    t = threading.Thread(target=b.call, args=(slow,))
    t.start()
    assert entered.wait(10)
    assert b.allow_request()  # the second probe
    b.record_failure()  # it fails: open again
    assert b.state is State.OPEN
    release.set()
    t.join(10)
    m = b.metrics()
    assert m.state is State.OPEN
    assert m.half_open_in_flight == 0


def test_four_threads_through_one_breaker_keep_throughput() -> None:
    """4 threads calling a blocking function through one breaker are not serialized.

    The guarded function sleeps 2 ms (releasing the GIL like I/O does); if the breaker held
    a lock around the call, the 4 threads would take ~4x longer than without it. Compared
    as a ratio of two runs in the same test, never as an absolute time.
    """
    b = CircuitBreaker()
    calls = 40

    def io() -> None:
        time.sleep(0.002)

    def timed(fn: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        run_threads(4, lambda i: [fn() for _ in range(calls)] and None)
        return time.perf_counter() - t0

    bare = timed(io)
    guarded = timed(lambda: b.call(io))
    assert guarded < bare * 2.0
    assert b.metrics().total_successes == 4 * calls


def test_listeners_see_transitions_in_order_under_concurrency() -> None:
    clock = FakeClock()
    events: list[tuple[State, State]] = []
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=2, success_threshold=1, open_timeout_s=0.0),
        clock=clock,
        listeners=[lambda br, old, new: events.append((old, new))],
    )

    def work(i: int) -> None:
        for k in range(2_000):
            try:
                if (i + k) % 3:
                    b.call(int)
                else:
                    b.call(_raise_value_error)
            except (ValueError, CircuitOpenError):
                pass
            if k % 500 == 0:
                b.force_open() if i % 2 else b.reset()

    run_threads(THREADS, work)
    assert len(events) == b.metrics().transitions
    assert events, "the workload must cause transitions"
    assert events[0][0] is State.CLOSED
    for (_, prev_new), (old, _) in itertools.pairwise(events):
        assert old is prev_new  # a chain: every event starts where the previous ended
    assert events[-1][1] is b.metrics().state or b.metrics().state is State.HALF_OPEN


def test_reset_never_shows_a_spurious_half_open() -> None:
    b = CircuitBreaker(BreakerConfig(open_timeout_s=30.0), clock=FakeClock())
    stop = threading.Event()
    seen: set[State] = set()

    def work(i: int) -> None:
        if i == 0:
            for _ in range(3_000):
                b.force_open()
                b.reset()
            stop.set()
        else:
            while not stop.is_set():
                seen.add(b.state)

    run_threads(2, work)
    assert State.HALF_OPEN not in seen


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Switch threads every microsecond, so the lock-free paths interleave at every step."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("switch_often")
def test_lock_free_failure_run_counts_every_failure_while_metrics_reads() -> None:
    """CLOSED failures take no lock: none is lost, and metrics() reads never count one."""
    b = CircuitBreaker(BreakerConfig(failure_threshold=10**9), clock=FakeClock())
    per_thread = 2_000
    seen: list[int] = []

    def work(i: int) -> None:
        if i == 0:  # a reader: consecutive failures only grow, and reading adds none
            for _ in range(per_thread):
                seen.append(b.metrics().consecutive_failures)
            return
        for _ in range(per_thread):
            with pytest.raises(ValueError, match="x"):
                b.call(_raise_value_error)

    run_threads(THREADS, work)
    m = b.metrics()
    expected = (THREADS - 1) * per_thread
    assert (m.total_failures, m.consecutive_failures, m.state) == (
        expected,
        expected,
        State.CLOSED,
    )
    assert seen == sorted(seen)
    assert seen[-1] <= expected


@pytest.mark.usefixtures("switch_often")
@pytest.mark.parametrize("spare", [0, 1])
def test_lock_free_failure_run_trips_once_exactly_at_the_threshold(spare: int) -> None:
    """Threads racing through the lock-free run: the circuit opens on the threshold-th
    failure, once, with one listener event (or never, one failure short of it)."""
    per_thread = 500
    total = THREADS * per_thread
    events: list[tuple[State, State]] = []
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=total + spare),
        clock=FakeClock(),
        listeners=[lambda _b, old, new: events.append((old, new))],
    )

    def work(i: int) -> None:
        for _ in range(per_thread):
            with pytest.raises(ValueError, match="x"):
                b.call(_raise_value_error)

    run_threads(THREADS, work)
    m = b.metrics()
    assert m.total_failures == total
    assert m.total_rejections == 0  # every call was admitted before the last failure
    if spare:
        assert (m.state, m.consecutive_failures, events) == (State.CLOSED, total, [])
    else:
        assert (m.state, m.transitions) == (State.OPEN, 1)
        assert events == [(State.CLOSED, State.OPEN)]


@pytest.mark.usefixtures("switch_often")
def test_a_success_ends_the_lock_free_run_under_contention() -> None:
    """Failures racing with successes: when the last outcome is a success, the run is 0,
    and a failure after it starts a new run at 1."""
    b = CircuitBreaker(BreakerConfig(failure_threshold=10**9), clock=FakeClock())

    def work(i: int) -> None:
        for k in range(2_000):
            if (i + k) % 2:
                with pytest.raises(ValueError, match="x"):
                    b.call(_raise_value_error)
            else:
                b.call(int)

    run_threads(THREADS, work)
    b.call(int)
    assert b.metrics().consecutive_failures == 0
    with pytest.raises(ValueError, match="x"):
        b.call(_raise_value_error)
    m = b.metrics()
    assert (m.consecutive_failures, m.total_failures, m.total_successes) == (
        1,
        THREADS * 1_000 + 1,
        THREADS * 1_000 + 1,
    )
