"""Integration tests of FakeMLService: real HTTP/1.1 on 127.0.0.1, raw httpx as the client.

Covers every endpoint of the contract (success, validation, status codes, the real
service's quirks), training job progression on a fake clock, every fault, thread safety of
the fault configuration and the counters, API-key auth and the command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from http import HTTPStatus

import httpx
import pytest

from pganalytics_core.testing import ENDPOINT_NAMES, FakeClock, FakeMLService, Faults
from pganalytics_core.testing.__main__ import main as cli_main

ClientFactory = Callable[..., httpx.Client]  # the make_client fixture of conftest.py

PREDICT = "/api/predict/query-execution"
TRAIN = "/api/train/performance-model"
VALIDATE = "/api/validate/prediction"
DETECT = "/api/detect/patterns"
JSON_HEADERS = {"Content-Type": "application/json"}
JOB_ID = re.compile(r"^training-\d{8}-\d{6}-[0-9a-f]{8}$")
PREDICTION_FIELDS = {
    "query_hash",
    "predicted_execution_time_ms",
    "confidence_score",
    "confidence_interval",
    "scenario",
    "model_version",
    "prediction_timestamp",
    "source",
}


def post_raw(
    client: httpx.Client, path: str, content: bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return client.post(path, content=content, headers=headers)


def without_timestamp(prediction: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in prediction.items() if k != "prediction_timestamp"}


@pytest.fixture
def clocked(
    make_client: ClientFactory,
) -> Iterator[tuple[FakeMLService, httpx.Client, FakeClock]]:
    clock = FakeClock()
    with FakeMLService(clock=clock, training_step_s=10.0) as svc:
        yield svc, make_client(svc.url), clock


# --------------------------------------------------------------------------------------
# health, routing, framework errors
# --------------------------------------------------------------------------------------


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "healthy", "service": "ml-service"}


def test_head_answers_headers_only(client: httpx.Client) -> None:
    response = client.head("/health")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(client.get("/health").content)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", PREDICT, "OPTIONS, POST"),
        ("PUT", TRAIN, "OPTIONS, POST"),
        ("POST", "/health", "GET, HEAD, OPTIONS"),
        ("DELETE", "/api/models", "GET, HEAD, OPTIONS"),
        ("POST", f"{TRAIN}/training-20261126-211424-a60149a4", "GET, HEAD, OPTIONS"),
        ("GET", "/api/models/1/activate", "OPTIONS, POST"),
    ],
)
def test_wrong_method_is_an_html_405(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["allow"] == allow
    assert "<title>405 Method Not Allowed</title>" in response.text


@pytest.mark.parametrize(
    "path", ["/api/nope", "/health/", "/api/health", "/", f"{TRAIN}/", "/api/models/1/x"]
)
def test_unknown_route_is_a_framework_404(
    service: FakeMLService, client: httpx.Client, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "message": "Endpoint not found"}
    assert service.request_counts()["unknown"] == 1


def test_options_lists_allowed_methods(client: httpx.Client) -> None:
    response = client.options(PREDICT)
    assert response.status_code == 200
    assert response.headers["allow"] == "OPTIONS, POST"


# --------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------


def test_predict_success(client: httpx.Client) -> None:
    response = client.post(
        PREDICT, json={"query_hash": 4001, "parameters": {"p": 1}, "scenario": "current"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PREDICTION_FIELDS
    assert body["query_hash"] == 4001
    assert body["scenario"] == "current"
    assert 0.0 <= body["confidence_score"] <= 1.0
    interval = body["confidence_interval"]
    assert set(interval) == {"lower_bound_ms", "upper_bound_ms", "std_dev_ms"}
    assert (
        interval["lower_bound_ms"]
        <= body["predicted_execution_time_ms"]
        <= interval["upper_bound_ms"]
    )
    assert body["source"] in {"mock", "database"}
    assert body["model_version"] == ("v1.2" if body["source"] == "mock" else "v1.0")
    assert datetime.fromisoformat(body["prediction_timestamp"]).year >= 2024


def test_predict_defaults_and_both_sources(client: httpx.Client) -> None:
    bodies = [client.post(PREDICT, json={"query_hash": h}).json() for h in range(1, 41)]
    assert {b["scenario"] for b in bodies} == {"current"}
    assert {b["source"] for b in bodies} == {"mock", "database"}


def test_predictions_are_deterministic(client: httpx.Client, make_client: ClientFactory) -> None:
    request = {"query_hash": 77, "parameters": {"a": 1, "b": [2, 3]}, "scenario": "current"}
    first = without_timestamp(client.post(PREDICT, json=request).json())
    again = without_timestamp(client.post(PREDICT, json=request).json())
    reordered = {"scenario": "current", "parameters": {"b": [2, 3], "a": 1}, "query_hash": 77}
    with FakeMLService(seed=12345) as other:
        other_client = make_client(other.url)
        elsewhere = without_timestamp(other_client.post(PREDICT, json=reordered).json())
    assert first == again == elsewhere
    optimized = client.post(PREDICT, json={**request, "scenario": "optimized"}).json()
    other_params = client.post(PREDICT, json={**request, "parameters": {"a": 2}}).json()
    other_hash = client.post(PREDICT, json={**request, "query_hash": 78}).json()
    assert optimized["predicted_execution_time_ms"] < first["predicted_execution_time_ms"]
    assert other_params["predicted_execution_time_ms"] != first["predicted_execution_time_ms"]
    assert other_hash["predicted_execution_time_ms"] != first["predicted_execution_time_ms"]


def test_predict_accepts_true_as_a_query_hash(client: httpx.Client) -> None:
    # The real service validates by truthiness and isinstance(int): a bool passes.
    quirk = client.post(PREDICT, json={"query_hash": True}).json()
    one = client.post(PREDICT, json={"query_hash": 1}).json()
    assert quirk["query_hash"] is True
    assert without_timestamp(quirk) | {"query_hash": 1} == without_timestamp(one)


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b"{}", 400, "Request body required"),
        (b"null", 400, "Request body required"),
        (b"[]", 400, "Request body required"),
        (b'{"parameters": {}}', 400, "query_hash must be a positive integer"),
        (b'{"query_hash": 0}', 400, "query_hash must be a positive integer"),
        (b'{"query_hash": null}', 400, "query_hash must be a positive integer"),
        (b'{"query_hash": 4001.0}', 400, "query_hash must be a positive integer"),
        (b'{"query_hash": "4001"}', 400, "query_hash must be a positive integer"),
        (b'{"query_hash": -5}', 400, "query_hash must be positive"),
        (b'{"query_hash": 1, "scenario": "future"}', 400, "scenario must be current or optimized"),
        (b'{"query_hash": 1, "scenario": null}', 400, "scenario must be current or optimized"),
        (b"[1, 2]", 500, "Failed to generate prediction"),
        (b'"text"', 500, "Failed to generate prediction"),
    ],
)
def test_predict_validation(client: httpx.Client, content: bytes, status: int, error: str) -> None:
    response = post_raw(client, PREDICT, content)
    assert response.status_code == status
    assert response.json() == {"error": error}


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (PREDICT, "Failed to generate prediction"),
        (TRAIN, "Failed to start training"),
        (VALIDATE, "Failed to validate prediction"),
        (DETECT, "Failed to detect patterns"),
    ],
)
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b'{"query_hash": 1}', "text/plain"),
        (b'{"query_hash": 1}', None),
        (b'{"query_hash": 1}', "application/x-www-form-urlencoded"),
    ],
)
def test_non_json_or_wrong_content_type_is_a_500(
    client: httpx.Client, path: str, error: str, content: bytes, content_type: str | None
) -> None:
    response = post_raw(client, path, content, content_type)
    assert response.status_code == 500
    assert response.json() == {"error": error}


def test_json_content_type_with_parameters_is_accepted(client: httpx.Client) -> None:
    response = post_raw(client, PREDICT, b'{"query_hash": 5}', "application/json; charset=utf-8")
    assert response.status_code == 200
    assert response.json()["query_hash"] == 5


# --------------------------------------------------------------------------------------
# train and training status
# --------------------------------------------------------------------------------------


def test_train_accepts_with_202_and_defaults(client: httpx.Client) -> None:
    response = client.post(TRAIN, json={"force_retrain": True})
    assert response.status_code == 202
    body = response.json()
    assert JOB_ID.match(body["job_id"])
    assert body == {
        "job_id": body["job_id"],
        "status": "queued",
        "database_name": "pganalytics",
        "lookback_days": 90,
        "model_type": "linear_regression",
        "message": "Model training started in background",
    }


def test_training_job_ids_are_unique(client: httpx.Client) -> None:
    ids = {client.post(TRAIN, json={"lookback_days": 7}).json()["job_id"] for _ in range(30)}
    assert len(ids) == 30


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "Request body required"),
        ({"lookback_days": 6}, "lookback_days must be >= 7"),
        ({"lookback_days": "90"}, "lookback_days must be >= 7"),
        ({"lookback_days": 90.0}, "lookback_days must be >= 7"),
        ({"lookback_days": True}, "lookback_days must be >= 7"),
        ({"model_type": "svm"}, "Invalid model_type"),
        ({"model_type": None}, "Invalid model_type"),
    ],
)
def test_train_validation(client: httpx.Client, body: dict[str, object], error: str) -> None:
    response = client.post(TRAIN, json=body)
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_training_job_progresses_with_the_clock(
    clocked: tuple[FakeMLService, httpx.Client, FakeClock],
) -> None:
    _, c, clock = clocked
    accepted = c.post(TRAIN, json={"model_type": "random_forest", "lookback_days": 30}).json()
    url = f"{TRAIN}/{accepted['job_id']}"

    queued = c.get(url)
    assert queued.status_code == 200
    assert queued.json()["status"] == "queued"
    assert queued.json()["created_at"] == queued.json()["updated_at"]
    clock.advance(9.9)
    assert c.get(url).json()["status"] == "queued"

    clock.advance(0.1)
    training = c.get(url).json()
    assert training["status"] == "training"
    assert datetime.fromisoformat(training["updated_at"]) > datetime.fromisoformat(
        training["created_at"]
    )
    assert "model_id" not in training

    clock.advance(10.0)
    done = c.get(url)
    assert done.status_code == 200
    job = done.json()
    assert job["status"] == "completed"
    assert job["job_id"] == accepted["job_id"]
    assert isinstance(job["model_id"], str)
    assert 0.0 < job["r_squared"] < 1.0
    assert job["training_samples"] > 0
    assert job["feature_count"] == len(job["feature_importance"]) > 0
    assert math.isclose(sum(job["feature_importance"].values()), 1.0, abs_tol=1e-3)
    clock.advance(100.0)
    assert c.get(url).json() == job  # a finished job no longer changes


def test_failed_job_is_a_400_with_the_job_body(
    clocked: tuple[FakeMLService, httpx.Client, FakeClock],
) -> None:
    svc, c, clock = clocked
    before = c.post(TRAIN, json={}).json()  # empty body: rejected, no job
    assert before == {"error": "Request body required"}
    ok_job = c.post(TRAIN, json={"lookback_days": 30}).json()["job_id"]
    svc.update_faults(training_outcome="failed")
    failed_job = c.post(TRAIN, json={"lookback_days": 30}).json()["job_id"]
    assert c.get(f"{TRAIN}/{failed_job}").status_code == 200  # still queued
    clock.advance(20.0)

    failed = c.get(f"{TRAIN}/{failed_job}")
    assert failed.status_code == 400
    body = failed.json()
    assert body["job_id"] == failed_job
    assert body["status"] == "failed"
    assert isinstance(body["error"], str)
    assert body["error"]
    assert "model_id" not in body
    # The outcome is fixed when a job is created.
    assert c.get(f"{TRAIN}/{ok_job}").json()["status"] == "completed"


def test_unknown_training_job_is_a_404(client: httpx.Client) -> None:
    response = client.get(f"{TRAIN}/training-20261126-211424-a60149a4")
    assert response.status_code == 404
    assert response.json() == {"error": "Job not found"}


def test_job_id_with_an_encoded_slash_matches_no_route(client: httpx.Client) -> None:
    response = client.get(f"{TRAIN}/a%2Fb")
    assert response.status_code == 404
    assert response.json()["message"] == "Endpoint not found"


def test_zero_training_step_finishes_at_once(make_client: ClientFactory) -> None:
    with FakeMLService(training_step_s=0.0) as svc:
        c = make_client(svc.url)
        accepted = c.post(TRAIN, json={"lookback_days": 8})
        assert accepted.json()["status"] == "training"
        assert c.get(f"{TRAIN}/{accepted.json()['job_id']}").json()["status"] == "completed"


# --------------------------------------------------------------------------------------
# validate, detect patterns
# --------------------------------------------------------------------------------------


def test_validate_success(client: httpx.Client) -> None:
    request = {
        "prediction_id": "pred-20260220-001",
        "query_hash": 4001,
        "predicted_execution_time_ms": 125.5,
        "actual_execution_time_ms": 118.2,
        "model_version": "v1.2",
    }
    response = client.post(VALIDATE, json=request)
    assert response.status_code == 200
    assert response.json() == {
        "prediction_id": "pred-20260220-001",
        "query_hash": 4001,
        "error_percent": 6.18,
        "accuracy_score": 0.938,
        "within_confidence_interval": True,
        "message": "Prediction validation recorded",
    }
    far = client.post(
        VALIDATE,
        json={**request, "predicted_execution_time_ms": 300, "actual_execution_time_ms": 100},
    ).json()
    assert (far["error_percent"], far["accuracy_score"]) == (200.0, 0)
    assert far["within_confidence_interval"] is False


FULL_VALIDATION = {
    "prediction_id": "p-1",
    "query_hash": 1,
    "predicted_execution_time_ms": 10.0,
    "actual_execution_time_ms": 12.0,
}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"prediction_id": None}, "Missing required fields"),
        ({"prediction_id": ""}, "Missing required fields"),
        ({"query_hash": 0}, "Missing required fields"),
        ({"actual_execution_time_ms": 0}, "Missing required fields"),
        ({"predicted_execution_time_ms": 0.0}, "Missing required fields"),
        ({"query_hash": "1"}, "Invalid data types"),
        ({"query_hash": 1.0}, "Invalid data types"),
        ({"predicted_execution_time_ms": "fast"}, "Invalid data types"),
        ({"actual_execution_time_ms": -3}, "actual_execution_time_ms must be positive"),
    ],
)
def test_validate_validation(client: httpx.Client, changes: dict[str, object], error: str) -> None:
    response = client.post(VALIDATE, json={**FULL_VALIDATION, **changes})
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_detect_patterns(client: httpx.Client) -> None:
    request = {"database_name": "orders", "lookback_days": 14}
    first = client.post(DETECT, json=request)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"patterns_detected", "patterns", "timestamp"}
    assert body["patterns_detected"] == len(body["patterns"])
    for pattern in body["patterns"]:
        assert set(pattern) == {"type", "description", "confidence", "metadata"}
        assert 0.0 <= pattern["confidence"] <= 1.0
        assert isinstance(pattern["metadata"], dict)
    datetime.fromisoformat(body["timestamp"])
    again = client.post(DETECT, json=request).json()
    assert again["patterns"] == body["patterns"]
    counts = {
        client.post(DETECT, json={"database_name": f"db{i}", "lookback_days": 1}).json()[
            "patterns_detected"
        ]
        for i in range(30)
    }
    assert len(counts) > 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({}, 400, "Request body required"),
        (
            {"database_name": "", "lookback_days": 3},
            400,
            "database_name must be a non-empty string",
        ),
        ({"database_name": 5}, 400, "database_name must be a non-empty string"),
        ({"lookback_days": 0}, 400, "lookback_days must be >= 1"),
        ({"lookback_days": "7"}, 400, "lookback_days must be >= 1"),
    ],
)
def test_detect_patterns_validation(
    client: httpx.Client, body: dict[str, object], status: int, error: str
) -> None:
    response = client.post(DETECT, json=body)
    assert response.status_code == status
    assert response.json() == {"error": error}


# --------------------------------------------------------------------------------------
# models and status
# --------------------------------------------------------------------------------------


def test_models_and_activation(client: httpx.Client) -> None:
    listing = client.get("/api/models").json()
    assert [m["model_id"] for m in listing["models"]] == [1, 2]
    assert (listing["total_models"], listing["active_model"]) == (2, 1)
    latest = client.get("/api/models/latest").json()
    assert latest["model_id"] == "model-linear-001"  # a string here, an int in the list
    assert latest["is_active"] is True

    model = client.get("/api/models/2")
    assert model.status_code == 200
    assert (model.json()["model_id"], model.json()["model_type"]) == (2, "decision_tree")

    activated = client.post("/api/models/2/activate")
    assert activated.status_code == 200
    assert activated.json()["model_id"] == "2"
    assert activated.json()["status"] == "activated"
    assert client.get("/api/models").json()["active_model"] == 2
    assert client.get("/api/models/latest").json()["model_id"] == "model-decision-002"


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/api/models/abc", 400, "model_id must be numeric"),
        ("GET", "/api/models/99", 404, "Model not found"),
        ("POST", "/api/models/abc/activate", 400, "model_id must be numeric"),
        ("POST", "/api/models/99/activate", 404, "Model not found"),
    ],
)
def test_model_errors(
    client: httpx.Client, method: str, path: str, status: int, error: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.json() == {"error": error}


def test_status(client: httpx.Client) -> None:
    client.post(PREDICT, json={"query_hash": 3})
    client.post(TRAIN, json={"lookback_days": 9})
    body = client.get("/api/status").json()
    assert (body["service"], body["status"]) == ("ml-service", "healthy")
    assert body["total_predictions"] == 1
    assert body["training_jobs"] == 1
    datetime.fromisoformat(body["timestamp"])


# --------------------------------------------------------------------------------------
# Faults: configuration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"latency_s": -0.1}, "latency_s"),
        ({"latency_s": math.inf}, "latency_s"),
        ({"jitter_s": math.nan}, "jitter_s"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"error_status": 600}, "error_status"),
        ({"error_status": 99}, "error_status"),
        ({"error_status": True}, "error_status"),
        ({"retry_after_s": -1.0}, "retry_after_s"),
        ({"mode": "explode"}, "mode"),
        ({"oversized_bytes": -1}, "oversized_bytes"),
        ({"endpoints": frozenset({"predcit"})}, "endpoints"),
        ({"endpoints": "predict"}, "endpoints"),
        ({"training_outcome": "maybe"}, "training_outcome"),
    ],
)
def test_faults_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Faults(**changes)  # type: ignore[arg-type]


def test_faults_are_immutable_and_coerce_endpoint_sets() -> None:
    faults = Faults(endpoints={"predict"})  # type: ignore[arg-type]
    assert faults.endpoints == frozenset({"predict"})
    assert hash(faults) == hash(Faults(endpoints=frozenset({"predict"})))
    with pytest.raises(dataclasses.FrozenInstanceError):
        faults.latency_s = 1.0  # type: ignore[misc]
    assert {"predict", "train", "unknown"} <= ENDPOINT_NAMES


def test_update_faults_rejects_bad_values_and_keeps_the_old_ones(service: FakeMLService) -> None:
    service.update_faults(latency_s=0.001, endpoints=frozenset({"health"}))
    with pytest.raises(ValueError, match="error_rate"):
        service.update_faults(error_rate=2.0)
    assert service.faults == Faults(latency_s=0.001, endpoints=frozenset({"health"}))
    service.clear_faults()
    assert service.faults == Faults()


def test_bad_service_arguments() -> None:
    with pytest.raises(ValueError, match="training_step_s"):
        FakeMLService(training_step_s=-1.0)
    with pytest.raises(ValueError, match="port"):
        FakeMLService(port=70000)
    svc = FakeMLService()
    with pytest.raises(ValueError, match="n must be"):
        svc.fail_next(-1)
    with pytest.raises(ValueError, match="status"):
        svc.fail_next(1, status=42)
    with pytest.raises(ValueError, match="endpoints"):
        svc.fail_next(1, endpoints=frozenset({"nope"}))
    with pytest.raises(RuntimeError, match="not started"):
        _ = svc.url


# --------------------------------------------------------------------------------------
# Faults: delays and errors
# --------------------------------------------------------------------------------------


def timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = client.get(path)
    return response, time.perf_counter() - start


def test_latency_applies_to_the_chosen_endpoints(
    service: FakeMLService, client: httpx.Client
) -> None:
    service.set_faults(Faults(latency_s=0.15, endpoints=frozenset({"status"})))
    fast, fast_s = timed_get(client, "/health")
    slow, slow_s = timed_get(client, "/api/status")
    assert slow.status_code == 200
    assert slow.headers["x-injected-delay-ms"] == "150.000"
    assert "x-injected-delay-ms" not in fast.headers
    assert slow_s > fast_s


def test_jitter_is_reproducible_with_the_seed(make_client: ClientFactory) -> None:
    def delays(seed: int) -> list[str]:
        with FakeMLService(seed=seed, faults=Faults(jitter_s=0.01)) as svc:
            c = make_client(svc.url)
            return [c.get("/health").headers["x-injected-delay-ms"] for _ in range(6)]

    rng = random.Random(21)
    expected = [f"{rng.uniform(0.0, 0.01) * 1000:.3f}" for _ in range(6)]
    assert delays(21) == expected
    assert delays(21) == expected
    assert delays(22) != expected


def test_error_rate_follows_the_seeded_sequence(make_client: ClientFactory) -> None:
    rng = random.Random(7)
    expected = [500 if rng.random() < 0.3 else 200 for _ in range(40)]
    assert 0 < expected.count(500) < 40
    with FakeMLService(seed=7, faults=Faults(error_rate=0.3)) as svc:
        c = make_client(svc.url)
        responses = [c.post(PREDICT, json={"query_hash": 9}) for _ in range(40)]
    assert [r.status_code for r in responses] == expected
    failure = next(r for r in responses if r.status_code == 500)
    assert failure.json() == {
        "error": "Internal server error",
        "message": "An unexpected error occurred",
    }
    assert "retry-after" not in failure.headers


def test_error_then_jitter_draw_order(make_client: ClientFactory) -> None:
    rng = random.Random(3)
    expected = []
    for _ in range(10):
        status = 503 if rng.random() < 0.5 else 200
        expected.append((status, f"{rng.uniform(0.0, 0.005) * 1000:.3f}"))
    faults = Faults(error_rate=0.5, error_status=503, jitter_s=0.005)
    with FakeMLService(seed=3, faults=faults) as svc:
        c = make_client(svc.url)
        observed = []
        for _ in range(10):
            response = c.get("/health")
            observed.append((response.status_code, response.headers["x-injected-delay-ms"]))
    assert observed == expected


def test_error_status_and_retry_after(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(error_rate=1.0, error_status=429, retry_after_s=2.1))
    response = client.get("/health")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"] == "Too Many Requests"


def test_fail_next_is_exact(service: FakeMLService, client: httpx.Client) -> None:
    service.fail_next(3, status=503, retry_after_s=1.2)
    responses = [client.post(PREDICT, json={"query_hash": 1}) for _ in range(4)]
    assert [r.status_code for r in responses] == [503, 503, 503, 200]
    assert [r.headers.get("retry-after") for r in responses] == ["2", "2", "2", None]


def test_fail_next_filters_endpoints_and_queues(
    service: FakeMLService, client: httpx.Client
) -> None:
    service.fail_next(1, status=502, endpoints=frozenset({"predict"}))
    service.fail_next(1, status=504)
    assert client.get("/health").status_code == 504  # the first rule does not match
    assert client.get("/health").status_code == 200
    assert client.post(PREDICT, json={"query_hash": 1}).status_code == 502
    assert client.post(PREDICT, json={"query_hash": 1}).status_code == 200


def test_fail_next_falls_back_to_the_faults_retry_after(
    service: FakeMLService, client: httpx.Client
) -> None:
    service.set_faults(Faults(retry_after_s=0.5, endpoints=frozenset({"train"})))
    service.fail_next(1, status=503)
    assert client.get("/health").headers["retry-after"] == "1"


def test_clear_faults_drops_pending_failures(service: FakeMLService, client: httpx.Client) -> None:
    service.fail_next(5)
    service.set_faults(Faults(error_rate=1.0))
    service.clear_faults()
    assert [client.get("/health").status_code for _ in range(3)] == [200, 200, 200]


def test_delay_beyond_the_client_timeout(
    service: FakeMLService, make_client: ClientFactory
) -> None:
    # The handler sleeps 30 s; the leak check proves stop() wakes it at once.
    service.set_faults(Faults(latency_s=30.0))
    c = make_client(service.url, timeout=0.2)
    with pytest.raises(httpx.ReadTimeout):
        c.get("/health")


# --------------------------------------------------------------------------------------
# Faults: broken answers
# --------------------------------------------------------------------------------------


def test_reset_mid_response(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(mode="reset"))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(PREDICT, json={"query_hash": 1})
    service.clear_faults()
    assert client.post(PREDICT, json={"query_hash": 1}).status_code == 200


def test_reset_train_still_creates_the_job(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(mode="reset", endpoints=frozenset({"train"})))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(TRAIN, json={"lookback_days": 30})
    assert client.get("/api/status").json()["training_jobs"] == 1


def test_malformed_json(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(mode="malformed_json", endpoints=frozenset({"predict"})))
    response = client.post(PREDICT, json={"query_hash": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert client.get("/health").json()["status"] == "healthy"  # not a matching endpoint


def test_truncated_body(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(mode="truncated"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(PREDICT, json={"query_hash": 1})


def test_oversized_body(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(mode="oversized", oversized_bytes=300_000))
    response = client.post(PREDICT, json={"query_hash": 4001})
    assert response.status_code == 200
    assert len(response.content) == 300_000
    body = response.json()
    assert body["query_hash"] == 4001
    assert set(body) == PREDICTION_FIELDS | {"padding"}


def test_wrong_content_type(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(mode="wrong_content_type"))
    response = client.post(PREDICT, json={"query_hash": 1})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_an_injected_error_wins_over_the_mode(service: FakeMLService, client: httpx.Client) -> None:
    service.set_faults(Faults(mode="reset", error_rate=1.0, error_status=503))
    assert client.get("/health").status_code == 503


# --------------------------------------------------------------------------------------
# Concurrency, counters
# --------------------------------------------------------------------------------------


def test_counts_are_exact_under_concurrency(
    service: FakeMLService, make_client: ClientFactory
) -> None:
    c = make_client(service.url, limits=httpx.Limits(max_connections=10))
    statuses: list[int] = []  # list.append is atomic

    def worker() -> None:
        for i in range(50):
            statuses.append(c.post(PREDICT, json={"query_hash": i + 1}).status_code)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 500
    c.get("/health")
    c.get("/nowhere")
    counts = service.request_counts()
    assert set(counts) == ENDPOINT_NAMES
    assert (counts["predict"], counts["health"], counts["unknown"]) == (500, 1, 1)
    assert service.total_requests() == 502
    counts["predict"] = 0  # a copy: the service's counters do not change
    assert service.request_counts()["predict"] == 500
    service.reset_counts()
    assert service.total_requests() == 0


def test_faults_changed_from_another_thread(
    service: FakeMLService, make_client: ClientFactory
) -> None:
    outcomes: list[tuple[int, object]] = []  # (status, query_hash echoed or None)
    stop = threading.Event()
    c = make_client(service.url, limits=httpx.Limits(max_connections=4))

    def hammer() -> None:
        while not stop.is_set():
            response = c.post(PREDICT, json={"query_hash": 11})
            echoed = response.json()["query_hash"] if response.status_code == 200 else None
            outcomes.append((response.status_code, echoed))

    def toggle() -> None:
        for _ in range(30):
            service.set_faults(Faults(error_rate=1.0, error_status=503))
            time.sleep(0.002)
            service.update_faults(error_rate=0.0, latency_s=0.001)
            time.sleep(0.002)
            service.clear_faults()

    hammers = [threading.Thread(target=hammer) for _ in range(4)]
    toggler = threading.Thread(target=toggle)
    for t in [*hammers, toggler]:
        t.start()
    toggler.join()
    stop.set()
    for t in hammers:
        t.join()

    # A change made in another thread applies to the very next request.
    changer = threading.Thread(
        target=service.set_faults, args=(Faults(error_status=418, error_rate=1.0),)
    )
    changer.start()
    changer.join()
    assert c.get("/health").status_code == 418
    service.clear_faults()
    assert c.get("/health").status_code == 200

    statuses = Counter(status for status, _ in outcomes)
    assert set(statuses) <= {200, 503}
    assert all(echoed == 11 for status, echoed in outcomes if status == 200)
    assert service.request_counts()["predict"] == len(outcomes)


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_pipelined_keep_alive_and_chunked_bodies(service: FakeMLService) -> None:
    body = b'{"query_hash": 4001}'
    first = (
        b"POST /api/predict/query-execution HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    second = (
        (
            b"POST /api/predict/query-execution HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\n" + body[:5] + b"\r\n%x\r\n" % (len(body) - 5)
        )
        + body[5:]
        + b"\r\n0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=5.0) as sock:
        sock.sendall(first + second)
        data = recv_all(sock)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert data.count(b'"query_hash":4001') == 2
    assert b"Connection: close\r\n" in data
    assert service.request_counts()["predict"] == 2


def test_http10_closes_and_garbage_gets_a_400(service: FakeMLService) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=5.0) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        data = recv_all(sock)  # returns: the server closes the connection
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    with socket.create_connection(("127.0.0.1", service.port), timeout=5.0) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_stop_closes_connections_and_is_idempotent(make_client: ClientFactory) -> None:
    svc = FakeMLService().start()
    c = make_client(svc.url)
    assert c.get("/health").status_code == 200  # a keep-alive connection is open
    svc.stop()
    svc.stop()
    assert not svc.running
    with pytest.raises(httpx.TransportError):
        c.get("/health")
    with pytest.raises(RuntimeError, match="stopped"):
        svc.start()


# --------------------------------------------------------------------------------------
# HTTP framing on a raw socket (what a hand-written client or a proxy may send)
# --------------------------------------------------------------------------------------

HEALTH_BODY = b'{"service":"ml-service","status":"healthy"}\n'
MAX_BODY = 16 * 1024 * 1024  # the service's request body limit, in bytes


def http_request(
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    version: str = "HTTP/1.1",
) -> bytes:
    """Serialize one request; a body gets a Content-Length unless headers frame it."""
    fields = {"Host": "127.0.0.1", **(headers or {})}
    if body is not None and "Transfer-Encoding" not in fields:
        fields.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + (body or b"")


def predict_request(query_hash: int = 4001, **headers: str) -> bytes:
    body = json.dumps({"query_hash": query_hash}).encode()
    return http_request("POST", PREDICT, body, {"Content-Type": "application/json", **headers})


class RawConnection:
    """One TCP connection that sends bytes and reads Content-Length framed responses."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; unread: {self.buffer[:200]!r}")
        self.buffer += chunk

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Read a status line and header fields: (status, {lowercase name: value})."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1"
        fields = (line.partition(":") for line in lines)
        return int(status), {name.lower(): value.strip() for name, _, value in fields}

    def read_response(self, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        """Read one whole response: (status, header fields, body)."""
        status, fields = self.read_head()
        length = 0 if head else int(fields["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, fields, body

    def read_to_end(self) -> tuple[bytes, type[OSError] | None]:
        """Read until the peer closes: (the bytes, ConnectionResetError or None for a FIN)."""
        data, self.buffer = self.buffer, b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data, ConnectionResetError
            if not chunk:
                return data, None
            data += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(service: FakeMLService) -> Iterator[RawConnection]:
    """A raw TCP connection to ``service``, closed after the test."""
    connection = RawConnection(service.port)
    yield connection
    connection.close()


def test_response_head_fields(raw: RawConnection) -> None:
    raw.send(http_request("GET", "/health"))
    status, fields, body = raw.read_response()
    assert (status, body) == (200, HEALTH_BODY)
    assert fields["content-type"] == "application/json"
    assert fields["content-length"] == str(len(HEALTH_BODY))
    assert fields["server"] == "pganalytics-fake-ml"
    assert fields["date"].endswith(" GMT")
    assert "connection" not in fields  # HTTP/1.1 keeps the connection without saying so


def test_keep_alive_answers_requests_in_turn_on_one_connection(
    service: FakeMLService, raw: RawConnection
) -> None:
    for query_hash in (1, 2, 3):
        raw.send(predict_request(query_hash))
        status, fields, body = raw.read_response()
        assert status == 200
        assert json.loads(body)["query_hash"] == query_hash
    raw.send(http_request("GET", "/health", headers={"Connection": "close"}))
    status, fields, body = raw.read_response()
    assert (status, fields["connection"], body) == (200, "close", HEALTH_BODY)
    assert raw.read_to_end() == (b"", None)
    assert service.request_counts()["predict"] == 3


def test_pipelined_requests_are_answered_in_order(
    service: FakeMLService, raw: RawConnection
) -> None:
    raw.send(
        b"".join(
            [
                predict_request(11),
                http_request("GET", "/health"),
                http_request("HEAD", "/health"),
                http_request("GET", "/nowhere"),
                http_request("DELETE", "/health"),
                predict_request(12),
            ]
        )
    )
    answers = [
        raw.read_response(),
        raw.read_response(),
        raw.read_response(head=True),
        raw.read_response(),
        raw.read_response(),
        raw.read_response(),
    ]
    assert [status for status, _, _ in answers] == [200, 200, 200, 404, 405, 200]
    assert json.loads(answers[0][2])["query_hash"] == 11
    assert answers[1][2] == HEALTH_BODY
    assert (answers[2][1]["content-length"], answers[2][2]) == (str(len(HEALTH_BODY)), b"")
    assert json.loads(answers[5][2])["query_hash"] == 12
    assert service.total_requests() == 6


def test_expect_100_continue(service: FakeMLService, raw: RawConnection) -> None:
    body = b'{"query_hash": 4001}'
    request = http_request(
        "POST",
        PREDICT,
        body,
        {"Content-Type": "application/json", "Expect": "100-continue"},
    )
    raw.send(request[: -len(body)])  # the head only: the body waits for the go-ahead
    assert raw.read_head()[0] == 100
    raw.send(body)
    status, _, answer = raw.read_response()
    assert status == 200
    assert json.loads(answer)["query_hash"] == 4001
    assert service.request_counts()["predict"] == 1


def test_chunked_body_with_extensions_and_trailers(
    service: FakeMLService, raw: RawConnection
) -> None:
    body = b'{"query_hash": 4001, "scenario": "optimized"}'
    chunks = b"4;name=value\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Checksum: abc\r\n\r\n" % (
        body[:4],
        len(body) - 4,
        body[4:],
    )
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    raw.send(http_request("POST", PREDICT, chunks, headers))
    status, _, answer = raw.read_response()
    assert status == 200
    assert json.loads(answer)["scenario"] == "optimized"
    raw.send(http_request("GET", "/health"))  # the trailer was consumed, not left behind
    assert raw.read_response()[::2] == (200, HEALTH_BODY)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"NONSENSE\r\n\r\n", id="request-line"),
        pytest.param(b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", id="header-line"),
        pytest.param(b"GET /health HTTP/1.1\r\n\r\n", id="http11-without-host"),
        pytest.param(
            b"POST /api/predict/query-execution HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            id="content-length",
        ),
        pytest.param(
            b"POST /api/predict/query-execution HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="chunk-size",
        ),
    ],
)
def test_a_malformed_request_is_a_400_then_close(
    service: FakeMLService, raw: RawConnection, data: bytes
) -> None:
    raw.send(data)
    status, fields, body = raw.read_response()
    assert status == 400
    assert (fields["content-type"], fields["connection"]) == ("application/json", "close")
    answer = json.loads(body)
    assert answer["error"] == "Bad Request"
    assert answer["message"]
    assert raw.read_to_end() == (b"", None)
    assert service.total_requests() == 0  # never parsed, never counted


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, id="version"),
        pytest.param(
            b"POST /api/predict/query-execution HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: gzip\r\n\r\n",
            501,
            id="transfer-encoding",
        ),
        pytest.param(
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-Field-%d: v\r\n" % i for i in range(100))
            + b"\r\n",
            431,
            id="101-header-fields",
        ),
        pytest.param(
            b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, id="long-target"
        ),
    ],
)
def test_unsupported_requests_get_their_status_then_close(
    service: FakeMLService, raw: RawConnection, data: bytes, status: int
) -> None:
    raw.send(data)
    answer_status, fields, body = raw.read_response()
    assert (answer_status, fields["connection"]) == (status, "close")
    assert json.loads(body)["error"] == HTTPStatus(status).phrase
    assert service.total_requests() == 0


def test_a_content_length_over_the_limit_is_a_413_before_the_body(
    service: FakeMLService, raw: RawConnection
) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)}
    raw.send(http_request("POST", PREDICT, headers=headers))  # the body is never sent
    status, fields, body = raw.read_response()
    assert (status, fields["connection"]) == (413, "close")
    assert json.loads(body)["error"] == "Request Entity Too Large"
    assert raw.read_to_end() == (b"", None)
    assert service.total_requests() == 0


def test_a_body_at_the_limit_is_read(service: FakeMLService, raw: RawConnection) -> None:
    padding = b" " * (MAX_BODY - len(b'{"query_hash": 7}'))
    body = b'{"query_hash": 7}' + padding
    raw.send(http_request("POST", PREDICT, body, {"Content-Type": "application/json"}))
    status, _, answer = raw.read_response()
    assert status == 200
    assert json.loads(answer)["query_hash"] == 7


def test_a_chunked_body_over_the_limit_is_a_413(service: FakeMLService, raw: RawConnection) -> None:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    piece = b"x" * (1024 * 1024)

    def send_body() -> None:
        # The service may answer and close before it has read everything: ignore that.
        with contextlib.suppress(OSError):
            raw.send(http_request("POST", PREDICT, b"%x\r\n" % (MAX_BODY + 1), headers))
            for _ in range(16):
                raw.send(piece)
            raw.send(b"x")

    sender = threading.Thread(target=send_body)
    sender.start()
    try:
        status, fields, body = raw.read_response()
    finally:
        sender.join()
    assert (status, fields["connection"]) == (413, "close")
    assert json.loads(body)["error"] == "Request Entity Too Large"
    assert service.total_requests() == 0


def test_a_repeated_head_is_framed_like_the_first(service: FakeMLService) -> None:
    # The same head bytes again (the service may reuse h11's verdict on them) still take
    # the body of their own request, and close, continue or get rejected as the first.
    one = http_request("POST", PREDICT, b'{"query_hash": 4001}', JSON_HEADERS)
    two = http_request("POST", PREDICT, b'{"query_hash": 4002}', JSON_HEADERS)
    closing = http_request("GET", "/health", headers={"Connection": "close"})
    http10 = http_request("GET", "/health", version="HTTP/1.0")
    expect = http_request(
        "POST", PREDICT, b'{"query_hash": 9}', {**JSON_HEADERS, "Expect": "100-continue"}
    )
    for _ in range(2):
        raw = RawConnection(service.port)
        try:
            raw.send(one + two)
            assert json.loads(raw.read_response()[2])["query_hash"] == 4001
            assert json.loads(raw.read_response()[2])["query_hash"] == 4002
            raw.send(expect[: expect.index(b"\r\n\r\n") + 4])
            assert raw.read_head()[0] == 100
            raw.send(b'{"query_hash": 9}')
            assert json.loads(raw.read_response()[2])["query_hash"] == 9
            raw.send(closing)
            assert raw.read_response()[1]["connection"] == "close"
            assert raw.read_to_end() == (b"", None)
        finally:
            raw.close()
        for data, status in ((http10, 200), (b"GET /health HTTP/1.1\r\n\r\n", 400)):
            raw = RawConnection(service.port)
            try:
                raw.send(data)
                answer_status, fields, _ = raw.read_response()
                assert (answer_status, fields["connection"]) == (status, "close")
                assert raw.read_to_end() == (b"", None)
            finally:
                raw.close()
    assert service.request_counts()["predict"] == 6
    assert service.request_counts()["health"] == 4


def test_request_targets_are_decoded_and_absolute_form_is_accepted(
    service: FakeMLService, raw: RawConnection
) -> None:
    raw.send(http_request("GET", "http://127.0.0.1/health?verbose=1"))
    raw.send(http_request("GET", "/api/models/%32"))
    assert raw.read_response()[2] == HEALTH_BODY
    status, _, body = raw.read_response()
    assert (status, json.loads(body)["model_id"]) == (200, 2)
    assert service.request_counts()["health"] == 1


def test_stop_closes_a_connection_waiting_in_a_delay_without_an_answer(
    make_client: ClientFactory,
) -> None:
    svc = FakeMLService(faults=Faults(latency_s=30.0)).start()
    c = make_client(svc.url, timeout=30.0)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            c.get("/health")
        except httpx.TransportError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while svc.total_requests() == 0:  # the request arrived and waits in its delay
        time.sleep(0.001)
    svc.stop()
    caller.join()
    assert [type(e) for e in errors] == [httpx.RemoteProtocolError]


# --------------------------------------------------------------------------------------
# Faults: the exact bytes of each mode
# --------------------------------------------------------------------------------------


def test_reset_sends_half_the_body_then_a_reset(service: FakeMLService, raw: RawConnection) -> None:
    service.set_faults(Faults(mode="reset"))
    raw.send(http_request("GET", "/health"))
    status, fields = raw.read_head()
    assert status == 200
    assert fields["content-length"] == str(len(HEALTH_BODY))
    assert fields["connection"] == "close"
    assert raw.read_to_end() == (HEALTH_BODY[: len(HEALTH_BODY) // 2], ConnectionResetError)


def test_truncated_sends_half_the_body_then_closes(
    service: FakeMLService, raw: RawConnection
) -> None:
    service.set_faults(Faults(mode="truncated"))
    raw.send(http_request("GET", "/health"))
    status, fields = raw.read_head()
    assert (status, fields["connection"]) == (200, "close")
    assert fields["content-length"] == str(len(HEALTH_BODY))
    assert raw.read_to_end() == (HEALTH_BODY[: len(HEALTH_BODY) // 2], None)


def test_malformed_json_drops_the_last_brace_and_keeps_the_connection(
    service: FakeMLService, raw: RawConnection
) -> None:
    service.set_faults(Faults(mode="malformed_json", latency_s=0.001))
    raw.send(http_request("GET", "/health"))
    status, fields, body = raw.read_response()
    assert (status, fields["content-type"]) == (200, "application/json")
    assert body == HEALTH_BODY.rstrip()[:-1]
    assert fields["x-injected-delay-ms"] == "1.000"
    raw.send(http_request("GET", "/nowhere"))  # a 404 is spoiled into a 200 as well
    status, _, body = raw.read_response()
    assert (status, body) == (200, b'{"error":"Not found","message":"Endpoint not found"')
    raw.send(http_request("OPTIONS", "/health"))  # no JSON to break: a JSON fragment
    assert raw.read_response()[::2] == (200, b'{"status": "ok", ')


def test_a_head_request_under_a_body_rewrite_gets_no_body(
    service: FakeMLService, raw: RawConnection
) -> None:
    service.set_faults(Faults(mode="malformed_json"))
    raw.send(http_request("HEAD", "/health") + http_request("GET", "/health"))
    status, fields, body = raw.read_response(head=True)
    assert (status, fields["content-length"], body) == (200, str(len(HEALTH_BODY) - 2), b"")
    assert raw.read_response()[::2] == (200, HEALTH_BODY.rstrip()[:-1])


def test_wrong_content_type_is_a_portal_page(service: FakeMLService, raw: RawConnection) -> None:
    service.set_faults(Faults(mode="wrong_content_type", endpoints=frozenset({"predict"})))
    raw.send(predict_request())
    status, fields, body = raw.read_response()
    assert (status, fields["content-type"]) == (200, "text/html; charset=utf-8")
    assert b"<title>Service Portal</title>" in body
    raw.send(http_request("GET", "/health"))  # same connection, an endpoint left alone
    assert raw.read_response()[::2] == (200, HEALTH_BODY)


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("/health", "GET", {"service": "ml-service", "status": "healthy"}),
        ("/nowhere", "GET", {"error": "Not found", "message": "Endpoint not found"}),
        ("/health", "DELETE", {}),  # the HTML 405 page is replaced, not padded
    ],
)
def test_oversized_pads_the_json_answer_to_the_size(
    service: FakeMLService,
    raw: RawConnection,
    path: str,
    method: str,
    expected: dict[str, object],
) -> None:
    service.set_faults(Faults(mode="oversized", oversized_bytes=5000))
    raw.send(http_request(method, path))
    status, fields, body = raw.read_response()
    assert (status, fields["content-type"], len(body)) == (200, "application/json", 5000)
    answer = json.loads(body)
    padding = answer.pop("padding")
    assert answer == expected
    assert padding == "x" * len(padding)


def test_oversized_smaller_than_the_answer_adds_an_empty_padding(
    service: FakeMLService, raw: RawConnection
) -> None:
    service.set_faults(Faults(mode="oversized", oversized_bytes=10))
    raw.send(http_request("GET", "/health"))
    assert raw.read_response()[::2] == (200, HEALTH_BODY.rstrip()[:-1] + b',"padding":""}')


def test_fail_next_wins_over_the_mode(service: FakeMLService, raw: RawConnection) -> None:
    service.set_faults(Faults(mode="reset"))
    service.fail_next(1, status=503)
    raw.send(http_request("GET", "/health"))
    status, _, body = raw.read_response()
    assert status == 503
    assert json.loads(body) == {
        "error": "Service Unavailable",
        "message": "Injected fault (fake ML service)",
    }
    raw.send(http_request("GET", "/health"))  # the connection survived; now the mode
    assert raw.read_head()[0] == 200
    assert raw.read_to_end()[1] is ConnectionResetError


# --------------------------------------------------------------------------------------
# API key
# --------------------------------------------------------------------------------------


def test_api_key_is_required_when_set(make_client: ClientFactory) -> None:
    with FakeMLService(api_key="s3cret") as svc:
        c = make_client(svc.url)
        missing = c.get("/health")
        wrong = c.get("/health", headers={"Authorization": "Bearer nope"})
        right = c.get("/health", headers={"Authorization": "Bearer s3cret"})
        predict = c.post(
            PREDICT, json={"query_hash": 1}, headers={"Authorization": "Bearer s3cret"}
        )
        assert (missing.status_code, wrong.status_code) == (401, 401)
        assert missing.json() == {"error": "unauthorized"}
        assert (right.status_code, predict.status_code) == (200, 200)
        assert svc.total_requests() == 4
        assert "s3cret" not in repr(svc)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


@pytest.mark.slow  # a real process
def test_cli_serves_and_exits_cleanly_on_sigterm(make_client: ClientFactory) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pganalytics_core.testing", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        assert make_client(match.group(1)).get("/health").json()["status"] == "healthy"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert err == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow  # a real process
def test_cli_rejects_a_bad_argument_with_status_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pganalytics_core.testing", "--error-rate", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "--error-rate" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "abc"], "not a port number"),
        (["--port", "70000"], "port must be in 0..65535"),
        (["--latency-ms", "-5"], "must be a finite number >= 0"),
        (["--error-status", "700"], "error_status"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_cli_argument_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_reports_a_busy_port(
    service: FakeMLService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["--port", str(service.port)]) == 1
    assert "cannot listen on" in capsys.readouterr().err


def test_non_finite_writes_every_number_as_nan(service: FakeMLService, raw: RawConnection) -> None:
    service.set_faults(Faults(mode="non_finite", endpoints=frozenset({"predict"})))
    raw.send(predict_request(4001))
    status, fields, body = raw.read_response()
    assert (status, fields["content-type"]) == (200, "application/json")
    data = json.loads(body)  # Python's json reads NaN; strict JSON parsers do not
    assert set(data) == PREDICTION_FIELDS
    assert math.isnan(data["predicted_execution_time_ms"])
    assert math.isnan(data["query_hash"])
    assert b"NaN" in body
    raw.send(http_request("GET", "/health"))  # same connection, an endpoint left alone
    assert raw.read_response()[::2] == (200, HEALTH_BODY)


def test_drip_sends_the_body_a_byte_at_a_time_then_closes(
    service: FakeMLService, raw: RawConnection
) -> None:
    interval = 0.002
    service.set_faults(Faults(mode="drip", drip_interval_s=interval))
    raw.send(http_request("GET", "/health"))
    status, fields = raw.read_head()
    assert (status, fields["connection"], fields["content-length"]) == (
        200,
        "close",
        str(len(HEALTH_BODY)),
    )
    reads = 0
    data = raw.buffer
    raw.buffer = b""
    while True:
        chunk = raw.sock.recv(65536)
        if not chunk:
            break
        reads += 1
        data += chunk
    assert data == HEALTH_BODY
    # One byte per send: the reads come in many small pieces, never the body at once.
    assert reads > len(HEALTH_BODY) // 4


def test_drip_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="drip_interval_s"):
        Faults(mode="drip", drip_interval_s=0)
