"""Shared, seeded, append-only fixtures for the asv suites.

Append new helpers at the end; never change what an existing helper returns (that would
shift the history of every benchmark using it).

Every suite must also run against older commits of main, whose package may lack an API:
use :func:`require` in ``setup`` so that asv records "n/a" (NotImplementedError) instead
of a failure.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

SEED = 20261126


def require(module: str, *names: str) -> Any:
    """Import ``module`` and return it (or the named attributes as a tuple).

    Raises:
        NotImplementedError: the module or one of the names does not exist in the commit
            being benchmarked; asv then skips the benchmark for that commit.
    """
    try:
        mod: ModuleType = importlib.import_module(module)
    except ImportError as exc:
        raise NotImplementedError(f"{module} is not available: {exc}") from None
    if not names:
        return mod
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise NotImplementedError(f"{module} lacks {', '.join(missing)}")
    values = tuple(getattr(mod, n) for n in names)
    return values[0] if len(values) == 1 else values


def run_in_threads(n_threads: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``n_threads`` threads released together; wait for all."""
    barrier = threading.Barrier(n_threads)

    def body(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def noop() -> None:
    """The cheapest guarded function: the floor of a guarded call."""


async def async_noop() -> None:
    """The cheapest awaitable function."""


class Failure(Exception):
    """The exception the failure-path benchmarks raise."""


def fail() -> None:
    raise Failure


# --------------------------------------------------------------------------- ML service
# Canned answers of the ML service for httpx.MockTransport, shared by the client and the
# raw-httpx reference benchmarks so both parse exactly the same bytes.

PREDICTION_BODY = (
    b'{"query_hash":4242,"predicted_execution_time_ms":12.5,"confidence_score":0.87,'
    b'"confidence_interval":{"lower_bound_ms":10.1,"upper_bound_ms":14.9,"std_dev_ms":1.2},'
    b'"scenario":"current","model_version":"v1.0",'
    b'"prediction_timestamp":"2026-11-26T21:14:24.123456","source":"mock"}'
)
HEALTH_BODY = b'{"status":"healthy","service":"ml-service"}'
TRAIN_BODY = (
    b'{"job_id":"training-20261126-211424-a60149a4","status":"queued",'
    b'"database_name":"pganalytics","lookback_days":90,"model_type":"linear_regression",'
    b'"message":"Training job queued"}'
)
STATUS_BODY = (
    b'{"job_id":"training-20261126-211424-a60149a4","status":"completed",'
    b'"created_at":"2026-11-26T21:14:24","updated_at":"2026-11-26T21:14:30",'
    b'"model_id":"17","r_squared":0.91,"training_samples":1200,"feature_count":8,'
    b'"feature_importance":{"rows":0.5,"cost":0.3,"loops":0.2}}'
)
VALIDATE_BODY = (
    b'{"prediction_id":"p-1","query_hash":4242,"error_percent":4.0,"accuracy_score":0.96,'
    b'"within_confidence_interval":true,"message":"Prediction validated"}'
)
PATTERNS_BODY = (
    b'{"patterns_detected":2,"patterns":['
    b'{"type":"periodic_spike","description":"hourly spike","confidence":0.8,"metadata":{}},'
    b'{"type":"slow_growth","description":"growing table","confidence":0.6,"metadata":{}}],'
    b'"timestamp":"2026-11-26T21:14:24Z"}'
)
ERROR_500_BODY = b'{"error":"Internal Server Error","message":"boom"}'

_ROUTES = {
    ("GET", "/health"): HEALTH_BODY,
    ("POST", "/api/predict/query-execution"): PREDICTION_BODY,
    ("POST", "/api/train/performance-model"): TRAIN_BODY,
    ("POST", "/api/validate/prediction"): VALIDATE_BODY,
    ("POST", "/api/detect/patterns"): PATTERNS_BODY,
}
_JSON = [(b"content-type", b"application/json")]


def ml_handler(request: Any) -> Any:
    """An ``httpx.MockTransport`` handler answering every endpoint with a canned body.

    A path ending in ``/fail`` (or a request with header ``x-fail``) gets a 500.
    """
    import httpx

    key = (request.method, request.url.path)
    body = _ROUTES.get(key)
    if body is None and request.url.path.startswith("/api/train/performance-model/"):
        body = STATUS_BODY
    if body is None or "x-fail" in request.headers:
        status = 404 if body is None else 500
        return httpx.Response(status, headers=_JSON, content=ERROR_500_BODY)
    status = 202 if key[1] == "/api/train/performance-model" else 200
    return httpx.Response(status, headers=_JSON, content=body)


def prediction_requests(n: int, distinct: int) -> list[tuple[int, str]]:
    """``n`` (query_hash, scenario) pairs drawn from ``distinct`` queries, seeded."""
    import random

    rng = random.Random(SEED)
    scenarios = ("current", "optimized")
    return [(rng.randrange(1, distinct + 1), scenarios[rng.randrange(2)]) for _ in range(n)]


#: The prediction body as the service sends it when its database answers; the client
#: caches only these (``"source": "mock"`` answers are never cached).
PREDICTION_BODY_DATABASE = PREDICTION_BODY.replace(b'"source":"mock"', b'"source":"database"')


def ml_handler_database(request: Any) -> Any:
    """Like :func:`ml_handler`, but predictions come from the service's database."""
    response = ml_handler(request)
    if request.url.path == "/api/predict/query-execution" and response.status_code == 200:
        import httpx

        return httpx.Response(200, headers=_JSON, content=PREDICTION_BODY_DATABASE)
    return response
