"""Run a load model with worker threads or asyncio tasks, measuring every call exactly.

:func:`run_model` (threads) and :func:`run_model_async` (tasks on the running loop) take a
:class:`~pganalytics_core.load.model.ClosedModel` or an
:class:`~pganalytics_core.load.model.OpenModel` (:func:`run_closed` and :func:`run_open`
build it from keywords), join every thread they start (also when interrupted) and return
a :class:`~pganalytics_core.load.result.LoadTestResult`.

An *operation* makes one request (``lambda: client.predict(4001)``): it succeeds when it
returns and fails when it raises an ``Exception`` (named by
:func:`~pganalytics_core.load.recorder.error_type`). A ``CircuitOpenError`` from the
caller's own breaker (:func:`~pganalytics_core.load.recorder.is_rejection`) is a
*rejection*, counted apart and never a request. Give one ``operation`` shared by every
worker, or an ``operation_factory(worker_index)`` (a client per worker, say); factories
run *before* the clock starts.

Closed model: the workers meet at a barrier (the clock starts when the last arrives), then
each calls back to back, timing every call with ``time.perf_counter_ns`` into its own
:class:`~pganalytics_core.load.recorder.Recorder` (no lock, no shared counter on the hot path).

Open model: a scheduler sleeps (never spins) until each intended start ``t0 + i / rate``
and hands it to worker threads through a queue (the asyncio engine starts a task per
request). Latency is ``end - intended_start``, service time ``end - actual_start``: when
the service stalls, the wait in the queue counts, as in wrk2. The scheduler records its
own lag (``handed_over - intended_start``) and counts the requests that found every worker
busy. A request due while ``max_in_flight`` are outstanding is *dropped*: a failed request
of type ``"Dropped"`` whose latency runs until a slot freed (:func:`_dropped_latencies`),
so dropping never hides a stall.
"""

from __future__ import annotations

import array
import asyncio
import dataclasses
import functools
import itertools
import queue
import threading
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypedDict, TypeVar, Unpack

import numpy

from pganalytics_core.load.model import ClosedModel, LoadModel, ModelName, OpenModel
from pganalytics_core.load.recorder import DROPPED, Recorder, error_type
from pganalytics_core.load.result import (
    LoadTestResult,
    RunSamples,
    _sorted_counts,
    build_result,
    pack_samples,
)
from pganalytics_core.load.stats import PercentileMethod, _as_int64

__all__ = [
    "AsyncOperation",
    "AsyncRunOptions",
    "ErrorClassifier",
    "MeasureOptions",
    "Operation",
    "OperationFactory",
    "Progress",
    "ProgressCallback",
    "RunOptions",
    "run_closed",
    "run_closed_async",
    "run_model",
    "run_model_async",
    "run_open",
    "run_open_async",
]

#: One request: returns on success, raises on failure.
Operation = Callable[[], object]
#: One request of the asyncio runners.
AsyncOperation = Callable[[], Awaitable[object]]
#: Builds the operation of worker ``index`` (0-based), before the clock starts.
OperationFactory = Callable[[int], Operation]
#: Names the kind of a failure.
ErrorClassifier = Callable[[BaseException], str]

_Op = TypeVar("_Op", Operation, AsyncOperation)
_NO_DEADLINE: Final = 2**63 - 1
_STOP_WORKER: Final = -1  # an intended start is never negative


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """A live snapshot of a running load test, for a progress line.

    Attributes:
        model: ``"closed"`` or ``"open"``.
        elapsed_s: seconds since the clock started.
        finished, failed: requests finished, and failed, so far.
        planned: requests the run will make, when known in advance.
        dropped: open model: requests dropped so far.
        rejections: operations rejected by the client's own circuit breaker so far (not
            requests: not in ``finished``).
    """

    model: ModelName
    elapsed_s: float
    finished: int
    failed: int
    planned: int | None
    dropped: int = 0
    rejections: int = 0

    @property
    def requests_per_second(self) -> float:
        """Finished requests per second so far."""
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0


#: Receives a :class:`Progress` about every ``progress_interval_s``, from the caller's thread.
ProgressCallback = Callable[[Progress], object]


class MeasureOptions(TypedDict, total=False):
    """How a run is measured and reported, the keywords of every runner: see :func:`run_model`."""

    name: str | None
    method: PercentileMethod
    classify: ErrorClassifier
    progress: ProgressCallback | None
    progress_interval_s: float
    keep_samples: bool


class RunOptions(MeasureOptions, total=False):
    """The keywords of :func:`run_model` (and :func:`run_closed`, :func:`run_open`)."""

    operation_factory: OperationFactory | None


class AsyncRunOptions(MeasureOptions, total=False):
    """The keywords of :func:`run_model_async`."""

    operation_factory: Callable[[int], AsyncOperation] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Settings:
    """:class:`MeasureOptions` with their defaults, as the engines read them."""

    name: str | None = None
    method: PercentileMethod = "nearest-rank"
    classify: ErrorClassifier = error_type
    progress: ProgressCallback | None = None
    progress_interval_s: float = 0.5
    keep_samples: bool = True

    def __post_init__(self) -> None:
        if not self.progress_interval_s > 0:
            raise ValueError(f"progress_interval_s must be > 0, got {self.progress_interval_s!r}")

    def result(self, model: LoadModel, samples: RunSamples) -> LoadTestResult:
        """The run's result, named after the model unless given a name."""
        name = model.name if self.name is None else self.name
        return build_result(
            name, model, samples, method=self.method, keep_samples=self.keep_samples
        )


class _Schedule:
    """The open model's schedule and its record, written by the scheduler only (sans-IO):
    both engines wait until each start of :meth:`due`, then report it to :meth:`handled`."""

    def __init__(self) -> None:
        self.lag_ns: array.array[int] = array.array("q")
        self.issued = self.queued = self.last_handled_ns = self.end_ns = 0
        self.dropped_intended_ns: array.array[int] = array.array("q")
        self.dropped_at_ns: array.array[int] = array.array("q")

    @staticmethod
    def due(model: OpenModel, start_ns: int) -> Iterator[int]:
        """The intended starts of the whole schedule, in ``perf_counter_ns`` time."""
        for index in range(model.schedule_requests):
            yield start_ns + model.intended_offset_ns(index)

    def handled(self, intended: int, now: int, sent: bool) -> None:
        """Record a request handled at ``now``: sent, or dropped (``max_in_flight`` reached)."""
        self.lag_ns.append(now - intended)
        self.last_handled_ns = now
        if sent:
            self.issued += 1
        else:
            self.dropped_intended_ns.append(intended)
            self.dropped_at_ns.append(now)


class _Run:
    """The shared state of one run, whichever engine runs it; ``parties`` are the threads
    (or the one task loop) that report with :meth:`party_done`."""

    def __init__(self, model: LoadModel, recorders: int, parties: int) -> None:
        self.model = model
        self.recorders = [Recorder() for _ in range(recorders)]
        self.schedule = _Schedule() if isinstance(model, OpenModel) else None
        self.stop = False  # a plain attribute: reading it costs ~10 ns on the hot path
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.remaining = parties
        self.all_done = threading.Event()
        self.start_ns = self.start_unix_ns = self.last_end_ns = 0
        self.crashes: list[BaseException] = []

    def start_clock(self) -> None:
        self.start_unix_ns = time.time_ns()
        self.start_ns = time.perf_counter_ns()

    def request_stop(self) -> None:
        self.stop = True
        self.stop_event.set()

    def party_done(self, last_end_ns: int, crash: BaseException | None = None) -> None:
        with self.lock:
            self.last_end_ns = max(self.last_end_ns, last_end_ns)
            if crash is not None:
                self.crashes.append(crash)
                self.request_stop()
            self.remaining -= 1
            if self.remaining == 0:
                self.all_done.set()

    def progress(self) -> Progress:
        """A live snapshot, read without a lock (lengths and ints only)."""
        recorders, schedule = self.recorders, self.schedule
        return Progress(
            model=self.model.name,
            elapsed_s=(time.perf_counter_ns() - self.start_ns) / 1e9,
            finished=sum(len(r) for r in recorders),
            failed=sum(r.failures for r in recorders),
            planned=self.model.planned_requests,
            dropped=0 if schedule is None else len(schedule.dropped_intended_ns),
            rejections=sum(r.rejections for r in recorders),
        )

    def samples(self) -> RunSamples:
        """Collect the run: every finished request, and in the open model every dropped one."""
        recorders, schedule, model = self.recorders, self.schedule, self.model
        failures = sum((r.errors for r in recorders), Counter[str]())
        samples = RunSamples(
            latencies_ns=b"".join(pack_samples(r.latencies_ns) for r in recorders),
            failures_by_type=_sorted_counts(failures),
            started_at_unix_ns=self.start_unix_ns,
            duration_ns=max(self.last_end_ns - self.start_ns, 0),
            rejections=sum(r.rejections for r in recorders),
        )
        if schedule is None or not isinstance(model, OpenModel):
            return samples
        dropped = _dropped_latencies(schedule, [r.end_times_ns for r in recorders])
        failures[DROPPED] += len(dropped)
        end_ns = max(self.last_end_ns, schedule.end_ns)
        # How long *starting* the schedule took: its nominal span (the last request is due
        # one period before its end, so on-time requests achieve exactly the target rate),
        # or up to one period after the last actual start or hand-off when that was late.
        starts = (_as_int64(r.end_times_ns) - _as_int64(r.service_times_ns) for r in recorders)
        last_ns = max([schedule.last_handled_ns, *(int(s.max()) for s in starts if len(s))])
        late_end_ns = last_ns - self.start_ns + round(1e9 / model.rate_per_s) if last_ns else 0
        return dataclasses.replace(
            samples,
            latencies_ns=samples.latencies_ns + pack_samples(dropped),
            failures_by_type=_sorted_counts(failures),
            duration_ns=max(end_ns - self.start_ns, 0),
            service_times_ns=b"".join(pack_samples(r.service_times_ns) for r in recorders),
            scheduler_lag_ns=pack_samples(schedule.lag_ns),
            issued=schedule.issued,
            dropped=len(dropped),
            late=sum(r.late for r in recorders),
            queued=schedule.queued,
            schedule_ns=max(model.schedule_span_ns, late_end_ns),
        )


def _operations(
    model: LoadModel,
    operation: _Op | None,
    operation_factory: Callable[[int], _Op] | None,
    count: int,
) -> list[_Op]:
    """Check the arguments every runner takes and build each worker's operation."""
    if not isinstance(model, ClosedModel | OpenModel):
        raise TypeError(f"model must be a ClosedModel or an OpenModel, got {type(model).__name__}")
    if (operation is None) == (operation_factory is None):
        raise TypeError("give exactly one of operation and operation_factory")
    if operation_factory is None:
        if not callable(operation):
            raise TypeError(f"operation must be callable, got {type(operation).__name__}")
        return [operation] * count
    if not callable(operation_factory):
        raise TypeError(
            f"operation_factory must be callable, got {type(operation_factory).__name__}"
        )
    operations = [operation_factory(index) for index in range(count)]
    for index, built in enumerate(operations):
        if not callable(built):
            raise TypeError(f"operation_factory({index}) returned a non-callable")
    return operations


def run_model(
    model: LoadModel,
    operation: Operation | None = None,
    *,
    operation_factory: OperationFactory | None = None,
    **options: Unpack[MeasureOptions],
) -> LoadTestResult:
    """Run a model with worker threads.

    Args:
        model: a :class:`ClosedModel` (``workers`` threads calling back to back) or an
            :class:`OpenModel` (a constant arrival rate, latency from the intended start).
        operation: one request, shared by every worker (thread-safe, like ``MLClient``).
        operation_factory: instead of ``operation``: builds worker ``i``'s operation.
        options: how the run is measured, keywords of :class:`MeasureOptions`:
            name: the run's name (default: the model's name).
            method: the percentile method (``"nearest-rank"`` or ``"inclusive"``).
            classify: names each failure's kind (default: :func:`error_type`).
            progress: called with a :class:`Progress` every ``progress_interval_s`` seconds,
                from the calling thread; an exception it raises (``KeyboardInterrupt``) stops
                the run, joins every thread and propagates.
            progress_interval_s: seconds between progress calls.
            keep_samples: keep the raw samples on the result (needed to merge it later).

    Returns:
        The result; :attr:`LoadTestResult.open_model` is set for the open model.

    Raises:
        ConfigError: a model parameter is out of range (raised by the model).
        TypeError: not exactly one of ``operation`` and ``operation_factory``.
        RuntimeError: the runner's own bookkeeping failed in a worker.
    """
    settings = _Settings(**options)
    operations = _operations(model, operation, operation_factory, model.workers)
    if isinstance(model, ClosedModel):
        return settings.result(model, _run_closed_threads(model, operations, settings))
    return settings.result(model, _run_open_threads(model, operations, settings))


def run_closed(
    operation: Operation | None = None,
    *,
    workers: int = 10,
    iterations: int | None = None,
    duration_s: float | None = None,
    **options: Unpack[RunOptions],
) -> LoadTestResult:
    """The closed model with threads: ``run_model(ClosedModel(...), operation, **options)``.

    Args:
        operation: one request, shared by every worker.
        workers, iterations, duration_s: the :class:`ClosedModel`'s fields.
        options: as for :func:`run_model` (``name`` defaults to ``"closed"``).
    """
    model = ClosedModel(workers=workers, iterations=iterations, duration_s=duration_s)
    return run_model(model, operation, **options)


def run_open(
    operation: Operation | None = None,
    *,
    rate_per_s: float,
    duration_s: float,
    workers: int = 10,
    max_in_flight: int = 1000,
    late_after_ms: float = 10.0,
    max_scheduler_lag_ms: float = 5.0,
    **options: Unpack[RunOptions],
) -> LoadTestResult:
    """The open model with threads: ``run_model(OpenModel(...), operation, **options)``.

    Args:
        operation: one request, shared by every worker.
        rate_per_s, duration_s, workers, max_in_flight, late_after_ms,
            max_scheduler_lag_ms: the :class:`OpenModel`'s fields.
        options: as for :func:`run_model` (``name`` defaults to ``"open"``).
    """
    model = OpenModel(
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        workers=workers,
        max_in_flight=max_in_flight,
        late_after_ms=late_after_ms,
        max_scheduler_lag_ms=max_scheduler_lag_ms,
    )
    return run_model(model, operation, **options)


def _run_threads(
    run: _Run,
    bodies: Sequence[Callable[[], int]],
    barrier: threading.Barrier,
    settings: _Settings,
    on_abort: Callable[[], object] = lambda: None,
) -> None:
    """Start a thread per body (returning its last request's end), meet them at ``barrier``
    (the clock starts there), wait (calling ``progress``) and join every thread, always."""
    threads = [
        threading.Thread(target=_party, args=(run, body), name=f"pganalytics-load-{i}", daemon=True)
        for i, body in enumerate(bodies)
    ]
    started: list[threading.Thread] = []
    try:
        for thread in threads:
            thread.start()
            started.append(thread)
        barrier.wait()
    except BaseException:
        barrier.abort()
        run.request_stop()
        on_abort()
        for thread in started:
            thread.join()
        raise
    progress = settings.progress
    interval_s = None if progress is None else settings.progress_interval_s
    try:
        while not run.all_done.wait(interval_s) and progress is not None:
            progress(run.progress())
    except BaseException:
        run.request_stop()
        raise
    finally:
        for thread in threads:
            thread.join()
    if run.crashes:
        # The runner's own bookkeeping failed (never an operation's exception).
        raise RuntimeError("a load worker failed") from run.crashes[0]


def _party(run: _Run, body: Callable[[], int]) -> None:
    try:
        last_end_ns = body()
    except threading.BrokenBarrierError:  # the start was aborted: nothing ran
        last_end_ns = 0
    except BaseException as crash:  # the runner's own failure (a classify bug, ...)
        run.party_done(0, crash)
        return
    run.party_done(last_end_ns)


def _closed_starts(model: ClosedModel, run: _Run) -> Iterator[int]:
    """Yield each call's start time until the iterations or the duration run out, or a stop."""
    clock = time.perf_counter_ns
    deadline = _NO_DEADLINE
    if model.duration_s is not None:
        deadline = run.start_ns + round(model.duration_s * 1e9)
    for _ in itertools.repeat(None, model.iterations or _NO_DEADLINE):  # timed: "forever"
        start = clock()
        if run.stop or start >= deadline:
            return
        yield start


def _record_closed(
    recorder: Recorder, classify: ErrorClassifier, start: int, end: int, exc: Exception | None
) -> None:
    """Record one closed-model call (both engines): latency from its actual start."""
    if exc is None or recorder.count_exception(exc, classify):
        recorder.latencies_ns.append(end - start)


def _record_open(
    recorder: Recorder,
    classify: ErrorClassifier,
    late_ns: int,
    times: tuple[int, int, int],
    exc: Exception | None,
) -> None:
    """Record one open-model call (both engines) from its ``(intended, start, end)``."""
    intended, start, end = times
    if exc is not None and not recorder.count_exception(exc, classify):
        return
    recorder.service_times_ns.append(end - start)
    recorder.end_times_ns.append(end)
    if start - intended > late_ns:
        recorder.late += 1
    # Last: the scheduler counts finished requests by their latencies.
    recorder.latencies_ns.append(end - intended)


def _run_closed_threads(
    model: ClosedModel, operations: Sequence[Operation], settings: _Settings
) -> RunSamples:
    run = _Run(model, len(operations), len(operations))
    barrier = threading.Barrier(len(operations) + 1, action=run.start_clock)
    classify = settings.classify

    def worker(operation: Operation, recorder: Recorder) -> int:
        clock = time.perf_counter_ns
        end = 0
        barrier.wait()
        for start in _closed_starts(model, run):
            try:
                operation()
                exc = None
            except Exception as error:
                exc = error
            end = clock()
            _record_closed(recorder, classify, start, end, exc)
        return end

    pairs = zip(operations, run.recorders, strict=True)
    _run_threads(run, [functools.partial(worker, *pair) for pair in pairs], barrier, settings)
    return run.samples()


def _run_open_threads(
    model: OpenModel, operations: Sequence[Operation], settings: _Settings
) -> RunSamples:
    run = _Run(model, len(operations), len(operations) + 1)
    schedule, recorders = run.schedule, run.recorders
    assert schedule is not None
    handoff: queue.SimpleQueue[int] = queue.SimpleQueue()
    slots = threading.Semaphore(model.max_in_flight)
    late_ns = round(model.late_after_ms * 1e6)
    classify = settings.classify
    barrier = threading.Barrier(2, action=run.start_clock)

    def stop_workers() -> None:
        for _ in operations:
            handoff.put(_STOP_WORKER)

    def scheduler() -> int:
        clock = time.perf_counter_ns
        put = handoff.put
        acquire = slots.acquire
        wait = run.stop_event.wait
        workers = len(recorders)
        # What the workers finished, as last counted: it only grows, so while fewer than
        # `workers` requests are outstanding by this count, a worker is surely idle.
        done = 0
        barrier.wait()  # broken: stop_workers() was called
        try:
            for intended in schedule.due(model, run.start_ns):
                now = clock()
                while now < intended and not run.stop:
                    wait((intended - now) / 1e9)
                    now = clock()
                if run.stop:
                    break
                sent = acquire(False)
                if sent:
                    if schedule.issued - done >= workers:
                        done = sum(len(r) + r.rejections for r in recorders)
                        if schedule.issued - done >= workers:
                            schedule.queued += 1  # no idle worker: it waits in the queue
                    put(intended)
                schedule.handled(intended, now, sent)
        finally:
            schedule.end_ns = clock()
            stop_workers()
        return 0

    def worker(operation: Operation, recorder: Recorder) -> int:
        clock = time.perf_counter_ns
        get = handoff.get
        release = slots.release
        end = 0
        while (intended := get()) != _STOP_WORKER:
            if run.stop:
                release()
                continue
            start = clock()
            try:
                operation()
                exc = None
            except Exception as error:
                exc = error
            end = clock()
            _record_open(recorder, classify, late_ns, (intended, start, end), exc)
            release()
        return end

    bodies = [functools.partial(worker, *pair) for pair in zip(operations, recorders, strict=True)]
    _run_threads(run, [*bodies, scheduler], barrier, settings, stop_workers)
    return run.samples()


def _dropped_latencies(
    schedule: _Schedule, end_times_ns: Sequence[array.array[int]]
) -> array.array[int]:
    """The latency of each dropped request (``end_times_ns``: per worker or task loop).

    A dropped request waited for a slot, like one queued behind a stalled service (as
    wrk2 and vegeta count it): it counts from its intended start until the first
    outstanding request ended after the drop, the earliest it could have been sent (a
    lower bound: nothing is overstated), or until the drop when none did (interrupted).
    """
    if not schedule.dropped_at_ns:
        return array.array("q")
    dropped_at = _as_int64(schedule.dropped_at_ns)
    # The first end at or after each drop: every end in one sorted array, searched (a
    # sentinel after them all stands for "no end after this drop").
    ends = numpy.sort(numpy.concatenate([*map(_as_int64, end_times_ns), [_NO_DEADLINE]]))
    index = numpy.searchsorted(ends, dropped_at)
    freed = numpy.where(index < len(ends) - 1, ends[index], dropped_at)
    return array.array("q", (freed - _as_int64(schedule.dropped_intended_ns)).tobytes())


async def run_model_async(
    model: LoadModel,
    operation: AsyncOperation | None = None,
    *,
    operation_factory: Callable[[int], AsyncOperation] | None = None,
    **options: Unpack[MeasureOptions],
) -> LoadTestResult:
    """Run a model with asyncio tasks on the running loop; see :func:`run_model`.

    ``operation`` is a coroutine function (``lambda: client.predict(4001)`` with an
    ``AsyncMLClient``). In the open model each request is its own task (up to
    ``max_in_flight`` at once; ``model.workers`` is ignored and ``operation_factory(0)``
    builds the one shared operation). The open model sleeps with ``asyncio.sleep``, whose
    timer has a resolution of about 1 ms.
    """
    settings = _Settings(**options)
    count = model.workers if isinstance(model, ClosedModel) else 1
    operations = _operations(model, operation, operation_factory, count)
    if isinstance(model, ClosedModel):
        return settings.result(model, await _run_closed_tasks(model, operations, settings))
    return settings.result(model, await _run_open_tasks(model, operations[0], settings))


async def _watch(tasks: Sequence[asyncio.Task[None]], run: _Run, settings: _Settings) -> None:
    """Wait for the tasks (calling ``progress``); on any exception cancel and await them."""
    progress = settings.progress
    interval_s = settings.progress_interval_s if progress is not None else None
    pending = set(tasks)
    try:
        while pending:
            _, pending = await asyncio.wait(pending, timeout=interval_s)
            if pending and progress is not None:
                progress(run.progress())
    except BaseException:
        run.request_stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for task in tasks:
        task.result()


async def _run_closed_tasks(
    model: ClosedModel, operations: Sequence[AsyncOperation], settings: _Settings
) -> RunSamples:
    run = _Run(model, len(operations), len(operations))
    go = asyncio.Event()
    classify = settings.classify

    async def worker(operation: AsyncOperation, recorder: Recorder) -> None:
        clock = time.perf_counter_ns
        end = 0
        await go.wait()
        for start in _closed_starts(model, run):
            try:
                await operation()
                exc = None
            except Exception as error:
                exc = error
            end = clock()
            _record_closed(recorder, classify, start, end, exc)
        run.last_end_ns = max(run.last_end_ns, end)  # one thread runs every task

    pairs = zip(operations, run.recorders, strict=True)
    tasks = [asyncio.create_task(worker(*pair)) for pair in pairs]
    await asyncio.sleep(0)  # let every task reach the start line
    run.start_clock()
    go.set()
    await _watch(tasks, run, settings)
    return run.samples()


async def _run_open_tasks(
    model: OpenModel, operation: AsyncOperation, settings: _Settings
) -> RunSamples:
    run = _Run(model, 1, 1)
    schedule = run.schedule
    assert schedule is not None
    recorder = run.recorders[0]
    clock = time.perf_counter_ns
    late_ns = round(model.late_after_ms * 1e6)
    in_flight: set[asyncio.Task[None]] = set()

    async def one(intended: int) -> None:
        start = clock()
        try:
            await operation()
            exc = None
        except Exception as error:
            exc = error
        end = clock()
        # end_times_ns ascending: one thread runs every task.
        _record_open(recorder, settings.classify, late_ns, (intended, start, end), exc)
        run.last_end_ns = max(run.last_end_ns, end)

    async def scheduler() -> None:
        for intended in schedule.due(model, run.start_ns):
            now = clock()
            if now < intended:
                await asyncio.sleep((intended - now) / 1e9)
                now = clock()
            if run.stop:
                break
            sent = len(in_flight) < model.max_in_flight
            if sent:
                task = asyncio.create_task(one(intended))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            schedule.handled(intended, now, sent)
        schedule.end_ns = clock()
        if in_flight:
            await asyncio.gather(*list(in_flight))

    run.start_clock()
    try:
        await _watch([asyncio.create_task(scheduler())], run, settings)
    finally:
        for task in list(in_flight):
            task.cancel()
        if in_flight:
            await asyncio.gather(*list(in_flight), return_exceptions=True)
    return run.samples()


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in 0.3: use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


async def run_closed_async(
    operation: AsyncOperation | None = None,
    *,
    workers: int = 10,
    iterations: int | None = None,
    duration_s: float | None = None,
    **options: Unpack[AsyncRunOptions],
) -> LoadTestResult:
    """Deprecated: ``await run_model_async(ClosedModel(...), operation, ...)``."""
    _deprecated("run_closed_async(...)", "await run_model_async(ClosedModel(...), operation)")
    model = ClosedModel(workers=workers, iterations=iterations, duration_s=duration_s)
    return await run_model_async(model, operation, **options)


async def run_open_async(
    operation: AsyncOperation | None = None,
    *,
    rate_per_s: float,
    duration_s: float,
    max_in_flight: int = 1000,
    late_after_ms: float = 10.0,
    max_scheduler_lag_ms: float = 5.0,
    **options: Unpack[AsyncRunOptions],
) -> LoadTestResult:
    """Deprecated: ``await run_model_async(OpenModel(...), operation, ...)``."""
    _deprecated("run_open_async(...)", "await run_model_async(OpenModel(...), operation)")
    model = OpenModel(
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        workers=1,
        max_in_flight=max_in_flight,
        late_after_ms=late_after_ms,
        max_scheduler_lag_ms=max_scheduler_lag_ms,
    )
    return await run_model_async(model, operation, **options)
