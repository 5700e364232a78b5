"""Count the instructions CPython executes for one operation, under valgrind's cachegrind.

Wall-clock time on a shared 2-core machine cannot see a 5 % change; the number of machine
instructions the interpreter executes for an operation can, and it is the same in every
run. ``bench_instructions.py`` turns these counts into asv ``track_`` benchmarks.

Two halves live here:

* the **driver**, :func:`count_instructions`, runs outside valgrind (in asv's
  ``setup_cache`` or a test). It starts one valgrind process per core, each measuring its
  share of the operations, and turns the counts those processes leave behind into
  instructions per operation.
* the **harness**, :func:`main`, runs *under* valgrind
  (``valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=DIR/cg.%p``). It
  imports everything once, then for each operation ``os.fork()``s a worker that builds
  the operation (its ``setup``), and measures it.

How a worker measures (cachegrind counts the instructions of each process from the
valgrind start, and writes them to ``cg.<pid>`` when that process exits; a forked child
inherits its parent's count so far):

1. It runs the operation in three segments of ``w`` (warm-up), ``n`` and ``2n`` calls
   (``for _ in repeat(None, k): body()``), and right before each segment and after the
   last one it forks a *marker* child that exits at once (``os._exit``). A marker's count
   is the worker's count at that instant plus a constant (the child's return from
   ``fork`` and its exit).
2. The counts of the markers ``m0 < m1 < m2 < m3`` give the segments' costs ``m1 - m0``,
   ``m2 - m1``, ``m3 - m2``. Each segment also pays a fixed overhead (the parent's side of
   the marker fork, ``waitpid``, the loop set-up); the first segment absorbs what only
   the first calls pay (CPython 3.11 specializes bytecode, caches fill). The count
   per operation is ``((m3 - m2) - (m2 - m1)) / n``: the fixed overheads, interpreter
   start-up, imports and setup all cancel.

What makes the counts repeatable (measured: two runs of the whole table agree to the
instruction): a fixed ``PYTHONHASHSEED``, a small fixed environment, no address-space
randomization (``setarch -R``) and no changing directory on ``sys.path`` (``-P``), since
CPython's method cache and some hashes follow object addresses; the garbage collector
disabled; every operation measured in a fresh fork, and the parent forking the same way
for every operation of its share of the table whether it was asked for or not (so a
subset gives the counts of a full run); no threads and no I/O in a measured body; breaker
clocks that cannot reach a state change during a run. What the per-operation count
includes: one iteration of the loop and one Python call of the body; the floor
``floor_empty_call`` is exactly that, so subtract it to get the operation alone.

Written here rather than taken from a library: pyperf and asv measure time; the
valgrind-based tools (CodSpeed's pytest plugin, iai-callgrind for Rust) bring their own
runner or a C extension to start and stop counting, while fork markers need neither.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from .common import (
    SEED,
    Failure,
    async_noop,
    fail,
    ml_handler,
    ml_handler_database,
    noop,
    prediction_requests,
    require,
)

#: The meaning of a count: bump it when a change to the method (the loop, the markers,
#: the environment) shifts every count, so asv starts new graphs instead of drawing a step.
METHOD_VERSION = "1"

HASH_SEED = "0"
VALGRIND_HINT = (
    "instruction counts need valgrind, which is not installed "
    "(Debian/Ubuntu: apt-get install valgrind)"
)

Body = Callable[[], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One measured operation.

    Attributes:
        name: the benchmark's name (``Instructions.track_<name>``); names are history.
        iterations: ``n``: the measured segments call the body ``n`` and ``2n`` times
            (see the module notes); chosen so that ``n`` calls run ~2.5 million
            instructions.
        warmup: calls before the first measured segment (at least ``n``): enough for
            CPython to specialize the bytecode of every function the body runs (a code
            object is quickened on its 8th call; an operation that loops inside needs
            fewer).
        build: the setup: returns the body, a zero-argument callable doing one operation.
            Raises NotImplementedError when the commit lacks the API.
        doc: what one call of the body does.
    """

    name: str
    iterations: int
    warmup: int
    build: Callable[[], Body]
    doc: str


OPERATIONS: dict[str, Operation] = {}


def operation(
    name: str, iterations: int, *, warmup: int = 20
) -> Callable[[Callable[[], Body]], Callable[[], Body]]:
    """Register the decorated setup function as the operation ``name``."""

    def register(build: Callable[[], Body]) -> Callable[[], Body]:
        if name in OPERATIONS:
            raise ValueError(f"operation {name!r} registered twice")
        OPERATIONS[name] = Operation(
            name=name,
            iterations=iterations,
            warmup=max(warmup, iterations),
            build=build,
            doc=(build.__doc__ or "").strip(),
        )
        return build

    return register


# --------------------------------------------------------------------------- operations
# Each mirrors a time_ benchmark of bench_breaker.py / bench_client.py / bench_load.py.
# Breakers that a run could move to another state get a clock that cannot (a failure
# threshold of 10**9, an open timeout of an hour): a count must not depend on how long
# valgrind took.

_HOUR_S = 3600.0


def _breaker(**config: Any) -> Any:
    BreakerConfig, CircuitBreaker = require("pganalytics_core", "BreakerConfig", "CircuitBreaker")
    return CircuitBreaker(BreakerConfig(**config))


def _open_breaker() -> Any:
    breaker = _breaker(open_timeout_s=_HOUR_S)
    breaker.force_open()
    return breaker


def _open_error() -> type[BaseException]:
    error: type[BaseException] = require("pganalytics_core", "CircuitOpenError")
    return error


def _drive(make: Callable[[], Any]) -> Body:
    """A body that runs a coroutine that never suspends, without an event loop."""

    def body() -> None:
        try:
            make().send(None)
        except StopIteration:
            pass
        else:  # pragma: no cover - the coroutine suspended: the count would be wrong
            raise RuntimeError("the coroutine suspended; drive it with an event loop")

    return body


@operation("breaker_allow_request", 4500)
def _allow_request() -> Body:
    """``allow_request()`` on a CLOSED breaker."""
    return _breaker().allow_request  # type: ignore[no-any-return]


@operation("breaker_record_success", 3000)
def _record_success() -> Body:
    """``record_success()`` on a CLOSED breaker."""
    return _breaker().record_success  # type: ignore[no-any-return]


@operation("breaker_record_failure", 500)
def _record_failure() -> Body:
    """``record_failure()`` on a CLOSED breaker that never trips."""
    return _breaker(failure_threshold=10**9).record_failure  # type: ignore[no-any-return]


@operation("breaker_state", 2000)
def _state() -> Body:
    """The ``state`` property of a CLOSED breaker."""
    breaker = _breaker()
    return lambda: breaker.state


@operation("breaker_is_open", 2000)
def _is_open() -> Body:
    """The ``is_open`` property of a CLOSED breaker."""
    breaker = _breaker()
    return lambda: breaker.is_open


@operation("breaker_metrics", 60)
def _metrics() -> Body:
    """``metrics()`` of a CLOSED breaker."""
    return _breaker().metrics  # type: ignore[no-any-return]


@operation("breaker_reset", 500)
def _reset() -> Body:
    """``reset()`` of a CLOSED breaker."""
    return _breaker().reset  # type: ignore[no-any-return]


@operation("breaker_call_success", 950)
def _call_success() -> Body:
    """``call(noop)`` through a CLOSED breaker (default config)."""
    call = _breaker().call

    def body() -> None:
        call(noop)

    return body


def _failing_call(breaker: Any) -> Body:
    call, reset, open_error = breaker.call, breaker.reset, _open_error()

    def body() -> None:
        try:
            call(fail)
        except Failure:
            pass
        except open_error:
            reset()  # window mode: 100 % failures trip the rate rule once per window

    return body


@operation("breaker_call_failure", 200)
def _call_failure() -> Body:
    """``call(fail)`` through a CLOSED breaker that never trips; the caller catches."""
    return _failing_call(_breaker(failure_threshold=10**9))


@operation("breaker_call_success_window", 350)
def _call_success_window() -> Body:
    """``call(noop)`` with the failure-rate rule on (100-call window)."""
    call = _breaker(failure_rate_threshold=0.99, window_size=100).call

    def body() -> None:
        call(noop)

    return body


@operation("breaker_call_failure_window", 150)
def _call_failure_window() -> Body:
    """``call(fail)`` with the failure-rate rule on; a rejection and a reset per window."""
    return _failing_call(
        _breaker(failure_threshold=10**9, failure_rate_threshold=0.99, window_size=100)
    )


@operation("breaker_with_block", 150)
def _with_block() -> Body:
    """``with breaker: pass`` on a CLOSED breaker."""
    breaker = _breaker()

    def body() -> None:
        with breaker:
            pass

    return body


@operation("breaker_guard_block", 300)
def _guard_block() -> Body:
    """``with breaker.guard(): pass`` on a CLOSED breaker."""
    breaker = _breaker()
    if not hasattr(breaker, "guard"):
        raise NotImplementedError("CircuitBreaker.guard is not in this commit")

    def body() -> None:
        with breaker.guard():
            pass

    return body


@operation("breaker_decorated_call", 600)
def _decorated_call() -> Body:
    """Calling a function decorated with ``@breaker`` (CLOSED)."""
    breaker = _breaker()
    if not callable(breaker):
        raise NotImplementedError("CircuitBreaker is not a decorator in this commit")
    return breaker(noop)  # type: ignore[no-any-return]


@operation("breaker_call_async", 400)
def _call_async() -> Body:
    """``await breaker.call_async(async_noop)`` (CLOSED), driven without an event loop."""
    call_async = _breaker().call_async
    return _drive(lambda: call_async(async_noop))


@operation("breaker_async_with", 100)
def _async_with() -> Body:
    """``async with breaker: pass`` (CLOSED), driven without an event loop."""
    breaker = _breaker()
    if not hasattr(breaker, "__aenter__"):
        raise NotImplementedError("CircuitBreaker has no async with in this commit")

    async def gated() -> None:
        async with breaker:
            pass

    return _drive(gated)


@operation("breaker_call_rejected", 350)
def _call_rejected() -> Body:
    """``call(noop)`` rejected by an OPEN breaker; the caller catches CircuitOpenError."""
    call, open_error = _open_breaker().call, _open_error()

    def body() -> None:
        try:
            call(noop)
        except open_error:
            pass

    return body


@operation("breaker_allow_request_open", 1000)
def _allow_request_open() -> Body:
    """``allow_request()`` on an OPEN breaker (answers False)."""
    return _open_breaker().allow_request  # type: ignore[no-any-return]


@operation("breaker_state_open", 1500)
def _state_open() -> Body:
    """The ``state`` property of an OPEN breaker."""
    breaker = _open_breaker()
    return lambda: breaker.state


@operation("breaker_allow_record_state", 950)
def _allow_record_state() -> Body:
    """What a caller does per request with the bare protocol: allow, record, state."""
    breaker = _breaker()

    def body() -> None:
        if breaker.allow_request():
            breaker.record_success()
        breaker.state

    return body


class _ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@operation("breaker_state_cycle", 25)
def _state_cycle() -> Body:
    """A CLOSED -> OPEN -> HALF_OPEN -> CLOSED cycle driven by a manual clock."""
    BreakerConfig, CircuitBreaker = require("pganalytics_core", "BreakerConfig", "CircuitBreaker")
    clock = _ManualClock()
    breaker = CircuitBreaker(
        BreakerConfig(failure_threshold=5, success_threshold=3, open_timeout_s=1.0), clock=clock
    )

    def body() -> None:
        for _ in range(5):
            breaker.allow_request()
            breaker.record_failure()
        clock.now += 1.0
        for _ in range(3):
            breaker.allow_request()
            breaker.record_success()

    return body


@operation("breaker_metrics_with_history", 55)
def _metrics_with_history() -> Body:
    """``metrics()`` of a breaker with a full 100-call window and many transitions."""
    BreakerConfig, CircuitBreaker = require("pganalytics_core", "BreakerConfig", "CircuitBreaker")
    clock = _ManualClock()
    breaker = CircuitBreaker(
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
        if breaker.allow_request():
            if i % 7 == 0:
                breaker.record_failure()
            else:
                breaker.record_success()
        clock.now += 0.01
    return breaker.metrics  # type: ignore[no-any-return]


# Floors: what the numbers above are made of.


@operation("floor_empty_call", 6500)
def _empty_call() -> Body:
    """An empty function call: one loop iteration and one Python call (in every count)."""
    return noop


@operation("floor_call_under_lock", 900)
def _call_under_lock() -> Body:
    """An empty call under one ``threading.Lock``: the cheapest possible guard."""
    lock = threading.Lock()

    def body() -> None:
        with lock:
            noop()

    return body


@operation("floor_raise_and_catch", 700)
def _raise_and_catch() -> Body:
    """Raising an exception and catching it: the floor of a failing call."""

    def body() -> None:
        try:
            fail()
        except Failure:
            pass

    return body


@operation("floor_await_bare", 800)
def _await_bare() -> Body:
    """Awaiting ``async_noop()`` without a breaker, driven without an event loop."""
    return _drive(async_noop)


# The client on httpx.MockTransport: our code + httpx, no network.

_JOB_ID = "training-20261126-211424-a60149a4"


def _client(handler: Callable[[Any], Any] = ml_handler, **options: Any) -> Any:
    httpx = require("httpx")
    MLClient = require("pganalytics_core.client", "MLClient")
    RetryPolicy = require("pganalytics_core.retry", "RetryPolicy")
    return MLClient(
        "http://ml.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_retries=0),
        **options,
    )


@operation("floor_raw_httpx_post_json", 3)
def _raw_post_json() -> Body:
    """Bare httpx: POST a prediction request and parse the JSON answer (same transport)."""
    httpx = require("httpx")
    http = httpx.Client(base_url="http://ml.test", transport=httpx.MockTransport(ml_handler))
    payload = {"query_hash": 4242, "parameters": {}, "scenario": "current"}

    def body() -> None:
        r = http.post("/api/predict/query-execution", json=payload)
        r.raise_for_status()
        r.json()

    return body


@operation("floor_raw_httpx_get_health", 4)
def _raw_get_health() -> Body:
    """Bare httpx: GET /health and parse the JSON answer (same transport)."""
    httpx = require("httpx")
    http = httpx.Client(base_url="http://ml.test", transport=httpx.MockTransport(ml_handler))

    def body() -> None:
        r = http.get("/health")
        r.raise_for_status()
        r.json()

    return body


@operation("client_health", 5)
def _health() -> Body:
    """``MLClient.health()``."""
    return _client().health  # type: ignore[no-any-return]


@operation("client_predict", 4)
def _predict() -> Body:
    """``MLClient.predict(4242)`` (no cache)."""
    predict = _client().predict

    def body() -> None:
        predict(4242)

    return body


@operation("client_predict_cached", 70)
def _predict_cached() -> Body:
    """A cache hit: ``predict`` of a prediction the service made from its database."""
    PredictionCache = require("pganalytics_core.cache", "PredictionCache")
    predict = _client(ml_handler_database, cache=PredictionCache()).predict
    predict(4242, parameters={"rows": 10})

    def body() -> None:
        predict(4242, parameters={"rows": 10})

    return body


@operation("client_predict_many_100", 1, warmup=2)
def _predict_many() -> Body:
    """``predict_many`` of 100 requests (60 distinct), no cache, in the calling thread.

    ``max_concurrency=1``: the batch logic without the thread pool, whose thread
    scheduling (and so its instruction count) changes from run to run.
    """
    PredictionRequest = require("pganalytics_core.models", "PredictionRequest")
    predict_many = _client().predict_many
    requests = [PredictionRequest.create(h, scenario=s) for h, s in prediction_requests(100, 60)]

    def body() -> None:
        predict_many(requests, max_concurrency=1)

    return body


@operation("client_predict_server_error", 5)
def _predict_server_error() -> Body:
    """``predict`` answered by a 500: the error path (the breaker never trips)."""
    ServerError = require("pganalytics_core.errors", "ServerError")
    httpx = require("httpx")

    def failing(request: Any) -> Any:
        return httpx.Response(
            500, headers={"content-type": "application/json"}, content=b'{"error":"x"}'
        )

    predict = _client(failing, breaker=_breaker(failure_threshold=10**9)).predict

    def body() -> None:
        try:
            predict(4242)
        except ServerError:
            pass

    return body


@operation("client_predict_rejected", 100)
def _predict_rejected() -> Body:
    """``predict`` rejected by the client's OPEN breaker: no request is made."""
    predict, open_error = _client(breaker=_open_breaker()).predict, _open_error()

    def body() -> None:
        try:
            predict(4242)
        except open_error:
            pass

    return body


@operation("client_train", 4)
def _train() -> Body:
    """``MLClient.train(database_name=...)``."""
    train = _client().train

    def body() -> None:
        train(database_name="pganalytics")

    return body


@operation("client_training_status", 4)
def _training_status() -> Body:
    """``MLClient.training_status(job_id)`` of a completed job."""
    status = _client().training_status

    def body() -> None:
        status(_JOB_ID)

    return body


@operation("client_wait_for_training", 4)
def _wait_for_training() -> Body:
    """``MLClient.wait_for_training(job_id)`` of a job already completed (one poll)."""
    wait = _client().wait_for_training

    def body() -> None:
        wait(_JOB_ID)

    return body


@operation("client_validate", 4)
def _validate() -> Body:
    """``MLClient.validate(...)`` of one prediction."""
    validate = _client().validate

    def body() -> None:
        validate(
            prediction_id="p-1",
            query_hash=4242,
            predicted_execution_time_ms=12.5,
            actual_execution_time_ms=13.0,
        )

    return body


@operation("client_detect_patterns", 4)
def _detect_patterns() -> Body:
    """``MLClient.detect_patterns(database_name=..., lookback_days=7)``."""
    detect = _client().detect_patterns

    def body() -> None:
        detect(database_name="pganalytics", lookback_days=7)

    return body


@operation("client_async_predict", 4)
def _async_predict() -> Body:
    """``await AsyncMLClient.predict(4242)``, one ``run_until_complete`` per call."""
    httpx = require("httpx")
    AsyncMLClient = require("pganalytics_core.client", "AsyncMLClient")
    RetryPolicy = require("pganalytics_core.retry", "RetryPolicy")
    client = AsyncMLClient(
        "http://ml.test",
        transport=httpx.MockTransport(ml_handler),
        retry=RetryPolicy(max_retries=0),
    )
    loop = asyncio.new_event_loop()
    run, predict = loop.run_until_complete, client.predict

    def body() -> None:
        run(predict(4242))

    return body


# The load runner's machinery.


@operation("load_percentiles_10000", 1, warmup=2)
def _percentiles() -> Body:
    """``summarize`` (p50/p95/p99/p99.9, min/avg/max) of 10,000 log-normal samples."""
    summarize = require("pganalytics_core.load.stats", "summarize")
    rng = random.Random(SEED)
    samples = array("q", (int(rng.lognormvariate(13.8, 0.6)) for _ in range(10_000)))

    def body() -> None:
        summarize(samples)

    return body


@operation("load_record_success", 1500)
def _record_sample() -> Body:
    """``Recorder.record_success(latency_ns)``: what a load worker pays per request."""
    Recorder = require("pganalytics_core.load.recorder", "Recorder")
    record = Recorder().record_success

    def body() -> None:
        record(1_000_000)

    return body


# --------------------------------------------------------------------------- the harness
# Runs under valgrind; see the module docstring.


def _summary(out_dir: Path, pid: int) -> int:
    """The instruction count cachegrind wrote for ``pid`` (its ``summary:`` line)."""
    path = out_dir / f"cg.{pid}"
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        tail = f.read()
    path.unlink()
    for line in reversed(tail.splitlines()):
        if line.startswith(b"summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary line in {path}")


def _marked_segments(body: Body, warmup: int, n: int) -> list[int]:
    """Run the segments (``warmup``, ``n`` and ``2n`` calls) between marker forks; return
    the markers' pids in order.

    Every segment runs the same bytecode (only the loop count differs), so the fixed
    cost of a segment is the same in each and cancels in the difference.
    """
    fork, exit_, waitpid = os.fork, os._exit, os.waitpid
    sizes = [warmup, n, 2 * n, 0]
    pids = [0] * len(sizes)
    for k in range(len(sizes)):
        pid = fork()
        if pid == 0:
            exit_(0)
        waitpid(pid, 0)
        pids[k] = pid
        for _ in repeat(None, sizes[k]):
            body()
    return pids


def _worker(op: Operation, out_dir: Path, selection: Path, results: Path) -> None:
    """In the forked worker: measure ``op`` if it was asked for, append the result."""
    if op.name not in selection.read_text().split():
        return
    result: dict[str, object]
    try:
        try:
            body = op.build()
        except NotImplementedError as exc:
            result = {"name": op.name, "unavailable": str(exc) or "not in this commit"}
        else:
            pids = _marked_segments(body, op.warmup, op.iterations)
            marks = [_summary(out_dir, pid) for pid in pids]
            result = {"name": op.name, "iterations": op.iterations, "marks": marks}
    except BaseException:
        result = {"name": op.name, "error": traceback.format_exc(limit=8)}
    with results.open("a") as f:
        f.write(json.dumps(result) + "\n")


#: Imported once by the parent, so that no worker pays for (or counts) an import.
_PRELOAD = (
    "httpx",
    "pganalytics_core",
    "pganalytics_core.cache",
    "pganalytics_core.client",
    "pganalytics_core.errors",
    "pganalytics_core.models",
    "pganalytics_core.retry",
    "pganalytics_core.load.recorder",
    "pganalytics_core.load.stats",
)


def _preload() -> None:
    for module in _PRELOAD:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # an older commit: the operations needing it report n/a


def _harness(group: int, groups: int, out_dir: Path, selection: Path, results: Path) -> None:
    """Fork a worker for every operation of the group, one after the other.

    The parent does exactly the same for every operation, measured or not (the worker
    reads the selection), so an operation's count does not depend on which others were
    asked for. It can depend slightly on the parent's heap when forking, which start-up
    and the operation's place in the table decide: so operations are only ever appended
    to the table.
    """
    _preload()
    gc.collect()
    gc.disable()
    for op in list(OPERATIONS.values())[group::groups]:
        pid = os.fork()
        if pid == 0:
            try:
                _worker(op, out_dir, selection, results)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        os.unlink(f"{out_dir}/cg.{pid}")


def _load_extra(path: str) -> None:
    """Import a file of extra ``@operation``s (tests use it)."""
    spec = importlib.util.spec_from_file_location("_instruction_extra_operations", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def main(argv: Sequence[str] | None = None) -> int:
    """The harness entry point (run under valgrind by :func:`count_instructions`)."""
    parser = argparse.ArgumentParser(description="the instruction-count harness")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--selection", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--group", type=int, required=True)
    parser.add_argument("--groups", type=int, required=True)
    parser.add_argument("--extra", action="append", default=[])
    args = parser.parse_args(argv)
    for path in args.extra:
        _load_extra(path)
    _harness(args.group, args.groups, args.out_dir, args.selection, args.results)
    return 0


# --------------------------------------------------------------------------- the driver


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """What one measurement found.

    Attributes:
        instructions: instructions per operation, by operation name.
        unavailable: operations whose API is missing in the measured commit, and why.
        failed: operations that raised (or whose worker died), with the error.
        seconds: the wall time of the whole measurement.
    """

    instructions: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def valgrind_path() -> str | None:
    """The valgrind executable on PATH, or None."""
    return shutil.which("valgrind")


def default_jobs() -> int:
    """One valgrind process per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def _bootstrap_code() -> str:
    """``python -c`` code importing this module as asv does (only the benchmark package
    is added to the import system, so the installed pganalytics_core is the one measured,
    not the checkout's sources) and running :func:`main`."""
    package_dir = Path(__file__).resolve().parent
    package = __name__.rpartition(".")[0] or package_dir.name
    return (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location({package!r}, "
        f"{str(package_dir / '__init__.py')!r}, "
        f"submodule_search_locations=[{str(package_dir)!r}])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        f"sys.modules[{package!r}] = module\n"
        "spec.loader.exec_module(module)\n"
        f"from {package}.instructions_harness import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )


def _no_aslr() -> list[str]:
    """Run without address-space randomization, when ``setarch`` can: CPython's method
    cache and some hashes (context variables) follow object addresses."""
    setarch = shutil.which("setarch")
    return [setarch, os.uname().machine, "--addr-no-randomize"] if setarch else []


def _environment() -> dict[str, str]:
    """A small fixed environment: the counts must not depend on the caller's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": HASH_SEED,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def count_instructions(
    names: Iterable[str] | None = None,
    *,
    jobs: int | None = None,
    python: str = sys.executable,
    extra: Sequence[Path] = (),
    timeout_s: float = 600.0,
) -> Counts:
    """Measure instructions per operation under valgrind.

    Args:
        names: the operations (default: all of :data:`OPERATIONS`). A subset gives the
            same counts as the whole table.
        jobs: valgrind processes run side by side (default: one per core); operation
            ``i`` of the table is measured by process ``i % jobs``. Keep it fixed on a
            machine: counts may move by ~0.1 % with it.
        python: the interpreter to run (the asv environment's, by default this one).
        extra: files of extra ``@operation``s to import in the harness (for tests).
        timeout_s: the longest the whole measurement may take, in seconds.

    Returns:
        The counts; operations missing in this commit are in ``unavailable``.

    Raises:
        NotImplementedError: valgrind is not installed (:data:`VALGRIND_HINT`).
        RuntimeError: a valgrind process failed or timed out (its output's tail is in
            the message).
    """
    valgrind = valgrind_path()
    if valgrind is None:
        raise NotImplementedError(VALGRIND_HINT)
    wanted = list(OPERATIONS) if names is None else list(names)
    groups = jobs or default_jobs()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pga-instructions-") as tmp:
        out_dir = Path(tmp)
        selection = out_dir / "selection.txt"
        selection.write_text("\n".join(wanted) + "\n")
        procs = [
            _start(valgrind, python, out_dir, selection, group, groups, extra)
            for group in range(groups)
        ]
        try:
            for proc, log in procs:
                remaining = started + timeout_s - time.perf_counter()
                code = proc.wait(timeout=max(0.0, remaining))
                if code != 0:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"valgrind harness exited with {code}:\n{tail}")
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"instruction counts took longer than {timeout_s} s") from None
        finally:
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        counts = Counts()
        for path in sorted(out_dir.glob("results.*.jsonl")):
            for line in path.read_text().splitlines():
                _collect(json.loads(line), counts)
    for name in wanted:
        if name not in counts.instructions and name not in counts.unavailable:
            counts.failed.setdefault(name, "no result: unknown operation, or its worker died")
    return Counts(
        instructions=counts.instructions,
        unavailable=counts.unavailable,
        failed=counts.failed,
        seconds=time.perf_counter() - started,
    )


def _start(
    valgrind: str,
    python: str,
    out_dir: Path,
    selection: Path,
    group: int,
    groups: int,
    extra: Sequence[Path],
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the valgrind process of one group; its output goes to a log file."""
    log = out_dir / f"valgrind.{group}.log"
    cmd = [
        *_no_aslr(),
        valgrind,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--branch-sim=no",
        f"--cachegrind-out-file={out_dir}/cg.%p",
        python,
        "-s",  # no user site-packages
        "-P",  # no working directory on sys.path: its files change while we measure
        "-c",
        _bootstrap_code(),
        *("--out-dir", str(out_dir), "--selection", str(selection)),
        *("--results", str(out_dir / f"results.{group}.jsonl")),
        *("--group", str(group), "--groups", str(groups)),
        *(arg for path in extra for arg in ("--extra", str(path))),
    ]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=out_dir,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _collect(result: dict[str, Any], counts: Counts) -> None:
    name = result["name"]
    if "unavailable" in result:
        counts.unavailable[name] = result["unavailable"]
    elif "error" in result:
        counts.failed[name] = result["error"]
    else:
        _, m1, m2, m3 = result["marks"]
        per_operation = ((m3 - m2) - (m2 - m1)) / result["iterations"]
        counts.instructions[name] = round(per_operation, 1)
