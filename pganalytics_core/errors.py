"""The exception tree of pganalytics_core.

Every error this package raises on purpose derives from :class:`PgAnalyticsError`, so a
caller can catch the whole family with one ``except``. The tree is kept shallow::

    PgAnalyticsError
    ├── ConfigError (also a ValueError)        a bad configuration value, naming the field
    ├── CircuitOpenError                       rejected by a breaker; no request was made
    └── MLServiceError                         a call to the ML service did not succeed
        ├── ServiceTimeoutError                connect, read, write or pool timeout
        │   └── TrainingTimeoutError           a training job outlived the caller's wait
        ├── ServiceConnectionError             refused, reset, DNS, protocol error
        ├── ServiceStatusError                 a non-2xx answer (status_code, body,
        │   │                                  retry_after_s)
        │   ├── BadRequestError                400
        │   ├── NotFoundError                  404
        │   ├── RateLimitedError               429 (retry_after_s)
        │   └── ServerError                    5xx
        ├── MalformedResponseError             2xx but not JSON, wrong shape
        │   └── ResponseTooLargeError          body beyond max_response_bytes
        └── TrainingJobFailedError             a training job ended as ``failed``

Bad *arguments* to a client method (a non-positive query hash, an unknown scenario, a job
id that would change the URL path) raise plain :class:`ValueError` or :class:`TypeError`
before any request is sent, as Python's own APIs do.

No message, repr or attribute of these errors ever holds an API key or a URL password:
the client passes only the path of the request, and every value it takes from a response
(header values, JSON strings, body excerpts, the text of chained httpx exceptions) is
scrubbed of them first.
"""

from __future__ import annotations

__all__ = [
    "BadRequestError",
    "CircuitOpenError",
    "ConfigError",
    "MLServiceError",
    "MalformedResponseError",
    "NotFoundError",
    "PgAnalyticsError",
    "RateLimitedError",
    "ResponseTooLargeError",
    "ServerError",
    "ServiceConnectionError",
    "ServiceStatusError",
    "ServiceTimeoutError",
    "TrainingJobFailedError",
    "TrainingTimeoutError",
    "trim_body",
]

#: How many characters of a response body an error keeps.
BODY_EXCERPT_CHARS = 200


def trim_body(body: bytes | str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """Return a printable excerpt of a response body, at most ``limit`` characters.

    Args:
        body: the raw body (bytes are decoded as UTF-8 with replacement).
        limit: the maximum number of characters kept; a cut body ends with ``...``.

    Returns:
        The excerpt, with control characters replaced so it fits on one log line.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if len(text) > limit:
        return text[: max(limit - 3, 0)] + "..."
    return text


def _rebuild(
    cls: type[PgAnalyticsError], args: tuple[object, ...], state: dict[str, object]
) -> PgAnalyticsError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class PgAnalyticsError(Exception):
    """Root of every error raised by pganalytics_core.

    Every error pickles with its attributes (for multiprocessing and task queues), even
    those whose constructor takes keyword-only arguments.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigError(PgAnalyticsError, ValueError):
    """A configuration value is invalid.

    Attributes:
        field: the name of the offending field.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class CircuitOpenError(PgAnalyticsError):
    """A circuit breaker rejected the call; the guarded function did not run.

    Raised as ``CircuitOpenError(breaker_name, retry_after_s)``. The attributes are read
    from ``args`` so that creating one runs no Python-level ``__init__``: a rejection is
    the hot path of an open circuit.

    Attributes:
        breaker_name: the name of the breaker that rejected the call.
        retry_after_s: seconds until the breaker admits a probe (0.0 when the rejection
            came from a full half-open probe budget, ``inf`` when forced open).
    """

    __slots__ = ()

    @property
    def breaker_name(self) -> str:
        """The name of the breaker that rejected the call."""
        return str(self.args[0]) if self.args else ""

    @property
    def retry_after_s(self) -> float:
        """Seconds until the breaker admits a probe."""
        return float(self.args[1]) if len(self.args) > 1 else 0.0

    def __str__(self) -> str:
        return f"circuit {self.breaker_name!r} is open; retry after {self.retry_after_s:.3f} s"


class PermitUsedError(PgAnalyticsError, RuntimeError):
    """A breaker permit's outcome was recorded a second time (it records exactly once)."""


class MLServiceError(PgAnalyticsError):
    """A call to the ML service did not succeed.

    Attributes:
        operation: the client operation (``"predict"``, ``"train"``, ...), or ``""``.
        attempts: how many HTTP attempts were made before giving up (0 when unknown).
    """

    def __init__(self, message: str, *, operation: str = "", attempts: int = 0) -> None:
        self.operation = operation
        self.attempts = attempts
        super().__init__(message)


class ServiceTimeoutError(MLServiceError):
    """The ML service did not answer in time (connect, read, write or pool timeout).

    Attributes:
        request_sent: False when the request certainly never reached the service (a
            connect or pool timeout), which makes even non-idempotent calls safe to retry.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        attempts: int = 0,
        request_sent: bool = True,
    ) -> None:
        self.request_sent = request_sent
        super().__init__(message, operation=operation, attempts=attempts)


class TrainingTimeoutError(ServiceTimeoutError):
    """A training job was still running when the caller's wait ran out.

    The job itself may still complete; poll it again later with its id.

    Attributes:
        job_id: the job's id.
        waited_s: how long the caller waited, in seconds.
        last_status: the last status the service reported (``"queued"``, ``"training"``).
    """

    def __init__(
        self, job_id: str, waited_s: float, last_status: str, *, operation: str = ""
    ) -> None:
        self.job_id = job_id
        self.waited_s = waited_s
        self.last_status = last_status
        super().__init__(
            f"training job {job_id} still {last_status} after {waited_s:.3f} s",
            operation=operation,
        )


class ServiceConnectionError(MLServiceError):
    """The ML service could not be reached or broke the connection.

    Attributes:
        request_sent: False when the request certainly never reached the service (the
            connection could not be made), which makes even non-idempotent calls safe to
            retry.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        attempts: int = 0,
        request_sent: bool = True,
    ) -> None:
        self.request_sent = request_sent
        super().__init__(message, operation=operation, attempts=attempts)


class ServiceStatusError(MLServiceError):
    """The ML service answered with a non-success status.

    Attributes:
        status_code: the HTTP status code.
        body: a trimmed excerpt of the response body (never the request).
        retry_after_s: the delay a ``Retry-After`` header asked for (429, 503), in
            seconds, or None when the service gave none.
    """

    def __init__(
        self,
        status_code: int,
        body: str,
        *,
        retry_after_s: float | None = None,
        operation: str = "",
        attempts: int = 0,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.retry_after_s = retry_after_s
        where = f"{operation}: " if operation else ""
        detail = f": {body}" if body else ""
        super().__init__(
            f"{where}ML service answered {status_code}{detail}",
            operation=operation,
            attempts=attempts,
        )


class BadRequestError(ServiceStatusError):
    """400: the service rejected the request as invalid (the caller's fault)."""


class NotFoundError(ServiceStatusError):
    """404: the resource (a training job, a model, an endpoint) does not exist."""


class RateLimitedError(ServiceStatusError):
    """429: the service asks the caller to slow down.

    Attributes:
        retry_after_s: the delay the service asked for, or None when it gave none.
    """

    def __init__(
        self,
        status_code: int,
        body: str,
        *,
        retry_after_s: float | None = None,
        operation: str = "",
        attempts: int = 0,
    ) -> None:
        super().__init__(
            status_code,
            body,
            retry_after_s=retry_after_s,
            operation=operation,
            attempts=attempts,
        )


class ServerError(ServiceStatusError):
    """5xx: the service failed."""


class MalformedResponseError(MLServiceError):
    """A success status with a body that is not the documented JSON."""


class ResponseTooLargeError(MalformedResponseError):
    """The response body is larger than the client's ``max_response_bytes``.

    Attributes:
        limit_bytes: the configured limit.
    """

    def __init__(self, limit_bytes: int, *, operation: str = "", attempts: int = 0) -> None:
        self.limit_bytes = limit_bytes
        super().__init__(
            f"{operation or 'response'}: body exceeds max_response_bytes={limit_bytes}",
            operation=operation,
            attempts=attempts,
        )


class TrainingJobFailedError(MLServiceError):
    """A training job ended with status ``failed``.

    Attributes:
        job_id: the job's id.
        reason: the ``error`` text the service reported, trimmed.
    """

    def __init__(self, job_id: str, reason: str, *, operation: str = "") -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"training job {job_id} failed: {reason}", operation=operation)
