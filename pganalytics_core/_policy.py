"""The ML service client's call policy, written once for both clients (no I/O here).

It holds the configuration checks, request building, the retry and
deadline arithmetic, status-to-error mapping, response parsing, the bounded inflation of
compressed bodies, the translation of httpx exceptions and the scrubbing of secrets. The
policy itself is described in :mod:`pganalytics_core.client`.

The I/O loops that use it are written once too, in :mod:`pganalytics_core._async_client`
(by hand); :mod:`pganalytics_core._sync_client` is generated from it by
``benchtools/unasync.py`` (a test fails when it is stale).
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

import httpx

from pganalytics_core import _deadline
from pganalytics_core._validation import (
    check_count,
    check_positive,
    check_text,
    check_type,
)
from pganalytics_core.breaker import CircuitBreaker
from pganalytics_core.cache import PredictionCache
from pganalytics_core.errors import BODY_EXCERPT_CHARS as _EXCERPT_CHARS
from pganalytics_core.errors import (
    BadRequestError,
    ConfigError,
    MalformedResponseError,
    MLServiceError,
    NotFoundError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    ServiceConnectionError,
    ServiceStatusError,
    ServiceTimeoutError,
    trim_body,
)
from pganalytics_core.models import (
    MODEL_TYPES,
    Prediction,
    PredictionOutcome,
    PredictionRequest,
    TrainingState,
    TrainingStatus,
    parse_pattern_detection,
    parse_prediction,
    parse_training_job,
    parse_training_status,
    parse_validation_result,
)
from pganalytics_core.retry import RetryPolicy

T = TypeVar("T")

#: The name of the breaker a client makes when none is given.
BREAKER_NAME: Final = "ml-service"

#: The default cap on a success body, in bytes (the service's answers are a few hundred).
DEFAULT_MAX_RESPONSE_BYTES: Final = 1 << 20

#: How much of an error body is read (errors keep a 200-character excerpt of it); the
#: client reads the length of its longest secret more, to scrub a secret straddling it.
_ERROR_BODY_BYTES: Final = 4096

#: The shortest trailing fragment of a secret that is dropped from an excerpt.
_MIN_SECRET_FRAGMENT: Final = 4

_REDACTED: Final = "[redacted]"

#: The ``source`` of a prediction the service made from its mock data (database down).
_MOCK_SOURCE: Final = "mock"

#: The most a single ``decompress`` call of a compressed body may produce, in bytes.
_INFLATE_STEP_BYTES: Final = 1 << 16

#: zlib ``wbits`` of the content encodings the client inflates (with a bounded output).
_WBITS_BY_ENCODING: Final = {
    "gzip": zlib.MAX_WBITS | 16,
    "x-gzip": zlib.MAX_WBITS | 16,
    "deflate": zlib.MAX_WBITS,
}

_USER_AGENT: Final = "pganalytics-core"

# A job id is one URL path segment made of unreserved characters (RFC 3986), so it can
# never add a segment, a query or a fragment; "." and ".." are refused separately.
_PATH_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9._~-]{1,200}")


class RouterLike(Protocol):
    """Anything with request handlers like a ``respx.Router`` (usable as ``transport=``)."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` synchronously."""
        ...

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from asyncio."""
        ...


# --------------------------------------------------------------------------- the core


@dataclass(frozen=True, slots=True)
class _Op(Generic[T]):
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


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan: a literal like 1e999 overflowed
        raise ValueError("a number beyond the range of a float")
    return value


# JSON (RFC 8259) has no NaN or infinities; Python's json module takes them by default.
_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _scrub_json(value: object, scrub: Callable[[str], str]) -> object:
    """Return decoded JSON with every string (keys too) passed through ``scrub``."""
    if type(value) is str:
        return scrub(value)
    if type(value) is dict:
        return {scrub(key): _scrub_json(item, scrub) for key, item in value.items()}
    if type(value) is list:
        return [_scrub_json(item, scrub) for item in value]
    return value


def _scrub_exception_chain(exc: BaseException, scrub: Callable[[str], str]) -> None:
    """Scrub the text arguments of ``exc`` and of every exception chained to it.

    httpx's exceptions (chained as the ``__cause__`` of the client's errors) carry
    httpcore's and h11's, whose messages may quote what the server sent.
    """
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(
            scrub(arg)
            if isinstance(arg, str)
            else scrub(arg.decode("latin-1")).encode("latin-1")
            if isinstance(arg, bytes)
            else arg
            for arg in current.args
        )
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


_HEALTH: Final = _Op("health", "GET", True, _parse_health, retryable=False)
_PREDICT: Final = _Op("predict", "POST", True, parse_prediction)
_TRAIN: Final = _Op("train", "POST", False, parse_training_job)
_TRAINING_STATUS: Final = _Op(
    "training_status", "GET", True, parse_training_status, accept_400=_failed_job
)
_VALIDATE: Final = _Op("validate", "POST", True, parse_validation_result)
_DETECT_PATTERNS: Final = _Op("detect_patterns", "POST", True, parse_pattern_detection)

_JSON_SEPARATORS: Final = (",", ":")


def _translate_httpx_error(
    exc: httpx.HTTPError, operation: str, describe: Callable[[str, int], str]
) -> MLServiceError:
    """Translate an httpx exception into the package's error tree (the one place).

    The caller raises the result ``from exc``. Messages hold the exception's type and
    text (through ``describe``, which scrubs and trims it), never the request's URL or
    headers.
    """
    text = describe(str(exc), _EXCERPT_CHARS)
    message = f"{operation}: {type(exc).__name__}" + (f": {text}" if text else "")
    if isinstance(exc, httpx.TimeoutException):
        # Connect and pool timeouts happen before a byte of the request is written.
        sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        return ServiceTimeoutError(message, operation=operation, request_sent=sent)
    if isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol):
        return ServiceConnectionError(message, operation=operation, request_sent=False)
    if isinstance(exc, httpx.DecodingError):
        return MalformedResponseError(message, operation=operation)
    if isinstance(exc, httpx.TransportError):
        # Read/write/close errors, protocol errors (a reset, a truncated body), proxies:
        # the request may have reached the service.
        return ServiceConnectionError(message, operation=operation, request_sent=True)
    return MLServiceError(message, operation=operation)


def _is_breaker_failure(status: int) -> bool:
    """Tell whether a non-2xx status counts against the service (see the module notes)."""
    return not 400 <= status < 500 or status == 408 or status == 429


def _check_declared_length(headers: httpx.Headers, limit: int, operation: str) -> None:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLargeError(limit, operation=operation)


def _redact_authorization(exc: httpx.HTTPError, request: httpx.Request) -> None:
    """Blank the Authorization header of the requests an httpx exception can reach.

    The request has been sent by now; the exception, chained as ``__cause__`` of the
    client's error, may be logged with its request or kept by an error tracker.
    """
    request.headers["Authorization"] = _REDACTED
    try:
        attached = exc.request
    except RuntimeError:  # no request attached
        return
    if attached is not request and "authorization" in attached.headers:
        attached.headers["Authorization"] = _REDACTED


def _content_encoding(headers: httpx.Headers) -> str | None:
    """Return the body's content encoding, lowercased, or None for identity."""
    encoding = headers.get("content-encoding")
    if encoding is None:
        return None
    name = encoding.strip().lower()
    return None if not name or name == "identity" else name


class _Inflater:
    """Inflates a gzip or deflate body chunk by chunk into at most ``max_bytes`` bytes.

    Every ``decompress`` call gets an output bound (the room left plus one byte, in steps
    of at most 64 KiB), so a compression bomb stops one byte past the limit whatever its
    ratio; the raw (compressed) bytes are held to the same limit.
    """

    __slots__ = ("_chunks", "_decompressor", "_max_bytes", "_raw_bytes", "_total")

    def __init__(self, wbits: int, max_bytes: int) -> None:
        self._decompressor = zlib.decompressobj(wbits)
        self._max_bytes = max_bytes
        self._chunks: list[bytes | memoryview] = []
        self._raw_bytes = 0
        self._total = 0

    def feed(self, data: bytes) -> bool:
        """Inflate ``data``; return False once the raw or inflated size passed the bound.

        Raises:
            zlib.error: the data does not decode.
        """
        self._raw_bytes += len(data)
        decompressor = self._decompressor
        while True:
            room = self._max_bytes - self._total
            # Bounded steps: at most one step beyond the limit is ever held. max_length is
            # never 0 (which would mean "unbounded").
            out = decompressor.decompress(data, min(room + 1, _INFLATE_STEP_BYTES))
            self._total += len(out)
            if len(out) > room:
                self._chunks.append(memoryview(out)[:room])
                return False
            self._chunks.append(out)
            # Input is left over only when the step's output was full: progress is made.
            data = decompressor.unconsumed_tail
            if not data:
                return self._raw_bytes <= self._max_bytes

    @property
    def complete(self) -> bool:
        """True once the end of the compressed stream was seen."""
        return self._decompressor.eof

    def output(self) -> bytes:
        """The inflated bytes so far, at most ``max_bytes``."""
        return b"".join(self._chunks)


def _check_time_left(operation: str) -> None:
    """Raise :class:`ServiceTimeoutError` once the current exchange's end has passed.

    The client's own transports time out every read at that end; this check, between
    chunks, also bounds inflation and a transport the caller passed in.
    """
    left = _deadline.time_left()
    if left is not None and left <= 0:
        raise ServiceTimeoutError(
            f"{operation}: the call's deadline passed while reading the body",
            operation=operation,
        )


def _body_inflater(
    headers: httpx.Headers, limit: int, operation: str, describe: Callable[[str, int], str]
) -> _Inflater | None:
    """Return an inflater for a compressed success body (None for identity), or refuse."""
    encoding = _content_encoding(headers)
    if encoding is None:
        return None
    wbits = _WBITS_BY_ENCODING.get(encoding)
    if wbits is None:
        raise MalformedResponseError(
            f"{operation}: unsupported content encoding {describe(encoding, 40)!r} "
            "(the client asks for identity and inflates only gzip and deflate)",
            operation=operation,
        )
    return _Inflater(wbits, limit)


def _inflated_body(inflater: _Inflater, operation: str) -> bytes:
    if not inflater.complete:
        raise MalformedResponseError(
            f"{operation}: the compressed body ends before its end of stream",
            operation=operation,
        )
    return inflater.output()


def _undecodable(operation: str) -> MalformedResponseError:
    return MalformedResponseError(
        f"{operation}: the body does not decode as its content encoding", operation=operation
    )


def _held_body(response: httpx.Response, limit: int, operation: str) -> bytes:
    # Built in memory (httpx.MockTransport, respx): httpx has read and decoded it already.
    body = response.content
    if len(body) > limit:
        raise ResponseTooLargeError(limit, operation=operation)
    return body


def _excerpt_inflater(
    headers: httpx.Headers, limit: int, describe: Callable[[str, int], str]
) -> _Inflater | bytes | None:
    """Return an inflater for a compressed error body, None for identity, or a stand-in."""
    encoding = _content_encoding(headers)
    if encoding is None:
        return None
    wbits = _WBITS_BY_ENCODING.get(encoding)
    if wbits is None:
        return f"[a {describe(encoding, 40)}-encoded body]".encode()
    return _Inflater(wbits, limit)


def _without_secret_tail(text: str, secrets: tuple[str, ...]) -> str:
    """Drop a trailing fragment of a secret (4 characters or more) left by a cut.

    Whole secrets are scrubbed before; only a secret cut by the end of the bytes read,
    or by the excerpt's trimming, can survive in part, and only at the end of the text.
    """
    suffix = ""
    if text.endswith("..."):
        text, suffix = text[:-3], "..."
    stripped = text.rstrip("\ufffd")  # a character cut in the middle of its bytes
    folded = stripped.lower()
    cut = 0
    for secret in secrets:
        for n in range(min(len(secret), len(stripped)), max(cut, _MIN_SECRET_FRAGMENT - 1), -1):
            if folded.endswith(secret[:n].lower()):
                cut = n
                break
    if not cut:
        return text + suffix
    return stripped[:-cut].rstrip() + suffix


def _check_job_id(job_id: object) -> str:
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a str, got {type(job_id).__name__}")
    if job_id in (".", "..") or _PATH_SEGMENT_RE.fullmatch(job_id) is None:
        raise ValueError(
            f"job_id {job_id[:60]!r} is not a plain path segment (letters, digits and '-._~' only)"
        )
    return job_id


def _normalise_base_url(base_url: str | httpx.URL) -> tuple[httpx.URL, str | None, str]:
    """Return the base URL without credentials, its Basic header (or None) and password."""
    try:
        url: httpx.URL | None = httpx.URL(base_url)
    except httpx.InvalidURL:  # its message may quote the URL: not kept as a __context__
        url = None
    if url is None:
        raise ConfigError("base_url", "is not a valid URL")
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("base_url", "must be an absolute http:// or https:// URL")
    if url.query or url.fragment:
        raise ConfigError("base_url", "must not have a query or a fragment")
    basic: str | None = None
    password = ""
    if url.userinfo:
        password = url.password or ""
        token = base64.b64encode(f"{url.username}:{password}".encode()).decode("ascii")
        basic = f"Basic {token}"
        url = url.copy_with(username=None, password=None)
    return url.copy_with(path=url.path.rstrip("/") or "/"), basic, password


def _check_timeout(timeout_s: object) -> None:
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not 0 < timeout_s < math.inf
    ):
        raise ConfigError("timeout_s", f"must be a finite number of seconds > 0, got {timeout_s!r}")


def _check_max_response_bytes(max_response_bytes: object) -> None:
    if (
        isinstance(max_response_bytes, bool)
        or not isinstance(max_response_bytes, int)
        or max_response_bytes < 1
    ):
        raise ConfigError("max_response_bytes", "must be an int >= 1")


def _authorization(api_key: str | None, basic: str | None) -> str | None:
    """The ``Authorization`` header of a client: its API key's, its URL's, or None.

    Raises:
        TypeError: an API key that is not a str.
        ConfigError: a malformed key, or a key and URL credentials both.
    """
    if api_key is None:
        return basic
    check_type("api_key", api_key, str)
    # Never echo the key: it must not end up in a message or a log line.
    if (
        not api_key
        or not api_key.isascii()
        or not api_key.isprintable()
        or api_key != api_key.strip()
    ):
        raise ConfigError("api_key", "must be non-empty printable ASCII without spaces around it")
    if basic is not None:
        raise ConfigError("base_url", "holds credentials; pass api_key or credentials, not both")
    return f"Bearer {api_key}"


class _ClientBase:
    """Configuration, request building and response interpretation shared by both clients."""

    _base_url: httpx.URL
    _base: str

    def __init__(
        self,
        base_url: str | httpx.URL,
        *,
        timeout_s: float,
        retry: RetryPolicy,
        breaker: CircuitBreaker | None,
        cache: PredictionCache | None,
        api_key: str | None,
        max_response_bytes: int,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        self._base_url, basic, password = _normalise_base_url(base_url)
        self._base = str(self._base_url).rstrip("/")
        _check_timeout(timeout_s)
        check_type("retry", retry, RetryPolicy)
        if breaker is None:
            breaker = CircuitBreaker(name=BREAKER_NAME)
        check_type("breaker", breaker, CircuitBreaker)
        if cache is not None:
            check_type("cache", cache, PredictionCache)
        _check_max_response_bytes(max_response_bytes)
        authorization = _authorization(api_key, basic)
        # Scrubbed from error excerpts: a proxy or a debug page may echo request headers.
        # Longest first, so "Basic <token>" goes as a whole before its token would.
        secrets = {api_key or "", password}
        if basic is not None:
            secrets.update((basic, basic.removeprefix("Basic ")))
        self._secrets = tuple(sorted(filter(None, secrets), key=len, reverse=True))
        # A cut "Basic <token>" is caught by its token; "Basic" alone is no secret.
        self._fragment_secrets = tuple(secret for secret in self._secrets if secret != basic)
        # Case-insensitive: a server may echo a header lowercased (as Content-Encoding is).
        self._secret_re = (
            re.compile("|".join(map(re.escape, self._secrets)), re.IGNORECASE)
            if self._secrets
            else None
        )
        longest = max((len(secret.encode()) for secret in self._secrets), default=0)
        self._excerpt_bytes = _ERROR_BODY_BYTES + longest
        self._authorized = authorization is not None
        self._timeout_s = float(timeout_s)
        self._timeout = httpx.Timeout(self._timeout_s)
        # Passed to every request, so httpx.Client.send does not build a Timeout per call.
        self._extensions: dict[str, object] = {"timeout": self._timeout.as_dict()}
        self._retry = retry
        self._breaker = breaker
        self._cache = cache
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()

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
        base = self._base
        self._health_url = httpx.URL(base + "/health")
        self._predict_url = httpx.URL(base + "/api/predict/query-execution")
        self._train_url = httpx.URL(base + "/api/train/performance-model")
        self._validate_url = httpx.URL(base + "/api/validate/prediction")
        self._detect_url = httpx.URL(base + "/api/detect/patterns")

    # ------------------------------------------------------------------ introspection

    @property
    def base_url(self) -> str:
        """The service's base URL, without any credentials."""
        return self._base

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker every HTTP attempt goes through."""
        return self._breaker

    @property
    def cache(self) -> PredictionCache | None:
        """The prediction cache, or None when predictions are not cached."""
        return self._cache

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._retry

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} base_url={self._base!r} "
            f"breaker={self._breaker.name!r} state={self._breaker.state.value}>"
        )

    # ------------------------------------------------------------------ request building

    def _build(
        self,
        op: _Op[T],
        url: httpx.URL,
        content: bytes | None,
        extensions: dict[str, object],
    ) -> httpx.Request:
        if content is None:
            return httpx.Request(op.method, url, headers=self._get_headers, extensions=extensions)
        return httpx.Request(
            op.method, url, headers=self._post_headers, content=content, extensions=extensions
        )

    def _end_of_call(self, started: float, deadline: float | None) -> float | None:
        """The clock reading by which the call's attempts must end, or None."""
        budget_s = self._retry.deadline_s
        if budget_s is None:
            return deadline
        end = started + budget_s
        return end if deadline is None or end < deadline else deadline

    def _attempt_budget(self, op: _Op[T], end: float, error: MLServiceError | None) -> float:
        """The seconds an attempt that must end by ``end`` (client's clock) may take.

        Raises:
            MLServiceError: nothing is left: the last attempt's error, or a
                :class:`ServiceTimeoutError` when there was none.
        """
        remaining = end - self._clock()
        if remaining <= 0:
            if error is not None:
                raise error
            raise ServiceTimeoutError(
                f"{op.operation}: no time left for an attempt",
                operation=op.operation,
                request_sent=False,
            )
        return remaining if remaining < self._timeout_s else self._timeout_s

    def _extensions_for(self, budget_s: float) -> dict[str, object]:
        """The request extensions of an attempt of ``budget_s`` seconds.

        Every socket operation is also cut to the end of the exchange (``_deadline``);
        the timeouts here bound the wait for a pooled connection, and the operations of
        a transport the caller passed in.
        """
        if budget_s >= self._timeout_s:
            return self._extensions
        return {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), budget_s)}

    @staticmethod
    def _train_body(
        database_name: str, lookback_days: int, model_type: str, force_retrain: bool
    ) -> bytes:
        check_text("database_name", database_name)
        check_count("lookback_days", lookback_days, 7)
        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {sorted(MODEL_TYPES)}, got {model_type!r}")
        if type(force_retrain) is not bool:
            raise TypeError(f"force_retrain must be a bool, got {type(force_retrain).__name__}")
        payload = {
            "database_name": database_name,
            "lookback_days": lookback_days,
            "model_type": model_type,
            "force_retrain": force_retrain,
        }
        return json.dumps(payload, separators=_JSON_SEPARATORS).encode()

    def _status_url(self, job_id: str) -> httpx.URL:
        return httpx.URL(f"{self._train_url}/{_check_job_id(job_id)}")

    @staticmethod
    def _validate_body(
        prediction_id: str,
        query_hash: int,
        predicted_execution_time_ms: float,
        actual_execution_time_ms: float,
        model_version: str,
    ) -> bytes:
        check_text("prediction_id", prediction_id)
        PredictionRequest(query_hash)  # the same checks as predict's
        # The service tests fields for truthiness, so a 0 would come back as "missing".
        check_positive("predicted_execution_time_ms", predicted_execution_time_ms)
        check_positive("actual_execution_time_ms", actual_execution_time_ms)
        check_text("model_version", model_version)
        payload = {
            "prediction_id": prediction_id,
            "query_hash": query_hash,
            "predicted_execution_time_ms": predicted_execution_time_ms,
            "actual_execution_time_ms": actual_execution_time_ms,
            "model_version": model_version,
        }
        return json.dumps(payload, separators=_JSON_SEPARATORS).encode()

    @staticmethod
    def _detect_body(database_name: str, lookback_days: int) -> bytes:
        check_text("database_name", database_name)
        check_count("lookback_days", lookback_days, 1)
        payload = {"database_name": database_name, "lookback_days": lookback_days}
        return json.dumps(payload, separators=_JSON_SEPARATORS).encode()

    # ------------------------------------------------------------------ responses

    def _interpret(
        self, op: _Op[T], status: int, headers: httpx.Headers, body: bytes
    ) -> T | ServiceStatusError:
        """Turn a response into a result, a caller-fault error (returned) or a raise.

        Raises the errors that count against the service (so the breaker sees them as
        failures) and returns the ones that do not.
        """
        if 200 <= status < 300:
            content_type = headers.get("content-type")
            if (
                content_type is not None
                and "json" not in content_type
                and "json" not in content_type.lower()
            ):
                raise MalformedResponseError(
                    f"{op.operation}: expected JSON, got content type "
                    f"{self._text(content_type, 60)!r}",
                    operation=op.operation,
                )
            data = self._json(body, op.operation)
            try:
                return op.parse(data)
            except MalformedResponseError as exc:
                exc.operation = op.operation
                raise
        if status == 400 and op.accept_400 is not None:
            try:
                data = self._json(body, op.operation)
            except MalformedResponseError:
                accepted = None
            else:
                accepted = op.accept_400(data)
            if accepted is not None:
                return accepted
        error = self._status_error(op.operation, status, headers, body)
        if _is_breaker_failure(status):
            raise error
        return error

    def _json(self, body: bytes, operation: str) -> object:
        """Decode a JSON body, its strings scrubbed of the client's secrets.

        Raises:
            MalformedResponseError: not UTF-8 JSON (RFC 8259: NaN, infinities and numbers
                beyond a float's range are refused), or nested too deep. Raised outside
                the decoder's exception, whose ``doc`` holds the whole body.
        """
        try:
            text = body.decode("utf-8")
            data = _JSON_DECODER.decode(text)
        except (ValueError, RecursionError):
            text = None
        if text is None:
            raise MalformedResponseError(
                f"{operation}: the body is not JSON (RFC 8259): {self._excerpt(body)!r}",
                operation=operation,
            )
        secret_re = self._secret_re
        # An escape (\uXXXX) could spell a secret that the raw text does not show.
        if secret_re is not None and ("\\" in text or secret_re.search(text) is not None):
            try:
                data = _scrub_json(data, self._scrub)
            except RecursionError:
                text = None
            if text is None:
                raise MalformedResponseError(
                    f"{operation}: the body is nested too deeply", operation=operation
                )
        return data

    def _scrub(self, text: str) -> str:
        """Replace every secret of the client in ``text`` (in any case) by ``***``."""
        secret_re = self._secret_re
        return text if secret_re is None else secret_re.sub("***", text)

    def _text(self, text: str, limit: int = _EXCERPT_CHARS) -> str:
        """A printable excerpt of text a server sent, scrubbed of the client's secrets.

        Scrubbed before trimming; what a cut left of a secret at the end is dropped.
        """
        if self._secret_re is None:
            return trim_body(text, limit)
        return _without_secret_tail(trim_body(self._scrub(text), limit), self._fragment_secrets)

    def _excerpt(self, body: bytes) -> str:
        return self._text(body[: self._excerpt_bytes].decode("utf-8", "replace"))

    def _translate(
        self, exc: httpx.HTTPError, request: httpx.Request, operation: str
    ) -> MLServiceError:
        """Translate an httpx exception, first scrubbing it and the request it carries."""
        if self._authorized:
            _redact_authorization(exc, request)
        if self._secret_re is not None:
            _scrub_exception_chain(exc, self._scrub)
        return _translate_httpx_error(exc, operation, self._text)

    def _status_error(
        self, operation: str, status: int, headers: httpx.Headers, body: bytes
    ) -> ServiceStatusError:
        excerpt = self._excerpt(body)
        header = headers.get("retry-after")
        retry_after = (
            RetryPolicy.parse_retry_after(header, time.time()) if header is not None else None
        )
        cls: type[ServiceStatusError]
        if status == 429:
            return RateLimitedError(status, excerpt, retry_after_s=retry_after, operation=operation)
        if status == 400:
            cls = BadRequestError
        elif status == 404:
            cls = NotFoundError
        elif status >= 500:
            cls = ServerError
        else:
            cls = ServiceStatusError
        return cls(status, excerpt, retry_after_s=retry_after, operation=operation)

    def _predicted(self, request: PredictionRequest, prediction: Prediction) -> PredictionOutcome:
        cache = self._cache
        if cache is not None and prediction.source != _MOCK_SOURCE:
            cache.put(request, prediction)
        return PredictionOutcome(request, prediction)

    def _retry_delay(
        self, op: _Op[T], error: MLServiceError, attempt: int, started: float, end: float | None
    ) -> float | None:
        error.attempts = attempt
        if not op.retryable:
            return None
        now = self._clock()
        delay = self._retry.retry_delay_s(
            error,
            attempt,
            idempotent=op.idempotent,
            elapsed_s=now - started,
            rng=self._rng,
        )
        if delay is not None and end is not None and now + delay >= end:
            return None  # the next attempt would have no time left
        return delay


def _check_wait(poll_interval_s: float, timeout_s: float) -> None:
    check_positive("poll_interval_s", poll_interval_s)
    check_positive("timeout_s", timeout_s)


def _check_batch(
    requests: Iterable[PredictionRequest], max_concurrency: int
) -> list[PredictionRequest]:
    check_count("max_concurrency", max_concurrency, 1)
    batch = list(requests)
    for item in batch:
        if not isinstance(item, PredictionRequest):
            raise TypeError(f"requests must be PredictionRequest values, got {type(item).__name__}")
    return batch


def _batch_plan(
    batch: list[PredictionRequest], cache: PredictionCache | None
) -> tuple[dict[PredictionRequest, PredictionOutcome], list[PredictionRequest]]:
    """Split a batch into the outcomes the cache serves and the distinct requests to send."""
    outcomes: dict[PredictionRequest, PredictionOutcome] = {}
    todo: list[PredictionRequest] = []
    for request in dict.fromkeys(batch):
        hit = cache.get(request) if cache is not None else None
        if hit is not None:
            outcomes[request] = PredictionOutcome(request, hit)
        else:
            todo.append(request)
    return outcomes, todo


def _batch_outcomes(
    batch: list[PredictionRequest],
    outcomes: dict[PredictionRequest, PredictionOutcome],
    results: list[PredictionOutcome | Exception],
) -> list[PredictionOutcome]:
    """Merge a batch's sent results into ``outcomes``; raise the first unexpected error."""
    for result in results:
        if not isinstance(result, PredictionOutcome):
            raise result
        outcomes[result.request] = result
    return [outcomes[request] for request in batch]
