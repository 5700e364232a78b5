"""The contract's handlers: what the fake ML service answers, and the state behind it.

:class:`Handlers` answers a routed request (:meth:`Handlers.respond`) the way the real
service (a Flask application) does, quirks included (see the package docstring). It owns
the training jobs and the active model behind one lock, held for bookkeeping only.

Training jobs need no worker: a job's state is computed when it is read, from the time
elapsed since its creation on the injected ``clock``. Predictions are deterministic
functions of the request, serialized once and memoized (only the timestamp changes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from pganalytics_core.testing.fake_service.responses import (
    BODY_REQUIRED,
    HEALTH,
    HTML,
    METHOD_NOT_ALLOWED_PAGE,
    NOT_FOUND,
    UNAUTHORIZED,
    Response,
    dumps,
    error,
    iso_now,
    json_response,
    utc_now,
)
from pganalytics_core.testing.fake_service.routes import Request, Route


def _unit(digest: bytes, index: int) -> float:
    """The ``index``-th 16-bit slice of ``digest`` as a float in [0, 1]."""
    return int.from_bytes(digest[2 * index : 2 * index + 2], "big") / 65535.0


_FEATURES: Final = (
    "query_calls_per_hour",
    "mean_table_size_mb",
    "index_count",
    "seq_scan_ratio",
    "join_count",
    "rows_returned",
    "cache_hit_ratio",
    "temp_blocks_written",
    "lock_wait_ms",
    "planning_time_ms",
    "parallel_workers",
    "filter_selectivity",
)
_PATTERN_KINDS: Final = (
    ("sequential_scan_hotspot", "Frequent sequential scans on a large table"),
    ("n_plus_one", "Many near-identical queries issued in quick succession"),
    ("missing_index", "Filter columns without a supporting index"),
    ("lock_contention", "Queries waiting on row or table locks"),
    ("plan_regression", "Execution time rose after a plan change"),
    ("cache_miss_spike", "Shared buffer hit ratio dropped"),
)
# The models of the real service's mock data: id -> (type, name, r_squared).
_MODELS: Final = {
    1: ("linear_regression", "Q-Exec-Predictor-v1.2", 0.78),
    2: ("decision_tree", "Q-Tree-Model-v1.0", 0.75),
}
_TIMESTAMP_MARK: Final = "@@prediction_timestamp@@"
_PREDICTION_CACHE_SIZE: Final = 8192


def _prediction_template(query_hash: int, scenario: str, params_key: str) -> tuple[bytes, bytes]:
    """Serialize a prediction once; return the bytes before and after its timestamp."""
    # bool is an int: the real service predicts ``true`` as query 1 and echoes ``true``.
    key = f"{int(query_hash)}|{params_key}".encode()
    digest = hashlib.blake2b(key, digest_size=16).digest()
    base_ms = 5.0 + 995.0 * _unit(digest, 0)
    factor = 1.0 if scenario == "current" else 0.5 + 0.35 * _unit(digest, 1)
    predicted = round(base_ms * factor, 2)
    std_dev = round(predicted * (0.05 + 0.15 * _unit(digest, 3)), 2)
    source = "mock" if digest[8] < 64 else "database"
    body = {
        "query_hash": query_hash,
        "predicted_execution_time_ms": predicted,
        "confidence_score": round(0.6 + 0.38 * _unit(digest, 2), 3),
        "confidence_interval": {
            "lower_bound_ms": round(max(predicted - 2.0 * std_dev, 0.0), 2),
            "upper_bound_ms": round(predicted + 2.0 * std_dev, 2),
            "std_dev_ms": std_dev,
        },
        "scenario": scenario,
        "model_version": "v1.2" if source == "mock" else "v1.0",
        "prediction_timestamp": _TIMESTAMP_MARK,
        "source": source,
    }
    before, after = dumps(body).split(f'"{_TIMESTAMP_MARK}"'.encode())
    return before, after


class _Job:
    """A training job; its state is a function of the time elapsed since creation."""

    __slots__ = (
        "created_s",
        "created_wall",
        "database_name",
        "digest",
        "job_id",
        "lookback_days",
        "model_type",
        "outcome",
        "step_s",
    )

    def __init__(
        self,
        *,
        job_id: str,
        created_s: float,
        created_wall: datetime,
        step_s: float,
        outcome: str,
        database_name: object,
        lookback_days: int,
        model_type: str,
    ) -> None:
        self.job_id = job_id
        self.created_s = created_s
        self.created_wall = created_wall
        self.step_s = step_s
        self.outcome = outcome
        self.database_name = database_name
        self.lookback_days = lookback_days
        self.model_type = model_type
        self.digest = hashlib.blake2b(job_id.encode(), digest_size=16).digest()

    def state(self, now_s: float) -> tuple[str, float]:
        """Return (status, seconds from creation to the last transition)."""
        elapsed = now_s - self.created_s
        if self.step_s <= 0.0 or elapsed >= 2.0 * self.step_s:
            return self.outcome, 2.0 * self.step_s
        if elapsed >= self.step_s:
            return "training", self.step_s
        return "queued", 0.0

    def body(self, now_s: float) -> dict[str, object]:
        status, changed_after_s = self.state(now_s)
        body: dict[str, object] = {
            "job_id": self.job_id,
            "status": status,
            "created_at": self.created_wall.isoformat(),
            "updated_at": (self.created_wall + timedelta(seconds=changed_after_s)).isoformat(),
        }
        if status == "completed":
            weights = [0.2 + _unit(self.digest, i % 8) for i in range(len(_FEATURES))]
            total = sum(weights)
            body.update(
                model_id=f"model-{self.model_type.replace('_', '-')}-{self.job_id[-8:]}",
                model_type=self.model_type,
                r_squared=round(0.6 + 0.35 * _unit(self.digest, 0), 4),
                training_samples=self.lookback_days * (20 + int(40 * _unit(self.digest, 1))),
                feature_count=len(_FEATURES),
                feature_importance={
                    name: round(w / total, 4) for name, w in zip(_FEATURES, weights, strict=True)
                },
            )
        elif status == "failed":
            body["error"] = "Insufficient training data: need at least 100 samples"
        return body


def _is_json(request: Request) -> bool:
    """Whether the request says its body is JSON (Flask's ``request.is_json``)."""
    mimetype = request.headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
    return mimetype == b"application/json" or (
        mimetype.startswith(b"application/") and mimetype.endswith(b"+json")
    )


def _prediction_response(template: tuple[bytes, bytes]) -> Response:
    before, after = template
    return Response(200, b"".join((before, b'"', iso_now().encode(), b'"', after)))


class Handlers:
    """The ML service's endpoints over one service's state; thread-safe.

    Args:
        clock: monotonic clock in seconds, for training job progress.
        training_step_s: seconds a job spends queued, then training.
        seed: seed of the job id generator.
        api_key: when set, requests need ``Authorization: Bearer <api_key>``.
        training_outcome: returns how a job created now will end.
        predictions_served: returns how many predict requests arrived (for ``/api/status``).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        training_step_s: float,
        seed: int,
        api_key: str | None,
        training_outcome: Callable[[], str],
        predictions_served: Callable[[], int],
    ) -> None:
        self._clock = clock
        self._training_step_s = training_step_s
        self._auth = None if api_key is None else f"Bearer {api_key}".encode()
        self._training_outcome = training_outcome
        self._predictions_served = predictions_served
        self._lock = threading.Lock()
        # Guarded by _lock:
        self._id_random = random.Random(f"job-ids-{seed}")
        self._jobs: dict[str, _Job] = {}
        self._active_model = 1
        # Memos of serialized predictions; a benign race at worst recomputes an entry.
        self._predictions: dict[tuple[str, str, str], tuple[bytes, bytes]] = {}
        self._prediction_bodies: dict[bytes, tuple[bytes, bytes]] = {}

    def respond(self, request: Request, route: Route) -> Response:
        """Answer a request the faults left alone (or spoil only afterwards)."""
        if self._auth is not None:
            given = request.headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self._auth):
                return UNAUTHORIZED
        endpoint, allowed, arg = route
        if endpoint == "unknown":
            return NOT_FOUND
        method = request.method
        if method not in allowed:
            allow = ", ".join(allowed).encode()
            return Response(405, METHOD_NOT_ALLOWED_PAGE, HTML, b"Allow: " + allow + b"\r\n")
        if method == "OPTIONS":
            allow = ", ".join(allowed).encode()
            return Response(200, b"", HTML, b"Allow: " + allow + b"\r\n")
        if endpoint == "health":
            return HEALTH
        if endpoint == "predict":
            return self._predict_request(request)
        if endpoint == "train":
            return self._json_handler(request, self._train, "Failed to start training")
        if endpoint == "validate":
            return self._json_handler(request, self._validate, "Failed to validate prediction")
        if endpoint == "detect_patterns":
            return self._json_handler(request, self._detect, "Failed to detect patterns")
        if endpoint == "training_status":
            return self._training_status(arg)
        if endpoint == "models":
            return self._list_models()
        if endpoint == "models_latest":
            return self._latest_model()
        if endpoint == "model":
            return self._get_model(arg)
        if endpoint == "activate_model":
            return self._activate_model(arg)
        return self._status()

    def _predict_request(self, request: Request) -> Response:
        # A prediction is a pure function of the body: answer a body seen before from its
        # template without parsing it again (once the content type is known to be JSON).
        body = request.body
        if _is_json(request):
            template = self._prediction_bodies.get(body)
            if template is not None:
                return _prediction_response(template)
        return self._json_handler(
            request, lambda data: self._predict(data, body), "Failed to generate prediction"
        )

    @staticmethod
    def _json_handler(
        request: Request,
        handler: Callable[[dict[str, object]], Response],
        failure: str,
    ) -> Response:
        # Flask's request.get_json() raises for a wrong content type (415) or a body that
        # is not JSON (400); the real handlers catch every exception and answer 500.
        try:
            if not _is_json(request):
                raise ValueError("unsupported media type")
            data = json.loads(request.body)
            if not data:
                return BODY_REQUIRED
            if not isinstance(data, dict):
                raise TypeError("body is not a JSON object")  # data.get() raises in Flask
            return handler(data)
        except Exception:
            return error(500, failure)

    def _predict(self, data: dict[str, object], body: bytes) -> Response:
        query_hash = data.get("query_hash")
        parameters = data.get("parameters", {})
        scenario = data.get("scenario", "current")
        if not query_hash or not isinstance(query_hash, int):
            return error(400, "query_hash must be a positive integer")
        if query_hash <= 0:
            return error(400, "query_hash must be positive")
        if scenario not in ("current", "optimized"):
            return error(400, "scenario must be current or optimized")
        assert isinstance(scenario, str)
        params_key = (
            ""
            if parameters == {}
            else json.dumps(parameters, sort_keys=True, separators=(",", ":"))
        )
        key = (json.dumps(query_hash), scenario, params_key)
        template = self._predictions.get(key)
        if template is None:
            template = _prediction_template(query_hash, scenario, params_key)
            if len(self._predictions) >= _PREDICTION_CACHE_SIZE:
                self._predictions.clear()
            self._predictions[key] = template
        if len(self._prediction_bodies) >= _PREDICTION_CACHE_SIZE:
            self._prediction_bodies.clear()
        self._prediction_bodies[body] = template
        return _prediction_response(template)

    def _train(self, data: dict[str, object]) -> Response:
        database_name = data.get("database_name", "pganalytics")
        lookback_days = data.get("lookback_days", 90)
        model_type = data.get("model_type", "linear_regression")
        if not isinstance(lookback_days, int) or lookback_days < 7:
            return error(400, "lookback_days must be >= 7")
        if model_type not in ("linear_regression", "decision_tree", "random_forest"):
            return error(400, "Invalid model_type")
        assert isinstance(model_type, str)
        now_s = self._clock()
        created_wall = utc_now()
        with self._lock:
            while True:
                suffix = f"{self._id_random.getrandbits(32):08x}"
                job_id = f"training-{created_wall:%Y%m%d-%H%M%S}-{suffix}"
                if job_id not in self._jobs:
                    break
            job = _Job(
                job_id=job_id,
                created_s=now_s,
                created_wall=created_wall,
                step_s=self._training_step_s,
                outcome=self._training_outcome(),
                database_name=database_name,
                lookback_days=lookback_days,
                model_type=model_type,
            )
            self._jobs[job_id] = job
        status, _ = job.state(now_s)
        return json_response(
            202,
            {
                "job_id": job_id,
                "status": "queued" if status == "queued" else "training",
                "database_name": database_name,
                "lookback_days": lookback_days,
                "model_type": model_type,
                "message": "Model training started in background",
            },
        )

    def _training_status(self, job_id: str) -> Response:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return error(404, "Job not found")
        body = job.body(self._clock())
        return json_response(400 if body["status"] == "failed" else 200, body)

    @staticmethod
    def _validate(data: dict[str, object]) -> Response:
        prediction_id = data.get("prediction_id")
        query_hash = data.get("query_hash")
        predicted_ms = data.get("predicted_execution_time_ms")
        actual_ms = data.get("actual_execution_time_ms")
        if not all([prediction_id, query_hash, predicted_ms, actual_ms]):
            return error(400, "Missing required fields")
        if (
            not isinstance(query_hash, int)
            or not isinstance(predicted_ms, int | float)
            or not isinstance(actual_ms, int | float)
        ):
            return error(400, "Invalid data types")
        if actual_ms <= 0:
            return error(400, "actual_execution_time_ms must be positive")
        error_percent = abs(predicted_ms - actual_ms) / actual_ms * 100
        return json_response(
            200,
            {
                "prediction_id": prediction_id,
                "query_hash": query_hash,
                "error_percent": round(error_percent, 2),
                "accuracy_score": round(max(0, 1 - error_percent / 100), 3),
                "within_confidence_interval": error_percent <= 30,
                "message": "Prediction validation recorded",
            },
        )

    @staticmethod
    def _detect(data: dict[str, object]) -> Response:
        # Not in the real service yet: validated in the style of its train handler.
        database_name = data.get("database_name", "pganalytics")
        lookback_days = data.get("lookback_days", 7)
        if not database_name or not isinstance(database_name, str):
            return error(400, "database_name must be a non-empty string")
        if not isinstance(lookback_days, int) or lookback_days < 1:
            return error(400, "lookback_days must be >= 1")
        digest = hashlib.blake2b(
            f"{database_name}|{lookback_days}".encode(), digest_size=16
        ).digest()
        patterns = []
        for i in range(digest[0] % 4):
            kind, description = _PATTERN_KINDS[(digest[1] + i) % len(_PATTERN_KINDS)]
            patterns.append(
                {
                    "type": kind,
                    "description": description,
                    "confidence": round(0.5 + 0.49 * _unit(digest, 1 + i), 3),
                    "metadata": {
                        "database_name": database_name,
                        "lookback_days": lookback_days,
                        "occurrences": 1 + int(200 * _unit(digest, 5 + i)),
                    },
                }
            )
        return json_response(
            200,
            {"patterns_detected": len(patterns), "patterns": patterns, "timestamp": iso_now()},
        )

    def _list_models(self) -> Response:
        with self._lock:
            active = self._active_model
        models = [
            {
                "model_id": model_id,
                "model_type": model_type,
                "model_name": name,
                "training_date": iso_now() if model_id == 1 else "2026-02-19T14:30:00",
                "r_squared": r_squared,
                "training_samples": 1500,
            }
            for model_id, (model_type, name, r_squared) in _MODELS.items()
        ]
        return json_response(
            200,
            {
                "models": models,
                "total_models": len(models),
                "active_model": active,
                "source": "mock",
            },
        )

    def _latest_model(self) -> Response:
        with self._lock:
            active = self._active_model
        model_type, name, r_squared = _MODELS[active]
        return json_response(
            200,
            {
                "model_id": f"model-{model_type.split('_')[0]}-{active:03d}",
                "model_type": model_type,
                "model_name": name,
                "training_samples": 1500,
                "training_date": iso_now(),
                "r_squared": r_squared,
                "feature_count": len(_FEATURES),
                "is_active": True,
                "source": "mock",
            },
        )

    @staticmethod
    def _parse_model_id(model_id: str) -> int | Response:
        try:
            number = int(model_id)  # int() as the real service: " 1", "+1" and "1_0" parse
        except ValueError:
            return error(400, "model_id must be numeric")
        if number not in _MODELS:
            return error(404, "Model not found")
        return number

    def _get_model(self, model_id: str) -> Response:
        number = self._parse_model_id(model_id)
        if isinstance(number, Response):
            return number
        model_type, name, r_squared = _MODELS[number]
        return json_response(
            200,
            {
                "model_id": number,
                "model_type": model_type,
                "model_name": name,
                "training_samples": 1500,
                "training_date": "2026-02-19T14:30:00",
                "r_squared": r_squared,
                "feature_count": len(_FEATURES),
                "is_active": False,  # the real service says False here, whatever is active
                "source": "database",
            },
        )

    def _activate_model(self, model_id: str) -> Response:
        number = self._parse_model_id(model_id)
        if isinstance(number, Response):
            return number
        with self._lock:
            self._active_model = number
        return json_response(
            200,
            {
                "model_id": model_id,
                "status": "activated",
                "message": f"Model {model_id} activated for predictions",
                "activated_at": iso_now(),
            },
        )

    def _status(self) -> Response:
        now_s = self._clock()
        with self._lock:
            jobs = list(self._jobs.values())
            active = self._active_model
        predictions = self._predictions_served()
        queued = sum(1 for job in jobs if job.state(now_s)[0] == "queued")
        return json_response(
            200,
            {
                "service": "ml-service",
                "status": "healthy",
                "version": "1.0.0",
                "database_connected": False,
                "celery_available": True,
                "pending_jobs": queued,
                "training_jobs": len(jobs),
                "active_model": _MODELS[active][1],
                "total_predictions": predictions,
                "avg_prediction_accuracy": 0.87,
                "timestamp": iso_now(),
            },
        )
