"""MLClient over respx / httpx.MockTransport: every operation, status, error and retry rule."""

from __future__ import annotations

import base64
import email.utils
import functools
import json
import logging
import random
import threading
import time
import traceback
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from pganalytics_core.breaker import BreakerConfig, CircuitBreaker, State
from pganalytics_core.cache import PredictionCache
from pganalytics_core.client import BREAKER_NAME, DEFAULT_MAX_RESPONSE_BYTES, MLClient
from pganalytics_core.errors import (
    BadRequestError,
    CircuitOpenError,
    ConfigError,
    MalformedResponseError,
    MLServiceError,
    NotFoundError,
    PgAnalyticsError,
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


def prediction_body(query_hash: int = 4001, ms: float = 12.5) -> dict[str, Any]:
    return {
        "query_hash": query_hash,
        "predicted_execution_time_ms": ms,
        "confidence_score": 0.87,
        "confidence_interval": {
            "lower_bound_ms": ms - 2,
            "upper_bound_ms": ms + 2,
            "std_dev_ms": 1.0,
        },
        "scenario": "current",
        "model_version": "v1.0",
        "prediction_timestamp": "2026-11-26T21:14:24.123456",
        "source": "database",
    }


TRAIN_BODY: dict[str, Any] = {
    "job_id": JOB_ID,
    "status": "training",
    "database_name": "pganalytics",
    "lookback_days": 90,
    "model_type": "linear_regression",
    "message": "Model training started in background",
}


def status_body(status: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": JOB_ID,
        "status": status,
        "created_at": "2026-11-26T21:14:24",
        "updated_at": "2026-11-26T21:14:25",
    }
    if status == "completed":
        body.update(model_id="model-7", r_squared=0.8, training_samples=900, feature_count=1)
        body["feature_importance"] = {"index_count": 1.0}
    if status == "failed":
        body["error"] = "Insufficient training data"
    return body


VALIDATE_BODY: dict[str, Any] = {
    "prediction_id": "p-1",
    "query_hash": 4001,
    "error_percent": 16.67,
    "accuracy_score": 0.833,
    "within_confidence_interval": True,
    "message": "Prediction validation recorded",
}
DETECT_BODY: dict[str, Any] = {
    "patterns_detected": 1,
    "patterns": [{"type": "n_plus_one", "description": "d", "confidence": 0.9, "metadata": {}}],
    "timestamp": "2026-11-26T21:14:24",
}

# operation -> (method, path, success status, success body, call)
Call = Callable[[MLClient], object]
OPERATIONS: dict[str, tuple[str, str, int, dict[str, Any], Call]] = {
    "predict": ("POST", PREDICT_PATH, 200, prediction_body(), lambda c: c.predict(4001)),
    "train": ("POST", TRAIN_PATH, 202, TRAIN_BODY, lambda c: c.train()),
    "training_status": (
        "GET",
        STATUS_PATH,
        200,
        status_body("training"),
        lambda c: c.training_status(JOB_ID),
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
    ),
    "detect_patterns": (
        "POST",
        DETECT_PATH,
        200,
        DETECT_BODY,
        lambda c: c.detect_patterns(database_name="pganalytics", lookback_days=7),
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
def make(router: respx.Router, clock: FakeClock) -> Iterator[Callable[..., MLClient]]:
    """Build clients on ``router`` with the fake clock, no jitter; closes them after."""
    made: list[MLClient] = []

    def build(**overrides: Any) -> MLClient:
        kwargs: dict[str, Any] = {
            "transport": router,
            "sleep": clock.sleep,
            "clock": clock,
            "rng": random.Random(0),
            "retry": RetryPolicy(jitter=0.0),
        }
        kwargs.update(overrides)
        client = MLClient(kwargs.pop("base_url", BASE), **kwargs)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def route_for(router: respx.Router, operation: str) -> respx.Route:
    method, path, *_ = OPERATIONS[operation]
    return router.route(method=method, path=path)


# --------------------------------------------------------------------------- construction


def test_defaults_make_a_breaker_named_ml_service(make: Callable[..., MLClient]) -> None:
    client = make()
    assert client.breaker.name == BREAKER_NAME == "ml-service"
    assert client.breaker.config == BreakerConfig()
    assert client.cache is None
    assert client.base_url == BASE
    assert DEFAULT_MAX_RESPONSE_BYTES == 1 << 20
    assert MLClient().retry == RetryPolicy()


def test_injected_breaker_and_cache_are_used(make: Callable[..., MLClient]) -> None:
    breaker = CircuitBreaker(name="mine")
    cache = PredictionCache()
    client = make(breaker=breaker, cache=cache)
    assert client.breaker is breaker
    assert client.cache is cache


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"timeout_s": 0}, ConfigError, "^timeout_s: "),
        ({"timeout_s": -1.0}, ConfigError, "^timeout_s: "),
        ({"timeout_s": float("inf")}, ConfigError, "^timeout_s: "),
        ({"timeout_s": "5"}, ConfigError, "^timeout_s: "),
        ({"max_response_bytes": 0}, ConfigError, "^max_response_bytes: "),
        ({"max_response_bytes": 1.5}, ConfigError, "^max_response_bytes: "),
        ({"retry": {"max_retries": 1}}, TypeError, "retry must be a RetryPolicy"),
        ({"breaker": "ml"}, TypeError, "breaker must be a CircuitBreaker"),
        ({"cache": {}}, TypeError, "cache must be a PredictionCache"),
        ({"api_key": ""}, ConfigError, "^api_key: "),
        ({"api_key": " key"}, ConfigError, "^api_key: "),
        ({"api_key": "ke\ny"}, ConfigError, "^api_key: "),
        ({"api_key": 1234}, TypeError, "api_key must be a str"),
        ({"api_key": "cl\u00e9"}, ConfigError, "^api_key: "),
        ({"base_url": "ftp://127.0.0.1"}, ConfigError, "^base_url: "),
        ({"base_url": "/relative"}, ConfigError, "^base_url: "),
        ({"base_url": "http://[::1"}, ConfigError, "^base_url: "),
        ({"base_url": "http://127.0.0.1:8081/?x=1"}, ConfigError, "^base_url: "),
        ({"base_url": "http://u:p@127.0.0.1", "api_key": "k"}, ConfigError, "^base_url: "),
        ({"transport": object()}, TypeError, "transport must be"),
    ],
)
def test_invalid_construction(
    make: Callable[..., MLClient], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make(**kwargs)


def test_a_rejected_api_key_is_not_echoed(make: Callable[..., MLClient]) -> None:
    with pytest.raises(ConfigError) as info:
        make(api_key="hunter2-secret\n")
    assert "hunter2" not in str(info.value)


def test_repr_shows_the_base_url_but_no_secret(make: Callable[..., MLClient]) -> None:
    client = make(api_key=API_KEY)
    assert repr(client) == f"<MLClient base_url='{BASE}' breaker='ml-service' state=closed>"
    with_userinfo = make(base_url="http://alice:s3cret@127.0.0.1:8081/ml/")
    assert "s3cret" not in repr(with_userinfo)
    assert "alice" not in repr(with_userinfo)
    assert with_userinfo.base_url == "http://127.0.0.1:8081/ml"


def test_transport_accepts_a_mock_transport(make: Callable[..., MLClient]) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"status": "healthy"})

    assert make(transport=httpx.MockTransport(handler)).health() is True
    assert seen == ["/health"]


# --------------------------------------------------------------------------- requests


def test_predict_sends_compact_json_with_the_headers(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body())
    make(api_key=API_KEY).predict(4001)
    request = route.calls.last.request
    assert request.content == b'{"query_hash":4001,"parameters":{},"scenario":"current"}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["host"] == "127.0.0.1:8081"
    assert request.headers["content-length"] == str(len(request.content))


def test_predict_sends_canonical_parameters_and_the_scenario(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body())
    make().predict(9, parameters={"z": 1, "a": [True, None]}, scenario="optimized")
    assert route.calls.last.request.content == (
        b'{"query_hash":9,"parameters":{"a":[true,null],"z":1},"scenario":"optimized"}'
    )


def test_no_authorization_header_without_an_api_key(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.get("/health").respond(200, json={"status": "healthy"})
    make().health()
    assert "authorization" not in route.calls.last.request.headers


def test_userinfo_in_base_url_becomes_a_basic_header_and_leaves_the_url(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.get("/ml/health").respond(200, json={"status": "healthy"})
    assert make(base_url="http://alice:s3cret@127.0.0.1:8081/ml/").health() is True
    request = route.calls.last.request
    assert request.headers["authorization"] == httpx.BasicAuth("alice", "s3cret")._auth_header
    assert str(request.url) == "http://127.0.0.1:8081/ml/health"


def test_a_url_password_is_scrubbed_from_error_bodies(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    router.get("/health").respond(200, json={"status": "healthy"})
    router.get(STATUS_PATH).respond(403, text="denied for alice:s3cret")
    client = make(base_url="http://alice:s3cret@127.0.0.1:8081")
    with pytest.raises(ServiceStatusError) as info:
        client.training_status(JOB_ID)
    assert info.value.body == "denied for alice:***"


def test_base_url_path_prefix_is_kept(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.post("/ml/api/predict/query-execution").respond(200, json=prediction_body())
    make(base_url="http://127.0.0.1:8081/ml").predict(4001)
    assert route.call_count == 1


def test_train_request(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.post(TRAIN_PATH).respond(202, json=TRAIN_BODY)
    job = make().train(
        database_name="prod", lookback_days=30, model_type="random_forest", force_retrain=True
    )
    assert isinstance(job, TrainingJob)
    assert job.job_id == JOB_ID
    assert job.status is TrainingState.TRAINING
    assert json.loads(route.calls.last.request.content) == {
        "database_name": "prod",
        "lookback_days": 30,
        "model_type": "random_forest",
        "force_retrain": True,
    }


def test_train_defaults(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.post(TRAIN_PATH).respond(202, json=TRAIN_BODY)
    make().train()
    assert json.loads(route.calls.last.request.content) == {
        "database_name": "pganalytics",
        "lookback_days": 90,
        "model_type": "linear_regression",
        "force_retrain": False,
    }


def test_training_status_request(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.get(STATUS_PATH).respond(200, json=status_body("completed"))
    status = make().training_status(JOB_ID)
    assert isinstance(status, TrainingStatus)
    assert status.status is TrainingState.COMPLETED
    assert status.model_id == "model-7"
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.content == b""
    assert "content-type" not in request.headers


def test_validate_request(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.post(VALIDATE_PATH).respond(200, json=VALIDATE_BODY)
    result = make().validate(
        prediction_id="p-1",
        query_hash=4001,
        predicted_execution_time_ms=10,
        actual_execution_time_ms=12.0,
    )
    assert isinstance(result, ValidationResult)
    assert result.within_confidence_interval is True
    assert json.loads(route.calls.last.request.content) == {
        "prediction_id": "p-1",
        "query_hash": 4001,
        "predicted_execution_time_ms": 10,
        "actual_execution_time_ms": 12.0,
        "model_version": "v1.0",
    }


def test_detect_patterns_request(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.post(DETECT_PATH).respond(200, json=DETECT_BODY)
    detection = make().detect_patterns(database_name="prod", lookback_days=3)
    assert isinstance(detection, PatternDetection)
    assert detection.patterns[0].type == "n_plus_one"
    assert json.loads(route.calls.last.request.content) == {
        "database_name": "prod",
        "lookback_days": 3,
    }


def test_predict_returns_a_typed_prediction(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    router.post(PREDICT_PATH).respond(200, json=prediction_body(4001, 12.5))
    prediction = make().predict(4001)
    assert isinstance(prediction, Prediction)
    assert prediction.predicted_execution_time_ms == 12.5
    assert prediction.confidence_interval.lower_bound_ms == 10.5


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "healthy", "service": "ml-service"}, True),
        ({"status": "degraded"}, False),
        ({}, False),
        ([], False),
    ],
)
def test_health_reads_the_status_field(
    make: Callable[..., MLClient], router: respx.Router, body: object, expected: bool
) -> None:
    router.get("/health").respond(200, json=body)
    client = make()
    assert client.health() is expected
    assert client.breaker.metrics().total_successes == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(503, json={"error": "down"}),
        httpx.Response(404, json={"error": "Not found"}),
        httpx.Response(200, text="OK"),
        httpx.Response(200, text="<html>", headers={"content-type": "text/html"}),
    ],
)
def test_health_is_false_for_other_answers_and_is_not_retried(
    make: Callable[..., MLClient], router: respx.Router, response: httpx.Response
) -> None:
    route = router.get("/health").mock(return_value=response)
    assert make().health() is False
    assert route.call_count == 1


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_health_is_false_when_the_service_cannot_be_reached(
    make: Callable[..., MLClient], router: respx.Router, exc: type[Exception]
) -> None:
    route = router.get("/health").mock(side_effect=exc)
    client = make()
    assert client.health() is False
    assert route.call_count == 1
    assert client.breaker.metrics().total_failures == 1


def test_health_raises_when_the_circuit_is_open(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.get("/health").respond(200, json={"status": "healthy"})
    client = make()
    client.breaker.force_open()
    with pytest.raises(CircuitOpenError, match="'ml-service' is open"):
        client.health()
    assert route.call_count == 0


# --------------------------------------------------------------------------- bad arguments


def _validate(**overrides: Any) -> Call:
    """A call of ``validate`` with valid arguments except ``overrides``."""
    kwargs: dict[str, Any] = {
        "prediction_id": "p",
        "query_hash": 1,
        "predicted_execution_time_ms": 1.0,
        "actual_execution_time_ms": 1.0,
    }
    kwargs.update(overrides)
    return lambda c: c.validate(**kwargs)


BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    ("predict 0", lambda c: c.predict(0), ValueError, "query_hash must be > 0"),
    ("predict -1", lambda c: c.predict(-1), ValueError, "query_hash must be > 0"),
    ("predict True", lambda c: c.predict(True), TypeError, "query_hash must be an int"),
    ("predict 1.0", lambda c: c.predict(1.0), TypeError, "query_hash must be an int"),
    ("scenario", lambda c: c.predict(1, scenario="best"), ValueError, "scenario must be one of"),
    (
        "parameters",
        lambda c: c.predict(1, parameters=[1]),
        TypeError,
        "parameters must be a mapping",
    ),
    ("lookback 6", lambda c: c.train(lookback_days=6), ValueError, "lookback_days must be >= 7"),
    (
        "lookback float",
        lambda c: c.train(lookback_days=7.0),
        TypeError,
        "lookback_days must be an int",
    ),
    ("model type", lambda c: c.train(model_type="svm"), ValueError, "model_type must be one of"),
    (
        "database ''",
        lambda c: c.train(database_name=""),
        ValueError,
        "database_name must not be empty",
    ),
    (
        "force str",
        lambda c: c.train(force_retrain="yes"),
        TypeError,
        "force_retrain must be a bool",
    ),
    ("job ..", lambda c: c.training_status(".."), ValueError, "not a plain path segment"),
    ("job .", lambda c: c.training_status("."), ValueError, "not a plain path segment"),
    ("job ../x", lambda c: c.training_status("../x"), ValueError, "not a plain path segment"),
    ("job a/b", lambda c: c.training_status("a/b"), ValueError, "not a plain path segment"),
    ("job ?", lambda c: c.training_status("a?b=1"), ValueError, "not a plain path segment"),
    ("job #", lambda c: c.training_status("a#b"), ValueError, "not a plain path segment"),
    ("job space", lambda c: c.training_status("a b"), ValueError, "not a plain path segment"),
    ("job newline", lambda c: c.training_status("ab\n"), ValueError, "not a plain path segment"),
    ("job %2e", lambda c: c.training_status("%2e%2e"), ValueError, "not a plain path segment"),
    ("job empty", lambda c: c.training_status(""), ValueError, "not a plain path segment"),
    ("job long", lambda c: c.training_status("x" * 201), ValueError, "not a plain path segment"),
    ("job int", lambda c: c.training_status(5), TypeError, "job_id must be a str"),
    ("wait job", lambda c: c.wait_for_training("../x"), ValueError, "not a plain path segment"),
    (
        "wait poll",
        lambda c: c.wait_for_training("j", poll_interval_s=0),
        ValueError,
        "poll_interval_s must be > 0",
    ),
    (
        "wait timeout",
        lambda c: c.wait_for_training("j", timeout_s=float("nan")),
        ValueError,
        "timeout_s must be finite",
    ),
    ("validate id", _validate(prediction_id=" "), ValueError, "prediction_id must not be empty"),
    ("validate hash", _validate(query_hash=0), ValueError, "query_hash must be > 0"),
    (
        "validate predicted 0",
        _validate(predicted_execution_time_ms=0),
        ValueError,
        "predicted_execution_time_ms must be > 0",
    ),
    (
        "validate actual -1",
        _validate(actual_execution_time_ms=-1),
        ValueError,
        "actual_execution_time_ms must be > 0",
    ),
    (
        "validate nan",
        _validate(predicted_execution_time_ms=float("nan")),
        ValueError,
        "must be finite",
    ),
    ("validate str", _validate(actual_execution_time_ms="1"), TypeError, "must be a number"),
    (
        "validate version",
        _validate(model_version=""),
        ValueError,
        "model_version must not be empty",
    ),
    (
        "detect days",
        lambda c: c.detect_patterns(database_name="d", lookback_days=0),
        ValueError,
        "lookback_days must be >= 1",
    ),
    (
        "detect db",
        lambda c: c.detect_patterns(database_name="", lookback_days=1),
        ValueError,
        "database_name must not be empty",
    ),
    ("batch item", lambda c: c.predict_many([1]), TypeError, "PredictionRequest values"),
    (
        "batch concurrency",
        lambda c: c.predict_many([], max_concurrency=0),
        ValueError,
        "max_concurrency must be >= 1",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [case[1:] for case in BAD_CALLS],
    ids=[case[0] for case in BAD_CALLS],
)
def test_bad_arguments_raise_before_any_request(
    make: Callable[..., MLClient], call: Call, error: type[Exception], match: str
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    client = make(transport=httpx.MockTransport(handler))
    with pytest.raises(error, match=match):
        call(client)
    assert sent == []
    assert client.breaker.metrics().total_successes == 0


# --------------------------------------------------------------------------- status codes

# status -> (response, expected type, counts against the breaker, retry_after_s)
STATUSES: dict[str, tuple[httpx.Response, type[ServiceStatusError], bool, float | None]] = {
    "400 json": (
        httpx.Response(400, json={"error": "query_hash must be a positive integer"}),
        BadRequestError,
        False,
        None,
    ),
    "400 empty": (httpx.Response(400), BadRequestError, False, None),
    "401": (httpx.Response(401, json={"error": "unauthorized"}), ServiceStatusError, False, None),
    "403 text": (httpx.Response(403, text="Forbidden"), ServiceStatusError, False, None),
    "404 framework": (
        httpx.Response(404, json={"error": "Not found", "message": "Endpoint not found"}),
        NotFoundError,
        False,
        None,
    ),
    "405 html": (
        httpx.Response(
            405, html="<!doctype html>\n<title>405 Method Not Allowed</title>\n<h1>Method</h1>"
        ),
        ServiceStatusError,
        False,
        None,
    ),
    "408": (httpx.Response(408, text=""), ServiceStatusError, True, None),
    "409": (httpx.Response(409, json={"error": "conflict"}), ServiceStatusError, False, None),
    "415": (httpx.Response(415, json={"error": "unsupported"}), ServiceStatusError, False, None),
    "422": (httpx.Response(422, json={"error": "bad"}), ServiceStatusError, False, None),
    "429": (
        httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "7"}),
        RateLimitedError,
        True,
        7.0,
    ),
    "429 no header": (httpx.Response(429), RateLimitedError, True, None),
    "500 json": (
        httpx.Response(500, json={"error": "Failed to generate prediction"}),
        ServerError,
        True,
        None,
    ),
    "500 text": (httpx.Response(500, text="Internal Server Error\r\n"), ServerError, True, None),
    "501": (httpx.Response(501, json={"error": "nope"}), ServerError, True, None),
    "502 html": (httpx.Response(502, html="<h1>Bad Gateway</h1>"), ServerError, True, None),
    "503": (
        httpx.Response(503, json={"error": "busy"}, headers={"Retry-After": "2"}),
        ServerError,
        True,
        2.0,
    ),
    "504 empty": (httpx.Response(504), ServerError, True, None),
    "301": (
        httpx.Response(301, headers={"Location": "http://elsewhere/"}),
        ServiceStatusError,
        True,
        None,
    ),
}


@pytest.mark.parametrize("status", sorted(STATUSES))
@pytest.mark.parametrize("operation", OPERATION_NAMES)
def test_every_status_maps_to_its_error(
    make: Callable[..., MLClient], router: respx.Router, operation: str, status: str
) -> None:
    response, expected, breaker_failure, retry_after = STATUSES[status]
    route = route_for(router, operation).mock(return_value=response)
    client = make(retry=RetryPolicy.none())
    with pytest.raises(expected) as info:
        OPERATIONS[operation][4](client)
    error = info.value
    assert type(error) is expected
    assert error.status_code == response.status_code
    assert error.operation == operation
    assert error.attempts == 1
    assert error.retry_after_s == retry_after
    assert error.body == trim_body(response.content)
    assert str(error).startswith(f"{operation}: ML service answered {response.status_code}")
    assert route.call_count == 1
    metrics = client.breaker.metrics()
    assert (metrics.total_failures, metrics.total_successes) == (
        (1, 0) if breaker_failure else (0, 1)
    )


def test_an_error_body_is_trimmed(make: Callable[..., MLClient], router: respx.Router) -> None:
    router.post(PREDICT_PATH).respond(500, text="x" * 10_000)
    with pytest.raises(ServerError) as info:
        make(retry=RetryPolicy.none()).predict(1)
    assert len(info.value.body) == 200
    assert info.value.body.endswith("...")


@pytest.mark.parametrize("operation", OPERATION_NAMES)
def test_every_operation_parses_its_success_answer(
    make: Callable[..., MLClient], router: respx.Router, operation: str
) -> None:
    _, _, status, body, call = OPERATIONS[operation]
    route = route_for(router, operation).respond(status, json=body)
    client = make()
    result = call(client)
    assert route.call_count == 1
    assert client.breaker.metrics().total_successes == 1
    assert hasattr(result, "__dataclass_fields__")


def test_a_failed_job_on_the_status_endpoint_is_a_result(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    router.get(STATUS_PATH).respond(400, json=status_body("failed"))
    client = make()
    status = client.training_status(JOB_ID)
    assert status.status is TrainingState.FAILED
    assert status.error == "Insufficient training data"
    assert client.breaker.metrics().total_successes == 1


def test_a_400_with_a_non_failed_job_body_is_a_bad_request(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    router.get(STATUS_PATH).respond(400, json=status_body("training"))
    with pytest.raises(BadRequestError):
        make().training_status(JOB_ID)


# --------------------------------------------------------------------------- httpx errors

# exception -> (expected type, request_sent)
HTTPX_ERRORS: dict[type[httpx.HTTPError], tuple[type[MLServiceError], bool | None]] = {
    httpx.ConnectError: (ServiceConnectionError, False),
    httpx.ConnectTimeout: (ServiceTimeoutError, False),
    httpx.PoolTimeout: (ServiceTimeoutError, False),
    httpx.ReadTimeout: (ServiceTimeoutError, True),
    httpx.WriteTimeout: (ServiceTimeoutError, True),
    httpx.ReadError: (ServiceConnectionError, True),
    httpx.WriteError: (ServiceConnectionError, True),
    httpx.CloseError: (ServiceConnectionError, True),
    httpx.RemoteProtocolError: (ServiceConnectionError, True),
    httpx.LocalProtocolError: (ServiceConnectionError, True),
    httpx.ProxyError: (ServiceConnectionError, True),
    httpx.UnsupportedProtocol: (ServiceConnectionError, False),
    httpx.DecodingError: (MalformedResponseError, None),
    httpx.TooManyRedirects: (MLServiceError, None),
}


@pytest.mark.parametrize("exc", list(HTTPX_ERRORS), ids=lambda e: e.__name__)
@pytest.mark.parametrize("operation", OPERATION_NAMES)
def test_every_httpx_exception_is_translated_and_chained(
    make: Callable[..., MLClient], router: respx.Router, operation: str, exc: type[httpx.HTTPError]
) -> None:
    expected, request_sent = HTTPX_ERRORS[exc]
    route_for(router, operation).mock(side_effect=exc)
    client = make(retry=RetryPolicy.none())
    with pytest.raises(expected) as info:
        OPERATIONS[operation][4](client)
    error = info.value
    assert type(error) is expected
    assert isinstance(error.__cause__, exc)
    assert error.operation == operation
    assert error.attempts == 1
    assert str(error).startswith(f"{operation}: {exc.__name__}")
    if request_sent is not None:
        assert error.request_sent is request_sent  # type: ignore[attr-defined]
    assert client.breaker.metrics().total_failures == 1


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (
            httpx.Response(200, text="not json", headers={"content-type": "application/json"}),
            "not JSON",
        ),
        (
            httpx.Response(200, content=b"\xff\xfe{", headers={"content-type": "application/json"}),
            "not JSON",
        ),
        (
            httpx.Response(200, html="<html>portal</html>"),
            "expected JSON, got content type 'text/html",
        ),
        (httpx.Response(200, json=[1, 2]), "expected a JSON object, got array"),
        (httpx.Response(200, json={"query_hash": 1}), "missing field"),
        (
            httpx.Response(200, json={**prediction_body(), "confidence_score": "high"}),
            "must be a number",
        ),
    ],
)
def test_a_malformed_success_is_an_error_a_breaker_failure_and_not_retried(
    make: Callable[..., MLClient], router: respx.Router, response: httpx.Response, match: str
) -> None:
    route = router.post(PREDICT_PATH).mock(return_value=response)
    client = make()
    with pytest.raises(MalformedResponseError, match=match) as info:
        client.predict(4001)
    assert info.value.operation == "predict"
    assert info.value.attempts == 1
    assert route.call_count == 1
    assert client.breaker.metrics().total_failures == 1


def test_json_without_a_content_type_is_accepted(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    router.post(PREDICT_PATH).respond(200, content=json.dumps(prediction_body()).encode())
    assert make().predict(4001).query_hash == 4001


class _Chunks(httpx.SyncByteStream):
    """A response body that counts how many of its chunks were read."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk = chunk
        self.count = count
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.count):
            self.read += 1
            yield self.chunk

    def close(self) -> None:
        self.closed = True


class _SlowChunks(httpx.SyncByteStream):
    """A response body whose every chunk takes ``step_s`` seconds of a fake clock."""

    def __init__(self, clock: FakeClock, step_s: float, count: int) -> None:
        self.clock = clock
        self.step_s = step_s
        self.count = count
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.count):
            self.clock.advance(self.step_s)
            self.read += 1
            yield b" "


def test_the_exchange_deadline_runs_on_the_clients_clock(
    make: Callable[..., MLClient], clock: FakeClock
) -> None:
    # Each chunk takes 3 s of the client's (fake) clock and none of the real one: the
    # attempt's 5 s run out after the second chunk.
    body = _SlowChunks(clock, 3.0, 10)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=body)

    client = make(
        transport=httpx.MockTransport(handler), timeout_s=5.0, retry=RetryPolicy(max_retries=0)
    )
    started = clock()
    with pytest.raises(ServiceTimeoutError, match="deadline passed while reading the body"):
        client.predict(4001)
    assert body.read == 2
    assert clock() - started == pytest.approx(6.0)


def test_a_declared_oversized_body_is_refused_without_reading_it(
    make: Callable[..., MLClient],
) -> None:
    body = _Chunks(b"x" * 1024, 4096)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "application/json", "content-length": str(4096 * 1024)},
            stream=body,
        )

    client = make(transport=httpx.MockTransport(handler), max_response_bytes=100_000)
    with pytest.raises(ResponseTooLargeError, match="max_response_bytes=100000") as info:
        client.predict(4001)
    assert info.value.limit_bytes == 100_000
    assert isinstance(info.value, MalformedResponseError)
    assert body.read == 0
    assert body.closed
    assert client.breaker.metrics().total_failures == 1


def test_an_undeclared_oversized_body_is_refused_while_streaming(
    make: Callable[..., MLClient],
) -> None:
    body = _Chunks(b"x" * 1024, 4096)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=body)

    client = make(transport=httpx.MockTransport(handler), max_response_bytes=10 * 1024)
    with pytest.raises(ResponseTooLargeError):
        client.predict(4001)
    assert body.read == 11  # stopped at the first chunk beyond the limit
    assert body.closed


def test_a_body_of_exactly_the_limit_is_accepted(make: Callable[..., MLClient]) -> None:
    content = json.dumps(prediction_body()).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content, headers={"content-type": "application/json"})

    client = make(transport=httpx.MockTransport(handler), max_response_bytes=len(content))
    assert client.predict(4001).query_hash == 4001
    tight = make(transport=httpx.MockTransport(handler), max_response_bytes=len(content) - 1)
    with pytest.raises(ResponseTooLargeError):
        tight.predict(4001)


def test_only_the_start_of_a_huge_error_body_is_read(make: Callable[..., MLClient]) -> None:
    body = _Chunks(b"e" * 1024, 4096)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, stream=body)

    with pytest.raises(ServerError) as info:
        make(transport=httpx.MockTransport(handler), retry=RetryPolicy.none()).predict(1)
    assert body.read == 4
    assert body.closed
    assert info.value.body == "e" * 197 + "..."


# --------------------------------------------------------------------------- secrets


def test_the_api_key_never_appears_in_errors_or_logs(
    make: Callable[..., MLClient], router: respx.Router, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f'{{"error": "bad token Bearer {API_KEY}"}}'
    router.post(PREDICT_PATH).mock(
        side_effect=[httpx.Response(500, text=echo), httpx.ConnectError("refused")]
    )
    client = make(api_key=API_KEY, retry=RetryPolicy.none())
    errors: list[BaseException] = []
    for _ in range(2):
        with pytest.raises(MLServiceError) as info:
            client.predict(4001)
        errors.append(info.value)
    assert "Bearer ***" in errors[0].body  # type: ignore[attr-defined]
    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
        assert all(API_KEY not in str(value) for value in vars(error).values())
    assert API_KEY not in repr(client)
    assert API_KEY not in caplog.text


# --------------------------------------------------------------------------- retries


def test_5xx_is_retried_with_exponential_backoff(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(200, json=prediction_body()),
        ]
    )
    client = make(retry=RetryPolicy(backoff_base_s=0.1, jitter=0.0))
    assert client.predict(4001).query_hash == 4001
    assert route.call_count == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    metrics = client.breaker.metrics()
    assert (metrics.total_failures, metrics.total_successes) == (2, 1)


def test_giving_up_reports_the_number_of_attempts(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).respond(500, json={"error": "boom"})
    with pytest.raises(ServerError) as info:
        make(retry=RetryPolicy(max_retries=3, jitter=0.0)).predict(1)
    assert info.value.attempts == 4
    assert route.call_count == 4
    assert len(clock.sleeps) == 3


def test_jitter_comes_from_the_injected_rng(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    router.post(PREDICT_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=prediction_body())]
    )
    policy = RetryPolicy(backoff_base_s=1.0, jitter=1.0)
    make(retry=policy, rng=random.Random(5)).predict(1)
    assert clock.sleeps == [policy.backoff_s(1, random.Random(5))]


def test_retry_after_is_honoured(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503, headers={"Retry-After": "3"}),
            httpx.Response(200, json=prediction_body()),
        ]
    )
    make().predict(1)
    assert route.call_count == 3
    assert clock.sleeps == [7.0, 3.0]


def test_retry_after_beyond_the_cap_gives_up_at_once(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).respond(429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimitedError) as info:
        make(retry=RetryPolicy(max_retry_after_s=30.0)).predict(1)
    assert info.value.retry_after_s == 120.0
    assert route.call_count == 1
    assert clock.sleeps == []


def test_retry_after_as_an_http_date(make: Callable[..., MLClient], router: respx.Router) -> None:
    when = email.utils.formatdate(time.time() + 3600, usegmt=True)
    router.post(PREDICT_PATH).respond(429, headers={"Retry-After": when})
    with pytest.raises(RateLimitedError) as info:
        make().predict(1)
    assert info.value.retry_after_s is not None
    assert 3500 < info.value.retry_after_s <= 3600


def test_the_deadline_bounds_the_retries(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).mock(side_effect=httpx.ReadTimeout)
    policy = RetryPolicy(max_retries=5, backoff_base_s=0.1, jitter=0.0, deadline_s=0.25)
    with pytest.raises(ServiceTimeoutError) as info:
        make(retry=policy).predict(1)
    assert route.call_count == 2  # 0.1 s fits in 0.25 s; 0.1 + 0.2 does not
    assert clock.sleeps == [0.1]
    assert info.value.attempts == 2


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.Response(408)],
    ids=["connect", "read-timeout", "protocol", "408"],
)
def test_idempotent_calls_are_retried_after_transport_failures(
    make: Callable[..., MLClient], router: respx.Router, failure: object
) -> None:
    route = router.post(VALIDATE_PATH).mock(
        side_effect=[failure, httpx.Response(200, json=VALIDATE_BODY)]
    )
    OPERATIONS["validate"][4](make())
    assert route.call_count == 2


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_caller_faults_are_not_retried(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock, status: int
) -> None:
    route = router.post(PREDICT_PATH).respond(status)
    with pytest.raises(ServiceStatusError):
        make().predict(1)
    assert route.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(503, headers={"Retry-After": "1"}),
        httpx.Response(429),
        httpx.ReadTimeout,
        httpx.WriteTimeout,
        httpx.ReadError,
        httpx.RemoteProtocolError,
    ],
    ids=["500", "503", "429", "read-timeout", "write-timeout", "read-error", "protocol"],
)
def test_train_is_not_retried_once_the_request_may_have_arrived(
    make: Callable[..., MLClient], router: respx.Router, failure: object
) -> None:
    route = router.post(TRAIN_PATH).mock(
        side_effect=[failure, httpx.Response(202, json=TRAIN_BODY)]
    )
    with pytest.raises(MLServiceError) as info:
        make().train()
    assert info.value.attempts == 1
    assert route.call_count == 1


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_train_is_retried_when_the_request_never_left(
    make: Callable[..., MLClient], router: respx.Router, failure: type[Exception]
) -> None:
    route = router.post(TRAIN_PATH).mock(
        side_effect=[failure, failure, httpx.Response(202, json=TRAIN_BODY)]
    )
    assert make().train().job_id == JOB_ID
    assert route.call_count == 3


def test_a_circuit_opening_mid_retry_ends_the_call_chained_to_the_last_error(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).respond(503)
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=2), name="ml-service", clock=clock)
    with pytest.raises(CircuitOpenError) as info:
        make(breaker=breaker, retry=RetryPolicy(max_retries=5, jitter=0.0)).predict(1)
    assert route.call_count == 2
    assert isinstance(info.value.__cause__, ServerError)
    assert info.value.__cause__.attempts == 2
    assert breaker.state is State.OPEN


# --------------------------------------------------------------------------- breaker


def test_a_hundred_bad_requests_never_open_the_circuit(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(400, json={"error": "bad"})
    client = make()
    for _ in range(100):
        with pytest.raises(BadRequestError):
            client.predict(1)
    metrics = client.breaker.metrics()
    assert metrics.state is State.CLOSED
    assert (metrics.total_failures, metrics.total_successes) == (0, 100)
    assert route.call_count == 100


def test_not_found_answers_never_open_the_circuit(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    router.post(DETECT_PATH).respond(404, json={"error": "Not found"})
    client = make()
    for _ in range(20):
        with pytest.raises(NotFoundError):
            client.detect_patterns(database_name="d", lookback_days=1)
    assert client.breaker.state is State.CLOSED


def test_server_errors_open_the_circuit_and_then_no_request_is_sent(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.post(PREDICT_PATH).respond(500)
    breaker = CircuitBreaker(name="ml-service", clock=clock)
    client = make(breaker=breaker, retry=RetryPolicy.none())
    for _ in range(5):
        with pytest.raises(ServerError):
            client.predict(1)
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as info:
        client.predict(1)
    assert info.value.retry_after_s == pytest.approx(30.0)
    assert route.call_count == 5
    assert breaker.metrics().total_rejections == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(408), httpx.Response(429), httpx.ReadTimeout, httpx.Response(200, text="x")],
    ids=["408", "429", "timeout", "malformed"],
)
def test_other_service_failures_open_the_circuit(
    make: Callable[..., MLClient], router: respx.Router, failure: object
) -> None:
    router.post(PREDICT_PATH).mock(side_effect=[failure] * 5)
    client = make(retry=RetryPolicy.none())
    for _ in range(5):
        with pytest.raises(MLServiceError):
            client.predict(1)
    assert client.breaker.state is State.OPEN


def test_a_caller_fault_probe_while_half_open_frees_its_slot_and_counts_as_success(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    router.get(STATUS_PATH).mock(side_effect=[httpx.Response(500), httpx.Response(404)])
    config = BreakerConfig(failure_threshold=1, success_threshold=1, open_timeout_s=10.0)
    breaker = CircuitBreaker(config, clock=clock)
    client = make(breaker=breaker, retry=RetryPolicy.none())
    with pytest.raises(ServerError):
        client.training_status(JOB_ID)
    assert breaker.state is State.OPEN
    clock.advance(10.0)
    with pytest.raises(NotFoundError):
        client.training_status(JOB_ID)
    assert breaker.state is State.CLOSED
    assert breaker.metrics().half_open_in_flight == 0


# --------------------------------------------------------------------------- training wait


def test_wait_for_training_polls_until_completed(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.get(STATUS_PATH).mock(
        side_effect=[
            httpx.Response(200, json=status_body("queued")),
            httpx.Response(200, json=status_body("training")),
            httpx.Response(200, json=status_body("completed")),
        ]
    )
    status = make().wait_for_training(JOB_ID, poll_interval_s=0.5, timeout_s=10.0)
    assert status.status is TrainingState.COMPLETED
    assert status.r_squared == 0.8
    assert route.call_count == 3
    assert clock.sleeps == [0.5, 0.5]


def test_wait_for_training_raises_when_the_job_fails(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    router.get(STATUS_PATH).mock(
        side_effect=[
            httpx.Response(200, json=status_body("training")),
            httpx.Response(400, json=status_body("failed")),
        ]
    )
    with pytest.raises(TrainingJobFailedError, match="Insufficient training data") as info:
        make().wait_for_training(JOB_ID, poll_interval_s=1.0)
    assert info.value.job_id == JOB_ID
    assert info.value.reason == "Insufficient training data"
    assert clock.sleeps == [1.0]


def test_wait_for_training_gives_up_at_its_deadline(
    make: Callable[..., MLClient], router: respx.Router, clock: FakeClock
) -> None:
    route = router.get(STATUS_PATH).respond(200, json=status_body("training"))
    with pytest.raises(TrainingTimeoutError, match=r"still training after 1\.200 s") as info:
        make().wait_for_training(JOB_ID, poll_interval_s=0.5, timeout_s=1.2)
    assert isinstance(info.value, ServiceTimeoutError)
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.2])
    # Polls at 0, 0.5 and 1.0 s; none at 1.2 s, where it would have no time left.
    assert route.call_count == 3
    assert info.value.job_id == JOB_ID
    assert info.value.last_status == "training"
    assert info.value.waited_s == pytest.approx(1.2)


def test_wait_for_training_propagates_an_unknown_job(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    router.get(STATUS_PATH).respond(404, json={"error": "Job not found"})
    with pytest.raises(NotFoundError, match="Job not found"):
        make().wait_for_training(JOB_ID)


# --------------------------------------------------------------------------- cache


def test_a_cache_hit_sends_nothing(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body())
    cache = PredictionCache()
    client = make(cache=cache)
    first = client.predict(4001, parameters={"a": 1, "b": 2})
    second = client.predict(4001, parameters={"b": 2, "a": 1})
    assert second is first
    assert route.call_count == 1
    assert client.predict(4001, parameters={"a": 1}, scenario="optimized") is not first
    assert route.call_count == 2
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size) == (1, 2, 2)


def test_a_cache_hit_is_served_while_the_circuit_is_open(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body())
    client = make(cache=PredictionCache())
    first = client.predict(4001)
    client.breaker.force_open()
    assert client.predict(4001) is first
    with pytest.raises(CircuitOpenError):
        client.predict(4002)
    assert route.call_count == 1


def test_errors_are_never_cached(make: Callable[..., MLClient], router: respx.Router) -> None:
    route = router.post(PREDICT_PATH).mock(
        side_effect=[httpx.Response(400), httpx.Response(200, json=prediction_body())]
    )
    cache = PredictionCache()
    client = make(cache=cache)
    with pytest.raises(BadRequestError):
        client.predict(4001)
    assert len(cache) == 0
    assert client.predict(4001).query_hash == 4001
    assert route.call_count == 2


# --------------------------------------------------------------------------- batches


def _echo_handler(
    fail: frozenset[int] = frozenset(),
) -> tuple[Callable[[httpx.Request], httpx.Response], list[int]]:
    """A handler answering a prediction for the request's hash (400 for ``fail``)."""
    seen: list[int] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        query_hash = json.loads(request.content)["query_hash"]
        with lock:
            seen.append(query_hash)
        if query_hash in fail:
            return httpx.Response(400, json={"error": "no such query"})
        return httpx.Response(200, json=prediction_body(query_hash, float(query_hash)))

    return handler, seen


def test_predict_many_keeps_order_dedups_and_isolates_failures(
    make: Callable[..., MLClient],
) -> None:
    handler, seen = _echo_handler(fail=frozenset({13}))
    client = make(transport=httpx.MockTransport(handler))
    requests = [PredictionRequest.create(h) for h in (5, 13, 7, 5, 9, 7)]
    threads_before = threading.active_count()
    outcomes = client.predict_many(requests, max_concurrency=4)
    assert threading.active_count() == threads_before
    assert [o.request for o in outcomes] == requests
    assert sorted(seen) == [5, 7, 9, 13]
    assert outcomes[0] is outcomes[3]
    assert outcomes[2] is outcomes[5]
    assert [o.ok for o in outcomes] == [True, False, True, True, True, True]
    assert [o.prediction.query_hash for o in outcomes if o.prediction] == [5, 7, 5, 9, 7]
    assert isinstance(outcomes[1].error, BadRequestError)
    with pytest.raises(BadRequestError):
        outcomes[1].unwrap()


def test_predict_many_serves_cache_hits_and_fills_the_cache(make: Callable[..., MLClient]) -> None:
    handler, seen = _echo_handler()
    cache = PredictionCache()
    client = make(transport=httpx.MockTransport(handler), cache=cache)
    cached = client.predict(5)
    seen.clear()
    outcomes = client.predict_many([PredictionRequest.create(h) for h in (5, 6, 7)])
    assert sorted(seen) == [6, 7]
    assert outcomes[0].prediction is cached
    assert len(cache) == 3
    assert client.predict(6) is outcomes[1].prediction


def test_predict_many_of_nothing(make: Callable[..., MLClient]) -> None:
    handler, seen = _echo_handler()
    assert make(transport=httpx.MockTransport(handler)).predict_many([]) == []
    assert seen == []


def test_predict_many_runs_exactly_max_concurrency_requests_at_once(
    make: Callable[..., MLClient],
) -> None:
    concurrency = 3
    barrier = threading.Barrier(concurrency, timeout=10)
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        barrier.wait()  # passes only when `concurrency` requests are in flight together
        with lock:
            in_flight -= 1
        query_hash = json.loads(request.content)["query_hash"]
        return httpx.Response(200, json=prediction_body(query_hash))

    client = make(transport=httpx.MockTransport(handler))
    outcomes = client.predict_many(
        [PredictionRequest.create(h) for h in range(1, 10)], max_concurrency=concurrency
    )
    assert all(o.ok for o in outcomes)
    assert peak == concurrency


def test_predict_many_reports_an_open_circuit_per_request(make: Callable[..., MLClient]) -> None:
    handler, seen = _echo_handler()
    client = make(transport=httpx.MockTransport(handler))
    client.breaker.force_open()
    outcomes = client.predict_many([PredictionRequest.create(h) for h in (1, 2)])
    assert all(isinstance(o.error, CircuitOpenError) for o in outcomes)
    assert seen == []


# --------------------------------------------------------------------------- threads


def test_ten_threads_share_one_client_with_exact_counts(make: Callable[..., MLClient]) -> None:
    handler, seen = _echo_handler()
    client = make(transport=httpx.MockTransport(handler))
    threads_n, calls = 10, 30
    barrier = threading.Barrier(threads_n)
    wrong: list[tuple[int, int]] = []

    def work(index: int) -> None:
        barrier.wait()
        for i in range(calls):
            query_hash = index * 1000 + i + 1
            got = client.predict(query_hash).query_hash
            if got != query_hash:
                wrong.append((query_hash, got))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(seen) == threads_n * calls
    assert len(set(seen)) == threads_n * calls
    assert client.breaker.metrics().total_successes == threads_n * calls


# --------------------------------------------------------------------------- lifecycle


def test_context_manager_closes_the_pool(router: respx.Router) -> None:
    router.get("/health").respond(200, json={"status": "healthy"})
    with MLClient(BASE, transport=router) as client:
        assert client.health() is True
    with pytest.raises(RuntimeError, match="closed"):
        client.health()
    client.close()  # idempotent


def test_every_error_of_the_client_is_a_pganalytics_error() -> None:
    for cls in (CircuitOpenError, MLServiceError, TrainingTimeoutError, ResponseTooLargeError):
        assert issubclass(cls, PgAnalyticsError)


# --------------------------------------------------------------------------- encodings
# httpx decodes a body while it is read (iter_bytes) and would inflate a compression bomb
# before any size check: the client asks for identity and inflates with a bounded output.

BOMB_DECODED_BYTES = 64 << 20
BOMB_LIMIT_BYTES = 1 << 20


def _compress(data: bytes, encoding: str) -> bytes:
    wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}[encoding.lower()]
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


@functools.cache
def _bomb(encoding: str) -> bytes:
    """BOMB_DECODED_BYTES of zeros, compressed (~64 KiB), built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(BOMB_DECODED_BYTES >> 20)]
    return b"".join([*parts, compressor.flush()])


class _Parts(httpx.SyncByteStream):
    """A body delivered in chunks, not read when the response is built (like the network)."""

    def __init__(self, body: bytes, chunk_bytes: int = 1 << 14) -> None:
        self.parts = [body[i : i + chunk_bytes] for i in range(0, len(body), chunk_bytes)]
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            self.read += 1
            yield part

    def close(self) -> None:
        self.closed = True


def _streamed(
    status: int, body: bytes, encoding: str | None = None, content_type: str = "application/json"
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": content_type}
        if encoding is not None:
            headers["content-encoding"] = encoding
        return httpx.Response(status, headers=headers, stream=_Parts(body))

    return handler


def _traced_peak_bytes(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
    except PgAnalyticsError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_the_client_asks_for_an_identity_encoding(
    make: Callable[..., MLClient], router: respx.Router
) -> None:
    route = router.post(PREDICT_PATH).respond(200, json=prediction_body())
    make().predict(4001)
    assert route.calls.last.request.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused_within_a_small_multiple_of_the_limit(
    make: Callable[..., MLClient], encoding: str
) -> None:
    bomb = _bomb(encoding)
    client = make(
        transport=httpx.MockTransport(_streamed(200, bomb, encoding)),
        max_response_bytes=BOMB_LIMIT_BYTES,
        retry=RetryPolicy.none(),
    )
    errors: list[Exception] = []

    def call() -> None:
        try:
            client.predict(4001)
        except ResponseTooLargeError as exc:
            errors.append(exc)

    peak = _traced_peak_bytes(call)
    assert [type(e) for e in errors] == [ResponseTooLargeError]
    # httpx's own decoding held the 64 MiB (one 16 KiB chunk inflates to 16 MiB).
    assert peak < 3 * BOMB_LIMIT_BYTES, f"peak {peak} bytes for a {BOMB_LIMIT_BYTES}-byte limit"
    assert client.breaker.metrics().total_failures == 1


def test_a_compression_bomb_as_an_error_body_costs_only_its_excerpt(
    make: Callable[..., MLClient],
) -> None:
    client = make(
        transport=httpx.MockTransport(_streamed(500, _bomb("gzip"), "gzip")),
        retry=RetryPolicy.none(),
    )
    errors: list[ServerError] = []

    def call() -> None:
        try:
            client.predict(4001)
        except ServerError as exc:
            errors.append(exc)

    peak = _traced_peak_bytes(call)
    assert [e.status_code for e in errors] == [500]
    assert peak < 512 * 1024, f"peak {peak} bytes for a 4 KiB excerpt"


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "GZIP", " gzip "])
def test_a_compressed_success_body_is_inflated(
    make: Callable[..., MLClient], encoding: str
) -> None:
    body = _compress(json.dumps(prediction_body()).encode(), encoding.strip())
    client = make(transport=httpx.MockTransport(_streamed(200, body, encoding)))
    assert client.predict(4001).query_hash == 4001


def test_the_limit_applies_to_the_inflated_body(make: Callable[..., MLClient]) -> None:
    content = json.dumps(prediction_body()).encode()
    handler = _streamed(200, _compress(content, "gzip"), "gzip")
    exact = make(transport=httpx.MockTransport(handler), max_response_bytes=len(content))
    assert exact.predict(4001).query_hash == 4001
    tight = make(transport=httpx.MockTransport(handler), max_response_bytes=len(content) - 1)
    with pytest.raises(ResponseTooLargeError):
        tight.predict(4001)


@pytest.mark.parametrize(
    ("body", "encoding", "match"),
    [
        (b"\x1f\x8b not gzip at all", "gzip", "does not decode as its content encoding"),
        (b"not zlib", "deflate", "does not decode as its content encoding"),
        (_compress(b'{"query_hash": 4001}', "gzip")[:-8], "gzip", "ends before its end"),
        (b"\x0b\x02\x80{}\x03", "br", "unsupported content encoding 'br'"),
        (b"{}", "gzip, gzip", "unsupported content encoding 'gzip, gzip'"),
    ],
    ids=["bad-gzip", "bad-deflate", "truncated-gzip", "br", "stacked"],
)
def test_an_undecodable_success_body_is_malformed_and_a_breaker_failure(
    make: Callable[..., MLClient], body: bytes, encoding: str, match: str
) -> None:
    client = make(transport=httpx.MockTransport(_streamed(200, body, encoding)))
    with pytest.raises(MalformedResponseError, match=match) as info:
        client.predict(4001)
    assert not isinstance(info.value, ResponseTooLargeError)
    assert info.value.operation == "predict"
    assert client.breaker.metrics().total_failures == 1


@pytest.mark.parametrize(
    ("status", "body", "encoding", "error", "excerpt"),
    [
        (400, b"not gzip", "gzip", BadRequestError, ""),
        (404, b"not gzip", "gzip", NotFoundError, ""),
        (409, b"\x0b\x02\x80{}\x03", "br", ServiceStatusError, "[a br-encoded body]"),
        (404, _compress(b'{"error": "Job not found"}', "gzip"), "gzip", NotFoundError, None),
    ],
    ids=["400-bad-gzip", "404-bad-gzip", "409-br", "404-good-gzip"],
)
def test_a_4xx_keeps_its_status_error_whatever_its_body_encoding(
    make: Callable[..., MLClient],
    status: int,
    body: bytes,
    encoding: str,
    error: type[ServiceStatusError],
    excerpt: str | None,
) -> None:
    client = make(transport=httpx.MockTransport(_streamed(status, body, encoding)))
    with pytest.raises(error) as info:
        client.training_status(JOB_ID)
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.body == (excerpt if excerpt is not None else '{"error": "Job not found"}')
    metrics = client.breaker.metrics()
    assert (metrics.total_successes, metrics.total_failures) == (1, 0)


def test_a_failed_job_in_a_compressed_400_is_still_a_result(
    make: Callable[..., MLClient],
) -> None:
    body = _compress(json.dumps(status_body("failed")).encode(), "gzip")
    client = make(transport=httpx.MockTransport(_streamed(400, body, "gzip")))
    assert client.training_status(JOB_ID).status is TrainingState.FAILED


# --------------------------------------------------------------------------- content type


@pytest.mark.parametrize(
    "content_type",
    ["Application/JSON", "APPLICATION/JSON; charset=UTF-8", "application/problem+JSON"],
)
def test_the_content_type_is_matched_case_insensitively(
    make: Callable[..., MLClient], router: respx.Router, content_type: str
) -> None:
    content = json.dumps(prediction_body()).encode()
    router.post(PREDICT_PATH).respond(200, content=content, content_type=content_type)
    client = make()
    assert client.predict(4001).query_hash == 4001
    assert client.breaker.metrics().total_failures == 0


# --------------------------------------------------------------------------- more secrets

LONG_KEY = "sk-live-0123456789abcdef0123456789abcdef"
BASIC_TOKEN = base64.b64encode(b"alice:S3cr3t-pw").decode()


def test_the_basic_token_of_url_credentials_is_scrubbed(make: Callable[..., MLClient]) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        authorization = request.headers["authorization"]
        token = authorization.removeprefix("Basic ")
        return httpx.Response(502, text=f"bad gateway: authorization={authorization} t={token}")

    client = make(
        base_url="http://alice:S3cr3t-pw@127.0.0.1:8081",
        transport=httpx.MockTransport(echo),
        retry=RetryPolicy.none(),
    )
    with pytest.raises(ServerError) as info:
        client.predict(4001)
    assert info.value.body == "bad gateway: authorization=*** t=***"
    assert BASIC_TOKEN[:4] not in str(info.value)


def test_a_body_ending_with_the_basic_scheme_keeps_it(make: Callable[..., MLClient]) -> None:
    def challenge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text="credentials refused; use the scheme Basic")

    client = make(
        base_url="http://alice:S3cr3t-pw@127.0.0.1:8081", transport=httpx.MockTransport(challenge)
    )
    with pytest.raises(ServiceStatusError) as info:
        client.predict(4001)
    assert info.value.body == "credentials refused; use the scheme Basic"


@pytest.mark.parametrize("offset", range(4096 - 70, 4096 + 70, 3))
def test_a_secret_cut_by_the_end_of_the_excerpt_leaves_no_fragment(
    make: Callable[..., MLClient], offset: int
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        padding = b" " * offset
        return httpx.Response(500, content=padding + request.headers["authorization"].encode())

    client = make(api_key=LONG_KEY, transport=httpx.MockTransport(echo), retry=RetryPolicy.none())
    with pytest.raises(ServerError) as info:
        client.predict(4001)
    fragments = {LONG_KEY[i : i + 4] for i in range(len(LONG_KEY) - 3)}
    assert not any(fragment in str(info.value) for fragment in fragments), str(info.value)


def _requests_in_chain(error: BaseException) -> list[httpx.Request]:
    """Every httpx request reachable through the exception chain of ``error``."""
    requests: list[httpx.Request] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        request = getattr(exc, "_request", None)
        if isinstance(request, httpx.Request):
            requests.append(request)
        todo += [exc.__cause__, exc.__context__]
    return requests


class _BrokenBody(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"query_'
        raise httpx.ReadError("connection reset")


@pytest.mark.parametrize(
    "failure",
    ["connect", "read-timeout", "protocol", "read-error-in-body"],
)
@pytest.mark.parametrize(
    ("base_url", "api_key", "secret"),
    [
        (BASE, LONG_KEY, LONG_KEY),
        ("http://alice:S3cr3t-pw@127.0.0.1:8081", None, BASIC_TOKEN),
    ],
    ids=["api-key", "url-credentials"],
)
def test_the_exception_chain_exposes_no_credentials(
    make: Callable[..., MLClient],
    failure: str,
    base_url: str,
    api_key: str | None,
    secret: str,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "connect":
            raise httpx.ConnectError("refused", request=request)
        if failure == "read-timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if failure == "protocol":
            raise httpx.RemoteProtocolError("bad", request=request)
        return httpx.Response(200, stream=_BrokenBody())

    client = make(
        base_url=base_url,
        api_key=api_key,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy.none(),
    )
    with pytest.raises(MLServiceError) as info:
        client.predict(4001)
    requests = _requests_in_chain(info.value)
    assert requests, "the chain should keep the request, redacted"
    for request in requests:
        assert request.headers["authorization"] == "[redacted]"
        assert all(secret not in value for value in request.headers.values())
    formatted = "".join(traceback.format_exception(info.value))
    assert secret not in formatted


def test_requests_are_not_redacted_without_credentials(make: Callable[..., MLClient]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = make(transport=httpx.MockTransport(handler), retry=RetryPolicy.none())
    with pytest.raises(ServiceConnectionError) as info:
        client.predict(4001)
    assert [("authorization" in r.headers) for r in _requests_in_chain(info.value)] == [False]


# --------------------------------------------------------------------------- deadlines


def _timing_out_handler(
    clock: FakeClock, took_s: float | None = None
) -> tuple[Callable[[httpx.Request], httpx.Response], list[float]]:
    """A handler that times out after its read timeout (or ``took_s``) on the fake clock."""
    timeouts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]
        assert len(set(timeout.values())) == 1  # connect, read, write and pool alike
        timeouts.append(timeout["read"])
        clock.advance(timeout["read"] if took_s is None else took_s)
        raise httpx.ReadTimeout("timed out", request=request)

    return handler, timeouts


def test_every_attempt_gets_the_full_timeout_without_a_deadline(
    make: Callable[..., MLClient], clock: FakeClock
) -> None:
    handler, timeouts = _timing_out_handler(clock)
    client = make(transport=httpx.MockTransport(handler), timeout_s=0.8)
    with pytest.raises(ServiceTimeoutError):
        client.predict(1)
    assert timeouts == [0.8, 0.8, 0.8]


def test_each_attempt_gets_at_most_the_time_left_of_the_deadline(
    make: Callable[..., MLClient], clock: FakeClock
) -> None:
    handler, timeouts = _timing_out_handler(clock)
    policy = RetryPolicy(deadline_s=1.0, backoff_base_s=0.05, jitter=0.0, max_retries=5)
    client = make(transport=httpx.MockTransport(handler), timeout_s=0.8, retry=policy)
    started = clock()
    with pytest.raises(ServiceTimeoutError) as info:
        client.predict(1)
    # 0.8 s, a 0.05 s backoff, then only 0.15 s are left of the second attempt's budget.
    assert timeouts == pytest.approx([0.8, 0.15])
    assert clock() - started == pytest.approx(1.0)
    assert info.value.attempts == 2


def test_no_attempt_starts_once_the_deadline_has_passed(
    make: Callable[..., MLClient], clock: FakeClock
) -> None:
    handler, timeouts = _timing_out_handler(clock, took_s=0.5)
    oversleeping: list[float] = []

    def sleep(seconds: float) -> None:  # a real sleep may overshoot: here by 0.5 s
        oversleeping.append(seconds)
        clock.advance(seconds + 0.5)

    policy = RetryPolicy(deadline_s=1.0, backoff_base_s=0.25, jitter=0.0, max_retries=5)
    client = make(transport=httpx.MockTransport(handler), retry=policy, sleep=sleep)
    with pytest.raises(ServiceTimeoutError, match="ReadTimeout") as info:
        client.predict(1)
    assert timeouts == [1.0]
    assert oversleeping == [0.25]
    assert info.value.attempts == 1


def test_no_retry_is_scheduled_to_start_at_the_deadline(
    make: Callable[..., MLClient], clock: FakeClock
) -> None:
    handler, timeouts = _timing_out_handler(clock, took_s=0.75)
    policy = RetryPolicy(deadline_s=1.0, backoff_base_s=0.25, jitter=0.0)
    client = make(transport=httpx.MockTransport(handler), retry=policy)
    with pytest.raises(ServiceTimeoutError):
        client.predict(1)
    assert timeouts == [1.0]
    assert clock.sleeps == []  # 0.75 + 0.25 would leave the retry no time at all


def test_wait_for_training_bounds_each_poll_by_the_time_left(
    make: Callable[..., MLClient], clock: FakeClock
) -> None:
    timeouts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json=status_body("training"))

    client = make(transport=httpx.MockTransport(handler), timeout_s=5.0)
    with pytest.raises(TrainingTimeoutError, match=r"still training after 6\.000 s"):
        client.wait_for_training(JOB_ID, poll_interval_s=2.0, timeout_s=6.0)
    assert timeouts == [5.0, 4.0, 2.0]
    assert clock.sleeps == [2.0, 2.0, 2.0]


def test_a_poll_cut_short_by_the_wait_is_a_training_timeout(
    make: Callable[..., MLClient], clock: FakeClock
) -> None:
    handler, timeouts = _timing_out_handler(clock)
    client = make(transport=httpx.MockTransport(handler), timeout_s=5.0)
    with pytest.raises(TrainingTimeoutError, match=r"still unknown after 3\.000 s") as info:
        client.wait_for_training(JOB_ID, poll_interval_s=1.0, timeout_s=3.0)
    assert timeouts == [3.0]
    assert info.value.last_status == "unknown"
    assert isinstance(info.value.__cause__, ServiceTimeoutError)
    assert clock.sleeps == []


# --------------------------------------------------------------------------- batches, mock


def test_predict_many_finishes_the_batch_before_raising_an_unexpected_error(
    make: Callable[..., MLClient],
) -> None:
    handler, seen = _echo_handler()

    def broken(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["query_hash"] == 1:
            raise RuntimeError("a bug in the transport")
        return handler(request)

    cache = PredictionCache()
    client = make(transport=httpx.MockTransport(broken), cache=cache)
    requests = [PredictionRequest.create(h) for h in range(1, 7)]
    for max_concurrency in (1, 3):
        cache.clear()
        seen.clear()
        with pytest.raises(RuntimeError, match="a bug in the transport"):
            client.predict_many(requests, max_concurrency=max_concurrency)
        assert sorted(seen) == [2, 3, 4, 5, 6]
        assert [r.query_hash for r in requests if r in cache] == [2, 3, 4, 5, 6]
        assert [t.name for t in threading.enumerate() if t.name.startswith("mlclient")] == []


def _mock_source_handler(
    source: str,
) -> tuple[Callable[[httpx.Request], httpx.Response], list[int]]:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query_hash = json.loads(request.content)["query_hash"]
        seen.append(query_hash)
        return httpx.Response(200, json={**prediction_body(query_hash), "source": source})

    return handler, seen


def test_predictions_from_the_services_mock_data_are_not_cached(
    make: Callable[..., MLClient],
) -> None:
    handler, seen = _mock_source_handler("mock")
    cache = PredictionCache()
    client = make(transport=httpx.MockTransport(handler), cache=cache)
    assert client.predict(4001).source == "mock"
    assert client.predict(4001).source == "mock"
    outcomes = client.predict_many([PredictionRequest.create(h) for h in (4001, 4002)])
    assert [o.unwrap().source for o in outcomes] == ["mock", "mock"]
    assert seen == [4001, 4001, 4001, 4002]
    assert len(cache) == 0
    database, database_seen = _mock_source_handler("database")
    cached = make(transport=httpx.MockTransport(database), cache=cache)
    assert cached.predict(4001) is cached.predict(4001)
    assert database_seen == [4001]
