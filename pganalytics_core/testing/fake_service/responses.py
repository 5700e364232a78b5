"""Answers of the fake ML service as data: a status, a body, a content type, extra headers.

Handlers and faults build :class:`Response` values; only :mod:`.connection` turns them
into bytes on a socket. Bodies that never change are serialized once, here.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Final, NamedTuple

JSON: Final = b"application/json"
HTML: Final = b"text/html; charset=utf-8"


class Response(NamedTuple):
    """One answer, before framing."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: bytes = b""  # extra header lines, each ending in CRLF


def dumps(obj: object) -> bytes:
    """Serialize like Flask's jsonify outside debug mode: sorted keys, compact, a newline."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def json_response(status: int, obj: object, headers: bytes = b"") -> Response:
    """A JSON answer."""
    return Response(status, dumps(obj), JSON, headers)


def error(status: int, message: str) -> Response:
    """A handler's error answer: ``{"error": message}``."""
    return json_response(status, {"error": message})


def framework_error(status: int, message: str) -> Response:
    """The framework's error answer: ``{"error": <status title>, "message": message}``."""
    return json_response(status, {"error": HTTPStatus(status).phrase, "message": message})


def utc_now() -> datetime:
    """Now, in naive UTC (the real service's timestamps carry no time zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_now() -> str:
    """Now, as an ISO 8601 string without a time zone."""
    return utc_now().isoformat()


FRAMEWORK_500: Final = {
    "error": "Internal server error",
    "message": "An unexpected error occurred",
}
NOT_FOUND: Final = json_response(404, {"error": "Not found", "message": "Endpoint not found"})
UNAUTHORIZED: Final = Response(
    401, dumps({"error": "unauthorized"}), JSON, b"WWW-Authenticate: Bearer\r\n"
)
HEALTH: Final = json_response(200, {"status": "healthy", "service": "ml-service"})
BODY_REQUIRED: Final = error(400, "Request body required")
INTERNAL_ERROR: Final = json_response(500, FRAMEWORK_500)
METHOD_NOT_ALLOWED_PAGE: Final = (
    b"<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n"
    b"<h1>Method Not Allowed</h1>\n"
    b"<p>The method is not allowed for the requested URL.</p>\n"
)
PROXY_PAGE: Final = (
    b"<!doctype html>\n<html><head><title>Service Portal</title></head>\n"
    b"<body><h1>Welcome</h1><p>This page is not the ML service.</p></body></html>\n"
)


def injected_error(status: int, retry_after_s: float | None) -> Response:
    """The answer of an injected failure (``error_rate`` or ``fail_next``)."""
    if status == 500:
        body: dict[str, str] = FRAMEWORK_500
    else:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        body = {"error": title, "message": "Injected fault (fake ML service)"}
    headers = b""
    if retry_after_s is not None:
        headers = b"Retry-After: %d\r\n" % math.ceil(retry_after_s)
    return json_response(status, body, headers)
