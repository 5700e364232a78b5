"""AsyncMLClient over respx / httpx.MockTransport: the same contract as MLClient, awaited."""

from __future__ import annotations

import asyncio
import functools
import json
import random
import traceback
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from pganalytics_core.breaker import BreakerConfig, CircuitBreaker, State
from pganalytics_core.cache import PredictionCache
from pganalytics_core.client import AsyncMLClient
from pganalytics_core.errors import (
    BadRequestError,
    CircuitOpenError,
    ConfigError,
    MalformedResponseError,
    MLServiceError,
    NotFoundError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    ServiceConnectionError,
    ServiceStatusError,
    ServiceTimeoutError,
    TrainingJobFailedError,
    TrainingTimeoutError,
    trim_body,
)
from pganalytics_core.models import (
    PatternDetection,
    Prediction,
    PredictionRequest,
    TrainingJob,
    TrainingState,
    TrainingStatus,
    ValidationResult,
)
from pganalytics_core.retry import RetryPolicy
from pganalytics_core.testing import FakeClock

BASE = "http://127.0.0.1:8081"
API_KEY = "sk-test-7f3a9c"
JOB_ID = "training-20261126-211424-a60149a4"

PREDICT_PATH = "/api/predict/query-execution"
TRAIN_PATH = "/api/train/performance-model"
STATUS_PATH = f"{TRAIN_PATH}/{JOB_ID}"
VALIDATE_PATH = "/api/validate/prediction"
DETECT_PATH = "/api/detect/patterns"


def prediction_body(query_hash: int = 4001) -> dict[str, Any]:
    return {
        "query_hash": query_hash,
        "predicted_execution_time_ms": 12.5,
        "confidence_score": 0.87,
        "confidence_interval": {"lower_bound_ms": 10.0, "upper_bound_ms": 15.0, "std_dev_ms": 1.0},
        "scenario": "current",
        "model_version": "v1.0",
        "prediction_timestamp": "2026-11-26T21:14:24",
        "source": "database",
    }


TRAIN_BODY: dict[str, Any] = {
    "job_id": JOB_ID,
    "status": "queued",
    "database_name": "pganalytics",
    "lookback_days": 90,
    "model_type": "linear_regression",
    "message": "Model training started in background",
}


def status_body(status: str) -> dict[str, Any]:
    body: dict[str, Any] = {"job_id": JOB_ID, "status": status}
    if status == "completed":
        body.update(model_id=3, r_squared=0.8, training_samples=900, feature_count=1)
    if status == "failed":
        body["error"] = "Insufficient training data"
    return body


VALIDATE_BODY: dict[str, Any] = {
    "prediction_id": "p-1",
    "query_hash": 4001,
    "error_percent": 16.67,
    "accuracy_score": 0.833,
    "within_confidence_interval": False,
    "message": "Prediction validation recorded",
}
DETECT_BODY: dict[str, Any] = {"patterns_detected": 0, "patterns": [], "timestamp": "2026-11-26"}

ACall = Callable[[AsyncMLClient], Awaitable[object]]
# operation -> (method, path, success status, success body, call, result type)
OPERATIONS: dict[str, tuple[str, str, int, dict[str, Any], ACall, type]] = {
    "predict": (
        "POST",
        PREDICT_PATH,
        200,
        prediction_body(),
        lambda c: c.predict(4001),
        Prediction,
    ),
    "train": ("POST", TRAIN_PATH, 202, TRAIN_BODY, lambda c: c.train(), TrainingJob),
    "training_status": (
        "GET",
        STATUS_PATH,
        200,
        status_body("training"),
        lambda c: c.training_status(JOB_ID),
        TrainingStatus,
    ),
    "validate": (
        "POST",
        VALIDATE_PATH,
        200,
        VALIDATE_BODY,
        lambda c: c.validate(
            prediction_id="p-1",
            query_hash=4001,
            predicted_execution_time_ms=10.0,
            actual_execution_time_ms=12.0,
        ),
        ValidationResult,
    ),
    "detect_patterns": (
        "POST",
        DETECT_PATH,
        200,
        DETECT_BODY,
        lambda c: c.detect_patterns(database_name="pganalytics", lookback_days=7),
        PatternDetection,
    ),
}
OPERATION_NAMES = sorted(OPERATIONS)


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make(
    router: respx.Router, clock: FakeClock
) -> AsyncIterator[Callable[..., AsyncMLClient]]:
    """Build async clients on ``router`` with the fake clock, no jitter; closes them after."""
    made: list[AsyncMLClient] = []

    def build(**overrides: Any) -> AsyncMLClient:
        kwargs: dict[str, Any] = {
            "transport": router,
            "sleep": clock.async_sleep,
            "clock": clock,
            "rng": random.Random(0),
            "retry": RetryPolicy(jitter=0.0),
        }
        kwargs.update(overrides)
        client = AsyncMLClient(kwargs.pop("base_url", BASE), **kwargs)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.aclose()


def route_for(router: respx.Router, operation: str) -> respx.Route:
    method, path, *_ = OPERATIONS[operation]
    return router.route(method=method, path=path)


# --------------------------------------------------------------------------- construction


async def test_construction_matches_the_sync_client(
    make: Callable[..., AsyncMLClient],
) -> None:
    client = make(api_key=API_KEY)
    assert client.breaker.name == "ml-service"
    assert repr(client) == f"<AsyncMLClient base_url='{BASE}' breaker='ml-service' state=closed>"
    with pytest.raises(ConfigError, match=r"^timeout_s: "):
        make(timeout_s=0)
    with pytest.raises(TypeError, match="transport must be"):
        make(transport="router")


async def test_async_context_manager_closes_the_pool(router: respx.Router) -> None:
    router.get("/health").respond(200, json={"status": "healthy"})
    async with AsyncMLClient(BASE, transport=router) as client:
        assert await client.health() is True
    with pytest.raises(RuntimeError, match="closed"):
        await client.health()


async def test_transport_accepts_a_mock_transport_with_an_async_handler(
    make: Callable[..., AsyncMLClient],
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(200, json={"status": "healthy"})

    assert await make(transport=httpx.MockTransport(handler)).health() is True


# --------------------------------------------------------------------------- operations


@pytest.mark.parametrize("operation", OPERATION_NAMES)
async def test_every_operation_sends_its_request_and_parses_its_answer(
    make: Callable[..., AsyncMLClient], router: respx.Router, operation: str
) -> None:
    method, _, status, body, call, result_type = OPERATIONS[operation]
    route = route_for(router, operation).respond(status, json=body)
    client = make(api_key=API_KEY)
    result = await call(client)
    assert isinstance(result, result_type)
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == method
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    if method == "POST":
        assert request.headers["content-type"] == "application/json"
        assert b" " not in request.content  # compact separators
    assert client.breaker.metrics().total_successes == 1


async def test_predict_body_and_result(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body(77))
    prediction = await make().predict(77, parameters={"b": 1, "a": 2}, scenario="optimized")
    assert prediction.query_hash == 77
    assert route.calls.last.request.content == (
        b'{"query_hash":77,"parameters":{"a":2,"b":1},"scenario":"optimized"}'
    )


async def test_training_status_and_a_failed_job(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    router.get(STATUS_PATH).mock(
        side_effect=[
            httpx.Response(200, json=status_body("completed")),
            httpx.Response(400, json=status_body("failed")),
            httpx.Response(400, json={"error": "bad"}),
        ]
    )
    client = make()
    completed = await client.training_status(JOB_ID)
    assert completed.model_id == "3"
    failed = await client.training_status(JOB_ID)
    assert failed.status is TrainingState.FAILED
    with pytest.raises(BadRequestError):
        await client.training_status(JOB_ID)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: c.predict(0), ValueError, "query_hash must be > 0"),
        (lambda c: c.predict(1, scenario="x"), ValueError, "scenario must be one of"),
        (lambda c: c.train(lookback_days=3), ValueError, "lookback_days must be >= 7"),
        (lambda c: c.train(model_type="svm"), ValueError, "model_type must be one of"),
        (lambda c: c.training_status("../x"), ValueError, "not a plain path segment"),
        (lambda c: c.wait_for_training("a/b"), ValueError, "not a plain path segment"),
        (
            lambda c: c.validate(
                prediction_id="p",
                query_hash=1,
                predicted_execution_time_ms=1,
                actual_execution_time_ms=0,
            ),
            ValueError,
            "actual_execution_time_ms must be > 0",
        ),
        (
            lambda c: c.detect_patterns(database_name="d", lookback_days=0),
            ValueError,
            "lookback_days must be >= 1",
        ),
        (lambda c: c.predict_many([7]), TypeError, "PredictionRequest values"),
    ],
)
async def test_bad_arguments_raise_before_any_request(
    make: Callable[..., AsyncMLClient], call: ACall, error: type[Exception], match: str
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    with pytest.raises(error, match=match):
        await call(make(transport=httpx.MockTransport(handler)))
    assert sent == []


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(200, json={"status": "healthy"}), True),
        (httpx.Response(200, json={"status": "starting"}), False),
        (httpx.Response(503), False),
        (httpx.Response(200, text="<html>", headers={"content-type": "text/html"}), False),
    ],
)
async def test_health(
    make: Callable[..., AsyncMLClient],
    router: respx.Router,
    response: httpx.Response,
    expected: bool,
) -> None:
    route = router.get("/health").mock(return_value=response)
    assert await make().health() is expected
    assert route.call_count == 1


# --------------------------------------------------------------------------- errors

STATUSES: dict[int, tuple[type[ServiceStatusError], bool]] = {
    400: (BadRequestError, False),
    401: (ServiceStatusError, False),
    404: (NotFoundError, False),
    405: (ServiceStatusError, False),
    408: (ServiceStatusError, True),
    409: (ServiceStatusError, False),
    429: (RateLimitedError, True),
    500: (ServerError, True),
    502: (ServerError, True),
    503: (ServerError, True),
    504: (ServerError, True),
}


@pytest.mark.parametrize("status", sorted(STATUSES))
@pytest.mark.parametrize("operation", OPERATION_NAMES)
async def test_every_status_maps_to_its_error(
    make: Callable[..., AsyncMLClient], router: respx.Router, operation: str, status: int
) -> None:
    expected, breaker_failure = STATUSES[status]
    body = b"<html><body>oops</body></html>" if status in (405, 502) else b'{"error":"e"}'
    route_for(router, operation).respond(status, content=body, headers={"Retry-After": "4"})
    client = make(retry=RetryPolicy.none())
    with pytest.raises(expected) as info:
        await OPERATIONS[operation][4](client)
    assert type(info.value) is expected
    assert info.value.status_code == status
    assert info.value.body == trim_body(body)
    assert info.value.retry_after_s == 4.0
    assert info.value.operation == operation
    metrics = client.breaker.metrics()
    assert metrics.total_failures == (1 if breaker_failure else 0)
    assert metrics.total_successes == (0 if breaker_failure else 1)


@pytest.mark.parametrize(
    ("exc", "expected", "request_sent"),
    [
        (httpx.ConnectError, ServiceConnectionError, False),
        (httpx.ConnectTimeout, ServiceTimeoutError, False),
        (httpx.ReadTimeout, ServiceTimeoutError, True),
        (httpx.ReadError, ServiceConnectionError, True),
        (httpx.RemoteProtocolError, ServiceConnectionError, True),
        (httpx.DecodingError, MalformedResponseError, None),
    ],
)
@pytest.mark.parametrize("operation", OPERATION_NAMES)
async def test_httpx_exceptions_are_translated_and_chained(
    make: Callable[..., AsyncMLClient],
    router: respx.Router,
    operation: str,
    exc: type[Exception],
    expected: type[MLServiceError],
    request_sent: bool | None,
) -> None:
    route_for(router, operation).mock(side_effect=exc)
    client = make(retry=RetryPolicy.none())
    with pytest.raises(expected) as info:
        await OPERATIONS[operation][4](client)
    assert type(info.value) is expected
    assert isinstance(info.value.__cause__, exc)
    if request_sent is not None:
        assert info.value.request_sent is request_sent  # type: ignore[attr-defined]
    assert client.breaker.metrics().total_failures == 1


async def test_malformed_and_oversized_answers(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    router.post(PREDICT_PATH).mock(
        side_effect=[
            httpx.Response(200, text="{", headers={"content-type": "application/json"}),
            httpx.Response(200, json={**prediction_body(), "padding": "x" * 5000}),
        ]
    )
    client = make(max_response_bytes=4096)
    with pytest.raises(MalformedResponseError, match="not JSON"):
        await client.predict(1)
    with pytest.raises(ResponseTooLargeError):
        await client.predict(1)
    assert client.breaker.metrics().total_failures == 2


class _AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk = chunk
        self.count = count
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.read += 1
            yield self.chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_an_oversized_stream_is_not_read_whole(make: Callable[..., AsyncMLClient]) -> None:
    declared = _AsyncChunks(b"x" * 1024, 1000)
    undeclared = _AsyncChunks(b"x" * 1024, 1000)

    def handler(request: httpx.Request) -> httpx.Response:
        if declared.read == 0 and not declared.closed:
            return httpx.Response(200, headers={"content-length": "1024000"}, stream=declared)
        return httpx.Response(200, stream=undeclared)

    client = make(transport=httpx.MockTransport(handler), max_response_bytes=8192)
    with pytest.raises(ResponseTooLargeError):
        await client.predict(1)
    with pytest.raises(ResponseTooLargeError):
        await client.predict(1)
    assert (declared.read, declared.closed) == (0, True)
    assert (undeclared.read, undeclared.closed) == (9, True)


async def test_the_api_key_is_scrubbed_from_error_bodies(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    router.post(PREDICT_PATH).respond(401, text=f"token {API_KEY} rejected")
    with pytest.raises(ServiceStatusError) as info:
        await make(api_key=API_KEY).predict(1)
    assert API_KEY not in str(info.value)
    assert info.value.body == "token *** rejected"


# --------------------------------------------------------------------------- retries


async def test_retries_sleep_through_the_injected_async_sleep(
    make: Callable[..., AsyncMLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).mock(
        side_effect=[
            httpx.ConnectError,
            httpx.Response(429, headers={"Retry-After": "5"}),
            httpx.Response(200, json=prediction_body()),
        ]
    )
    await make(retry=RetryPolicy(backoff_base_s=0.25, jitter=0.0)).predict(1)
    assert route.call_count == 3
    assert clock.sleeps == [0.25, 5.0]


async def test_giving_up_after_max_retries(
    make: Callable[..., AsyncMLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).respond(502)
    with pytest.raises(ServerError) as info:
        await make().predict(1)
    assert info.value.attempts == 3
    assert route.call_count == 3
    assert clock.sleeps == [0.1, 0.2]


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500), httpx.Response(503), httpx.ReadTimeout, httpx.ReadError],
    ids=["500", "503", "read-timeout", "read-error"],
)
async def test_train_is_not_retried_once_the_request_may_have_arrived(
    make: Callable[..., AsyncMLClient], router: respx.Router, failure: object
) -> None:
    route = router.post(TRAIN_PATH).mock(
        side_effect=[failure, httpx.Response(202, json=TRAIN_BODY)]
    )
    with pytest.raises(MLServiceError):
        await make().train()
    assert route.call_count == 1


async def test_train_is_retried_after_a_connect_error(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    route = router.post(TRAIN_PATH).mock(
        side_effect=[httpx.ConnectError, httpx.Response(202, json=TRAIN_BODY)]
    )
    assert (await make().train()).job_id == JOB_ID
    assert route.call_count == 2


# --------------------------------------------------------------------------- breaker


async def test_a_hundred_bad_requests_never_open_the_circuit(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    router.post(PREDICT_PATH).respond(400, json={"error": "bad"})
    client = make()
    for _ in range(100):
        with pytest.raises(BadRequestError):
            await client.predict(1)
    assert client.breaker.state is State.CLOSED
    assert client.breaker.metrics().total_failures == 0


async def test_server_errors_open_the_circuit_and_then_no_request_is_sent(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(503)
    client = make(retry=RetryPolicy.none())
    for _ in range(5):
        with pytest.raises(ServerError):
            await client.predict(1)
    with pytest.raises(CircuitOpenError):
        await client.predict(1)
    assert route.call_count == 5


async def test_a_cancelled_half_open_probe_frees_its_slot(
    make: Callable[..., AsyncMLClient], clock: FakeClock
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(500)
        if calls == 2:
            entered.set()
            await release.wait()  # never set: the probe hangs until cancelled
        return httpx.Response(200, json=prediction_body())

    config = BreakerConfig(failure_threshold=1, success_threshold=1, open_timeout_s=5.0)
    breaker = CircuitBreaker(config, clock=clock)
    client = make(transport=httpx.MockTransport(handler), breaker=breaker, retry=RetryPolicy.none())
    with pytest.raises(ServerError):
        await client.predict(1)
    clock.advance(5.0)
    probe = asyncio.create_task(client.predict(1))
    await entered.wait()
    assert breaker.metrics().half_open_in_flight == 1
    with pytest.raises(CircuitOpenError):
        await client.predict(1)  # the only probe slot is taken
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.metrics().half_open_in_flight == 0
    assert breaker.metrics().total_failures == 1  # the cancellation counted as nothing
    assert (await client.predict(1)).query_hash == 4001
    assert breaker.state is State.CLOSED


# --------------------------------------------------------------------------- training wait


async def test_wait_for_training(
    make: Callable[..., AsyncMLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.get(STATUS_PATH).mock(
        side_effect=[
            httpx.Response(200, json=status_body("queued")),
            httpx.Response(200, json=status_body("completed")),
        ]
    )
    status = await make().wait_for_training(JOB_ID, poll_interval_s=2.0, timeout_s=60.0)
    assert status.status is TrainingState.COMPLETED
    assert route.call_count == 2
    assert clock.sleeps == [2.0]


async def test_wait_for_training_failed_and_timed_out(
    make: Callable[..., AsyncMLClient], router: respx.Router, clock: FakeClock
) -> None:
    router.get(STATUS_PATH).respond(400, json=status_body("failed"))
    client = make()
    with pytest.raises(TrainingJobFailedError, match="Insufficient training data"):
        await client.wait_for_training(JOB_ID)
    router.get(STATUS_PATH).respond(200, json=status_body("queued"))
    with pytest.raises(TrainingTimeoutError, match="still queued") as info:
        await client.wait_for_training(JOB_ID, poll_interval_s=1.0, timeout_s=3.0)
    assert info.value.waited_s == pytest.approx(3.0)
    assert clock.sleeps == [1.0, 1.0, 1.0]


# --------------------------------------------------------------------------- cache and batches


async def test_cache_hits_send_nothing(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body())
    client = make(cache=PredictionCache())
    first = await client.predict(4001, parameters={"x": 1, "y": 2})
    assert await client.predict(4001, parameters={"y": 2, "x": 1}) is first
    assert route.call_count == 1


async def test_predict_many_keeps_order_dedups_and_isolates_failures(
    make: Callable[..., AsyncMLClient],
) -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query_hash = json.loads(request.content)["query_hash"]
        seen.append(query_hash)
        if query_hash == 13:
            return httpx.Response(503)
        return httpx.Response(200, json=prediction_body(query_hash))

    cache = PredictionCache()
    client = make(transport=httpx.MockTransport(handler), cache=cache, retry=RetryPolicy.none())
    cached = await client.predict(2)
    seen.clear()
    requests = [PredictionRequest.create(h) for h in (3, 13, 2, 3, 4)]
    outcomes = await client.predict_many(requests)
    assert [o.request for o in outcomes] == requests
    assert sorted(seen) == [3, 4, 13]
    assert outcomes[0] is outcomes[3]
    assert outcomes[2].prediction is cached
    assert isinstance(outcomes[1].error, ServerError)
    assert [o.ok for o in outcomes] == [True, False, True, True, True]
    assert len(cache) == 3


async def test_predict_many_bounds_its_concurrency(make: Callable[..., AsyncMLClient]) -> None:
    concurrency = 4
    in_flight = 0
    peak = 0
    gate = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == concurrency:
            gate.set()
        await gate.wait()  # hold every request until `concurrency` are in flight
        await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, json=prediction_body(json.loads(request.content)["query_hash"]))

    client = make(transport=httpx.MockTransport(handler))
    outcomes = await client.predict_many(
        [PredictionRequest.create(h) for h in range(1, 21)], max_concurrency=concurrency
    )
    assert all(o.ok for o in outcomes)
    assert peak == concurrency


async def test_many_tasks_share_one_client_with_exact_counts(
    make: Callable[..., AsyncMLClient],
) -> None:
    seen: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        query_hash = json.loads(request.content)["query_hash"]
        seen.append(query_hash)
        return httpx.Response(200, json=prediction_body(query_hash))

    client = make(transport=httpx.MockTransport(handler))
    results = await asyncio.gather(*(client.predict(h) for h in range(1, 201)))
    assert [r.query_hash for r in results] == list(range(1, 201))
    assert sorted(seen) == list(range(1, 201))
    assert client.breaker.metrics().total_successes == 200


# --------------------------------------------------------------------------- encodings

BOMB_DECODED_BYTES = 64 << 20
BOMB_LIMIT_BYTES = 1 << 20


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


@functools.cache
def _gzip_bomb() -> bytes:
    """BOMB_DECODED_BYTES of zeros, gzipped (~64 KiB), built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(BOMB_DECODED_BYTES >> 20)]
    return b"".join([*parts, compressor.flush()])


class _AsyncParts(httpx.AsyncByteStream):
    """A body delivered in chunks, not read when the response is built (like the network)."""

    def __init__(self, body: bytes, chunk_bytes: int = 1 << 14) -> None:
        self.parts = [body[i : i + chunk_bytes] for i in range(0, len(body), chunk_bytes)]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


def _streamed(
    status: int, body: bytes, encoding: str | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if encoding is not None:
            headers["content-encoding"] = encoding
        return httpx.Response(status, headers=headers, stream=_AsyncParts(body))

    return handler


async def _traced_peak_bytes(call: Callable[[], Awaitable[object]]) -> int:
    tracemalloc.start()
    try:
        await call()
    except MLServiceError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


async def test_the_async_client_asks_for_an_identity_encoding(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body())
    await make().predict(4001)
    assert route.calls.last.request.headers["accept-encoding"] == "identity"


async def test_a_compression_bomb_is_refused_within_a_small_multiple_of_the_limit(
    make: Callable[..., AsyncMLClient],
) -> None:
    client = make(
        transport=httpx.MockTransport(_streamed(200, _gzip_bomb(), "gzip")),
        max_response_bytes=BOMB_LIMIT_BYTES,
        retry=RetryPolicy.none(),
    )
    errors: list[Exception] = []

    async def call() -> None:
        try:
            await client.predict(4001)
        except ResponseTooLargeError as exc:
            errors.append(exc)

    peak = await _traced_peak_bytes(call)
    assert [type(e) for e in errors] == [ResponseTooLargeError]
    assert peak < 3 * BOMB_LIMIT_BYTES, f"peak {peak} bytes for a {BOMB_LIMIT_BYTES}-byte limit"


async def test_a_compression_bomb_as_an_error_body_costs_only_its_excerpt(
    make: Callable[..., AsyncMLClient],
) -> None:
    client = make(
        transport=httpx.MockTransport(_streamed(503, _gzip_bomb(), "gzip")),
        retry=RetryPolicy.none(),
    )
    errors: list[ServerError] = []

    async def call() -> None:
        try:
            await client.predict(4001)
        except ServerError as exc:
            errors.append(exc)

    peak = await _traced_peak_bytes(call)
    assert [e.status_code for e in errors] == [503]
    assert peak < 512 * 1024, f"peak {peak} bytes for a 4 KiB excerpt"


async def test_compressed_and_undecodable_bodies(make: Callable[..., AsyncMLClient]) -> None:
    good = _gzip(json.dumps(prediction_body()).encode())
    assert (
        await make(transport=httpx.MockTransport(_streamed(200, good, "gzip"))).predict(4001)
    ).query_hash == 4001
    bad = make(transport=httpx.MockTransport(_streamed(200, b"not gzip", "gzip")))
    with pytest.raises(MalformedResponseError, match="does not decode"):
        await bad.predict(4001)
    brotli = make(transport=httpx.MockTransport(_streamed(200, b"\x0b\x02\x80{}\x03", "br")))
    with pytest.raises(MalformedResponseError, match="unsupported content encoding 'br'"):
        await brotli.predict(4001)


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (404, NotFoundError), (422, ServiceStatusError)]
)
async def test_a_4xx_with_an_undecodable_body_keeps_its_status_error(
    make: Callable[..., AsyncMLClient], status: int, error: type[ServiceStatusError]
) -> None:
    client = make(transport=httpx.MockTransport(_streamed(status, b"not gzip", "gzip")))
    with pytest.raises(error) as info:
        await client.training_status(JOB_ID)
    assert type(info.value) is error
    assert info.value.status_code == status
    metrics = client.breaker.metrics()
    assert (metrics.total_successes, metrics.total_failures) == (1, 0)


async def test_the_content_type_is_matched_case_insensitively(
    make: Callable[..., AsyncMLClient], router: respx.Router
) -> None:
    content = json.dumps(prediction_body()).encode()
    router.post(PREDICT_PATH).respond(200, content=content, content_type="Application/JSON")
    assert (await make().predict(4001)).query_hash == 4001


# --------------------------------------------------------------------------- more secrets

LONG_KEY = "sk-live-0123456789abcdef0123456789abcdef"


async def test_the_basic_token_and_cut_secrets_are_scrubbed(
    make: Callable[..., AsyncMLClient],
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        authorization = request.headers["authorization"]
        return httpx.Response(502, text=f"authorization={authorization}")

    client = make(
        base_url="http://alice:S3cr3t-pw@127.0.0.1:8081",
        transport=httpx.MockTransport(echo),
        retry=RetryPolicy.none(),
    )
    with pytest.raises(ServerError) as info:
        await client.predict(4001)
    assert info.value.body == "authorization=***"

    def padded(request: httpx.Request) -> httpx.Response:
        padding = b" " * (4096 - 20)
        return httpx.Response(500, content=padding + request.headers["authorization"].encode())

    keyed = make(api_key=LONG_KEY, transport=httpx.MockTransport(padded), retry=RetryPolicy.none())
    with pytest.raises(ServerError) as cut:
        await keyed.predict(4001)
    assert LONG_KEY[:4] not in str(cut.value)


async def test_the_exception_chain_exposes_no_api_key(make: Callable[..., AsyncMLClient]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = make(api_key=LONG_KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(ServiceConnectionError) as info:
        await client.predict(4001)
    cause = info.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    assert cause.request.headers["authorization"] == "[redacted]"
    assert LONG_KEY not in "".join(traceback.format_exception(info.value))


# --------------------------------------------------------------------------- deadlines


async def test_each_attempt_gets_at_most_the_time_left_of_the_deadline(
    make: Callable[..., AsyncMLClient], clock: FakeClock
) -> None:
    timeouts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        clock.advance(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("timed out", request=request)

    policy = RetryPolicy(deadline_s=1.0, backoff_base_s=0.05, jitter=0.0, max_retries=5)
    client = make(transport=httpx.MockTransport(handler), timeout_s=0.8, retry=policy)
    with pytest.raises(ServiceTimeoutError) as info:
        await client.predict(1)
    assert timeouts == pytest.approx([0.8, 0.15])
    assert info.value.attempts == 2


async def test_wait_for_training_bounds_each_poll_by_the_time_left(
    make: Callable[..., AsyncMLClient], clock: FakeClock
) -> None:
    timeouts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json=status_body("queued"))

    client = make(transport=httpx.MockTransport(handler), timeout_s=5.0)
    with pytest.raises(TrainingTimeoutError, match="still queued"):
        await client.wait_for_training(JOB_ID, poll_interval_s=2.0, timeout_s=6.0)
    assert timeouts == [5.0, 4.0, 2.0]


# --------------------------------------------------------------------------- batches, mock


async def test_predict_many_leaves_no_task_behind_an_unexpected_error(
    make: Callable[..., AsyncMLClient],
) -> None:
    finished: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        query_hash = json.loads(request.content)["query_hash"]
        if query_hash == 1:
            raise RuntimeError("a bug in the transport")
        for _ in range(5):  # still in flight when the first request fails
            await asyncio.sleep(0)
        finished.append(query_hash)
        return httpx.Response(200, json=prediction_body(query_hash))

    cache = PredictionCache()
    client = make(transport=httpx.MockTransport(handler), cache=cache)
    requests = [PredictionRequest.create(h) for h in range(1, 6)]
    with pytest.raises(RuntimeError, match="a bug in the transport"):
        await client.predict_many(requests, max_concurrency=8)
    assert sorted(finished) == [2, 3, 4, 5]
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert [r.query_hash for r in requests if r in cache] == [2, 3, 4, 5]


async def test_predictions_from_the_services_mock_data_are_not_cached(
    make: Callable[..., AsyncMLClient],
) -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query_hash = json.loads(request.content)["query_hash"]
        seen.append(query_hash)
        return httpx.Response(200, json={**prediction_body(query_hash), "source": "mock"})

    cache = PredictionCache()
    client = make(transport=httpx.MockTransport(handler), cache=cache)
    assert (await client.predict(4001)).source == "mock"
    await client.predict(4001)
    outcomes = await client.predict_many([PredictionRequest.create(4001)])
    assert outcomes[0].unwrap().source == "mock"
    assert seen == [4001, 4001, 4001]
    assert len(cache) == 0
