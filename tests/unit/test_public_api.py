"""The package's public surface: sorted __all__, every name importable, typed marker."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import pganalytics_core

MODULES = [
    "pganalytics_core",
    "pganalytics_core.breaker",
    "pganalytics_core.cache",
    "pganalytics_core.client",
    "pganalytics_core.errors",
    "pganalytics_core.load",
    "pganalytics_core.models",
    "pganalytics_core.retry",
    "pganalytics_core.testing",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert hasattr(module, attr), attr


def test_py_typed_marker_ships() -> None:
    assert (Path(pganalytics_core.__file__).parent / "py.typed").is_file()


def test_every_error_derives_from_the_root() -> None:
    errors = importlib.import_module("pganalytics_core.errors")
    for attr in errors.__all__:
        obj = getattr(errors, attr)
        if isinstance(obj, type):
            assert issubclass(obj, pganalytics_core.PgAnalyticsError), attr


def test_every_error_pickles_with_its_attributes() -> None:
    import pickle

    from pganalytics_core import errors

    samples = [
        errors.ConfigError("timeout_s", "must be > 0"),
        errors.CircuitOpenError("ml", 1.5),
        errors.ServiceTimeoutError("read timeout", operation="predict", attempts=3),
        errors.ServiceConnectionError("refused", operation="train", request_sent=False),
        errors.BadRequestError(400, '{"error":"x"}', operation="predict"),
        errors.RateLimitedError(429, "", retry_after_s=2.0, operation="predict"),
        errors.ServerError(503, "down", operation="validate", attempts=2),
        errors.ResponseTooLargeError(1024, operation="predict"),
        errors.TrainingJobFailedError("training-1", "no data", operation="wait"),
    ]
    for error in samples:
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert vars(again) == vars(error)
