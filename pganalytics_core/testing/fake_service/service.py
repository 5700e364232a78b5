"""The fake ML service's lifecycle and public face: :class:`FakeMLService`.

The listening socket is the standard library's ``socketserver.ThreadingTCPServer``; each
accepted connection gets a daemon thread running :func:`.connection.serve_connection`,
tracked so that :meth:`FakeMLService.stop` can close it. Request counters live here,
behind one lock held for bookkeeping only; faults live in a :class:`.faults.FaultInjector`
and the endpoints' state in :class:`.handlers.Handlers`.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Unpack

from pganalytics_core._validation import check_seconds
from pganalytics_core.testing.fake_service.connection import HeadCache, serve_connection
from pganalytics_core.testing.fake_service.faults import (
    NO_FAULTS,
    FaultChanges,
    FaultInjector,
    Faults,
    Plan,
    check_endpoints,
    check_status,
)
from pganalytics_core.testing.fake_service.handlers import Handlers
from pganalytics_core.testing.fake_service.routes import ENDPOINT_ORDER

__all__ = ["FakeMLService"]


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
        faults: Faults = NO_FAULTS,
        clock: Callable[[], float] = time.monotonic,
        api_key: str | None = None,
    ) -> None:
        check_seconds("training_step_s", training_step_s)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        self._host = host
        self._requested_port = port
        self._injector = FaultInjector(faults, seed)
        self._handlers = Handlers(
            clock=clock,
            training_step_s=float(training_step_s),
            seed=seed,
            api_key=api_key,
            training_outcome=lambda: self._injector.faults.training_outcome,
            predictions_served=self._predictions_served,
        )

        self._lock = threading.Lock()
        # Everything below is guarded by _lock.
        self._counts = dict.fromkeys(ENDPOINT_ORDER, 0)
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._state = "new"  # new -> starting -> running -> stopped

        self._stopping = threading.Event()
        self._heads = HeadCache()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._port = 0

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
        return self._injector.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault configuration; applies to requests that arrive from now on.

        Pending :meth:`fail_next` failures are kept.

        Raises:
            TypeError: ``faults`` is not a :class:`Faults`.
        """
        self._injector.set(faults)

    def update_faults(self, **changes: Unpack[FaultChanges]) -> None:
        """Change some fields of the fault configuration (see :class:`Faults`).

        Raises:
            ValueError: a changed field is out of range; the configuration is unchanged.
            TypeError: an unknown field name.
        """
        self._injector.update(**changes)

    def clear_faults(self) -> None:
        """Remove every fault: the configuration and all pending :meth:`fail_next` ones."""
        self._injector.clear()

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
        check_status("status", status)
        if retry_after_s is not None:
            check_seconds("retry_after_s", retry_after_s)
        names = check_endpoints("endpoints", endpoints)
        if n == 0:
            return
        self._injector.fail_next(n, status=status, retry_after_s=retry_after_s, endpoints=names)

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

    # -- internals used by the connections ---------------------------------------------

    def _predictions_served(self) -> int:
        with self._lock:
            return self._counts["predict"]

    def _admit(self, endpoint: str) -> Plan | None:
        """Count a request when it arrives; return its faults (``None``: none)."""
        with self._lock:
            self._counts[endpoint] += 1
        return self._injector.plan(endpoint)

    def _track(self, thread: threading.Thread, sock: socket.socket) -> bool:
        with self._lock:
            if self._state != "running":
                return False
            self._connections[thread] = sock
            return True

    def _untrack(self, thread: threading.Thread) -> None:
        with self._lock:
            self._connections.pop(thread, None)


class _Server(socketserver.ThreadingTCPServer):
    """Accepts connections; serves each in a tracked daemon thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], service: FakeMLService) -> None:
        self.service = service
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, socketserver.BaseRequestHandler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request,),
            name="fake-ml-connection",
            daemon=True,
        )
        if not self.service._track(thread, request):
            self.shutdown_request(request)
            return
        thread.start()

    def _serve_connection(self, sock: socket.socket) -> None:
        service = self.service
        try:
            # Without TCP_NODELAY the small answers of a keep-alive connection meet
            # delayed ACKs and stall ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            serve_connection(
                sock,
                admit=service._admit,
                respond=service._handlers.respond,
                stopping=service._stopping,
                heads=service._heads,
            )
        except OSError:
            pass  # the client went away: business as usual for a fake that resets
        finally:
            self.shutdown_request(sock)
            service._untrack(threading.current_thread())
