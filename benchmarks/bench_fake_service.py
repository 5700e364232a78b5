"""Benchmarks of the fake ML service itself (pganalytics_core.testing.FakeMLService).

The client is a raw socket that costs almost nothing, so the time is the service's own:
parsing, routing, the handler and writing the answer. ``FakeServicePipelined`` sends 32
pipelined keep-alive requests (16 ``GET /health``, 16 predictions) and reads the 32
answers; ``FakeServiceRoundTrip`` sends one request and waits for its answer (adds a
thread wake-up per request). Names are history: never rename one.
"""

from __future__ import annotations

import socket

from .common import require

_BODY = b'{"query_hash": 4001}'
_HEALTH = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"
_PREDICT = (
    b"POST /api/predict/query-execution HTTP/1.1\r\nHost: bench\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


def _read_answers(sock: socket.socket, count: int) -> None:
    """Read ``count`` whole Content-Length framed answers; raise on anything else."""
    buffer = b""
    seen = 0
    while seen < count:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("the fake service closed the connection")
        buffer += chunk
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"unexpected answer: {head[:60]!r}")
            length = int(head.partition(b"Content-Length: ")[2].partition(b"\r\n")[0])
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length :]
            seen += 1


class _FakeService:
    """Base: one FakeMLService and one raw keep-alive connection to it."""

    def setup(self) -> None:
        FakeMLService = require("pganalytics_core.testing", "FakeMLService")
        self.service = FakeMLService().start()
        self.sock = socket.create_connection(("127.0.0.1", self.service.port), timeout=10.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(_HEALTH + _PREDICT)  # warm the connection and the caches
        _read_answers(self.sock, 2)

    def teardown(self) -> None:
        self.sock.close()
        self.service.stop()


class FakeServicePipelined(_FakeService):
    """32 pipelined requests on one connection: the service's cost per batch."""

    def setup(self) -> None:
        super().setup()
        self.batch = (_HEALTH + _PREDICT) * 16

    def time_pipelined_32_requests(self) -> None:
        self.sock.sendall(self.batch)
        _read_answers(self.sock, 32)


class FakeServiceRoundTrip(_FakeService):
    """One request, one answer, on a keep-alive connection."""

    def time_health_round_trip(self) -> None:
        self.sock.sendall(_HEALTH)
        _read_answers(self.sock, 1)

    def time_predict_round_trip(self) -> None:
        self.sock.sendall(_PREDICT)
        _read_answers(self.sock, 1)
