"""One deadline over a whole HTTP exchange: connect, send, headers, body.

httpx's timeouts bound each socket operation, not an exchange: a server that sends one
byte of its headers or body every so often never trips a read timeout, and the slow part
of the headers happens inside httpcore, out of the client's reach. So the client builds its
transports on an httpcore network backend of its own (:class:`DeadlineBackend`, and
:class:`AsyncDeadlineBackend` for asyncio) whose streams cut the timeout of every connect,
read, write and TLS handshake to the time left until the end of the current exchange, and
raise httpcore's timeout at once when none is left. The end is a reading of the client's
clock (the one it was given, ``time.monotonic`` by default), held with that clock in a
context variable that the client sets around each attempt (:func:`start_exchange`), so it
follows the thread or the asyncio task that makes the request, and a pooled connection
reused by a later attempt obeys that attempt's end.

The policy (:func:`clamp`) is written once; the two backends differ only in their I/O.
Outside an exchange (no end set) the streams behave exactly like httpcore's own.

httpx 0.28 has no public way to hand a network backend to ``httpx.HTTPTransport``; the
transports below (:func:`sync_transport`, :func:`async_transport`) subclass httpx's own,
keeping its request handling and exception mapping, and build the httpcore pool that
``handle_request`` uses (httpx's ``_pool`` attribute, the one private name relied on) from
httpcore's public API, with the backend. The deadline tests fail if a new httpx stops
using it. A transport the caller passes in is used as
it is: its per-operation timeouts are still cut to the time left, and the client checks
the deadline between body chunks, but a server dripping headers through it is bounded
only by that transport.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import typing
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar, Token
from typing import Final

import httpcore
import httpx

__all__ = [
    "AsyncDeadlineBackend",
    "DeadlineBackend",
    "async_transport",
    "clamp",
    "end_exchange",
    "exchange_deadline",
    "start_exchange",
    "sync_transport",
    "time_left",
]

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

#: The current exchange's end: a reading of the clock it is measured with, and that clock
#: (None: no end).
_End = tuple[float, Callable[[], float]]
_EXCHANGE_END: Final[ContextVar[_End | None]] = ContextVar("pganalytics_exchange_end", default=None)

_PASSED: Final = "the call's deadline passed"


@contextlib.contextmanager
def exchange_deadline(
    budget_s: float, clock: Callable[[], float] = time.monotonic
) -> Iterator[None]:
    """Bound every network operation in the block to end ``budget_s`` seconds from now
    (measured with ``clock``)."""
    token = start_exchange(budget_s, clock)
    try:
        yield
    finally:
        end_exchange(token)


def start_exchange(
    budget_s: float, clock: Callable[[], float] = time.monotonic
) -> Token[_End | None]:
    """Start an exchange that must end ``budget_s`` seconds from now on ``clock``; pass the
    token to :func:`end_exchange` (in a ``finally``)."""
    return _EXCHANGE_END.set((clock() + budget_s, clock))


def end_exchange(token: Token[_End | None]) -> None:
    """End the exchange :func:`start_exchange` started."""
    _EXCHANGE_END.reset(token)


def time_left() -> float | None:
    """Seconds left until the current exchange's end (may be <= 0), or None outside one."""
    current = _EXCHANGE_END.get()
    if current is None:
        return None
    end, clock = current
    return end - clock()


def clamp(timeout: float | None, timeout_error: type[Exception]) -> float | None:
    """Cut a socket operation's ``timeout`` to the time left in the current exchange.

    Args:
        timeout: the operation's own timeout in seconds (None: none).
        timeout_error: the httpcore timeout to raise when no time is left.

    Returns:
        The timeout to use: the smaller of ``timeout`` and the time left.

    Raises:
        timeout_error: the exchange's end has passed (a zero timeout would make a
            socket non-blocking rather than time out).
    """
    current = _EXCHANGE_END.get()
    if current is None:
        return timeout
    end, clock = current
    left = end - clock()
    if left <= 0:
        raise timeout_error(_PASSED)
    return left if timeout is None or left < timeout else timeout


# --------------------------------------------------------------------------- sync


class _DeadlineStream(httpcore.NetworkStream):
    __slots__ = ("_stream",)

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(
            ssl_context, server_hostname, clamp(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """An httpcore network backend whose streams obey the current exchange's end.

    Args:
        backend: the backend doing the I/O (httpcore's ``SyncBackend`` by default).
    """

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend if backend is not None else httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect, within the time left; the stream's operations obey it too."""
        stream = self._backend.connect_tcp(
            host, port, clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to a Unix socket, within the time left."""
        stream = self._backend.connect_unix_socket(
            path, clamp(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's connect retries)."""
        self._backend.sleep(seconds)


# --------------------------------------------------------------------------- async


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    __slots__ = ("_stream",)

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore's interface
        return await self._stream.read(max_bytes, clamp(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 - httpcore's interface
        await self._stream.write(buffer, clamp(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._stream.start_tls(
            ssl_context, server_hostname, clamp(timeout, httpcore.ConnectTimeout)
        )
        return _AsyncDeadlineStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """The asyncio twin of :class:`DeadlineBackend` (httpcore's ``AnyIOBackend`` by default)."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._backend = backend if backend is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect, within the time left; the stream's operations obey it too."""
        stream = await self._backend.connect_tcp(
            host, port, clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _AsyncDeadlineStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to a Unix socket, within the time left."""
        stream = await self._backend.connect_unix_socket(
            path, clamp(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _AsyncDeadlineStream(stream)

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's connect retries)."""
        await self._backend.sleep(seconds)


# --------------------------------------------------------------------------- transports


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's HTTP transport, its pool built on :class:`DeadlineBackend`."""

    def __init__(self, limits: httpx.Limits) -> None:
        # Not super().__init__: it would build a pool (and an SSL context) to be replaced.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(),
        )


class _AsyncDeadlineTransport(httpx.AsyncHTTPTransport):
    """httpx's asyncio HTTP transport, its pool built on :class:`AsyncDeadlineBackend`."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncDeadlineBackend(),
        )


def sync_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """Return httpx's HTTP transport with a pool on :class:`DeadlineBackend`."""
    return _DeadlineTransport(limits)


def async_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """Return httpx's asyncio HTTP transport with a pool on :class:`AsyncDeadlineBackend`."""
    return _AsyncDeadlineTransport(limits)
