"""Error translation (pganalytics_core._translate): httpx exceptions and statuses."""

from __future__ import annotations

import httpx
import pytest

from pganalytics_core._secrets import Scrubber
from pganalytics_core._translate import is_breaker_failure, status_error, translate
from pganalytics_core.errors import (
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

KEY = "sk-live-0123456789abcdef"


@pytest.mark.parametrize(
    ("exc", "kind", "sent"),
    [
        (httpx.ConnectTimeout("c"), ServiceTimeoutError, False),
        (httpx.PoolTimeout("p"), ServiceTimeoutError, False),
        (httpx.ReadTimeout("r"), ServiceTimeoutError, True),
        (httpx.ConnectError("c"), ServiceConnectionError, False),
        (httpx.RemoteProtocolError("r"), ServiceConnectionError, True),
        (httpx.DecodingError("d"), MalformedResponseError, None),
        (httpx.TooManyRedirects("t"), MLServiceError, None),
    ],
)
def test_httpx_exceptions_map_to_the_error_tree(
    exc: httpx.HTTPError, kind: type[MLServiceError], sent: bool | None
) -> None:
    request = httpx.Request("GET", "http://host/")
    error = translate(exc, request, "predict", Scrubber(None, "", None))
    assert type(error) is kind
    assert error.operation == "predict"
    assert str(error).startswith(f"predict: {type(exc).__name__}")
    if sent is not None:
        assert error.request_sent is sent


def test_translation_scrubs_the_exception_and_redacts_the_request() -> None:
    request = httpx.Request("GET", "http://host/", headers={"Authorization": f"Bearer {KEY}"})
    exc = httpx.ReadError(f"peer said {KEY}", request=request)
    error = translate(exc, request, "predict", Scrubber(KEY, "", None))
    assert KEY not in str(error)
    assert KEY not in str(exc)
    assert request.headers["Authorization"] == "[redacted]"


@pytest.mark.parametrize(
    ("status", "counts"),
    [(500, True), (503, True), (302, True), (408, True), (429, True), (400, False), (404, False)],
)
def test_which_statuses_count_against_the_service(status: int, counts: bool) -> None:
    assert is_breaker_failure(status) is counts


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (404, NotFoundError),
        (429, RateLimitedError),
        (503, ServerError),
        (409, ServiceStatusError),
    ],
)
def test_status_errors_carry_status_excerpt_and_retry_after(
    status: int, kind: type[ServiceStatusError]
) -> None:
    error = status_error("train", status, httpx.Headers({"retry-after": "7"}), "busy")
    assert type(error) is kind
    assert error.status_code == status
    assert error.retry_after_s == 7.0
    assert error.operation == "train"
    assert status_error("train", status, httpx.Headers(), "").retry_after_s is None
