"""Request building (pganalytics_core._requests): operations, URLs, headers, bodies."""

from __future__ import annotations

import json

import pytest

from pganalytics_core._requests import (
    HEALTH,
    PREDICT,
    TRAIN,
    TRAINING_STATUS,
    RequestBuilder,
    check_job_id,
    detect_body,
    train_body,
    validate_body,
)
from pganalytics_core.models import TrainingState


def test_a_builder_makes_get_and_json_post_requests() -> None:
    builder = RequestBuilder("http://127.0.0.1:8081/ml", "Bearer k")
    get = builder.build(HEALTH, builder.health, None, {})
    assert (get.method, str(get.url)) == ("GET", "http://127.0.0.1:8081/ml/health")
    assert get.headers["Accept-Encoding"] == "identity"
    assert get.headers["Authorization"] == "Bearer k"
    assert "Content-Type" not in get.headers
    post = builder.build(PREDICT, builder.predict, b"{}", {"timeout": {}})
    assert str(post.url).endswith("/api/predict/query-execution")
    assert post.headers["Content-Type"] == "application/json"
    assert post.content == b"{}"
    assert post.extensions == {"timeout": {}}
    assert (
        "Authorization"
        not in RequestBuilder("http://h", None).build(HEALTH, builder.health, None, {}).headers
    )


@pytest.mark.parametrize("job_id", ["..", ".", "a/b", "a?b", "a#b", "", "x" * 201, "é"])
def test_a_job_id_that_would_change_the_url_is_refused(job_id: str) -> None:
    with pytest.raises(ValueError, match="plain path segment"):
        check_job_id(job_id)


def test_a_status_url_is_one_segment_under_train() -> None:
    builder = RequestBuilder("http://h", None)
    assert str(builder.status("job-1.a_b~")) == "http://h/api/train/performance-model/job-1.a_b~"
    with pytest.raises(TypeError, match="job_id must be a str"):
        check_job_id(7)


def test_bodies_are_compact_json_of_checked_arguments() -> None:
    assert json.loads(train_body("db", 7, "decision_tree", True)) == {
        "database_name": "db",
        "lookback_days": 7,
        "model_type": "decision_tree",
        "force_retrain": True,
    }
    assert b" " not in detect_body("db", 1)
    with pytest.raises(ValueError, match="model_type"):
        train_body("db", 7, "svm", False)
    with pytest.raises(TypeError, match="force_retrain"):
        train_body("db", 7, "decision_tree", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="predicted_execution_time_ms"):
        validate_body("p", 1, 0.0, 1.0, "v1")


def test_operations_say_how_they_are_retried_and_read() -> None:
    assert not HEALTH.retryable
    assert not TRAIN.idempotent
    assert PREDICT.idempotent
    assert PREDICT.retryable
    accept = TRAINING_STATUS.accept_400
    assert accept is not None
    failed = accept({"job_id": "j", "status": "failed", "error": "boom"})
    assert failed is not None
    assert failed.status is TrainingState.FAILED
    assert accept({"job_id": "j", "status": "training"}) is None
    assert accept({"not": "a job"}) is None
