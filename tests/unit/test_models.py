"""Request and response types: validation, canonical keys, tolerant and strict parsing."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pganalytics_core.errors import BadRequestError, MalformedResponseError
from pganalytics_core.models import (
    ConfidenceInterval,
    PredictionOutcome,
    PredictionRequest,
    TrainingState,
    canonical_parameters,
    parse_pattern_detection,
    parse_prediction,
    parse_training_job,
    parse_training_status,
    parse_validation_result,
)

PREDICTION: dict[str, Any] = {
    "query_hash": 4001,
    "predicted_execution_time_ms": 12.5,
    "confidence_score": 0.87,
    "confidence_interval": {"lower_bound_ms": 10.0, "upper_bound_ms": 15, "std_dev_ms": 1.25},
    "scenario": "current",
    "model_version": "v1.0",
    "prediction_timestamp": "2026-11-26T21:14:24.123456",
    "source": "database",
}
TRAINING_JOB: dict[str, Any] = {
    "job_id": "training-20261126-211424-a60149a4",
    "status": "queued",
    "database_name": "pganalytics",
    "lookback_days": 90,
    "model_type": "linear_regression",
    "message": "Model training started in background",
}
COMPLETED: dict[str, Any] = {
    "job_id": "training-20261126-211424-a60149a4",
    "status": "completed",
    "created_at": "2026-11-26T21:14:24",
    "updated_at": "2026-11-26T21:14:25+02:00",
    "model_id": 7,
    "r_squared": 0.81,
    "training_samples": 1500,
    "feature_count": 2,
    "feature_importance": {"index_count": 0.75, "join_count": 0.25},
}
VALIDATION: dict[str, Any] = {
    "prediction_id": "p-1",
    "query_hash": 4001,
    "error_percent": 16.67,
    "accuracy_score": 0.833,
    "within_confidence_interval": True,
    "message": "Prediction validation recorded",
}
PATTERNS: dict[str, Any] = {
    "patterns_detected": 1,
    "patterns": [
        {
            "type": "n_plus_one",
            "description": "Many near-identical queries",
            "confidence": 0.9,
            "metadata": {"occurrences": 3},
        }
    ],
    "timestamp": "2026-11-26T21:14:24Z",
}


# --------------------------------------------------------------------------- requests


def test_prediction_request_defaults_and_body() -> None:
    request = PredictionRequest.create(4001)
    assert request == PredictionRequest(4001, "current", "{}")
    assert json.loads(request.body()) == {
        "query_hash": 4001,
        "parameters": {},
        "scenario": "current",
    }
    assert request.parameters == {}


def test_prediction_requests_with_reordered_parameters_are_equal_and_hash_alike() -> None:
    a = PredictionRequest.create(7, parameters={"b": [1, 2], "a": {"y": 1, "x": 2}})
    b = PredictionRequest.create(7, parameters={"a": {"x": 2, "y": 1}, "b": [1, 2]})
    assert a == b
    assert hash(a) == hash(b)
    assert a.parameters_json == '{"a":{"x":2,"y":1},"b":[1,2]}'
    assert len({a, b, PredictionRequest.create(7, scenario="optimized")}) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"query_hash": 0}, ValueError, "query_hash must be > 0"),
        ({"query_hash": -3}, ValueError, "query_hash must be > 0"),
        ({"query_hash": True}, TypeError, "query_hash must be an int, got bool"),
        ({"query_hash": 4001.0}, TypeError, "query_hash must be an int, got float"),
        ({"query_hash": "4001"}, TypeError, "query_hash must be an int, got str"),
        ({"query_hash": 1, "scenario": "future"}, ValueError, "scenario must be one of"),
        ({"query_hash": 1, "parameters": [1, 2]}, TypeError, "parameters must be a mapping"),
        ({"query_hash": 1, "parameters": "x"}, TypeError, "parameters must be a mapping"),
        ({"query_hash": 1, "parameters": {"a": object()}}, TypeError, "JSON-serialisable"),
        ({"query_hash": 1, "parameters": {"a": float("nan")}}, ValueError, "finite JSON"),
    ],
)
def test_prediction_request_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        PredictionRequest.create(**kwargs)


def test_prediction_request_rejects_non_string_parameters_json() -> None:
    with pytest.raises(TypeError, match="parameters_json must be a str"):
        PredictionRequest(1, "current", {"a": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "parameters_json",
    [
        '{},"query_hash":6',  # would add a field to the body
        '{"b":1,"a":2}',  # keys out of order: another cache key for the same question
        '{ "a": 1 }',
        '{"a":1,"a":2}',
        '{"a":NaN}',
        "[1]",
        "null",
        "",
        "{",
        '"{}"',
    ],
)
def test_the_constructor_refuses_parameters_json_that_is_not_canonical(
    parameters_json: str,
) -> None:
    with pytest.raises(ValueError, match="parameters_json must be canonical JSON of an object"):
        PredictionRequest(5, "current", parameters_json)


def test_create_does_not_parse_the_text_it_made_canonical(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_parsing(text: str) -> object:
        raise AssertionError("json.loads called")

    monkeypatch.setattr(json, "loads", no_parsing)
    request = PredictionRequest.create(5, parameters={"b": 1, "a": [2]}, scenario="optimized")
    assert request.parameters_json == '{"a":[2],"b":1}'
    with pytest.raises(AssertionError, match=r"json\.loads called"):
        PredictionRequest(5, "optimized", '{"a":[2],"b":1}')


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"query_hash": 0}, ValueError, "query_hash must be > 0"),
        ({"query_hash": True}, TypeError, "query_hash must be an int, got bool"),
        ({"query_hash": 1, "scenario": "future"}, ValueError, "scenario must be one of"),
    ],
)
def test_create_checks_what_the_constructor_checks(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        PredictionRequest(**kwargs)
    with pytest.raises(error, match=match):
        PredictionRequest.create(**kwargs)


def test_canonical_parameters_of_none_and_empty_mapping() -> None:
    assert canonical_parameters(None) == "{}"
    assert canonical_parameters({}) == "{}"


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    query_hash=st.integers(min_value=1, max_value=2**63),
    scenario=st.sampled_from(["current", "optimized"]),
    parameters=st.dictionaries(st.text(max_size=6), _json_values, max_size=5),
)
def test_body_is_the_json_of_the_request(
    query_hash: int, scenario: str, parameters: dict[str, object]
) -> None:
    request = PredictionRequest.create(query_hash, parameters=parameters, scenario=scenario)
    assert json.loads(request.body()) == {
        "query_hash": query_hash,
        "parameters": parameters,
        "scenario": scenario,
    }
    reordered = dict(reversed(list(parameters.items())))
    assert PredictionRequest.create(query_hash, parameters=reordered, scenario=scenario) == request
    # The constructor accepts exactly what create builds.
    assert PredictionRequest(query_hash, scenario, request.parameters_json) == request


# --------------------------------------------------------------------------- parsing


def test_parse_prediction_reads_every_field_and_assumes_utc_for_naive_timestamps() -> None:
    prediction = parse_prediction(PREDICTION)
    assert prediction.query_hash == 4001
    assert prediction.predicted_execution_time_ms == 12.5
    assert prediction.confidence_score == 0.87
    assert prediction.confidence_interval == ConfidenceInterval(10.0, 15.0, 1.25)
    assert type(prediction.confidence_interval.upper_bound_ms) is float
    assert prediction.scenario == "current"
    assert prediction.model_version == "v1.0"
    assert prediction.prediction_timestamp == datetime(2026, 11, 26, 21, 14, 24, 123456, tzinfo=UTC)
    assert prediction.source == "database"
    with pytest.raises(dataclasses.FrozenInstanceError):
        prediction.source = "mock"  # type: ignore[misc]


def test_parse_prediction_keeps_an_explicit_time_zone() -> None:
    body = {**PREDICTION, "prediction_timestamp": "2026-11-26T21:14:24-05:00"}
    stamp = parse_prediction(body).prediction_timestamp
    assert stamp.utcoffset() == timedelta(hours=-5)
    assert stamp == datetime(2026, 11, 27, 2, 14, 24, tzinfo=UTC)


def test_parse_prediction_ignores_unknown_fields() -> None:
    assert parse_prediction({**PREDICTION, "new_field": [1]}) == parse_prediction(PREDICTION)


@pytest.mark.parametrize("field", sorted(PREDICTION))
def test_parse_prediction_names_a_missing_field(field: str) -> None:
    body = {k: v for k, v in PREDICTION.items() if k != field}
    with pytest.raises(MalformedResponseError, match=f"missing field '{field}'"):
        parse_prediction(body)


@pytest.mark.parametrize("field", ["lower_bound_ms", "upper_bound_ms", "std_dev_ms"])
def test_parse_prediction_names_a_missing_interval_field(field: str) -> None:
    body = copy.deepcopy(PREDICTION)
    del body["confidence_interval"][field]
    with pytest.raises(
        MalformedResponseError, match=f"confidence_interval: missing field '{field}'"
    ):
        parse_prediction(body)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("query_hash", "4001", "'query_hash' must be an integer, got string"),
        ("query_hash", 4001.5, "'query_hash' must be an integer, got number"),
        ("predicted_execution_time_ms", "12", "must be a number, got string"),
        ("predicted_execution_time_ms", True, "must be a number, got boolean"),
        ("confidence_score", None, "must be a number, got null"),
        ("confidence_interval", [1, 2], "'confidence_interval' must be an object, got array"),
        ("scenario", 1, "'scenario' must be a string, got number"),
        ("prediction_timestamp", "yesterday", "not an ISO 8601 timestamp"),
        ("prediction_timestamp", 1700000000, "must be a string, got number"),
    ],
)
def test_parse_prediction_rejects_wrong_types(field: str, value: object, match: str) -> None:
    with pytest.raises(MalformedResponseError, match=match):
        parse_prediction({**PREDICTION, field: value})


@pytest.mark.parametrize("document", [[PREDICTION], "text", 42, None, True])
def test_parsers_reject_documents_that_are_not_objects(document: object) -> None:
    for parse in (
        parse_prediction,
        parse_training_job,
        parse_training_status,
        parse_validation_result,
        parse_pattern_detection,
    ):
        with pytest.raises(MalformedResponseError, match="expected a JSON object"):
            parse(document)


def test_parse_prediction_accepts_an_integral_float_query_hash() -> None:
    assert parse_prediction({**PREDICTION, "query_hash": 4001.0}).query_hash == 4001


def test_parse_training_job() -> None:
    job = parse_training_job(TRAINING_JOB)
    assert job.job_id == "training-20261126-211424-a60149a4"
    assert job.status is TrainingState.QUEUED
    assert job.status == "queued"
    assert (job.database_name, job.lookback_days, job.model_type) == (
        "pganalytics",
        90,
        "linear_regression",
    )
    assert job.message == "Model training started in background"


def test_parse_training_job_rejects_an_unknown_status() -> None:
    with pytest.raises(MalformedResponseError, match="unknown status 'paused'"):
        parse_training_job({**TRAINING_JOB, "status": "paused"})


def test_parse_training_status_completed_with_model_fields() -> None:
    status = parse_training_status(COMPLETED)
    assert status.status is TrainingState.COMPLETED
    assert status.is_terminal
    assert status.created_at == datetime(2026, 11, 26, 21, 14, 24, tzinfo=UTC)
    assert status.updated_at == datetime(
        2026, 11, 26, 21, 14, 25, tzinfo=timezone(timedelta(hours=2))
    )
    assert status.model_id == "7"
    assert status.r_squared == 0.81
    assert (status.training_samples, status.feature_count) == (1500, 2)
    assert status.feature_importance == {"index_count": 0.75, "join_count": 0.25}
    assert status.error is None
    with pytest.raises(TypeError):
        status.feature_importance["index_count"] = 1.0  # type: ignore[index]


def test_model_id_as_int_and_as_str_parse_to_the_same_value() -> None:
    as_int = parse_training_status({**COMPLETED, "model_id": 7})
    as_str = parse_training_status({**COMPLETED, "model_id": "7"})
    assert as_int == as_str
    with pytest.raises(MalformedResponseError, match="'model_id' must be an integer or a string"):
        parse_training_status({**COMPLETED, "model_id": 7.5})


def test_parse_training_status_running_and_failed() -> None:
    running = parse_training_status({"job_id": "j", "status": "training"})
    assert running.status is TrainingState.TRAINING
    assert not running.is_terminal
    assert running.created_at is None
    assert running.model_id is None
    assert running.feature_importance is None
    failed = parse_training_status({"job_id": "j", "status": "failed", "error": "no data"})
    assert failed.status is TrainingState.FAILED
    assert failed.is_terminal
    assert failed.error == "no data"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"status": "queued"}, "missing field 'job_id'"),
        ({"job_id": "j"}, "missing field 'status'"),
        ({**COMPLETED, "r_squared": "high"}, "'r_squared' must be a number"),
        ({**COMPLETED, "training_samples": 1.5}, "'training_samples' must be an integer"),
        ({**COMPLETED, "feature_importance": [1]}, "'feature_importance' must be an object"),
        ({**COMPLETED, "feature_importance": {"a": "x"}}, "feature_importance: field 'a'"),
        ({**COMPLETED, "created_at": "26/11/2026"}, "'created_at' is not an ISO 8601"),
    ],
)
def test_parse_training_status_rejects_bad_bodies(body: dict[str, Any], match: str) -> None:
    with pytest.raises(MalformedResponseError, match=match):
        parse_training_status(body)


def test_parse_validation_result() -> None:
    result = parse_validation_result(VALIDATION)
    assert result.prediction_id == "p-1"
    assert result.query_hash == 4001
    assert result.error_percent == 16.67
    assert result.accuracy_score == 0.833
    assert result.within_confidence_interval is True
    assert result.message == "Prediction validation recorded"
    with pytest.raises(
        MalformedResponseError, match="'within_confidence_interval' must be a boolean"
    ):
        parse_validation_result({**VALIDATION, "within_confidence_interval": 1})


def test_parse_pattern_detection() -> None:
    detection = parse_pattern_detection(PATTERNS)
    assert detection.patterns_detected == 1
    assert detection.timestamp == datetime(2026, 11, 26, 21, 14, 24, tzinfo=UTC)
    (pattern,) = detection.patterns
    assert pattern.type == "n_plus_one"
    assert pattern.confidence == 0.9
    assert pattern.metadata == {"occurrences": 3}
    empty = parse_pattern_detection({"patterns_detected": 0, "patterns": []})
    assert empty.patterns == ()
    assert empty.timestamp is None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"patterns_detected": 0}, "missing field 'patterns'"),
        ({"patterns": {"a": 1}}, "'patterns' must be an array"),
        ({"patterns": [1]}, r"patterns\[0\]: expected a JSON object"),
        ({"patterns": [{"type": "x"}]}, r"patterns\[0\]: missing field 'confidence'"),
        ({"patterns": [{"type": "x", "confidence": 1, "metadata": 3}]}, "'metadata' must be"),
    ],
)
def test_parse_pattern_detection_rejects_bad_bodies(body: dict[str, Any], match: str) -> None:
    with pytest.raises(MalformedResponseError, match=match):
        parse_pattern_detection(body)


def test_results_are_hashable_value_objects() -> None:
    assert parse_prediction(PREDICTION) == parse_prediction(copy.deepcopy(PREDICTION))
    assert hash(parse_prediction(PREDICTION)) == hash(parse_prediction(PREDICTION))
    assert hash(parse_training_status(COMPLETED)) == hash(parse_training_status(COMPLETED))


# --------------------------------------------------------------------------- outcomes


def test_prediction_outcome_holds_exactly_one_of_prediction_and_error() -> None:
    request = PredictionRequest.create(1)
    prediction = parse_prediction(PREDICTION)
    good = PredictionOutcome(request, prediction)
    assert good.ok
    assert good.unwrap() is prediction
    error = BadRequestError(400, "nope", operation="predict")
    bad = PredictionOutcome(request, error=error)
    assert not bad.ok
    with pytest.raises(BadRequestError, match="nope"):
        bad.unwrap()
    with pytest.raises(ValueError, match="exactly one"):
        PredictionOutcome(request)
    with pytest.raises(ValueError, match="exactly one"):
        PredictionOutcome(request, prediction, error)


@pytest.mark.parametrize(
    "name",
    [
        "pganalytics_core.models",
        "pganalytics_core.retry",
        "pganalytics_core.cache",
        "pganalytics_core.client",
    ],
)
def test_client_modules_export_a_sorted_importable_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    assert all(hasattr(module, attr) for attr in exported)
    package = importlib.import_module("pganalytics_core")
    assert list(package.__all__) == sorted(package.__all__)
