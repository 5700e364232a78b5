"""One client connection of the fake ML service: h11 reads requests, we write answers.

:func:`serve_connection` runs in the connection's own thread until the client closes,
asks to close, sends something h11 rejects, or a fault ends the connection.

Requests are framed by h11 (request line, header fields, ``Content-Length`` and chunked
bodies with extensions and trailers, ``Expect: 100-continue``, pipelining, HTTP/1.0), one
``h11.Connection`` per request: the bytes it has not consumed (``trailing_data``, the
next pipelined request) seed the next one. Because each request starts from a fresh
parser, h11's verdict on a head depends on its bytes alone, and :class:`HeadCache`
replays it for byte-identical heads (see there): h11 costs ~25 µs per request in pure
Python, ~7 times the old hand-written parser, and the replay is what keeps the
service's throughput at least what it was (``python -m benchtools fake-throughput``,
docs/performance.md).

Answers are not sent through h11: an answer is a status line, five fixed header fields
and a ``Content-Length`` body, written with one ``sendall``, and some faults must break
that framing on purpose (half a body, then a close or a reset). Sending through h11
(``Response``, ``Data``, ``EndOfMessage``, ``start_next_cycle``) cost ~14 µs more per
request than this writer.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Final, NamedTuple
from urllib.parse import unquote, urlsplit

import h11

from pganalytics_core.testing.fake_service.faults import Plan, spoil
from pganalytics_core.testing.fake_service.responses import (
    INTERNAL_ERROR,
    Response,
    framework_error,
    injected_error,
)
from pganalytics_core.testing.fake_service.routes import Request, Route, route

#: The largest request body read, in bytes (413 beyond).
MAX_BODY: Final = 16 * 1024 * 1024
#: The largest request line plus header fields, in bytes (414 or 431 beyond).
MAX_HEAD: Final = 64 * 1024
#: The most header fields a request may have (431 beyond).
MAX_FIELDS: Final = 100

_RECV: Final = 65536
_LINGER_RESET: Final = struct.pack("ii", 1, 0)
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_VERSIONS: Final = (b"1.1", b"1.0")
_MESSAGES: Final = {
    400: "Malformed request",
    413: "Request body too large",
    414: "Request line too long",
    431: "Request header fields too large",
    501: "Unsupported transfer encoding",
    505: "HTTP version not supported",
}
_STATUS_LINES: dict[int, bytes] = {}
_date_cache: tuple[int, bytes] = (0, b"")

#: ``admit(endpoint)``: count the request, return its faults (``None``: none).
Admit = Callable[[str], Plan | None]
#: ``respond(request, route)``: the handlers' answer.
Respond = Callable[[Request, Route], Response]


class _Reject(Exception):
    """A request h11 or our limits refuse: answer ``status`` and close."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Head(NamedTuple):
    """What h11 made of a request head: everything but the body, and how to frame it."""

    request: Request  # with an empty body
    length: int  # the Content-Length (0 without one)
    keep_alive: bool


class HeadCache:
    """h11's verdicts on request heads, replayed for byte-identical heads.

    Each request gets a fresh ``h11.Connection``, so h11's reading of a head depends on
    its bytes alone. A head it accepted, framed by ``Content-Length`` (or without a
    body), without ``Expect`` and ending at its first ``CRLF CRLF``, is remembered;
    the same bytes again skip h11 and take the body by the remembered length. Anything
    else, including every head h11 rejected, goes through h11. Clients under load send
    the same few heads over and over (same method, path, fields and body length).
    A benign race between connections at worst parses a head twice.
    """

    MAX_ENTRIES: Final = 512
    MAX_HEAD_BYTES: Final = 4096

    def __init__(self) -> None:
        self._heads: dict[bytes, Head] = {}

    def get(self, head: bytes) -> Head | None:
        """The remembered verdict on ``head`` (bytes up to and including CRLF CRLF)."""
        return self._heads.get(head)

    def remember(self, head: bytes, verdict: Head) -> None:
        """Remember h11's verdict on ``head`` if it can be replayed (see the class)."""
        headers = verdict.request.headers
        if (
            len(head) > self.MAX_HEAD_BYTES
            or head.find(b"\r\n\r\n") != len(head) - 4
            or b"transfer-encoding" in headers
            or b"expect" in headers
        ):
            return
        if len(self._heads) >= self.MAX_ENTRIES:
            self._heads.clear()
        self._heads[head] = verdict


def serve_connection(
    sock: socket.socket,
    *,
    admit: Admit,
    respond: Respond,
    stopping: threading.Event,
    heads: HeadCache,
) -> None:
    """Answer the requests of one connection, in order, until it ends.

    Args:
        sock: the accepted socket (closed by the caller).
        admit: counts a request and decides its faults.
        respond: the handlers' answer to a request (must not raise).
        stopping: set when the service stops; ends injected delays at once.
        heads: the service's memo of h11's verdicts on request heads.

    Raises:
        OSError: the socket failed (the client went away); the caller ignores it.
    """
    buffer, closed = b"", False
    while True:
        if not buffer:
            if closed:
                return
            buffer = sock.recv(_RECV)
            closed = not buffer
            if closed:
                return
        end = buffer.find(b"\r\n\r\n")
        known = heads.get(buffer[: end + 4]) if end >= 0 else None
        if known is not None:
            need = end + 4 + known.length
            if len(buffer) < need:
                buffer, closed = _read_at_least(sock, buffer, need)
                if len(buffer) < need:
                    return  # the client went away mid-body: nobody to answer
            request = known.request._replace(body=buffer[end + 4 : need])
            keep_alive = known.keep_alive
            buffer = buffer[need:]
        else:
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            conn.receive_data(buffer)
            if closed:
                conn.receive_data(b"")  # h11's end of input
            try:
                parsed = _read_request(sock, conn, buffer, eof=closed)
            except _Reject as reject:
                message = _MESSAGES.get(reject.status, HTTPStatus(reject.status).phrase)
                _write(sock, framework_error(reject.status, message), keep_alive=False)
                return
            if parsed is None:
                return
            request, head = parsed
            keep_alive = conn.their_state is not h11.MUST_CLOSE
            if head is not None:
                length = len(request.body)
                heads.remember(head, Head(request._replace(body=b""), length, keep_alive))
            buffer, closed = conn.trailing_data
        if not _answer(sock, request, keep_alive, admit, respond, stopping):
            return


def _read_at_least(sock: socket.socket, buffer: bytes, size: int) -> tuple[bytes, bool]:
    """Receive until ``buffer`` holds ``size`` bytes or the client closes."""
    parts = [buffer]
    have = len(buffer)
    while have < size:
        data = sock.recv(_RECV)
        if not data:
            return b"".join(parts), True
        parts.append(data)
        have += len(data)
    return b"".join(parts), False


def _read_request(
    sock: socket.socket, conn: h11.Connection, received: bytes, *, eof: bool
) -> tuple[Request, bytes | None] | None:
    """Read one whole request with h11: (request, its head when it was Content-Length
    framed or had no body), or ``None`` when the client closed (at or within a request).
    """
    start: h11.Request | None = None
    head: bytes | None = None
    seen = [received]  # the bytes fed to h11 until it returned the head
    headers: dict[bytes, bytes] = {}
    parts: list[bytes] = []
    size = 0
    continued = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            if eof:
                return None  # the client went away mid-request: nobody to answer
            raise _Reject(_status_of(exc, conn)) from None
        if event is h11.NEED_DATA:
            if conn.client_is_waiting_for_100_continue and not continued:
                sock.sendall(_CONTINUE)
                continued = True
            data = sock.recv(_RECV)
            eof = not data
            conn.receive_data(data)
            if start is None:
                seen.append(data)
            continue
        kind = type(event)
        if kind is h11.Data:
            size += len(event.data)  # type: ignore[union-attr]
            if size > MAX_BODY:
                raise _Reject(413)
            parts.append(event.data)  # type: ignore[union-attr]
        elif kind is h11.Request:
            start = event  # type: ignore[assignment]
            headers = _check_head(start)  # type: ignore[arg-type]
            fed = b"".join(seen)
            head = fed[: len(fed) - len(conn.trailing_data[0])]
        elif kind is h11.EndOfMessage:
            assert start is not None
            return _request(start, headers, b"".join(parts)), head
        else:  # ConnectionClosed (a client closing between requests)
            return None


def _status_of(exc: h11.RemoteProtocolError, conn: h11.Connection) -> int:
    status = exc.error_status_hint
    if status == 431:  # h11's head limit: a request line that alone is too long is a 414
        pending = conn.trailing_data[0]
        if b"\n" not in pending[:MAX_HEAD]:
            return 414
    return status if status in _MESSAGES else 400


def _check_head(start: h11.Request) -> dict[bytes, bytes]:
    """Apply our limits to a request's head; return its header fields."""
    if len(start.target) > MAX_HEAD:
        raise _Reject(414)
    if start.http_version not in _VERSIONS:
        raise _Reject(505)
    if len(start.headers) > MAX_FIELDS:
        raise _Reject(431)
    headers = dict(start.headers)
    length = headers.get(b"content-length")
    if length is not None and int(length) > MAX_BODY:
        raise _Reject(413)  # before the client sends the body (or waits for a 100)
    return headers


def _request(start: h11.Request, headers: dict[bytes, bytes], body: bytes) -> Request:
    target = start.target.decode("latin-1")
    if not target.startswith("/"):
        target = urlsplit(target).path or "/"  # absolute-form target
    path = target.partition("?")[0]
    if "%" in path:
        path = unquote(path, errors="replace")
    return Request(start.method.decode("ascii"), path, headers, body)


def _answer(
    sock: socket.socket,
    request: Request,
    keep_alive: bool,
    admit: Admit,
    respond: Respond,
    stopping: threading.Event,
) -> bool:
    """Answer one request, faults included; return whether the connection stays open."""
    where = route(request.path)
    head = request.method == "HEAD"
    plan = admit(where.endpoint)
    if plan is None:
        _write(sock, _respond_safely(respond, request, where), keep_alive, head=head)
        return keep_alive
    if plan.delay_s > 0.0 and stopping.wait(plan.delay_s):
        return False  # stopping: close without an answer
    if plan.error_status is not None:
        response = injected_error(plan.error_status, plan.retry_after_s)
        mode = None
    else:
        response = _respond_safely(respond, request, where)
        mode = plan.mode
    if plan.delay_s > 0.0:
        delay_header = b"X-Injected-Delay-Ms: %.3f\r\n" % (plan.delay_s * 1000.0)
        response = response._replace(headers=response.headers + delay_header)
    if mode is None:
        _write(sock, response, keep_alive, head=head)
        return keep_alive
    if mode == "drip":
        _drip(sock, response, plan.drip_interval_s, stopping, head=head)
        return False
    if mode not in ("reset", "truncated"):
        _write(sock, spoil(response, mode, plan.oversized_bytes), keep_alive, head=head)
        return keep_alive
    # Promise the whole body, send half of it, then close (truncated) or reset.
    _write(sock, response, keep_alive=False, body_limit=len(response.body) // 2)
    if mode == "reset":
        # Linger 0 turns close() into an RST; close now, before anyone sends a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        sock.close()
    return False


def _drip(
    sock: socket.socket,
    response: Response,
    interval_s: float,
    stopping: threading.Event,
    *,
    head: bool,
) -> None:
    """Send the head, then the body one byte every ``interval_s``; the caller closes."""
    _write(sock, response, keep_alive=False, head=head, body_limit=0)
    if head:
        return
    for i in range(len(response.body)):
        if stopping.wait(interval_s):
            return
        sock.sendall(response.body[i : i + 1])  # OSError: the client gave up; caller ignores


def _respond_safely(respond: Respond, request: Request, where: Route) -> Response:
    """The handlers' answer; a bug in them is answered as Flask would: a JSON 500."""
    try:
        return respond(request, where)
    except Exception:
        traceback.print_exc()
        return INTERNAL_ERROR


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


def _date_header() -> bytes:
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] != now:
        cached = (now, b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n")
        _date_cache = cached
    return cached[1]


def _write(
    sock: socket.socket,
    response: Response,
    keep_alive: bool,
    *,
    head: bool = False,
    body_limit: int | None = None,
) -> None:
    """Send one answer: the head, then the body (none for HEAD, or its first bytes)."""
    status, body, content_type, extra = response
    payload = b"" if head else body if body_limit is None else body[:body_limit]
    sock.sendall(
        b"".join(
            (
                _status_line(status),
                _date_header(),
                b"Server: pganalytics-fake-ml\r\nContent-Type: ",
                content_type,
                b"\r\nContent-Length: %d\r\n" % len(body),
                extra,
                b"" if keep_alive else b"Connection: close\r\n",
                b"\r\n",
                payload,
            )
        )
    )
