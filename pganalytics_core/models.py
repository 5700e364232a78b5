"""Request and response types of the ML service's HTTP API.

Every type here is a frozen, slotted dataclass, cheap to build and safe to share between
threads. The ``parse_*`` functions turn a decoded JSON document into these types by hand
(no pydantic: this is the client's hot path) and raise :class:`MalformedResponseError`
naming the first missing or wrongly typed field. They are tolerant where the service is
loose (see ``ml-service-api.md``):

* timestamps are ISO 8601 strings, sometimes without a time zone; a naive timestamp is
  taken as UTC, so every parsed :class:`~datetime.datetime` is aware;
* ``model_id`` is an integer in some answers and a string in others; it is normalised to
  ``str`` so that both spellings compare equal;
* integers are accepted where a float is documented (JSON does not distinguish ``1`` from
  ``1.0``); booleans are never accepted as numbers.

Unknown extra fields are ignored, so a newer service does not break an older client.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, cast

from pganalytics_core.errors import MalformedResponseError, PgAnalyticsError

__all__ = [
    "ConfidenceInterval",
    "MODEL_TYPES",
    "Pattern",
    "PatternDetection",
    "Prediction",
    "PredictionOutcome",
    "PredictionRequest",
    "SCENARIOS",
    "TrainingJob",
    "TrainingState",
    "TrainingStatus",
    "ValidationResult",
    "canonical_parameters",
    "parse_pattern_detection",
    "parse_prediction",
    "parse_training_job",
    "parse_training_status",
    "parse_validation_result",
]

#: The prediction scenarios the service knows.
SCENARIOS: Final = frozenset({"current", "optimized"})

#: The model types the service can train.
MODEL_TYPES: Final = frozenset({"linear_regression", "decision_tree", "random_forest"})

_EMPTY_PARAMETERS: Final = "{}"
# One encoder built once: json.dumps with non-default options builds a new one per call.
_canonical_json: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


class TrainingState(enum.StrEnum):
    """The state of a training job; compares equal to the service's strings."""

    QUEUED = "queued"
    TRAINING = "training"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True once the job has completed or failed."""
        return self is TrainingState.COMPLETED or self is TrainingState.FAILED


_TRAINING_STATES: Final = {state.value: state for state in TrainingState}


# --------------------------------------------------------------------------- requests


def canonical_parameters(parameters: Mapping[str, object] | None) -> str:
    """Return the canonical JSON text of prediction parameters.

    Two mappings with the same content give the same text whatever their key order, which
    makes the text usable in cache keys and for de-duplicating requests.

    Args:
        parameters: a JSON-serialisable mapping with string keys, or None for ``{}``.

    Returns:
        Compact JSON with sorted keys.

    Raises:
        TypeError: ``parameters`` is not a mapping, or holds a value JSON cannot encode.
        ValueError: ``parameters`` holds NaN or an infinity.
    """
    if not parameters:
        if parameters is None or isinstance(parameters, Mapping):
            return _EMPTY_PARAMETERS
        raise TypeError(f"parameters must be a mapping, got {type(parameters).__name__}")
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping, got {type(parameters).__name__}")
    if not isinstance(parameters, dict):
        parameters = dict(parameters)
    try:
        return _canonical_json(parameters)
    except ValueError as exc:
        raise ValueError(f"parameters must be finite JSON: {exc}") from None
    except TypeError as exc:
        raise TypeError(f"parameters must be JSON-serialisable: {exc}") from None


def _check_query_hash(query_hash: object) -> None:
    if type(query_hash) is not int:
        # bool is an int subclass: the service would take True for 1, so refuse it here.
        raise TypeError(f"query_hash must be an int, got {type(query_hash).__name__}")
    if query_hash <= 0:
        raise ValueError(f"query_hash must be > 0, got {query_hash}")


def _is_canonical_object(text: str) -> bool:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if type(value) is not dict:
        return False
    try:
        return canonical_parameters(value) == text
    except (TypeError, ValueError):  # NaN or an infinity, which json.loads accepts
        return False


# Sets a field of a frozen dataclass (what the generated __init__ does).
_set_field: Final = object.__setattr__


@dataclass(frozen=True, slots=True)
class PredictionRequest:
    """One prediction to ask for; hashable, so usable as a cache key and for de-duplication.

    Build it with :meth:`create`, which canonicalises the parameters; two requests are
    equal exactly when the service would be asked the same question. The constructor
    refuses a ``parameters_json`` that is not canonical: :meth:`body` pastes it into the
    request verbatim, so anything else could add or override fields of the body (and two
    spellings of the same parameters would be different cache keys).

    Attributes:
        query_hash: the query's hash, an int > 0.
        scenario: ``"current"`` or ``"optimized"``.
        parameters_json: the parameters as canonical JSON (see :func:`canonical_parameters`).

    Raises:
        TypeError: a field has the wrong type.
        ValueError: ``query_hash <= 0``, an unknown scenario, or a ``parameters_json`` that
            is not the canonical JSON text of an object.
    """

    query_hash: int
    scenario: str = "current"
    parameters_json: str = _EMPTY_PARAMETERS

    def __post_init__(self) -> None:
        _check_query_hash(self.query_hash)
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, got {self.scenario!r}")
        parameters_json = self.parameters_json
        if type(parameters_json) is not str:
            raise TypeError("parameters_json must be a str; use PredictionRequest.create")
        if parameters_json != _EMPTY_PARAMETERS and not _is_canonical_object(parameters_json):
            raise ValueError(
                "parameters_json must be canonical JSON of an object "
                "(canonical_parameters(json.loads(text)) == text); use PredictionRequest.create"
            )

    @classmethod
    def create(
        cls,
        query_hash: int,
        *,
        parameters: Mapping[str, object] | None = None,
        scenario: str = "current",
    ) -> PredictionRequest:
        """Build a request from a parameters mapping.

        Args:
            query_hash: the query's hash, an int > 0.
            parameters: JSON-serialisable parameters, or None for none.
            scenario: ``"current"`` or ``"optimized"``.

        Raises:
            TypeError: a wrong type, or parameters JSON cannot encode.
            ValueError: ``query_hash <= 0``, an unknown scenario, or non-finite numbers.
        """
        _check_query_hash(query_hash)
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, got {scenario!r}")
        parameters_json = canonical_parameters(parameters)
        # The text is canonical by construction: skip __post_init__, which would parse it
        # again to prove it (this is the hot path of every prediction).
        request = object.__new__(cls)
        _set_field(request, "query_hash", query_hash)
        _set_field(request, "scenario", scenario)
        _set_field(request, "parameters_json", parameters_json)
        return request

    @property
    def parameters(self) -> dict[str, object]:
        """A fresh dict of the parameters."""
        value: dict[str, object] = json.loads(self.parameters_json)
        return value

    def body(self) -> bytes:
        """Return the JSON body of ``POST /api/predict/query-execution`` for this request."""
        # The parts are already canonical JSON (an int, a known scenario, canonical text),
        # so formatting them is equivalent to json.dumps and several times cheaper.
        return (
            f'{{"query_hash":{self.query_hash},"parameters":{self.parameters_json},'
            f'"scenario":"{self.scenario}"}}'
        ).encode()


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ConfidenceInterval:
    """The interval around a predicted execution time, in milliseconds."""

    lower_bound_ms: float
    upper_bound_ms: float
    std_dev_ms: float


@dataclass(frozen=True, slots=True)
class Prediction:
    """A predicted execution time for one query.

    Attributes:
        query_hash: the query's hash.
        predicted_execution_time_ms: the prediction, in milliseconds.
        confidence_score: the model's confidence, 0..1.
        confidence_interval: the interval around the prediction.
        scenario: the scenario the prediction is for.
        model_version: the version of the model that predicted.
        prediction_timestamp: when the service predicted (aware; naive input means UTC).
        source: ``"database"``, or ``"mock"`` when the service's database was down.
    """

    query_hash: int
    predicted_execution_time_ms: float
    confidence_score: float
    confidence_interval: ConfidenceInterval
    scenario: str
    model_version: str
    prediction_timestamp: datetime
    source: str


@dataclass(frozen=True, slots=True)
class PredictionOutcome:
    """The outcome of one request of a batch (``predict_many``): a prediction or an error.

    Exactly one of ``prediction`` and ``error`` is set. Identical requests of a batch share
    one outcome object.

    Attributes:
        request: the request this outcome answers.
        prediction: the prediction, when the request succeeded.
        error: why the request failed (an :class:`MLServiceError` after retries, or a
            :class:`CircuitOpenError`), when it failed.
    """

    request: PredictionRequest
    prediction: Prediction | None = None
    error: PgAnalyticsError | None = None

    def __post_init__(self) -> None:
        if (self.prediction is None) == (self.error is None):
            raise ValueError("exactly one of prediction and error must be set")

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.error is None

    def unwrap(self) -> Prediction:
        """Return the prediction, or raise the request's error.

        Raises:
            PgAnalyticsError: the error this request failed with.
        """
        if self.error is not None:
            raise self.error
        return cast(Prediction, self.prediction)


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """A training job the service accepted (the answer to ``train``).

    Attributes:
        job_id: the job's id, e.g. ``training-20261126-211424-a60149a4``.
        status: ``queued`` or ``training``.
        database_name: the database the model learns from.
        lookback_days: days of history used.
        model_type: the kind of model being trained.
        message: the service's human-readable message.
    """

    job_id: str
    status: TrainingState
    database_name: str
    lookback_days: int
    model_type: str
    message: str


@dataclass(frozen=True, slots=True)
class TrainingStatus:
    """The state of a training job (the answer to ``training_status``).

    The model fields are set once the job has completed; ``error`` once it has failed.

    Attributes:
        job_id: the job's id.
        status: the job's state.
        created_at: when the job was created (aware), or None when not reported.
        updated_at: when the job last changed (aware), or None when not reported.
        model_id: the trained model's id, normalised to ``str``.
        r_squared: the model's R squared.
        training_samples: how many samples the model learnt from.
        feature_count: how many features the model uses.
        feature_importance: a read-only mapping of feature name to importance.
        error: why the job failed.
    """

    job_id: str
    status: TrainingState
    created_at: datetime | None = None
    updated_at: datetime | None = None
    model_id: str | None = None
    r_squared: float | None = None
    training_samples: int | None = None
    feature_count: int | None = None
    feature_importance: Mapping[str, float] | None = field(default=None, hash=False)
    error: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the job has completed or failed."""
        return self.status.is_terminal


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """How a prediction compared with the actual execution time.

    Attributes:
        prediction_id: the id the caller gave the prediction.
        query_hash: the query's hash.
        error_percent: the relative error, in percent.
        accuracy_score: the service's accuracy score.
        within_confidence_interval: whether the actual time fell within the interval.
        message: the service's human-readable message.
    """

    prediction_id: str
    query_hash: int
    error_percent: float
    accuracy_score: float
    within_confidence_interval: bool
    message: str


@dataclass(frozen=True, slots=True)
class Pattern:
    """One detected workload pattern.

    Attributes:
        type: the pattern's kind.
        description: a human-readable description.
        confidence: the detector's confidence, 0..1.
        metadata: a read-only mapping of pattern-specific details.
    """

    type: str
    description: str
    confidence: float
    metadata: Mapping[str, object] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class PatternDetection:
    """The answer to ``detect_patterns``.

    Attributes:
        patterns_detected: how many patterns the service reports.
        patterns: the patterns, in the service's order.
        timestamp: when the service ran the detection (aware), or None when not reported.
    """

    patterns_detected: int
    patterns: tuple[Pattern, ...]
    timestamp: datetime | None


# --------------------------------------------------------------------------- parsing


def _require_object(data: object, what: str) -> dict[str, object]:
    if type(data) is not dict:
        raise MalformedResponseError(f"{what}: expected a JSON object, got {_json_type(data)}")
    return data


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _missing(what: str, key: str) -> MalformedResponseError:
    return MalformedResponseError(f"{what}: missing field {key!r}")


def _wrong(what: str, key: str, expected: str, value: object) -> MalformedResponseError:
    return MalformedResponseError(
        f"{what}: field {key!r} must be {expected}, got {_json_type(value)}"
    )


def _float(data: dict[str, object], key: str, what: str) -> float:
    try:
        value = data[key]
    except KeyError:
        raise _missing(what, key) from None
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _wrong(what, key, "a number", value)


def _opt_float(data: dict[str, object], key: str, what: str) -> float | None:
    if data.get(key) is None:
        return None
    return _float(data, key, what)


def _int(data: dict[str, object], key: str, what: str) -> int:
    try:
        value = data[key]
    except KeyError:
        raise _missing(what, key) from None
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise _wrong(what, key, "an integer", value)


def _opt_int(data: dict[str, object], key: str, what: str) -> int | None:
    if data.get(key) is None:
        return None
    return _int(data, key, what)


def _str(data: dict[str, object], key: str, what: str) -> str:
    try:
        value = data[key]
    except KeyError:
        raise _missing(what, key) from None
    if type(value) is str:
        return value
    raise _wrong(what, key, "a string", value)


def _opt_str(data: dict[str, object], key: str, what: str) -> str | None:
    if data.get(key) is None:
        return None
    return _str(data, key, what)


def _bool(data: dict[str, object], key: str, what: str) -> bool:
    try:
        value = data[key]
    except KeyError:
        raise _missing(what, key) from None
    if type(value) is bool:
        return value
    raise _wrong(what, key, "a boolean", value)


def _timestamp(data: dict[str, object], key: str, what: str) -> datetime:
    text = _str(data, key, what)
    try:
        moment: datetime | None = datetime.fromisoformat(text)
    except ValueError:  # its message holds the text: not kept as a __context__
        moment = None
    if moment is None:
        raise MalformedResponseError(f"{what}: field {key!r} is not an ISO 8601 timestamp")
    if moment.tzinfo is None:
        # The service writes naive UTC timestamps (datetime.utcnow().isoformat()).
        return moment.replace(tzinfo=UTC)
    return moment


def _opt_timestamp(data: dict[str, object], key: str, what: str) -> datetime | None:
    if data.get(key) is None:
        return None
    return _timestamp(data, key, what)


def _state(data: dict[str, object], what: str) -> TrainingState:
    text = _str(data, "status", what)
    state = _TRAINING_STATES.get(text)
    if state is None:
        # Not raised from a KeyError: its __context__ would keep the server's text whole.
        raise MalformedResponseError(
            f"{what}: unknown status {text[:40]!r}; expected one of {sorted(_TRAINING_STATES)}"
        )
    return state


def parse_prediction(data: object) -> Prediction:
    """Parse the 200 body of ``POST /api/predict/query-execution``.

    Raises:
        MalformedResponseError: a missing or wrongly typed field.
    """
    what = "prediction"
    body = _require_object(data, what)
    interval = body.get("confidence_interval")
    if type(interval) is not dict:
        if interval is None:
            raise _missing(what, "confidence_interval")
        raise _wrong(what, "confidence_interval", "an object", interval)
    ci_what = "prediction.confidence_interval"
    return Prediction(
        _int(body, "query_hash", what),
        _float(body, "predicted_execution_time_ms", what),
        _float(body, "confidence_score", what),
        ConfidenceInterval(
            _float(interval, "lower_bound_ms", ci_what),
            _float(interval, "upper_bound_ms", ci_what),
            _float(interval, "std_dev_ms", ci_what),
        ),
        _str(body, "scenario", what),
        _str(body, "model_version", what),
        _timestamp(body, "prediction_timestamp", what),
        _str(body, "source", what),
    )


def parse_training_job(data: object) -> TrainingJob:
    """Parse the 202 body of ``POST /api/train/performance-model``.

    Raises:
        MalformedResponseError: a missing or wrongly typed field.
    """
    what = "training job"
    body = _require_object(data, what)
    return TrainingJob(
        job_id=_str(body, "job_id", what),
        status=_state(body, what),
        database_name=_str(body, "database_name", what),
        lookback_days=_int(body, "lookback_days", what),
        model_type=_str(body, "model_type", what),
        message=_opt_str(body, "message", what) or "",
    )


def _model_id(body: dict[str, object], what: str) -> str | None:
    value = body.get("model_id")
    if value is None:
        return None
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    raise _wrong(what, "model_id", "an integer or a string", value)


def _feature_importance(body: dict[str, object], what: str) -> Mapping[str, float] | None:
    value = body.get("feature_importance")
    if value is None:
        return None
    if type(value) is not dict:
        raise _wrong(what, "feature_importance", "an object", value)
    sub = f"{what}.feature_importance"
    return MappingProxyType({str(key): _float(value, key, sub) for key in value})


def parse_training_status(data: object) -> TrainingStatus:
    """Parse the body of ``GET /api/train/performance-model/{job_id}`` (200, or 400 failed).

    Raises:
        MalformedResponseError: a missing or wrongly typed field.
    """
    what = "training status"
    body = _require_object(data, what)
    return TrainingStatus(
        job_id=_str(body, "job_id", what),
        status=_state(body, what),
        created_at=_opt_timestamp(body, "created_at", what),
        updated_at=_opt_timestamp(body, "updated_at", what),
        model_id=_model_id(body, what),
        r_squared=_opt_float(body, "r_squared", what),
        training_samples=_opt_int(body, "training_samples", what),
        feature_count=_opt_int(body, "feature_count", what),
        feature_importance=_feature_importance(body, what),
        error=_opt_str(body, "error", what),
    )


def parse_validation_result(data: object) -> ValidationResult:
    """Parse the 200 body of ``POST /api/validate/prediction``.

    Raises:
        MalformedResponseError: a missing or wrongly typed field.
    """
    what = "validation"
    body = _require_object(data, what)
    return ValidationResult(
        prediction_id=_str(body, "prediction_id", what),
        query_hash=_int(body, "query_hash", what),
        error_percent=_float(body, "error_percent", what),
        accuracy_score=_float(body, "accuracy_score", what),
        within_confidence_interval=_bool(body, "within_confidence_interval", what),
        message=_opt_str(body, "message", what) or "",
    )


def _pattern(item: object, index: int) -> Pattern:
    what = f"patterns[{index}]"
    body = _require_object(item, what)
    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    elif type(metadata) is not dict:
        raise _wrong(what, "metadata", "an object", metadata)
    return Pattern(
        type=_str(body, "type", what),
        description=_opt_str(body, "description", what) or "",
        confidence=_float(body, "confidence", what),
        metadata=MappingProxyType(metadata),
    )


def parse_pattern_detection(data: object) -> PatternDetection:
    """Parse the 200 body of ``POST /api/detect/patterns``.

    Raises:
        MalformedResponseError: a missing or wrongly typed field.
    """
    what = "pattern detection"
    body = _require_object(data, what)
    items = body.get("patterns")
    if type(items) is not list:
        if items is None:
            raise _missing(what, "patterns")
        raise _wrong(what, "patterns", "an array", items)
    patterns = tuple(_pattern(item, i) for i, item in enumerate(items))
    count = _opt_int(body, "patterns_detected", what)
    return PatternDetection(
        patterns_detected=len(patterns) if count is None else count,
        patterns=patterns,
        timestamp=_opt_timestamp(body, "timestamp", what),
    )
