"""Request building: the API's operations, their URLs, headers and JSON bodies. No I/O.

Each operation of the API (:class:`Op`) says how it is sent and read: its method,
whether it is idempotent (a retry after the request may have reached the service is safe
only then), whether it is retried at all, and how its answer is parsed. Arguments are
checked before anything is sent: a bad one is a ``ValueError``/``TypeError`` and no
request is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import httpx

from pganalytics_core._validation import check_count, check_positive, check_text
from pganalytics_core.errors import MalformedResponseError
from pganalytics_core.models import (
    MODEL_TYPES,
    PredictionRequest,
    TrainingState,
    TrainingStatus,
    parse_pattern_detection,
    parse_prediction,
    parse_training_job,
    parse_training_status,
    parse_validation_result,
)

__all__ = [
    "DETECT_PATTERNS",
    "HEALTH",
    "PREDICT",
    "TRAIN",
    "TRAINING_STATUS",
    "VALIDATE",
    "Op",
    "RequestBuilder",
    "check_job_id",
    "detect_body",
    "train_body",
    "validate_body",
]

T = TypeVar("T")

_USER_AGENT: Final = "pganalytics-core"

_JSON_SEPARATORS: Final = (",", ":")

# A job id is one URL path segment made of unreserved characters (RFC 3986), so it can
# never add a segment, a query or a fragment; "." and ".." are refused separately.
_PATH_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9._~-]{1,200}")


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """What the client needs to know about one operation of the API."""

    operation: str
    method: str
    idempotent: bool
    parse: Callable[[object], T]
    retryable: bool = True
    # The status endpoint answers 400 with the job's body when the job failed: this turns
    # such a body (decoded, scrubbed JSON) into a result (None: a plain bad request).
    accept_400: Callable[[object], T | None] | None = None


def _parse_health(data: object) -> bool:
    return type(data) is dict and data.get("status") == "healthy"


def _failed_job(data: object) -> TrainingStatus | None:
    try:
        job = parse_training_status(data)
    except MalformedResponseError:
        return None
    return job if job.status is TrainingState.FAILED else None


HEALTH: Final = Op("health", "GET", True, _parse_health, retryable=False)
PREDICT: Final = Op("predict", "POST", True, parse_prediction)
TRAIN: Final = Op("train", "POST", False, parse_training_job)
TRAINING_STATUS: Final = Op(
    "training_status", "GET", True, parse_training_status, accept_400=_failed_job
)
VALIDATE: Final = Op("validate", "POST", True, parse_validation_result)
DETECT_PATTERNS: Final = Op("detect_patterns", "POST", True, parse_pattern_detection)


def check_job_id(job_id: object) -> str:
    """Return ``job_id`` if it is one plain URL path segment.

    Raises:
        TypeError: not a str.
        ValueError: it would change the URL (a slash, a query, ``..``, ...).
    """
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a str, got {type(job_id).__name__}")
    if job_id in (".", "..") or _PATH_SEGMENT_RE.fullmatch(job_id) is None:
        raise ValueError(
            f"job_id {job_id[:60]!r} is not a plain path segment (letters, digits and '-._~' only)"
        )
    return job_id


def _json_body(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, separators=_JSON_SEPARATORS).encode()


def train_body(
    database_name: str, lookback_days: int, model_type: str, force_retrain: bool
) -> bytes:
    """The body of ``POST /api/train/performance-model``, its arguments checked."""
    check_text("database_name", database_name)
    check_count("lookback_days", lookback_days, 7)
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {sorted(MODEL_TYPES)}, got {model_type!r}")
    if type(force_retrain) is not bool:
        raise TypeError(f"force_retrain must be a bool, got {type(force_retrain).__name__}")
    return _json_body(
        {
            "database_name": database_name,
            "lookback_days": lookback_days,
            "model_type": model_type,
            "force_retrain": force_retrain,
        }
    )


def validate_body(
    prediction_id: str,
    query_hash: int,
    predicted_execution_time_ms: float,
    actual_execution_time_ms: float,
    model_version: str,
) -> bytes:
    """The body of ``POST /api/validate/prediction``, its arguments checked."""
    check_text("prediction_id", prediction_id)
    PredictionRequest(query_hash)  # the same checks as predict's
    # The service tests fields for truthiness, so a 0 would come back as "missing".
    check_positive("predicted_execution_time_ms", predicted_execution_time_ms)
    check_positive("actual_execution_time_ms", actual_execution_time_ms)
    check_text("model_version", model_version)
    return _json_body(
        {
            "prediction_id": prediction_id,
            "query_hash": query_hash,
            "predicted_execution_time_ms": predicted_execution_time_ms,
            "actual_execution_time_ms": actual_execution_time_ms,
            "model_version": model_version,
        }
    )


def detect_body(database_name: str, lookback_days: int) -> bytes:
    """The body of ``POST /api/detect/patterns``, its arguments checked."""
    check_text("database_name", database_name)
    check_count("lookback_days", lookback_days, 1)
    return _json_body({"database_name": database_name, "lookback_days": lookback_days})


class RequestBuilder:
    """Builds one client's requests: its endpoints' URLs and its headers, made once.

    Args:
        base: the service's base URL, without credentials or a trailing slash.
        authorization: the ``Authorization`` header's value, or None.
    """

    __slots__ = (
        "_get_headers",
        "_post_headers",
        "detect",
        "health",
        "predict",
        "train",
        "validate",
    )

    def __init__(self, base: str, authorization: str | None) -> None:
        common = [
            ("Accept", "application/json"),
            # Compressed bodies would be inflated before max_response_bytes is checked.
            ("Accept-Encoding", "identity"),
            ("User-Agent", _USER_AGENT),
        ]
        if authorization is not None:
            common.append(("Authorization", authorization))
        self._get_headers = httpx.Headers(common)
        self._post_headers = httpx.Headers([*common, ("Content-Type", "application/json")])
        self.health = httpx.URL(base + "/health")
        self.predict = httpx.URL(base + "/api/predict/query-execution")
        self.train = httpx.URL(base + "/api/train/performance-model")
        self.validate = httpx.URL(base + "/api/validate/prediction")
        self.detect = httpx.URL(base + "/api/detect/patterns")

    def status(self, job_id: str) -> httpx.URL:
        """The URL of a training job's status (the id checked by :func:`check_job_id`)."""
        return httpx.URL(f"{self.train}/{check_job_id(job_id)}")

    def build(
        self, op: Op[T], url: httpx.URL, content: bytes | None, extensions: dict[str, object]
    ) -> httpx.Request:
        """One attempt's request (a GET without a body, else a JSON POST)."""
        if content is None:
            return httpx.Request(op.method, url, headers=self._get_headers, extensions=extensions)
        return httpx.Request(
            op.method, url, headers=self._post_headers, content=content, extensions=extensions
        )
