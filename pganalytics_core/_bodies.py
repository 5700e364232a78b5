"""Response bodies: bounded reading, bounded inflation, strict JSON. No I/O here.

The clients' loops (:mod:`pganalytics_core._async_client`) read the chunks; what a body
may be is decided here: at most ``limit`` bytes raw and inflated (a compression bomb stops
one byte past the limit whatever its ratio), only gzip and deflate inflated, the exchange
deadline checked between chunks, and JSON as RFC 8259 says (no NaN, no infinities, no
number beyond a float's range), its strings scrubbed of the client's secrets.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Final

import httpx

from pganalytics_core import _deadline
from pganalytics_core._secrets import Scrubber, scrub_json
from pganalytics_core.errors import (
    MalformedResponseError,
    ResponseTooLargeError,
    ServiceTimeoutError,
)

__all__ = [
    "Inflater",
    "body_inflater",
    "check_declared_length",
    "check_time_left",
    "decode_json",
    "excerpt_inflater",
    "held_body",
    "inflated_body",
    "undecodable",
]

#: The most a single ``decompress`` call of a compressed body may produce, in bytes.
_INFLATE_STEP_BYTES: Final = 1 << 16

#: zlib ``wbits`` of the content encodings the client inflates (with a bounded output).
_WBITS_BY_ENCODING: Final = {
    "gzip": zlib.MAX_WBITS | 16,
    "x-gzip": zlib.MAX_WBITS | 16,
    "deflate": zlib.MAX_WBITS,
}


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan: a literal like 1e999 overflowed
        raise ValueError("a number beyond the range of a float")
    return value


# JSON (RFC 8259) has no NaN or infinities; Python's json module takes them by default.
_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def decode_json(body: bytes, operation: str, scrubber: Scrubber) -> object:
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
            f"{operation}: the body is not JSON (RFC 8259): {scrubber.excerpt(body)!r}",
            operation=operation,
        )
    if scrubber.may_hold_secret(text):
        try:
            data = scrub_json(data, scrubber.scrub)
        except RecursionError:
            text = None
        if text is None:
            raise MalformedResponseError(
                f"{operation}: the body is nested too deeply", operation=operation
            )
    return data


def check_declared_length(headers: httpx.Headers, limit: int, operation: str) -> None:
    """Refuse a body whose ``Content-Length`` is beyond ``limit``, before reading it."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLargeError(limit, operation=operation)


def check_time_left(operation: str) -> None:
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


def _content_encoding(headers: httpx.Headers) -> str | None:
    """Return the body's content encoding, lowercased, or None for identity."""
    encoding = headers.get("content-encoding")
    if encoding is None:
        return None
    name = encoding.strip().lower()
    return None if not name or name == "identity" else name


class Inflater:
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


def body_inflater(
    headers: httpx.Headers, limit: int, operation: str, describe: Callable[[str, int], str]
) -> Inflater | None:
    """Return an inflater for a compressed success body (None for identity), or refuse.

    Raises:
        MalformedResponseError: an encoding other than gzip and deflate.
    """
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
    return Inflater(wbits, limit)


def inflated_body(inflater: Inflater, operation: str) -> bytes:
    """The whole inflated body, or refuse one that stops before its end of stream."""
    if not inflater.complete:
        raise MalformedResponseError(
            f"{operation}: the compressed body ends before its end of stream",
            operation=operation,
        )
    return inflater.output()


def undecodable(operation: str) -> MalformedResponseError:
    """The error for a body that does not decode as its content encoding."""
    return MalformedResponseError(
        f"{operation}: the body does not decode as its content encoding", operation=operation
    )


def held_body(response: httpx.Response, limit: int, operation: str) -> bytes:
    """The body of a response built in memory (httpx.MockTransport, respx), bounded."""
    # httpx has read and decoded it already.
    body = response.content
    if len(body) > limit:
        raise ResponseTooLargeError(limit, operation=operation)
    return body


def excerpt_inflater(
    headers: httpx.Headers, limit: int, describe: Callable[[str, int], str]
) -> Inflater | bytes | None:
    """Return an inflater for a compressed error body, None for identity, or a stand-in."""
    encoding = _content_encoding(headers)
    if encoding is None:
        return None
    wbits = _WBITS_BY_ENCODING.get(encoding)
    if wbits is None:
        return f"[a {describe(encoding, 40)}-encoded body]".encode()
    return Inflater(wbits, limit)
