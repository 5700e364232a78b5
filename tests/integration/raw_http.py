"""A misbehaving raw-socket HTTP server on 127.0.0.1, for the client's fault tests.

``RawServer(behaviour)`` accepts connections in a thread, reads each request (head and
``Content-Length`` body) and hands a :class:`RawConnection` to ``behaviour``, which writes
whatever bytes it likes, pausing with :meth:`RawConnection.pause`. Everything is bounded:
the server stops by itself after ``lifetime_s`` and :meth:`RawServer.stop` ends every
pause at once, so no test can hang on it and no thread outlives the test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType


class RawConnection:
    """One accepted connection and the request read from it."""

    def __init__(self, sock: socket.socket, stop: threading.Event, end: float) -> None:
        self._sock = sock
        self._stop = stop
        self._end = end
        self.method = ""
        self.target = ""
        self.headers: dict[str, str] = {}
        self.body = b""

    def read_request(self) -> bool:
        """Read one request; False when the peer closed or sent nothing in time."""
        data = b""
        self._sock.settimeout(0.1)
        while b"\r\n\r\n" not in data:
            if not self.alive():
                return False
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk:
                return False
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, _ = lines[0].split(" ", 2)
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        length = int(self.headers.get("content-length", "0"))
        while len(rest) < length and self.alive():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk:
                return False
            rest += chunk
        self.body = rest
        return True

    def alive(self) -> bool:
        """False once the server is stopping or its lifetime is over."""
        return not self._stop.is_set() and time.monotonic() < self._end

    def send(self, data: bytes) -> bool:
        """Write ``data``; False when the peer has gone."""
        try:
            self._sock.sendall(data)
        except OSError:
            return False
        return True

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` (less when stopping); False when the server is stopping."""
        self._stop.wait(min(seconds, max(self._end - time.monotonic(), 0.0)))
        return self.alive()

    def drip(self, data: bytes, interval_s: float) -> None:
        """Send ``data`` one byte every ``interval_s`` until done, stopped or gone."""
        for i in range(len(data)):
            if not self.send(data[i : i + 1]) or not self.pause(interval_s):
                return


Behaviour = Callable[[RawConnection], None]


class RawServer:
    """A loopback server running ``behaviour`` for each request (see the module notes).

    Args:
        behaviour: what to answer; called once per request, in the connection's thread.
        lifetime_s: the longest the server runs, in seconds, whatever the tests do.
    """

    def __init__(self, behaviour: Behaviour, *, lifetime_s: float = 8.0) -> None:
        self._behaviour = behaviour
        self._stop = threading.Event()
        self._end = time.monotonic() + lifetime_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.requests = 0
        self._acceptor = threading.Thread(target=self._accept, name="raw-http", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._end:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            conn = RawConnection(sock, self._stop, self._end)
            # One request per connection: behaviours answer with "Connection: close".
            if conn.read_request():
                with self._lock:
                    self.requests += 1
                self._behaviour(conn)

    def stop(self) -> None:
        """Stop accepting, end every pause, and join every thread."""
        self._stop.set()
        self._acceptor.join(5.0)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5.0)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
