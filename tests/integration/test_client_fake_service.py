"""MLClient and AsyncMLClient over real HTTP against FakeMLService on 127.0.0.1.

Every operation, every fault mode, retries seen in the service's request counts, the
breaker, the cache, batches and threads sharing one client. Time never passes for real
except where a socket timeout is the point: the client sleeps through a FakeClock, and
training jobs progress on the same FakeClock as the service. The conftest's autouse
``no_leaks`` fixture fails any test that leaves a thread or a socket behind.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from pganalytics_core.breaker import BreakerConfig, CircuitBreaker, State
from pganalytics_core.cache import PredictionCache
from pganalytics_core.client import AsyncMLClient, MLClient
from pganalytics_core.errors import (
    BadRequestError,
    CircuitOpenError,
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
)
from pganalytics_core.models import (
    PatternDetection,
    Prediction,
    PredictionRequest,
    TrainingJob,
    TrainingState,
    ValidationResult,
)
from pganalytics_core.retry import RetryPolicy
from pganalytics_core.testing import FakeClock, FakeMLService, Faults

API_KEY = "integration-key-42"
TRAINING_STEP_S = 1.0  # on the fake clock: queued for 1 s, training for 1 s, then done

# fault mode -> (expected error, predict requests the service sees with default retries)
FAULT_MODES: dict[str, tuple[type[MLServiceError], int]] = {
    "reset": (ServiceConnectionError, 3),
    "truncated": (ServiceConnectionError, 3),
    "malformed_json": (MalformedResponseError, 1),
    "wrong_content_type": (MalformedResponseError, 1),
    "oversized": (ResponseTooLargeError, 1),
}
# injected status -> (expected error, predict requests the service sees with default retries)
FAULT_STATUSES: dict[int, tuple[type[ServiceStatusError], int]] = {
    400: (BadRequestError, 1),
    404: (NotFoundError, 1),
    409: (ServiceStatusError, 1),
    429: (RateLimitedError, 3),
    500: (ServerError, 3),
    502: (ServerError, 3),
    503: (ServerError, 3),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def svc(clock: FakeClock) -> Iterator[FakeMLService]:
    """A fake service whose training jobs progress on the test's fake clock."""
    with FakeMLService(seed=0, training_step_s=TRAINING_STEP_S, clock=clock) as service:
        yield service


def _options(clock: FakeClock, overrides: dict[str, Any], *, sync: bool) -> dict[str, Any]:
    options: dict[str, Any] = {
        "timeout_s": 5.0,
        "retry": RetryPolicy(jitter=0.0),
        "sleep": clock.sleep if sync else clock.async_sleep,
        "clock": clock,
        "rng": random.Random(0),
    }
    options.update(overrides)
    return options


@pytest.fixture
def make(svc: FakeMLService, clock: FakeClock) -> Iterator[Callable[..., MLClient]]:
    """Build sync clients of ``svc``; every one is closed after the test."""
    made: list[MLClient] = []

    def build(**overrides: Any) -> MLClient:
        url = overrides.pop("url", svc.url)
        client = MLClient(url, **_options(clock, overrides, sync=True))
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
async def amake(
    svc: FakeMLService, clock: FakeClock
) -> AsyncIterator[Callable[..., AsyncMLClient]]:
    """Build async clients of ``svc``; every one is closed after the test."""
    made: list[AsyncMLClient] = []

    def build(**overrides: Any) -> AsyncMLClient:
        url = overrides.pop("url", svc.url)
        client = AsyncMLClient(url, **_options(clock, overrides, sync=False))
        made.append(client)
        return client

    yield build
    for client in made:
        await client.aclose()


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in counts.items() if n}


#: The client's timeout against a service answering after 2 s. The timeout bounds the whole
#: exchange (connect and send included), so it leaves room for a connect on a loaded
#: machine: a request that never left would not be the read timeout these tests mean.
SLOW_TIMEOUT_S = 0.3


def _count_after_timeout(svc: FakeMLService, endpoint: str, expected: int) -> int:
    """The service's count for ``endpoint`` once it has parsed ``expected`` requests.

    A client that timed out did not wait for the service, whose thread may not have parsed
    the last request yet on a loaded machine: give it up to 2 s (a bound, not a timing).
    """
    deadline = time.monotonic() + 2.0
    while svc.request_counts()[endpoint] < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    return svc.request_counts()[endpoint]


# --------------------------------------------------------------------------- operations


def test_every_operation_sync(
    make: Callable[..., MLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    client = make()
    assert client.health() is True
    prediction = client.predict(4001, parameters={"rows": 10}, scenario="optimized")
    assert isinstance(prediction, Prediction)
    assert (prediction.query_hash, prediction.scenario) == (4001, "optimized")
    assert prediction.source in ("database", "mock")
    assert prediction.prediction_timestamp.tzinfo is not None
    job = client.train(database_name="pganalytics", lookback_days=30, model_type="decision_tree")
    assert isinstance(job, TrainingJob)
    assert job.status is TrainingState.QUEUED
    assert (job.lookback_days, job.model_type) == (30, "decision_tree")
    assert client.training_status(job.job_id).status is TrainingState.QUEUED
    done = client.wait_for_training(job.job_id, poll_interval_s=1.0, timeout_s=10.0)
    assert done.status is TrainingState.COMPLETED
    assert done.model_id is not None
    assert done.r_squared is not None
    assert done.feature_importance is not None
    assert clock.sleeps == [1.0, 1.0]  # queued at 0 s, training at 1 s, completed at 2 s
    result = client.validate(
        prediction_id="p-1",
        query_hash=4001,
        predicted_execution_time_ms=prediction.predicted_execution_time_ms,
        actual_execution_time_ms=prediction.predicted_execution_time_ms * 1.1,
    )
    assert isinstance(result, ValidationResult)
    assert result.within_confidence_interval is True
    assert result.error_percent == pytest.approx(9.09, abs=0.01)
    detection = client.detect_patterns(database_name="pganalytics", lookback_days=7)
    assert isinstance(detection, PatternDetection)
    assert detection.patterns_detected == len(detection.patterns)
    assert _nonzero(svc.request_counts()) == {
        "health": 1,
        "predict": 1,
        "train": 1,
        "training_status": 4,
        "validate": 1,
        "detect_patterns": 1,
    }


async def test_every_operation_async(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    client = amake()
    assert await client.health() is True
    prediction = await client.predict(4001)
    assert prediction.query_hash == 4001
    job = await client.train()
    assert (await client.training_status(job.job_id)).status is TrainingState.QUEUED
    done = await client.wait_for_training(job.job_id, poll_interval_s=0.5, timeout_s=10.0)
    assert done.status is TrainingState.COMPLETED
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]
    result = await client.validate(
        prediction_id="p-2",
        query_hash=4001,
        predicted_execution_time_ms=100.0,
        actual_execution_time_ms=50.0,
    )
    assert result.within_confidence_interval is False
    detection = await client.detect_patterns(database_name="analytics", lookback_days=30)
    assert detection.patterns_detected == len(detection.patterns)
    assert _nonzero(svc.request_counts()) == {
        "health": 1,
        "predict": 1,
        "train": 1,
        "training_status": 6,
        "validate": 1,
        "detect_patterns": 1,
    }


def test_the_service_validation_matches_the_client_validation(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    client = make()
    with pytest.raises(ValueError, match="query_hash must be > 0"):
        client.predict(0)
    with pytest.raises(ValueError, match="lookback_days must be >= 7"):
        client.train(lookback_days=6)
    assert svc.total_requests() == 0


def test_an_unknown_job_is_not_found(make: Callable[..., MLClient], svc: FakeMLService) -> None:
    client = make()
    with pytest.raises(NotFoundError, match="Job not found") as info:
        client.training_status("training-20990101-000000-deadbeef")
    assert info.value.status_code == 404
    assert svc.request_counts()["training_status"] == 1
    assert client.breaker.metrics().total_failures == 0


def test_a_failed_training_job(
    make: Callable[..., MLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    svc.update_faults(training_outcome="failed")
    client = make()
    job = client.train()
    with pytest.raises(TrainingJobFailedError, match="Insufficient training data") as info:
        client.wait_for_training(job.job_id, poll_interval_s=1.0, timeout_s=10.0)
    assert info.value.job_id == job.job_id
    failed = client.training_status(job.job_id)  # answered with 400: a result, not an error
    assert failed.status is TrainingState.FAILED
    assert client.breaker.metrics().total_failures == 0


async def test_a_failed_training_job_async(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService
) -> None:
    svc.update_faults(training_outcome="failed")
    client = amake()
    job = await client.train()
    with pytest.raises(TrainingJobFailedError):
        await client.wait_for_training(job.job_id, poll_interval_s=1.0, timeout_s=10.0)


def test_waiting_for_a_job_that_never_ends_times_out(
    make: Callable[..., MLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    client = make()
    job = client.train()
    with pytest.raises(TrainingTimeoutError, match="still queued") as info:
        client.wait_for_training(job.job_id, poll_interval_s=0.25, timeout_s=0.75)
    assert info.value.last_status == "queued"
    # Polls at 0, 0.25 and 0.5 s; none at 0.75 s, where it would have no time left.
    assert svc.request_counts()["training_status"] == 3


def test_the_api_key_is_sent_and_required(clock: FakeClock) -> None:
    with FakeMLService(api_key=API_KEY) as service:
        with MLClient(service.url, api_key=API_KEY, sleep=clock.sleep) as client:
            assert client.predict(4001).query_hash == 4001
            assert API_KEY not in repr(client)
        with MLClient(service.url, sleep=clock.sleep) as anonymous:
            with pytest.raises(ServiceStatusError) as info:
                anonymous.predict(4001)
            assert info.value.status_code == 401
            assert anonymous.breaker.metrics().total_failures == 0
        assert service.request_counts()["predict"] == 2  # 401 is not retried


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("mode", sorted(FAULT_MODES))
def test_every_fault_mode_maps_to_its_error_sync(
    make: Callable[..., MLClient], svc: FakeMLService, clock: FakeClock, mode: str
) -> None:
    expected, requests = FAULT_MODES[mode]
    svc.set_faults(Faults(mode=mode, endpoints=frozenset({"predict"})))
    client = make()
    with pytest.raises(expected) as info:
        client.predict(4001)
    assert type(info.value) is expected
    assert info.value.operation == "predict"
    assert info.value.attempts == requests
    assert svc.request_counts()["predict"] == requests
    assert len(clock.sleeps) == requests - 1
    assert client.breaker.metrics().total_failures == requests
    svc.clear_faults()
    assert client.predict(4001).query_hash == 4001  # the pool recovered


@pytest.mark.parametrize("mode", sorted(FAULT_MODES))
async def test_every_fault_mode_maps_to_its_error_async(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService, mode: str
) -> None:
    expected, requests = FAULT_MODES[mode]
    svc.set_faults(Faults(mode=mode, endpoints=frozenset({"predict"})))
    client = amake()
    with pytest.raises(expected) as info:
        await client.predict(4001)
    assert type(info.value) is expected
    assert svc.request_counts()["predict"] == requests
    svc.clear_faults()
    assert (await client.predict(4001)).query_hash == 4001


@pytest.mark.parametrize("mode", sorted(FAULT_MODES))
def test_health_is_false_under_every_fault_mode(
    make: Callable[..., MLClient], svc: FakeMLService, mode: str
) -> None:
    svc.set_faults(Faults(mode=mode))
    assert make().health() is False
    assert svc.request_counts()["health"] == 1


@pytest.mark.parametrize("status", sorted(FAULT_STATUSES))
def test_injected_statuses_map_to_their_errors_and_retries(
    make: Callable[..., MLClient], svc: FakeMLService, status: int
) -> None:
    expected, requests = FAULT_STATUSES[status]
    svc.set_faults(Faults(error_rate=1.0, error_status=status, endpoints=frozenset({"predict"})))
    with pytest.raises(expected) as info:
        make().predict(4001)
    assert type(info.value) is expected
    assert info.value.status_code == status
    assert info.value.attempts == requests
    assert svc.request_counts()["predict"] == requests


@pytest.mark.parametrize("status", sorted(FAULT_STATUSES))
async def test_injected_statuses_map_to_their_errors_and_retries_async(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService, status: int
) -> None:
    expected, requests = FAULT_STATUSES[status]
    svc.set_faults(Faults(error_rate=1.0, error_status=status))
    with pytest.raises(expected):
        await amake().validate(
            prediction_id="p",
            query_hash=1,
            predicted_execution_time_ms=1.0,
            actual_execution_time_ms=2.0,
        )
    assert svc.request_counts()["validate"] == requests


def test_a_slow_service_is_a_timeout_and_is_retried(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    svc.set_faults(Faults(latency_s=2.0, endpoints=frozenset({"predict"})))
    client = make(timeout_s=SLOW_TIMEOUT_S, retry=RetryPolicy(max_retries=1, jitter=0.0))
    with pytest.raises(ServiceTimeoutError) as info:
        client.predict(4001)
    assert info.value.request_sent is True
    assert info.value.attempts == 2
    assert _count_after_timeout(svc, "predict", 2) == 2


async def test_a_slow_service_is_a_timeout_async(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService
) -> None:
    svc.set_faults(Faults(latency_s=2.0))
    with pytest.raises(ServiceTimeoutError) as info:
        await amake(timeout_s=SLOW_TIMEOUT_S, retry=RetryPolicy.none()).detect_patterns(
            database_name="d", lookback_days=1
        )
    assert info.value.attempts == 1
    assert _count_after_timeout(svc, "detect_patterns", 1) == 1


def test_a_refused_connection_is_a_connection_error_and_train_retries_it(
    clock: FakeClock,
) -> None:
    service = FakeMLService().start()
    url = service.url
    service.stop()  # nothing listens on the port any more
    client = MLClient(url, sleep=clock.sleep, retry=RetryPolicy(jitter=0.0))
    with client, pytest.raises(ServiceConnectionError) as info:
        client.train()
    assert info.value.request_sent is False
    assert info.value.attempts == 3  # never sent, so even train is retried
    assert clock.sleeps == [0.1, 0.2]


# --------------------------------------------------------------------------- retries


def test_transient_failures_are_retried_and_seen_by_the_service(
    make: Callable[..., MLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    svc.fail_next(2, status=503, endpoints=frozenset({"predict"}))
    assert make().predict(4001).query_hash == 4001
    assert svc.request_counts()["predict"] == 3
    assert clock.sleeps == [0.1, 0.2]


def test_retry_after_is_honoured_with_the_injected_sleep(
    make: Callable[..., MLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    svc.fail_next(1, status=429, retry_after_s=2.0)
    svc.fail_next(1, status=503, retry_after_s=0.4)  # Retry-After is rounded up: 1 s
    assert make().predict(4001).query_hash == 4001
    assert clock.sleeps == [2.0, 1.0]
    assert svc.request_counts()["predict"] == 3


async def test_retry_after_is_honoured_async(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    svc.fail_next(1, status=429, retry_after_s=3.0)
    assert (await amake().predict(4001)).query_hash == 4001
    assert clock.sleeps == [3.0]
    assert svc.request_counts()["predict"] == 2


def test_a_retry_after_beyond_the_cap_is_not_waited_for(
    make: Callable[..., MLClient], svc: FakeMLService, clock: FakeClock
) -> None:
    svc.fail_next(1, status=429, retry_after_s=120.0)
    with pytest.raises(RateLimitedError) as info:
        make(retry=RetryPolicy(max_retry_after_s=60.0)).predict(4001)
    assert info.value.retry_after_s == 120.0
    assert clock.sleeps == []
    assert svc.request_counts()["predict"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_train_is_not_retried_after_a_5xx(
    make: Callable[..., MLClient], svc: FakeMLService, status: int
) -> None:
    svc.fail_next(1, status=status, endpoints=frozenset({"train"}))
    with pytest.raises(ServerError):
        make().train()
    assert svc.request_counts()["train"] == 1


@pytest.mark.parametrize("mode", ["reset", "truncated"])
def test_train_is_not_retried_after_a_broken_answer(
    make: Callable[..., MLClient], svc: FakeMLService, mode: str
) -> None:
    svc.set_faults(Faults(mode=mode, endpoints=frozenset({"train"})))
    with pytest.raises(ServiceConnectionError) as info:
        make().train()
    assert info.value.request_sent is True
    assert svc.request_counts()["train"] == 1


async def test_train_is_not_retried_after_a_5xx_async(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService
) -> None:
    svc.fail_next(1, status=503, endpoints=frozenset({"train"}))
    with pytest.raises(ServerError):
        await amake().train()
    assert svc.request_counts()["train"] == 1


def test_train_read_timeout_is_not_retried(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    svc.set_faults(Faults(latency_s=2.0, endpoints=frozenset({"train"})))
    with pytest.raises(ServiceTimeoutError) as info:
        make(timeout_s=SLOW_TIMEOUT_S).train()
    assert info.value.attempts == 1
    assert _count_after_timeout(svc, "train", 1) == 1


# --------------------------------------------------------------------------- breaker


def test_server_errors_open_the_circuit_and_spare_the_service(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    svc.set_faults(Faults(error_rate=1.0, error_status=500))
    client = make(retry=RetryPolicy.none())
    for _ in range(5):
        with pytest.raises(ServerError):
            client.predict(4001)
    assert client.breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError):
        client.predict(4001)
    assert svc.request_counts()["predict"] == 5


def test_a_hundred_bad_requests_keep_the_circuit_closed(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    svc.set_faults(Faults(error_rate=1.0, error_status=400))
    client = make()
    for _ in range(100):
        with pytest.raises(BadRequestError):
            client.predict(4001)
    assert client.breaker.state is State.CLOSED
    assert svc.request_counts()["predict"] == 100


# --------------------------------------------------------------------------- cache, batches


def test_cache_hits_never_reach_the_service(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    cache = PredictionCache()
    client = make(cache=cache)
    first = client.predict(4001, parameters={"a": 1, "b": 2})
    assert client.predict(4001, parameters={"b": 2, "a": 1}) is first
    assert svc.request_counts()["predict"] == 1
    assert cache.stats().hits == 1


def test_predict_many_dedups_and_sends_the_rest_concurrently(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    cache = PredictionCache()
    client = make(cache=cache)
    requests = [PredictionRequest.create(4000 + i % 30) for i in range(90)]
    outcomes = client.predict_many(requests, max_concurrency=6)
    # The service's connection threads stay (keep-alive); the batch's workers must not.
    assert [t.name for t in threading.enumerate() if t.name.startswith("mlclient-batch")] == []
    assert [o.request for o in outcomes] == requests
    assert all(o.ok for o in outcomes)
    assert [o.unwrap().query_hash for o in outcomes] == [r.query_hash for r in requests]
    assert svc.request_counts()["predict"] == 30
    # The service answers about a quarter of the queries from its mock data: not cached.
    mock = {o.request for o in outcomes if o.unwrap().source == "mock"}
    assert 0 < len(mock) < 30
    again = client.predict_many(requests[:40])
    resent = {r for r in requests[:40] if r in mock}
    assert svc.request_counts()["predict"] == 30 + len(resent)  # the rest are cache hits
    for first, second in zip(outcomes[:40], again, strict=True):
        assert (second.prediction is first.prediction) is (first.request not in mock)


def test_predict_many_keeps_going_past_failures(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    svc.fail_next(3, status=400, endpoints=frozenset({"predict"}))
    outcomes = make().predict_many(
        [PredictionRequest.create(h) for h in range(1, 11)], max_concurrency=4
    )
    assert sum(not o.ok for o in outcomes) == 3
    assert all(isinstance(o.error, BadRequestError) for o in outcomes if not o.ok)
    assert svc.request_counts()["predict"] == 10


async def test_predict_many_async(amake: Callable[..., AsyncMLClient], svc: FakeMLService) -> None:
    requests = [PredictionRequest.create(7000 + i % 25, scenario="optimized") for i in range(75)]
    outcomes = await amake().predict_many(requests, max_concurrency=10)
    assert [o.unwrap().query_hash for o in outcomes] == [r.query_hash for r in requests]
    assert svc.request_counts()["predict"] == 25


# --------------------------------------------------------------------------- concurrency


def test_ten_threads_share_one_client_with_exact_server_counts(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    threads_n, calls = 10, 20
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=50), name="ml-service")
    # 7 retries: even if one call's attempts draw all 7 injected failures (its retries can
    # overtake the other threads' first requests), its 8th attempt succeeds.
    client = make(breaker=breaker, retry=RetryPolicy(max_retries=7, jitter=0.0))
    svc.fail_next(7, status=503, endpoints=frozenset({"predict"}))
    barrier = threading.Barrier(threads_n)
    wrong: list[object] = []

    def work(index: int) -> None:
        barrier.wait()
        for i in range(calls):
            query_hash = 1 + index * calls + i
            try:
                got = client.predict(query_hash).query_hash
            except Exception as exc:  # collected, asserted below
                wrong.append(exc)
            else:
                if got != query_hash:
                    wrong.append((query_hash, got))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    # Every call succeeded once; the 7 injected failures were each retried once more.
    assert svc.request_counts()["predict"] == threads_n * calls + 7
    assert svc.total_requests() == threads_n * calls + 7
    metrics = breaker.metrics()
    assert (metrics.total_successes, metrics.total_failures) == (threads_n * calls, 7)


async def test_many_tasks_share_one_async_client_with_exact_server_counts(
    amake: Callable[..., AsyncMLClient], svc: FakeMLService
) -> None:
    client = amake(
        retry=RetryPolicy(max_retries=5, jitter=0.0),
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
    )
    breaker_before = client.breaker.metrics().total_successes
    svc.fail_next(4, status=502, endpoints=frozenset({"predict"}))
    results = await asyncio.gather(*(client.predict(h) for h in range(1, 51)))
    assert [r.query_hash for r in results] == list(range(1, 51))
    assert svc.request_counts()["predict"] == 54
    assert client.breaker.metrics().total_successes - breaker_before == 50


# --------------------------------------------------------------------------- compressed bodies
# FakeMLService never compresses: a one-shot raw server plays a misbehaving proxy that
# sends Content-Encoding although the client asked for identity.

BOMB_DECODED_BYTES = 64 << 20
BOMB_LIMIT_BYTES = 1 << 20


def _gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(BOMB_DECODED_BYTES >> 20)]
    return b"".join([*parts, compressor.flush()])


class _RawServer:
    """Answers each of ``connections`` connections on 127.0.0.1 with one canned response.

    The body goes out chunked, 64 KiB at a time, without a Content-Length; a client that
    hangs up early is expected.
    """

    def __init__(self, status_line: bytes, encoding: bytes, body: bytes, connections: int = 1):
        self.head = (
            status_line + b"\r\nContent-Type: application/json\r\nContent-Encoding: " + encoding
        ) + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        self.body = body
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10.0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, args=(connections,), name="raw-srv")
        self.thread.start()

    def _serve(self, connections: int) -> None:
        for _ in range(connections):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self.requests.append(conn.recv(65536))
                    conn.sendall(self.head)
                    for i in range(0, len(self.body), 1 << 16):
                        part = self.body[i : i + (1 << 16)]
                        conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                    conn.sendall(b"0\r\n\r\n")
                except OSError:
                    pass  # the client stopped reading

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10.0)


@pytest.fixture
def raw_servers() -> Iterator[Callable[..., _RawServer]]:
    servers: list[_RawServer] = []

    def start(status_line: bytes, encoding: bytes, body: bytes, connections: int = 1) -> _RawServer:
        server = _RawServer(status_line, encoding, body, connections)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _peak_bytes_of(call: Callable[[], object]) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    error: BaseException | None = None
    try:
        call()
    except MLServiceError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


def test_a_gzip_bomb_over_http_is_refused_with_bounded_memory(
    make: Callable[..., MLClient], raw_servers: Callable[..., _RawServer]
) -> None:
    server = raw_servers(b"HTTP/1.1 200 OK", b"gzip", _gzip_bomb())
    client = make(url=server.url, max_response_bytes=BOMB_LIMIT_BYTES, retry=RetryPolicy.none())
    peak, error = _peak_bytes_of(lambda: client.predict(4001))
    assert isinstance(error, ResponseTooLargeError)
    # Before the fix httpx inflated whole network chunks: 140+ MiB for this 64 KiB body.
    assert peak < 3 * BOMB_LIMIT_BYTES, f"peak {peak} bytes for a {BOMB_LIMIT_BYTES}-byte limit"
    assert b"accept-encoding: identity" in server.requests[0].lower()


async def test_a_gzip_bomb_over_http_is_refused_with_bounded_memory_async(
    amake: Callable[..., AsyncMLClient], raw_servers: Callable[..., _RawServer]
) -> None:
    server = raw_servers(b"HTTP/1.1 200 OK", b"gzip", _gzip_bomb())
    client = amake(url=server.url, max_response_bytes=BOMB_LIMIT_BYTES, retry=RetryPolicy.none())
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError):
            await client.predict(4001)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 3 * BOMB_LIMIT_BYTES, f"peak {peak} bytes for a {BOMB_LIMIT_BYTES}-byte limit"


@pytest.mark.parametrize(
    ("status_line", "error", "breaker_failures"),
    [
        (b"HTTP/1.1 400 Bad Request", BadRequestError, 0),
        (b"HTTP/1.1 404 Not Found", NotFoundError, 0),
        (b"HTTP/1.1 503 Service Unavailable", ServerError, 1),
    ],
    ids=["400", "404", "503"],
)
def test_a_status_with_an_undecodable_body_keeps_its_error_over_http(
    make: Callable[..., MLClient],
    raw_servers: Callable[..., _RawServer],
    status_line: bytes,
    error: type[ServiceStatusError],
    breaker_failures: int,
) -> None:
    server = raw_servers(status_line, b"gzip", b"this is not gzip")
    client = make(url=server.url, retry=RetryPolicy.none())
    with pytest.raises(error) as info:
        client.training_status("training-1")
    assert type(info.value) is error
    assert info.value.status_code == int(status_line.split()[1])
    assert client.breaker.metrics().total_failures == breaker_failures


def test_an_unsupported_encoding_over_http_is_malformed(
    make: Callable[..., MLClient], raw_servers: Callable[..., _RawServer]
) -> None:
    server = raw_servers(b"HTTP/1.1 200 OK", b"br", b"\x0b\x02\x80{}\x03")
    with pytest.raises(MalformedResponseError, match="unsupported content encoding 'br'"):
        make(url=server.url, retry=RetryPolicy.none()).predict(4001)


# --------------------------------------------------------------------------- deadline


def test_the_deadline_cuts_the_timeout_of_the_last_attempt_over_http(
    make: Callable[..., MLClient], svc: FakeMLService
) -> None:
    """Real socket timeouts: a retry gets only what is left of the deadline."""
    svc.set_faults(Faults(latency_s=3.0, endpoints=frozenset({"predict"})))
    timeout_s, deadline_s = 0.3, 0.4
    retry = RetryPolicy(max_retries=1, backoff_base_s=0.0, backoff_max_s=0.0, jitter=0.0)
    durations: dict[str, float] = {}
    attempts: dict[str, int] = {}
    for name, policy in (("free", retry), ("deadline", replace(retry, deadline_s=deadline_s))):
        client = make(timeout_s=timeout_s, retry=policy, clock=time.monotonic)
        started = time.monotonic()
        with pytest.raises(ServiceTimeoutError) as info:
            client.predict(4001)
        durations[name] = time.monotonic() - started
        attempts[name] = info.value.attempts
    assert attempts == {"free": 2, "deadline": 2}
    # Two full timeouts (0.6 s) against a full one and one cut to 0.1 s (0.4 s): the
    # retry used to get the full 0.3 s. A ratio of two durations, not an absolute time.
    assert durations["deadline"] < 0.8 * durations["free"], durations
