"""A fake pganalytics ML service: real HTTP/1.1 on loopback, with fault injection.

:class:`FakeMLService` serves every endpoint of the ML service's HTTP contract
(``/work/shared/ml-service-api.md``) with the real service's validation, status codes and
quirks, so a client can be tested over a real socket::

    with FakeMLService(seed=7) as service:
        httpx.post(f"{service.url}/api/predict/query-execution", json={"query_hash": 4001})
        service.update_faults(error_rate=0.2, endpoints=frozenset({"predict"}))
        service.fail_next(3, status=503, retry_after_s=1.0)

Design notes (why it looks the way it does):

* The server is the standard library's ``ThreadingHTTPServer``: one daemon thread per
  connection, HTTP/1.1 keep-alive, ``TCP_NODELAY`` on every accepted socket (without it,
  the small responses of a keep-alive connection meet delayed ACKs and stall ~40 ms).
* The request line and headers are parsed by a small parser of our own instead of
  ``http.client.parse_headers`` (the ``email`` package costs more than everything else
  a request does), responses are written with one ``sendall``, bodies that do not change
  are serialized once, and nothing is logged per request.
* One ``threading.Lock`` guards the fault configuration, the seeded random generator, the
  request counters, the training jobs and the set of open connections. It is held for
  bookkeeping only: never while sleeping, never while reading or writing a socket.
* Injected delays wait on a ``threading.Event`` that :meth:`FakeMLService.stop` sets, so
  stopping never waits for a delay to run out.
* Training jobs need no worker: a job's state is computed when it is read, from the time
  elapsed since its creation on the injected ``clock``.
* Randomness comes from the service's own ``random.Random(seed)``, drawn under the lock,
  so a sequence of requests sees a reproducible sequence of faults.

Quirks of the real service (a Flask application) reproduced on purpose:

* validation by truthiness: ``0`` counts as missing, ``true`` is accepted as a query hash
  (and echoed back as ``true``), ``4001.0`` is rejected;
* a body that is not JSON, or a wrong ``Content-Type``, gets **500** (not 400 or 415)
  from the predict, train, validate (and pattern detection) handlers, as does a JSON body
  that is not an object; an empty object gets 400 ``Request body required``;
* a failed training job is reported with **400** and the job's body;
* an unknown route gets the framework's JSON 404
  ``{"error": "Not found", "message": "Endpoint not found"}``; a known route with the
  wrong method gets the framework's **HTML** 405 page with an ``Allow`` header;
* ``model_id`` is an integer in ``/api/models`` and a string in ``/api/models/latest``;
* timestamps are ISO 8601 without a time zone (naive UTC).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import math
import random
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Final, NamedTuple, TypedDict, Unpack
from urllib.parse import unquote, urlsplit

__all__ = [
    "ENDPOINT_NAMES",
    "FAULT_MODES",
    "FakeMLService",
    "FaultChanges",
    "Faults",
]

_ENDPOINT_ORDER: Final = (
    "health",
    "predict",
    "train",
    "training_status",
    "validate",
    "detect_patterns",
    "models",
    "model",
    "models_latest",
    "activate_model",
    "status",
    "unknown",
)
#: Every endpoint name, as used by :meth:`FakeMLService.request_counts` and
#: :attr:`Faults.endpoints`. ``"unknown"`` is any request that matches no route.
ENDPOINT_NAMES: Final[frozenset[str]] = frozenset(_ENDPOINT_ORDER)

#: The values :attr:`Faults.mode` accepts besides ``None``.
FAULT_MODES: Final[frozenset[str]] = frozenset(
    {"reset", "malformed_json", "truncated", "oversized", "wrong_content_type"}
)

_TRAINING_OUTCOMES: Final = frozenset({"completed", "failed"})


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (seconds), got {value!r}")


def _check_status(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError(f"{name} must be an HTTP status code in 100..599, got {value!r}")


def _check_endpoints(name: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, frozenset | set | list | tuple):
        raise ValueError(f"{name} must be a frozenset of endpoint names or None, got {value!r}")
    names = frozenset(value)
    unknown = sorted(str(n) for n in names - ENDPOINT_NAMES)
    if unknown:
        raise ValueError(
            f"{name} holds unknown endpoint name(s) {unknown}; known: {sorted(ENDPOINT_NAMES)}"
        )
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """What the fake service does wrong, and to which endpoints. Immutable.

    Vary it with :func:`dataclasses.replace` or :meth:`FakeMLService.update_faults`.
    For each request a configuration applies to, the service draws from its
    ``random.Random(seed)`` in this order: one ``random()`` when ``error_rate > 0`` (the
    request fails when the draw is below ``error_rate``), then one
    ``uniform(0, jitter_s)`` when ``jitter_s > 0``. The sequence of faults therefore
    depends only on the seed and on the order in which matching requests arrive.

    Attributes:
        latency_s: fixed delay before answering, in seconds (also how to exceed a
            client's timeout). The delay is announced in an ``X-Injected-Delay-Ms``
            response header.
        jitter_s: extra uniform random delay in ``[0, jitter_s]`` seconds.
        error_rate: fraction (0..1) of requests answered with ``error_status``.
        error_status: the HTTP status of injected errors (100..599).
        retry_after_s: when set, injected error responses (including those of
            :meth:`FakeMLService.fail_next`) carry ``Retry-After``: these seconds, rounded
            up to an integer.
        mode: ``None`` or one of ``"reset"`` (send the headers and half the body, then
            reset the connection), ``"malformed_json"`` (200 and a body that is not valid
            JSON), ``"truncated"`` (a ``Content-Length`` larger than the body sent, then
            close), ``"oversized"`` (200 and the real JSON body padded to
            ``oversized_bytes``), ``"wrong_content_type"`` (200 and a ``text/html`` page).
            The endpoint's handler still runs (a training job is still created): only its
            answer is spoiled. An injected error takes precedence over the mode.
        oversized_bytes: body size of ``"oversized"`` answers, in bytes.
        endpoints: the endpoint names (see :data:`ENDPOINT_NAMES`) the faults apply to;
            ``None`` means all.
        training_outcome: how training jobs created from now on end: ``"completed"`` or
            ``"failed"``.

    Raises:
        ValueError: a field is out of range; the message names the field.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    retry_after_s: float | None = None
    mode: str | None = None
    oversized_bytes: int = 2_000_000
    endpoints: frozenset[str] | None = None
    training_outcome: str = "completed"

    def __post_init__(self) -> None:
        _check_seconds("latency_s", self.latency_s)
        _check_seconds("jitter_s", self.jitter_s)
        rate = self.error_rate
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not 0.0 <= rate <= 1.0
        ):
            raise ValueError(f"error_rate must be a fraction in [0, 1], got {rate!r}")
        _check_status("error_status", self.error_status)
        if self.retry_after_s is not None:
            _check_seconds("retry_after_s", self.retry_after_s)
        if self.mode is not None and self.mode not in FAULT_MODES:
            raise ValueError(
                f"mode must be None or one of {sorted(FAULT_MODES)}, got {self.mode!r}"
            )
        size = self.oversized_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"oversized_bytes must be an int >= 0 (bytes), got {size!r}")
        # Accept any set-like collection but store a frozenset, so Faults stays hashable.
        object.__setattr__(self, "endpoints", _check_endpoints("endpoints", self.endpoints))
        if self.training_outcome not in _TRAINING_OUTCOMES:
            raise ValueError(
                f"training_outcome must be one of {sorted(_TRAINING_OUTCOMES)}, "
                f"got {self.training_outcome!r}"
            )

    def applies_to(self, endpoint: str) -> bool:
        """Return whether these faults apply to ``endpoint`` (an endpoint name)."""
        return self.endpoints is None or endpoint in self.endpoints


class FaultChanges(TypedDict, total=False):
    """The keyword arguments of :meth:`FakeMLService.update_faults`: fields of :class:`Faults`."""

    latency_s: float
    jitter_s: float
    error_rate: float
    error_status: int
    retry_after_s: float | None
    mode: str | None
    oversized_bytes: int
    endpoints: frozenset[str] | None
    training_outcome: str


_NO_FAULTS: Final = Faults()


# --------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------

_JSON: Final = b"application/json"
_HTML: Final = b"text/html; charset=utf-8"


class _Response(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: bytes = b""  # extra header lines, each ending in CRLF


def _dumps(obj: object) -> bytes:
    # Like Flask's jsonify outside debug mode: sorted keys, compact, a trailing newline.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _json_response(status: int, obj: object, headers: bytes = b"") -> _Response:
    return _Response(status, _dumps(obj), _JSON, headers)


def _error(status: int, message: str) -> _Response:
    return _json_response(status, {"error": message})


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _iso_now() -> str:
    return _utc_now().isoformat()


def _unit(digest: bytes, index: int) -> float:
    """The ``index``-th 16-bit slice of ``digest`` as a float in [0, 1]."""
    return int.from_bytes(digest[2 * index : 2 * index + 2], "big") / 65535.0


_NOT_FOUND: Final = _json_response(404, {"error": "Not found", "message": "Endpoint not found"})
_UNAUTHORIZED: Final = _Response(
    401, _dumps({"error": "unauthorized"}), _JSON, b"WWW-Authenticate: Bearer\r\n"
)
_HEALTH: Final = _json_response(200, {"status": "healthy", "service": "ml-service"})
_BODY_REQUIRED: Final = _error(400, "Request body required")
_METHOD_NOT_ALLOWED_PAGE: Final = (
    b"<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n"
    b"<h1>Method Not Allowed</h1>\n"
    b"<p>The method is not allowed for the requested URL.</p>\n"
)
_PROXY_PAGE: Final = (
    b"<!doctype html>\n<html><head><title>Service Portal</title></head>\n"
    b"<body><h1>Welcome</h1><p>This page is not the ML service.</p></body></html>\n"
)
_FRAMEWORK_500: Final = {
    "error": "Internal server error",
    "message": "An unexpected error occurred",
}

_GET: Final = ("GET", "HEAD", "OPTIONS")
_POST: Final = ("OPTIONS", "POST")

# Exact paths -> (endpoint name, allowed methods).
_STATIC_ROUTES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "/health": ("health", _GET),
    "/api/predict/query-execution": ("predict", _POST),
    "/api/train/performance-model": ("train", _POST),
    "/api/validate/prediction": ("validate", _POST),
    "/api/detect/patterns": ("detect_patterns", _POST),
    "/api/models": ("models", _GET),
    "/api/models/latest": ("models_latest", _GET),
    "/api/status": ("status", _GET),
}
_TRAINING_PREFIX: Final = "/api/train/performance-model/"
_MODELS_PREFIX: Final = "/api/models/"

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
    before, after = _dumps(body).split(f'"{_TIMESTAMP_MARK}"'.encode())
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


class _FailRule:
    """A pending :meth:`FakeMLService.fail_next` instruction."""

    __slots__ = ("endpoints", "remaining", "retry_after_s", "status")

    def __init__(
        self,
        remaining: int,
        status: int,
        retry_after_s: float | None,
        endpoints: frozenset[str] | None,
    ) -> None:
        self.remaining = remaining
        self.status = status
        self.retry_after_s = retry_after_s
        self.endpoints = endpoints


class _Plan(NamedTuple):
    """What to do wrong with one request, decided under the lock."""

    delay_s: float
    error_status: int | None
    retry_after_s: float | None
    mode: str | None
    oversized_bytes: int


class _Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# --------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------


class FakeMLService:
    """An embedded fake of the ML service on a real loopback socket.

    Usable as a context manager (``start`` on enter, ``stop`` on exit). All methods are
    safe to call from any thread while the service runs.

    Args:
        host: the address to bind (loopback by default).
        port: the TCP port; 0 picks a free one (read it back from :attr:`port`).
        seed: seed of the service's ``random.Random`` (error rate, jitter, job ids).
        training_step_s: seconds a training job spends queued, then training, on
            ``clock``; 0 makes jobs finish at once.
        faults: the initial fault configuration.
        clock: monotonic clock in seconds, for training job progress.
        api_key: when set, every request needs ``Authorization: Bearer <api_key>``,
            else 401 ``{"error": "unauthorized"}``.

    Raises:
        ValueError: ``training_step_s`` is negative or not finite.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        training_step_s: float = 0.05,
        faults: Faults = _NO_FAULTS,
        clock: Callable[[], float] = time.monotonic,
        api_key: str | None = None,
    ) -> None:
        _check_seconds("training_step_s", training_step_s)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        self._host = host
        self._requested_port = port
        self._training_step_s = float(training_step_s)
        self._clock = clock
        self._auth = None if api_key is None else f"Bearer {api_key}".encode()

        self._lock = threading.Lock()
        # Everything below is guarded by _lock.
        self._faults = faults
        self._faults_active = faults != _NO_FAULTS
        self._fail_rules: list[_FailRule] = []
        self._random = random.Random(seed)
        self._id_random = random.Random(f"job-ids-{seed}")
        self._counts = dict.fromkeys(_ENDPOINT_ORDER, 0)
        self._jobs: dict[str, _Job] = {}
        self._active_model = 1
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._state = "new"  # new -> running -> stopped

        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._port = 0
        # Memo of serialized predictions; a benign race at worst recomputes an entry.
        self._predictions: dict[tuple[str, str, str], tuple[bytes, bytes]] = {}
        self._date_cache: tuple[int, bytes] = (0, b"")

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeMLService:
        """Bind the socket and serve in a background daemon thread.

        Returns:
            the service itself, so ``service = FakeMLService().start()`` reads well.

        Raises:
            RuntimeError: the service was already started (a stopped service cannot be
                restarted; make a new one).
            OSError: the address cannot be bound (port in use, bad host).
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"FakeMLService cannot start: it is {self._state}")
            self._state = "starting"
        try:
            server = _Server((self._host, self._requested_port), self)
        except BaseException:
            with self._lock:
                self._state = "new"
            raise
        self._server = server
        self._port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-ml-service:{self._port}",
            daemon=True,
        )
        self._serve_thread = thread
        with self._lock:
            self._state = "running"
        thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving, close every connection and join the threads. Idempotent.

        Requests waiting in an injected delay are woken and their connections closed
        without an answer.

        Args:
            timeout_s: how long to wait for the serving and connection threads, in
                seconds, in total.
        """
        with self._lock:
            if self._state != "running":
                if self._state == "new":
                    self._state = "stopped"
                return
            self._state = "stopped"
        deadline = time.monotonic() + timeout_s
        self._stopping.set()
        server, thread = self._server, self._serve_thread
        assert server is not None
        assert thread is not None
        server.shutdown()  # returns within serve_forever's poll interval
        server.server_close()
        thread.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            connections = list(self._connections.items())
        for _, sock in connections:
            # Wakes a handler blocked reading the next request of a keep-alive connection.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for conn_thread, _ in connections:
            conn_thread.join(max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> FakeMLService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: the service has not been started.
        """
        if self._port == 0:
            raise RuntimeError("FakeMLService is not started: no port yet")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``"http://127.0.0.1:8081"`` (no trailing slash)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the service is serving (started and not stopped)."""
        return self._state == "running"

    def __repr__(self) -> str:
        where = f"url={self.url!r}" if self._port else f"host={self._host!r}"
        return f"FakeMLService({where}, state={self._state!r})"

    # -- faults ----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The current fault configuration (immutable)."""
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault configuration; applies to requests that arrive from now on.

        Pending :meth:`fail_next` failures are kept.
        """
        if not isinstance(faults, Faults):
            raise TypeError(f"faults must be a Faults, got {type(faults).__name__}")
        with self._lock:
            self._faults = faults
            self._faults_active = faults != _NO_FAULTS

    def update_faults(self, **changes: Unpack[FaultChanges]) -> None:
        """Change some fields of the fault configuration (see :class:`Faults`).

        Raises:
            ValueError: a changed field is out of range; the configuration is unchanged.
            TypeError: an unknown field name.
        """
        with self._lock:
            faults = dataclasses.replace(self._faults, **changes)
            self._faults = faults
            self._faults_active = faults != _NO_FAULTS

    def clear_faults(self) -> None:
        """Remove every fault: the configuration and all pending :meth:`fail_next` ones."""
        with self._lock:
            self._faults = _NO_FAULTS
            self._faults_active = False
            self._fail_rules.clear()

    def fail_next(
        self,
        n: int,
        *,
        status: int = 503,
        retry_after_s: float | None = None,
        endpoints: frozenset[str] | None = None,
    ) -> None:
        """Make the next ``n`` matching requests fail with ``status``.

        Instructions queue up: a request is failed by the oldest pending instruction
        whose ``endpoints`` match it. They are independent of :attr:`Faults.endpoints`
        and take precedence over ``error_rate`` and ``mode``.

        Args:
            n: how many requests to fail (0 does nothing).
            status: the HTTP status to answer (100..599).
            retry_after_s: ``Retry-After`` of these answers in seconds (rounded up);
                ``None`` falls back to :attr:`Faults.retry_after_s`.
            endpoints: endpoint names to fail; ``None`` means any.

        Raises:
            ValueError: an argument is out of range or names an unknown endpoint.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        _check_status("status", status)
        if retry_after_s is not None:
            _check_seconds("retry_after_s", retry_after_s)
        names = _check_endpoints("endpoints", endpoints)
        if n == 0:
            return
        with self._lock:
            self._fail_rules.append(_FailRule(n, status, retry_after_s, names))

    # -- counters --------------------------------------------------------------------

    def request_counts(self) -> dict[str, int]:
        """Return how many requests each endpoint received (every name, zeros included).

        Every request that was parsed counts, once, when it arrives, whatever it is then
        answered (faults, 401, 404, 405 included). The dict is a copy.
        """
        with self._lock:
            return dict(self._counts)

    def total_requests(self) -> int:
        """Return how many requests arrived, over all endpoints."""
        with self._lock:
            return sum(self._counts.values())

    def reset_counts(self) -> None:
        """Set every request counter back to zero."""
        with self._lock:
            for name in self._counts:
                self._counts[name] = 0

    # -- internals used by the handler -------------------------------------------------

    def _track(self, thread: threading.Thread, sock: socket.socket) -> bool:
        with self._lock:
            if self._state != "running":
                return False
            self._connections[thread] = sock
            return True

    def _untrack(self, thread: threading.Thread) -> None:
        with self._lock:
            self._connections.pop(thread, None)

    def _date_header(self) -> bytes:
        now = int(time.time())
        cached = self._date_cache
        if cached[0] != now:
            cached = (now, b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n")
            self._date_cache = cached
        return cached[1]

    def _admit(self, endpoint: str) -> _Plan | None:
        """Count the request and decide its faults; ``None`` when it has none."""
        with self._lock:
            self._counts[endpoint] += 1
            if not self._faults_active and not self._fail_rules:
                return None
            faults = self._faults
            delay_s = 0.0
            error_status: int | None = None
            retry_after_s: float | None = None
            mode: str | None = None
            if faults.applies_to(endpoint):
                delay_s = faults.latency_s
                if faults.error_rate > 0.0 and self._random.random() < faults.error_rate:
                    error_status = faults.error_status
                    retry_after_s = faults.retry_after_s
                if faults.jitter_s > 0.0:
                    delay_s += self._random.uniform(0.0, faults.jitter_s)
                mode = faults.mode
            for index, rule in enumerate(self._fail_rules):
                if rule.endpoints is None or endpoint in rule.endpoints:
                    error_status = rule.status
                    retry_after_s = (
                        faults.retry_after_s if rule.retry_after_s is None else rule.retry_after_s
                    )
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self._fail_rules[index]
                    break
            return _Plan(delay_s, error_status, retry_after_s, mode, faults.oversized_bytes)

    def _route(self, path: str) -> tuple[str, tuple[str, ...], str]:
        """Return (endpoint name, allowed methods, path argument)."""
        route = _STATIC_ROUTES.get(path)
        if route is not None:
            return route[0], route[1], ""
        if path.startswith(_TRAINING_PREFIX):
            job_id = path[len(_TRAINING_PREFIX) :]
            if job_id and "/" not in job_id:
                return "training_status", _GET, job_id
        elif path.startswith(_MODELS_PREFIX):
            rest = path[len(_MODELS_PREFIX) :]
            if rest and "/" not in rest:
                return "model", _GET, rest
            model_id, _, tail = rest.partition("/")
            if model_id and tail == "activate":
                return "activate_model", _POST, model_id
        return "unknown", (), ""

    def _respond_safely(
        self, request: _Request, endpoint: str, allowed: tuple[str, ...], arg: str
    ) -> _Response:
        """:meth:`_respond`, answering a bug of this module as Flask would: a JSON 500."""
        try:
            return self._respond(request, endpoint, allowed, arg)
        except Exception:
            traceback.print_exc()
            return _json_response(500, _FRAMEWORK_500)

    def _respond(
        self, request: _Request, endpoint: str, allowed: tuple[str, ...], arg: str
    ) -> _Response:
        """Answer a request the faults left alone (or spoil only afterwards)."""
        if self._auth is not None:
            given = request.headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, self._auth):
                return _UNAUTHORIZED
        if endpoint == "unknown":
            return _NOT_FOUND
        method = request.method
        if method not in allowed:
            allow = ", ".join(allowed).encode()
            return _Response(405, _METHOD_NOT_ALLOWED_PAGE, _HTML, b"Allow: " + allow + b"\r\n")
        if method == "OPTIONS":
            allow = ", ".join(allowed).encode()
            return _Response(200, b"", _HTML, b"Allow: " + allow + b"\r\n")
        if endpoint == "health":
            return _HEALTH
        if endpoint == "predict":
            return self._json_handler(request, self._predict, "Failed to generate prediction")
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

    @staticmethod
    def _json_handler(
        request: _Request,
        handler: Callable[[dict[str, object]], _Response],
        failure: str,
    ) -> _Response:
        # Flask's request.get_json() raises for a wrong content type (415) or a body that
        # is not JSON (400); the real handlers catch every exception and answer 500.
        try:
            mimetype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if mimetype != "application/json" and not (
                mimetype.startswith("application/") and mimetype.endswith("+json")
            ):
                raise ValueError("unsupported media type")
            data = json.loads(request.body)
            if not data:
                return _BODY_REQUIRED
            if not isinstance(data, dict):
                raise TypeError("body is not a JSON object")  # data.get() raises in Flask
            return handler(data)
        except Exception:
            return _error(500, failure)

    def _predict(self, data: dict[str, object]) -> _Response:
        query_hash = data.get("query_hash")
        parameters = data.get("parameters", {})
        scenario = data.get("scenario", "current")
        if not query_hash or not isinstance(query_hash, int):
            return _error(400, "query_hash must be a positive integer")
        if query_hash <= 0:
            return _error(400, "query_hash must be positive")
        if scenario not in ("current", "optimized"):
            return _error(400, "scenario must be current or optimized")
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
        before, after = template
        return _Response(200, b"".join((before, b'"', _iso_now().encode(), b'"', after)))

    def _train(self, data: dict[str, object]) -> _Response:
        database_name = data.get("database_name", "pganalytics")
        lookback_days = data.get("lookback_days", 90)
        model_type = data.get("model_type", "linear_regression")
        if not isinstance(lookback_days, int) or lookback_days < 7:
            return _error(400, "lookback_days must be >= 7")
        if model_type not in ("linear_regression", "decision_tree", "random_forest"):
            return _error(400, "Invalid model_type")
        assert isinstance(model_type, str)
        now_s = self._clock()
        created_wall = _utc_now()
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
                outcome=self._faults.training_outcome,
                database_name=database_name,
                lookback_days=lookback_days,
                model_type=model_type,
            )
            self._jobs[job_id] = job
        status, _ = job.state(now_s)
        return _json_response(
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

    def _training_status(self, job_id: str) -> _Response:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return _error(404, "Job not found")
        body = job.body(self._clock())
        return _json_response(400 if body["status"] == "failed" else 200, body)

    @staticmethod
    def _validate(data: dict[str, object]) -> _Response:
        prediction_id = data.get("prediction_id")
        query_hash = data.get("query_hash")
        predicted_ms = data.get("predicted_execution_time_ms")
        actual_ms = data.get("actual_execution_time_ms")
        if not all([prediction_id, query_hash, predicted_ms, actual_ms]):
            return _error(400, "Missing required fields")
        if (
            not isinstance(query_hash, int)
            or not isinstance(predicted_ms, int | float)
            or not isinstance(actual_ms, int | float)
        ):
            return _error(400, "Invalid data types")
        if actual_ms <= 0:
            return _error(400, "actual_execution_time_ms must be positive")
        error_percent = abs(predicted_ms - actual_ms) / actual_ms * 100
        return _json_response(
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
    def _detect(data: dict[str, object]) -> _Response:
        # Not in the real service yet: validated in the style of its train handler.
        database_name = data.get("database_name", "pganalytics")
        lookback_days = data.get("lookback_days", 7)
        if not database_name or not isinstance(database_name, str):
            return _error(400, "database_name must be a non-empty string")
        if not isinstance(lookback_days, int) or lookback_days < 1:
            return _error(400, "lookback_days must be >= 1")
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
        return _json_response(
            200,
            {"patterns_detected": len(patterns), "patterns": patterns, "timestamp": _iso_now()},
        )

    def _list_models(self) -> _Response:
        with self._lock:
            active = self._active_model
        models = [
            {
                "model_id": model_id,
                "model_type": model_type,
                "model_name": name,
                "training_date": _iso_now() if model_id == 1 else "2026-02-19T14:30:00",
                "r_squared": r_squared,
                "training_samples": 1500,
            }
            for model_id, (model_type, name, r_squared) in _MODELS.items()
        ]
        return _json_response(
            200,
            {
                "models": models,
                "total_models": len(models),
                "active_model": active,
                "source": "mock",
            },
        )

    def _latest_model(self) -> _Response:
        with self._lock:
            active = self._active_model
        model_type, name, r_squared = _MODELS[active]
        return _json_response(
            200,
            {
                "model_id": f"model-{model_type.split('_')[0]}-{active:03d}",
                "model_type": model_type,
                "model_name": name,
                "training_samples": 1500,
                "training_date": _iso_now(),
                "r_squared": r_squared,
                "feature_count": len(_FEATURES),
                "is_active": True,
                "source": "mock",
            },
        )

    @staticmethod
    def _parse_model_id(model_id: str) -> int | _Response:
        try:
            number = int(model_id)  # int() as the real service: " 1", "+1" and "1_0" parse
        except ValueError:
            return _error(400, "model_id must be numeric")
        if number not in _MODELS:
            return _error(404, "Model not found")
        return number

    def _get_model(self, model_id: str) -> _Response:
        number = self._parse_model_id(model_id)
        if isinstance(number, _Response):
            return number
        model_type, name, r_squared = _MODELS[number]
        return _json_response(
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

    def _activate_model(self, model_id: str) -> _Response:
        number = self._parse_model_id(model_id)
        if isinstance(number, _Response):
            return number
        with self._lock:
            self._active_model = number
        return _json_response(
            200,
            {
                "model_id": model_id,
                "status": "activated",
                "message": f"Model {model_id} activated for predictions",
                "activated_at": _iso_now(),
            },
        )

    def _status(self) -> _Response:
        now_s = self._clock()
        with self._lock:
            jobs = list(self._jobs.values())
            predictions = self._counts["predict"]
            active = self._active_model
        queued = sum(1 for job in jobs if job.state(now_s)[0] == "queued")
        return _json_response(
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
                "timestamp": _iso_now(),
            },
        )


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------

_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 100
_MAX_BODY: Final = 16 * 1024 * 1024
_LINGER_RESET: Final = struct.pack("ii", 1, 0)
_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        line = f"HTTP/1.1 {status} {phrase}\r\n".encode()
        _STATUS_LINES[status] = line
    return line


def _injected_error(status: int, retry_after_s: float | None) -> _Response:
    if status == 500:
        body: dict[str, str] = _FRAMEWORK_500
    else:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        body = {"error": title, "message": "Injected fault (fake ML service)"}
    headers = b""
    if retry_after_s is not None:
        headers = b"Retry-After: %d\r\n" % math.ceil(retry_after_s)
    return _json_response(status, body, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], service: FakeMLService) -> None:
        self.service = service
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (socket.getfqdn), which can
        # query a DNS server; nothing here needs it.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="fake-ml-connection",
            daemon=True,
        )
        if not self.service._track(thread, request):
            self.shutdown_request(request)
            return
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: object) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.service._untrack(threading.current_thread())

    def handle_error(self, request: object, client_address: object) -> None:
        # A client going away is business as usual for a fake that resets connections;
        # anything else is a bug in this module and deserves its traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # StreamRequestHandler.setup() sets TCP_NODELAY
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing: a load test must not pay for a log line per request."""

    def handle_one_request(self) -> None:
        self.close_connection = True
        try:
            request = self._read_request()
            if request is None:
                return
            self._answer(request)
        except OSError:
            self.close_connection = True

    def _read_request(self) -> tuple[_Request, bool, bool] | None:
        """Parse one request; return (request, keep_alive, http10) or None to close."""
        rfile = self.rfile
        line = rfile.readline(_MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # stray CRLFs between requests (RFC 9112 2.2)
            line = rfile.readline(_MAX_LINE + 1)
        if not line:
            return None
        if len(line) > _MAX_LINE:
            self._protocol_error(414, "Request line too long")
            return None
        parts = line.split()
        if len(parts) != 3:
            self._protocol_error(400, "Malformed request line")
            return None
        method_b, target_b, version = parts
        if version == b"HTTP/1.1":
            keep_alive, http10 = True, False
        elif version == b"HTTP/1.0":
            keep_alive, http10 = False, True
        else:
            self._protocol_error(505, "HTTP version not supported")
            return None
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            raw = rfile.readline(_MAX_LINE + 1)
            if raw in (b"\r\n", b"\n"):
                break
            if not raw:
                return None
            name, sep, value = raw.partition(b":")
            if not sep or len(raw) > _MAX_LINE:
                self._protocol_error(400, "Malformed header line")
                return None
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        else:
            self._protocol_error(431, "Too many header fields")
            return None
        connection = headers.get("connection", "").lower()
        if "close" in connection:
            keep_alive = False
        elif "keep-alive" in connection:
            keep_alive = True
        body = self._read_body(headers, http10)
        if body is None:
            return None
        target = target_b.decode("latin-1")
        if not target.startswith("/"):
            target = urlsplit(target).path or "/"  # absolute-form target
        path = unquote(target.partition("?")[0], errors="replace")
        return _Request(method_b.decode("latin-1"), path, headers, body), keep_alive, http10

    def _read_body(self, headers: dict[str, str], http10: bool) -> bytes | None:
        if not http10 and headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        encoding = headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.lower() != "chunked":
                self._protocol_error(501, "Unsupported transfer encoding")
                return None
            return self._read_chunked()
        length_text = headers.get("content-length")
        if length_text is None:
            return b""
        if not length_text.isdigit():
            self._protocol_error(400, "Invalid Content-Length")
            return None
        length = int(length_text)
        if length > _MAX_BODY:
            self._protocol_error(413, "Request body too large")
            return None
        body = self.rfile.read(length)
        return body if len(body) == length else None

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(_MAX_LINE + 1)
            try:
                size = int(size_line.partition(b";")[0].strip(), 16)
            except ValueError:
                self._protocol_error(400, "Malformed chunk size")
                return None
            if size == 0:
                break
            total += size
            if total > _MAX_BODY:
                self._protocol_error(413, "Request body too large")
                return None
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n"):
                return None
            chunks.append(chunk)
        while True:  # trailer fields, up to the empty line
            trailer = self.rfile.readline(_MAX_LINE + 1)
            if trailer in (b"\r\n", b"\n", b""):
                break
        return b"".join(chunks)

    def _protocol_error(self, status: int, message: str) -> None:
        title = HTTPStatus(status).phrase
        self._write(
            _json_response(status, {"error": title, "message": message}),
            keep_alive=False,
            http10=False,
        )

    def _answer(self, parsed: tuple[_Request, bool, bool]) -> None:
        request, keep_alive, http10 = parsed
        service = self.server.service
        endpoint, allowed, arg = service._route(request.path)
        plan = service._admit(endpoint)
        if plan is None:
            response = service._respond_safely(request, endpoint, allowed, arg)
            self._write(
                response, keep_alive=keep_alive, http10=http10, head=request.method == "HEAD"
            )
            return
        if plan.delay_s > 0.0 and service._stopping.wait(plan.delay_s):
            return  # stopping: close without an answer
        if plan.error_status is not None:
            response = _injected_error(plan.error_status, plan.retry_after_s)
            mode = None
        else:
            response = service._respond_safely(request, endpoint, allowed, arg)
            mode = plan.mode
        if plan.delay_s > 0.0:
            delay_header = b"X-Injected-Delay-Ms: %.3f\r\n" % (plan.delay_s * 1000.0)
            response = response._replace(headers=response.headers + delay_header)
        if mode is None:
            self._write(
                response, keep_alive=keep_alive, http10=http10, head=request.method == "HEAD"
            )
        else:
            self._spoil(response, mode, plan.oversized_bytes, keep_alive=keep_alive, http10=http10)

    def _spoil(
        self,
        response: _Response,
        mode: str,
        oversized_bytes: int,
        *,
        keep_alive: bool,
        http10: bool,
    ) -> None:
        body = response.body
        if mode == "malformed_json":
            stripped = body.rstrip()
            broken = stripped[:-1] if stripped.endswith(b"}") else b'{"status": "ok", '
            self._write(_Response(200, broken, _JSON, response.headers), keep_alive, http10)
        elif mode == "wrong_content_type":
            self._write(_Response(200, _PROXY_PAGE, _HTML, response.headers), keep_alive, http10)
        elif mode == "oversized":
            # The real answer plus a "padding" member: still valid JSON, just too big.
            stripped = body.rstrip()
            if response.content_type != _JSON or not stripped.startswith(b"{"):
                stripped = b"{}"
            head = b'{"padding":"' if stripped == b"{}" else stripped[:-1] + b',"padding":"'
            padding = max(oversized_bytes - len(head) - 2, 0)
            padded = b"".join((head, b"x" * padding, b'"}'))
            self._write(_Response(200, padded, _JSON, response.headers), keep_alive, http10)
        else:  # "reset" or "truncated": promise the whole body, send half of it
            self._write(response, False, http10, body_limit=len(body) // 2)
            if mode == "reset":
                # Linger 0 turns close() into an RST; the file objects must be closed first
                # or the socket's close() is deferred until they are.
                connection = self.connection
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                self.rfile.close()
                self.wfile.close()
                connection.close()
        if mode in ("reset", "truncated"):
            self.close_connection = True

    def _write(
        self,
        response: _Response,
        keep_alive: bool,
        http10: bool,
        *,
        head: bool = False,
        body_limit: int | None = None,
    ) -> None:
        status, body, content_type, extra = response
        if keep_alive:
            connection = b"Connection: keep-alive\r\n" if http10 else b""
        else:
            connection = b"Connection: close\r\n"
        payload = b"" if head else body if body_limit is None else body[:body_limit]
        self.wfile.write(
            b"".join(
                (
                    _status_line(status),
                    self.server.service._date_header(),
                    b"Server: pganalytics-fake-ml\r\nContent-Type: ",
                    content_type,
                    b"\r\nContent-Length: %d\r\n" % len(body),
                    extra,
                    connection,
                    b"\r\n",
                    payload,
                )
            )
        )
        self.close_connection = not keep_alive
