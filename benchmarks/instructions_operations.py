"""The operations whose instructions ``instructions_harness.py`` counts, one per
``Instructions.track_<name>`` benchmark of ``bench_instructions.py``.

Each is a setup function registered with ``@operation(name, n)``: it builds what the
operation needs, raising NotImplementedError (through ``require``) when the measured
commit lacks an API, and returns the *body*, a zero-argument callable doing one
operation. Each mirrors a ``time_`` benchmark of ``bench_breaker.py``,
``bench_client.py`` or ``bench_load.py``; ``n`` is chosen so that ``n`` calls run about
2.5 million instructions.

Names are history: never rename an operation, and append new ones at the end (a count
can depend slightly on the operation's place in the table: see the harness).
"""

from __future__ import annotations

import asyncio
import random
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass
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
        mirrors: the wall-clock benchmarks timing the same work (``module.Class.time_x``,
            parameters left out): a change flagged there is explained by this
            operation's call-count profile (``benchtools/callprofile.py``).
    """

    name: str
    iterations: int
    warmup: int
    build: Callable[[], Body]
    doc: str
    mirrors: tuple[str, ...] = ()


OPERATIONS: dict[str, Operation] = {}


def operation(
    name: str, iterations: int, *, warmup: int = 20, mirrors: tuple[str, ...] = ()
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
            mirrors=mirrors,
        )
        return build

    return register


# --------------------------------------------------------------------------- the breaker
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


@operation(
    "breaker_allow_request",
    4500,
    mirrors=("bench_breaker.BreakerOps.time_allow_request",),
)
def _allow_request() -> Body:
    """``allow_request()`` on a CLOSED breaker."""
    return _breaker().allow_request  # type: ignore[no-any-return]


@operation(
    "breaker_record_success",
    3000,
    mirrors=(
        "bench_breaker.BreakerOps.time_record_success",
        "bench_breaker.EdgeCases.time_many_successes",
    ),
)
def _record_success() -> Body:
    """``record_success()`` on a CLOSED breaker."""
    return _breaker().record_success  # type: ignore[no-any-return]


@operation(
    "breaker_record_failure",
    500,
    mirrors=(
        "bench_breaker.BreakerOps.time_record_failure",
        "bench_breaker.EdgeCases.time_many_failures",
    ),
)
def _record_failure() -> Body:
    """``record_failure()`` on a CLOSED breaker that never trips."""
    return _breaker(failure_threshold=10**9).record_failure  # type: ignore[no-any-return]


@operation(
    "breaker_state",
    2000,
    mirrors=("bench_breaker.BreakerOps.time_state",),
)
def _state() -> Body:
    """The ``state`` property of a CLOSED breaker."""
    breaker = _breaker()
    return lambda: breaker.state


@operation(
    "breaker_is_open",
    2000,
    mirrors=("bench_breaker.BreakerOps.time_is_open",),
)
def _is_open() -> Body:
    """The ``is_open`` property of a CLOSED breaker."""
    breaker = _breaker()
    return lambda: breaker.is_open


@operation(
    "breaker_metrics",
    60,
    mirrors=("bench_breaker.BreakerOps.time_metrics",),
)
def _metrics() -> Body:
    """``metrics()`` of a CLOSED breaker."""
    return _breaker().metrics  # type: ignore[no-any-return]


@operation(
    "breaker_reset",
    500,
    mirrors=("bench_breaker.BreakerOps.time_reset", "bench_breaker.EdgeCases.time_many_resets"),
)
def _reset() -> Body:
    """``reset()`` of a CLOSED breaker."""
    return _breaker().reset  # type: ignore[no-any-return]


@operation(
    "breaker_call_success",
    950,
    mirrors=(
        "bench_breaker.GuardedCall.time_call_success",
        "bench_breaker.VersusLockFloor.time_call_success",
    ),
)
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


@operation(
    "breaker_call_failure",
    200,
    mirrors=(
        "bench_breaker.GuardedCall.time_call_failure",
        "bench_breaker.VersusLockFloor.time_call_failure",
    ),
)
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


@operation(
    "breaker_with_block",
    150,
    mirrors=(
        "bench_breaker.GuardedCall.time_with_block",
        "bench_breaker.VersusLockFloor.time_with_block",
    ),
)
def _with_block() -> Body:
    """``with breaker: pass`` on a CLOSED breaker."""
    breaker = _breaker()

    def body() -> None:
        with breaker:
            pass

    return body


@operation(
    "breaker_guard_block",
    300,
    mirrors=("bench_breaker.VersusLockFloor.time_guard_block",),
)
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


@operation(
    "breaker_call_async",
    400,
    mirrors=("bench_breaker.AsyncGuardedCall.time_call_async_x1000",),
)
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


@operation(
    "breaker_call_rejected",
    350,
    mirrors=(
        "bench_breaker.OpenCircuit.time_call_rejected",
        "bench_breaker.VersusLockFloor.time_rejection_open",
    ),
)
def _call_rejected() -> Body:
    """``call(noop)`` rejected by an OPEN breaker; the caller catches CircuitOpenError."""
    call, open_error = _open_breaker().call, _open_error()

    def body() -> None:
        try:
            call(noop)
        except open_error:
            pass

    return body


@operation(
    "breaker_allow_request_open",
    1000,
    mirrors=("bench_breaker.OpenCircuit.time_allow_request_open",),
)
def _allow_request_open() -> Body:
    """``allow_request()`` on an OPEN breaker (answers False)."""
    return _open_breaker().allow_request  # type: ignore[no-any-return]


@operation(
    "breaker_state_open",
    1500,
    mirrors=("bench_breaker.OpenCircuit.time_state_open",),
)
def _state_open() -> Body:
    """The ``state`` property of an OPEN breaker."""
    breaker = _open_breaker()
    return lambda: breaker.state


@operation(
    "breaker_allow_record_state",
    950,
    mirrors=("bench_breaker.TypicalSequence.time_allow_record_state",),
)
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


@operation(
    "breaker_state_cycle",
    25,
    mirrors=("bench_breaker.StateCycle.time_open_half_open_closed_cycle",),
)
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


@operation(
    "breaker_metrics_with_history",
    55,
    mirrors=("bench_breaker.MetricsWithHistory.time_metrics_with_history",),
)
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


@operation(
    "floor_raw_httpx_post_json",
    3,
    mirrors=("bench_client.RawHttpxMock.time_raw_post_json",),
)
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


@operation(
    "floor_raw_httpx_get_health",
    4,
    mirrors=("bench_client.RawHttpxMock.time_raw_get_health",),
)
def _raw_get_health() -> Body:
    """Bare httpx: GET /health and parse the JSON answer (same transport)."""
    httpx = require("httpx")
    http = httpx.Client(base_url="http://ml.test", transport=httpx.MockTransport(ml_handler))

    def body() -> None:
        r = http.get("/health")
        r.raise_for_status()
        r.json()

    return body


@operation(
    "client_health",
    5,
    mirrors=("bench_client.ClientOps.time_health",),
)
def _health() -> Body:
    """``MLClient.health()``."""
    return _client().health  # type: ignore[no-any-return]


@operation(
    "client_predict",
    4,
    mirrors=("bench_client.ClientOps.time_predict",),
)
def _predict() -> Body:
    """``MLClient.predict(4242)`` (no cache)."""
    predict = _client().predict

    def body() -> None:
        predict(4242)

    return body


@operation(
    "client_predict_cached",
    70,
    mirrors=("bench_client.CachedPrediction.time_predict_cached",),
)
def _predict_cached() -> Body:
    """A cache hit: ``predict`` of a prediction the service made from its database."""
    PredictionCache = require("pganalytics_core.cache", "PredictionCache")
    predict = _client(ml_handler_database, cache=PredictionCache()).predict
    predict(4242, parameters={"rows": 10})

    def body() -> None:
        predict(4242, parameters={"rows": 10})

    return body


@operation(
    "client_predict_many_100",
    1,
    warmup=2,
    mirrors=("bench_client.PredictMany.time_predict_many_100",),
)
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


@operation(
    "client_train",
    4,
    mirrors=("bench_client.ClientOps.time_train",),
)
def _train() -> Body:
    """``MLClient.train(database_name=...)``."""
    train = _client().train

    def body() -> None:
        train(database_name="pganalytics")

    return body


@operation(
    "client_training_status",
    4,
    mirrors=("bench_client.ClientOps.time_training_status",),
)
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


@operation(
    "client_validate",
    4,
    mirrors=("bench_client.ClientOps.time_validate",),
)
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


@operation(
    "client_detect_patterns",
    4,
    mirrors=("bench_client.ClientOps.time_detect_patterns",),
)
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


# The breaker's ways in added later (explicit permits; the rejections of the raising ways).


def _acquire(breaker: Any) -> Any:
    acquire = getattr(breaker, "acquire", None)
    if acquire is None:
        raise NotImplementedError("CircuitBreaker.acquire() is not in this commit")
    return acquire


@operation(
    "breaker_acquire_success",
    2500,
    mirrors=("bench_breaker.Permits.time_acquire_success",),
)
def _acquire_success() -> Body:
    """``permit = acquire(); permit.success()`` on a CLOSED breaker."""
    acquire = _acquire(_breaker())

    def body() -> None:
        acquire().success()

    return body


@operation(
    "breaker_acquire_rejected",
    1000,
    mirrors=("bench_breaker.Permits.time_acquire_rejected",),
)
def _acquire_rejected() -> Body:
    """``acquire()`` on an OPEN breaker (answers None)."""
    return _acquire(_open_breaker())  # type: ignore[no-any-return]


@operation(
    "breaker_guard_rejected",
    350,
    mirrors=("bench_breaker.RejectedWays.time_guard_rejected",),
)
def _guard_rejected() -> Body:
    """``with breaker.guard():`` rejected by an OPEN breaker; the caller catches it."""
    breaker = _open_breaker()
    if not hasattr(breaker, "guard"):
        raise NotImplementedError("CircuitBreaker.guard is not in this commit")
    guard, open_error = breaker.guard, _open_error()

    def body() -> None:
        try:
            with guard():
                pass
        except open_error:
            pass

    return body


@operation(
    "breaker_with_rejected",
    350,
    mirrors=("bench_breaker.RejectedWays.time_with_rejected",),
)
def _with_rejected() -> Body:
    """``with breaker:`` rejected by an OPEN breaker; the caller catches it."""
    breaker, open_error = _open_breaker(), _open_error()

    def body() -> None:
        try:
            with breaker:
                pass
        except open_error:
            pass

    return body
