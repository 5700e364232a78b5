"""Error translation: httpx exceptions and HTTP statuses into the package's error tree.

The one place where the client's errors are made from what the transport or the service
said, their text scrubbed of the client's secrets first. Which statuses count against the
service (and so against the breaker) is decided here too. No I/O here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from pganalytics_core._secrets import Scrubber, redact_authorization
from pganalytics_core.errors import (
    BODY_EXCERPT_CHARS,
    BadRequestError,
    MalformedResponseError,
    MLServiceError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ServiceConnectionError,
    ServiceStatusError,
    ServiceTimeoutError,
)
from pganalytics_core.retry import RetryPolicy

__all__ = ["is_breaker_failure", "status_error", "translate", "translate_httpx_error"]


def translate_httpx_error(
    exc: httpx.HTTPError, operation: str, describe: Callable[[str, int], str]
) -> MLServiceError:
    """Translate an httpx exception into the package's error tree.

    The caller raises the result ``from exc``. Messages hold the exception's type and
    text (through ``describe``, which scrubs and trims it), never the request's URL or
    headers.
    """
    text = describe(str(exc), BODY_EXCERPT_CHARS)
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


def translate(
    exc: httpx.HTTPError, request: httpx.Request, operation: str, scrubber: Scrubber
) -> MLServiceError:
    """Translate an httpx exception, first scrubbing it and the request it carries."""
    if "authorization" in request.headers:
        redact_authorization(exc, request)
    if scrubber.active:
        scrubber.scrub_exception_chain(exc)
    return translate_httpx_error(exc, operation, scrubber.text)


def is_breaker_failure(status: int) -> bool:
    """Tell whether a non-2xx status counts against the service (see the client's notes).

    A 4xx is the caller's fault, except 408 and 429: the service is too slow or too busy.
    """
    return not 400 <= status < 500 or status == 408 or status == 429


def status_error(
    operation: str, status: int, headers: httpx.Headers, excerpt: str
) -> ServiceStatusError:
    """The error of a non-2xx answer, with its (scrubbed) body excerpt and Retry-After."""
    header = headers.get("retry-after")
    retry_after = RetryPolicy.parse_retry_after(header, time.time()) if header is not None else None
    if status == 429:
        return RateLimitedError(status, excerpt, retry_after_s=retry_after, operation=operation)
    cls: type[ServiceStatusError]
    if status == 400:
        cls = BadRequestError
    elif status == 404:
        cls = NotFoundError
    elif status >= 500:
        cls = ServerError
    else:
        cls = ServiceStatusError
    return cls(status, excerpt, retry_after_s=retry_after, operation=operation)
