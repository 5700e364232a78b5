"""Benchmarks of pganalytics_core.breaker.CircuitBreaker.

Naming follows numpy's and scipy's suites: one class per subject, ``setup`` builds, the
timed body is the operation. Benchmark names are history: never rename one.

Floors measured in the same run (class ``Floor``): an empty function call and a call under
one ``threading.Lock``. Peers (class ``Peers``): pybreaker and circuitbreaker, installed in
the asv environment by ``asv.conf.json``'s matrix. ``VersusLockFloor`` puts each of our
paths next to the lock floor's same path (issue 11's targets are ratios within it).

asv versions a benchmark by the source of its body *and its class's setup*: editing an
existing class's ``setup`` starts new graphs for all its benchmarks, so add a class.
"""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc

from .common import Failure, async_noop, fail, noop, require, run_in_threads


def _breaker_api():  # type: ignore[no-untyped-def]
    return require("pganalytics_core", "BreakerConfig", "CircuitBreaker", "CircuitOpenError")


class _FakeClock:
    """A clock the benchmarks advance by hand (independent of the package's FakeClock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BreakerOps:
    """Single-thread primitive operations on a CLOSED breaker."""

    def setup(self) -> None:
        BreakerConfig, CircuitBreaker, _ = _breaker_api()
        self.breaker = CircuitBreaker()
        self.failing = CircuitBreaker(BreakerConfig(failure_threshold=10**9))

    def time_allow_request(self) -> None:
        self.breaker.allow_request()

    def time_record_success(self) -> None:
        self.breaker.record_success()

    def time_record_failure(self) -> None:
        self.failing.record_failure()

    def time_state(self) -> None:
        self.breaker.state

    def time_is_open(self) -> None:
        self.breaker.is_open

    def time_metrics(self) -> None:
        self.breaker.metrics()

    def time_reset(self) -> None:
        self.breaker.reset()


class GuardedCall:
    """``call()`` on the success and failure paths, and the ``with`` gate.

    ``mode``: "consecutive" is the default config; "window" turns the failure-rate rule on
    (a 100-call sliding window), which puts every outcome under the lock.
    """

    params = ["consecutive", "window"]
    param_names = ["mode"]

    def setup(self, mode: str) -> None:
        BreakerConfig, CircuitBreaker, self.CircuitOpenError = _breaker_api()
        extra = {"failure_rate_threshold": 0.99, "window_size": 100} if mode == "window" else {}
        self.breaker = CircuitBreaker(BreakerConfig(**extra))
        self.failing = CircuitBreaker(BreakerConfig(failure_threshold=10**9, **extra))

    def time_call_success(self, mode: str) -> None:
        self.breaker.call(noop)

    def time_call_failure(self, mode: str) -> None:
        try:
            self.failing.call(fail)
        except Failure:
            pass
        except self.CircuitOpenError:
            # mode=window: 100 % failures trip the failure-rate rule once the window is
            # full; one rejection and a reset per ~100 calls keep the breaker measurable.
            self.failing.reset()

    def time_with_block(self, mode: str) -> None:
        with self.breaker:
            pass


class AsyncGuardedCall:
    """``await call_async()`` 1,000 times in one coroutine, next to bare awaits (the floor)."""

    def setup(self) -> None:
        _, CircuitBreaker, _ = _breaker_api()
        self.breaker = CircuitBreaker()
        self.loop = asyncio.new_event_loop()

    def teardown(self) -> None:
        self.loop.close()

    async def _guarded(self) -> None:
        call_async = self.breaker.call_async
        for _ in range(1000):
            await call_async(async_noop)

    async def _bare(self) -> None:
        for _ in range(1000):
            await async_noop()

    def time_call_async_x1000(self) -> None:
        self.loop.run_until_complete(self._guarded())

    def time_await_bare_x1000(self) -> None:
        self.loop.run_until_complete(self._bare())


class Floor:
    """Reference costs: what the cheapest possible guard would cost."""

    def setup(self) -> None:
        self.lock = threading.Lock()

    def time_empty_call(self) -> None:
        noop()

    def time_call_under_lock(self) -> None:
        with self.lock:
            noop()

    def time_raise_and_catch(self) -> None:
        try:
            fail()
        except Failure:
            pass


class OpenCircuit:
    """Operations on an OPEN breaker: rejection must be fast and retain nothing."""

    def setup(self) -> None:
        _, CircuitBreaker, self.CircuitOpenError = _breaker_api()
        self.breaker = CircuitBreaker()
        self.breaker.force_open()

    def time_allow_request_open(self) -> None:
        self.breaker.allow_request()

    def time_state_open(self) -> None:
        self.breaker.state

    def time_call_rejected(self) -> None:
        try:
            self.breaker.call(noop)
        except self.CircuitOpenError:
            pass


class StateCycle:
    """A full CLOSED -> OPEN -> HALF_OPEN -> CLOSED cycle driven by a manual clock."""

    def setup(self) -> None:
        BreakerConfig, CircuitBreaker, _ = _breaker_api()
        self.clock = _FakeClock()
        self.breaker = CircuitBreaker(
            BreakerConfig(failure_threshold=5, success_threshold=3, open_timeout_s=1.0),
            clock=self.clock,
        )

    def time_open_half_open_closed_cycle(self) -> None:
        b = self.breaker
        for _ in range(5):
            b.allow_request()
            b.record_failure()
        self.clock.now += 1.0
        for _ in range(3):
            b.allow_request()
            b.record_success()


class MetricsWithHistory:
    """``metrics()`` of a breaker with a full 100-call window and many transitions."""

    def setup(self) -> None:
        BreakerConfig, CircuitBreaker, _ = _breaker_api()
        clock = _FakeClock()
        self.breaker = CircuitBreaker(
            BreakerConfig(
                failure_threshold=3,
                success_threshold=1,
                open_timeout_s=1.0,
                failure_rate_threshold=0.9,
                window_size=100,
            ),
            clock=clock,
        )
        for i in range(10_000):
            if self.breaker.allow_request():
                if i % 7 == 0:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()
            clock.now += 0.01

    def time_metrics_with_history(self) -> None:
        self.breaker.metrics()


class TypicalSequence:
    """What a caller does per request with the bare protocol: allow -> record -> state."""

    def setup(self) -> None:
        _, CircuitBreaker, _ = _breaker_api()
        self.breaker = CircuitBreaker()

    def time_allow_record_state(self) -> None:
        b = self.breaker
        if b.allow_request():
            b.record_success()
        b.state


class EdgeCases:
    """Bursts: 1,000 failures, resets or successes in a row."""

    def setup(self) -> None:
        BreakerConfig, CircuitBreaker, _ = _breaker_api()
        self.breaker = CircuitBreaker(BreakerConfig(failure_threshold=10**9))

    def time_many_failures(self) -> None:
        record = self.breaker.record_failure
        for _ in range(1000):
            record()

    def time_many_successes(self) -> None:
        record = self.breaker.record_success
        for _ in range(1000):
            record()

    def time_many_resets(self) -> None:
        reset = self.breaker.reset
        for _ in range(1000):
            reset()


class Concurrency:
    """Several threads on one breaker. Each run does 4 x 5,000 (or 8 x 2,500) operations.

    Thread start-up (~0.1 ms per thread) is inside the timing and the same for every
    benchmark here and for ``time_threads_floor``, which does the same loops without the
    breaker.
    """

    number = 1
    repeat = (5, 20, 10.0)

    def setup(self) -> None:
        BreakerConfig, CircuitBreaker, _ = _breaker_api()
        self.breaker = CircuitBreaker(BreakerConfig(failure_threshold=10**9))

    def time_threads_floor(self) -> None:
        def work(i: int) -> None:
            for _ in range(5000):
                noop()

        run_in_threads(4, work)

    def time_concurrent_reads_4_threads(self) -> None:
        b = self.breaker

        def work(i: int) -> None:
            for _ in range(5000):
                b.allow_request()
                b.state

        run_in_threads(4, work)

    def time_read_write_mix_4_threads(self) -> None:
        b = self.breaker

        def work(i: int) -> None:
            for k in range(5000):
                if b.allow_request():
                    if k % 10 == 0:
                        b.record_failure()
                    else:
                        b.record_success()
                b.state

        run_in_threads(4, work)

    def time_high_contention_8_threads(self) -> None:
        b = self.breaker

        def work(i: int) -> None:
            for k in range(2500):
                if k % 2:
                    b.record_failure()
                else:
                    b.call(noop)
                b.metrics() if k % 100 == 0 else None

        run_in_threads(8, work)


class BlockingThroughput:
    """4 threads calling a 1 ms blocking function: the breaker must not serialize them."""

    number = 1
    repeat = (3, 10, 10.0)
    unit = "percent"

    def setup(self) -> None:
        _, CircuitBreaker, _ = _breaker_api()
        self.breaker = CircuitBreaker()

    @staticmethod
    def _run(fn) -> float:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        run_in_threads(4, lambda i: [fn() for _ in range(25)] and None)
        return time.perf_counter() - t0

    def track_overhead_4_threads_1ms(self) -> float:
        """Extra wall time through the breaker, in percent of the bare run (lower is better)."""

        def io() -> None:
            time.sleep(0.001)

        bare = min(self._run(io) for _ in range(3))
        guarded = min(self._run(lambda: self.breaker.call(io)) for _ in range(3))
        return (guarded / bare - 1.0) * 100.0


class Memory:
    """Memory of breakers (``mem_`` is pympler's asizeof, which also counts the shared
    default config and enum members; ``track_bytes_per_breaker`` is the true increment)."""

    def setup(self) -> None:
        self.BreakerConfig, self.CircuitBreaker, _ = _breaker_api()

    def mem_breaker_default(self) -> object:
        return self.CircuitBreaker()

    def mem_breaker_window_100(self) -> object:
        return self.CircuitBreaker(self.BreakerConfig(failure_rate_threshold=0.5, window_size=100))

    def peakmem_create_10000_breakers(self) -> None:
        breakers = [self.CircuitBreaker(name="b") for _ in range(10_000)]
        del breakers

    def track_bytes_per_breaker(self) -> float:
        """Allocated bytes per breaker (default config), measured with tracemalloc."""
        make = self.CircuitBreaker
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            breakers = [make(name="b") for _ in range(10_000)]
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del breakers
        return (after - before) / 10_000

    track_bytes_per_breaker.unit = "bytes"  # type: ignore[attr-defined]

    def track_bytes_retained_by_1000_rejections(self) -> float:
        """Bytes still allocated after 1,000 rejections by an open breaker (should be 0)."""
        breaker = self.CircuitBreaker()
        breaker.force_open()
        error = require("pganalytics_core", "CircuitOpenError")
        for _ in range(100):  # warm up: the first rejections allocate the counters' ints
            try:
                breaker.call(noop)
            except error:
                pass
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(1000):
                try:
                    breaker.call(noop)
                except error:
                    pass
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        return float(max(after - before, 0))

    track_bytes_retained_by_1000_rejections.unit = "bytes"  # type: ignore[attr-defined]


class Peers:
    """The same guarded no-op call and open-circuit rejection through popular breakers."""

    params = ["pganalytics_core", "pybreaker", "circuitbreaker"]
    param_names = ["library"]

    def setup(self, library: str) -> None:
        if library == "pganalytics_core":
            _, CircuitBreaker, CircuitOpenError = _breaker_api()
            self.closed = CircuitBreaker()
            self.opened = CircuitBreaker()
            self.opened.force_open()
            self.call_closed = self.closed.call
            self.call_opened = self.opened.call
            self.error = CircuitOpenError
        elif library == "pybreaker":
            pybreaker = require("pybreaker")
            self.closed = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
            self.opened = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=3600)
            self.opened.open()
            self.call_closed = self.closed.call
            self.call_opened = self.opened.call
            self.error = pybreaker.CircuitBreakerError
        else:
            cb = require("circuitbreaker")
            self.closed = cb.CircuitBreaker(failure_threshold=5, recovery_timeout=30)
            self.opened = cb.CircuitBreaker(
                failure_threshold=1, recovery_timeout=3600, expected_exception=Failure
            )
            self.call_closed = self.closed.call
            self.call_opened = self.opened.call
            try:
                self.call_opened(fail)
            except Failure:
                pass
            self.error = cb.CircuitBreakerError

    def time_guarded_call_success(self, library: str) -> None:
        self.call_closed(noop)

    def time_rejection_open(self, library: str) -> None:
        try:
            self.call_opened(noop)
        except self.error:
            pass


class _FloorOpenError(Exception):
    """What the lock floor raises when it rejects a call."""


class VersusLockFloor:
    """Our success, ``with``, ``guard()``, failure and rejection paths next to the floor's.

    The floor is the cheapest breaker that is correct under threads: every call runs under
    one ``threading.Lock`` (``with lock: fn()``); while open it reads the clock and raises
    an exception carrying the name and the seconds left, as ours does. Issue 11's targets
    are ratios in this class: ``time_with_block`` and ``time_guard_block`` at most 1.5x
    ``time_call_success``; ``time_call_failure`` and ``time_rejection_open`` at most 1.1x
    ``time_floor_failure`` and ``time_floor_rejection``.
    """

    def setup(self) -> None:
        BreakerConfig, CircuitBreaker, self.CircuitOpenError = _breaker_api()
        self.breaker = CircuitBreaker()
        if not hasattr(self.breaker, "guard"):
            raise NotImplementedError("CircuitBreaker.guard() is not available")
        self.failing = CircuitBreaker(BreakerConfig(failure_threshold=10**9))
        self.opened = CircuitBreaker()
        self.opened.force_open()
        self.lock = threading.Lock()
        self.floor_open_until = float("inf")  # the floor, forced open

    def time_call_success(self) -> None:
        self.breaker.call(noop)

    def time_with_block(self) -> None:
        with self.breaker:
            pass

    def time_guard_block(self) -> None:
        with self.breaker.guard():
            pass

    def time_call_failure(self) -> None:
        try:
            self.failing.call(fail)
        except Failure:
            pass

    def time_rejection_open(self) -> None:
        try:
            self.opened.call(noop)
        except self.CircuitOpenError:
            pass

    def time_floor_success(self) -> None:
        with self.lock:
            noop()

    def time_floor_failure(self) -> None:
        try:
            with self.lock:
                fail()
        except Failure:
            pass

    def time_floor_rejection(self) -> None:
        try:
            with self.lock:
                now = time.monotonic()
                if now < self.floor_open_until:
                    raise _FloorOpenError("floor", self.floor_open_until - now)
                noop()
        except _FloorOpenError:
            pass


class _WrappedLockFloor:
    """The lock floor behind the API every breaker has: ``call(fn, *args, **kwargs)``.

    Exactly ``VersusLockFloor``'s floor (a call under one lock; while open, the clock read
    and an exception with the name and seconds left; nothing counted), reached the way a
    caller reaches ours: a method with ``*args, **kwargs``, the exception passing through
    it. Issue 11 measured its floor "in a peer harness that wraps each library the same
    way"; this is that floor.
    """

    def __init__(self, open_until: float) -> None:
        self._lock = threading.Lock()
        self._open = open_until > 0
        self._open_until = open_until

    def call(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._open:
                now = time.monotonic()
                if now < self._open_until:
                    raise _FloorOpenError("floor", self._open_until - now)
            return fn(*args, **kwargs)


class _FloorGate:
    """The cheapest gate a ``with breaker.guard():`` can be: one object per block, a
    one-line ``__enter__`` and ``__exit__`` (no admission, nothing counted)."""

    __slots__ = ("_owner",)

    def __enter__(self) -> object:
        return self._owner

    def __exit__(self, *exc: object) -> None:
        return None


class VersusWrappedFloor(VersusLockFloor):
    """Our paths next to the lock floor reached through the same call shape as ours.

    ``time_wrapped_floor_*`` is :class:`_WrappedLockFloor`; ``time_floor_gate_block`` is a
    block over :class:`_FloorGate` made by a method, as ``guard()`` is: the least any gate
    object costs in CPython. Ratios: ``time_call_failure`` / ``time_wrapped_floor_failure``,
    ``time_rejection_open`` / ``time_wrapped_floor_rejection``, ``time_guard_block`` /
    ``time_floor_gate_block`` (docs/performance.md). The rest are ``VersusLockFloor``'s
    (inherited: the bare floors and our paths, measured again in this class's runs).
    """

    def setup(self) -> None:
        super().setup()
        self.floor = _WrappedLockFloor(0.0)
        self.floor_opened = _WrappedLockFloor(float("inf"))

    def _floor_gate(self) -> _FloorGate:
        gate = _FloorGate()
        gate._owner = self
        return gate

    def time_wrapped_floor_success(self) -> None:
        self.floor.call(noop)

    def time_wrapped_floor_failure(self) -> None:
        try:
            self.floor.call(fail)
        except Failure:
            pass

    def time_wrapped_floor_rejection(self) -> None:
        try:
            self.floor_opened.call(noop)
        except _FloorOpenError:
            pass

    def time_floor_gate_block(self) -> None:
        with self._floor_gate():
            pass


class Permits:
    """The two-step protocol with an explicit permit (``acquire()``, issue 19)."""

    def setup(self) -> None:
        _, CircuitBreaker, _ = _breaker_api()
        if not hasattr(CircuitBreaker, "acquire"):
            raise NotImplementedError("CircuitBreaker.acquire() is not in this commit")
        self.breaker = CircuitBreaker()
        self.open = CircuitBreaker()
        self.open.force_open()

    def time_acquire_success(self) -> None:
        self.breaker.acquire().success()

    def time_acquire_rejected(self) -> None:
        self.open.acquire()


def _require_guard() -> None:
    """Skip a benchmark of ``guard()`` (n/a) on commits before it existed."""
    _, CircuitBreaker, _ = _breaker_api()
    if not hasattr(CircuitBreaker, "guard"):
        raise NotImplementedError("CircuitBreaker.guard() is not in this commit")


class RejectedWays:
    """Rejection by an OPEN breaker through the gates (``OpenCircuit`` has ``call()``'s)."""

    def setup(self) -> None:
        _, CircuitBreaker, self.CircuitOpenError = _breaker_api()
        self.breaker = CircuitBreaker()
        self.breaker.force_open()

    def time_guard_rejected(self) -> None:
        try:
            with self.breaker.guard():
                pass
        except self.CircuitOpenError:
            pass

    # asv runs a method's own setup after the class's.
    time_guard_rejected.setup = _require_guard  # type: ignore[attr-defined]

    def time_with_rejected(self) -> None:
        try:
            with self.breaker:
                pass
        except self.CircuitOpenError:
            pass
