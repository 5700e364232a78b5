"""Batch planning (pganalytics_core._batch_plan): check, de-duplicate, cache, merge."""

from __future__ import annotations

import pytest

from pganalytics_core._batch_plan import check_batch, merge_outcomes, plan_batch
from pganalytics_core.cache import PredictionCache
from pganalytics_core.models import (
    Prediction,
    PredictionOutcome,
    PredictionRequest,
    parse_prediction,
)


def prediction(query_hash: int) -> Prediction:
    return parse_prediction(
        {
            "query_hash": query_hash,
            "predicted_execution_time_ms": 12.5,
            "confidence_score": 0.87,
            "confidence_interval": {
                "lower_bound_ms": 10.5,
                "upper_bound_ms": 14.5,
                "std_dev_ms": 1.0,
            },
            "scenario": "current",
            "model_version": "v1.0",
            "prediction_timestamp": "2026-11-26T21:14:24.123456",
            "source": "database",
        }
    )


def test_a_batch_is_checked_before_anything_is_sent() -> None:
    with pytest.raises(TypeError, match="PredictionRequest values, got int"):
        check_batch([PredictionRequest(1), 2], 4)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_concurrency"):
        check_batch([], 0)
    assert check_batch(iter([PredictionRequest(1)]), 1) == [PredictionRequest(1)]


def test_duplicates_go_once_and_cached_requests_not_at_all() -> None:
    cache = PredictionCache()
    cached = PredictionRequest(1)
    cache.put(cached, prediction(1))
    batch = [PredictionRequest(2), cached, PredictionRequest(2), PredictionRequest(3)]
    outcomes, todo = plan_batch(batch, cache)
    assert todo == [PredictionRequest(2), PredictionRequest(3)]
    assert list(outcomes) == [cached]
    _, everything = plan_batch(batch, None)
    assert everything == [PredictionRequest(2), cached, PredictionRequest(3)]


def test_results_merge_in_input_order_and_an_unexpected_error_is_raised() -> None:
    batch = [PredictionRequest(2), PredictionRequest(1), PredictionRequest(2)]
    outcomes, todo = plan_batch(batch, None)
    results: list[PredictionOutcome | Exception] = [
        PredictionOutcome(request, prediction(request.query_hash)) for request in todo
    ]
    merged = merge_outcomes(batch, outcomes, results)
    assert [outcome.request.query_hash for outcome in merged] == [2, 1, 2]
    assert merged[0] is merged[2]
    with pytest.raises(KeyError, match="bug"):
        merge_outcomes(batch, {}, [KeyError("bug")])
