"""One deadline bounds a whole call, whatever a server dripping bytes does (issue 12.1).

A raw-socket server trickles the headers, the body, a chunked body or a compressed body,
one byte every 0.1 s, for far longer than the client's budget. Each call must end with
:class:`ServiceTimeoutError` about when its budget runs out: the tests compare the elapsed
time with the configured budget and with the server's drip time (ratios, not speeds).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from raw_http import RawConnection, RawServer

from pganalytics_core import AsyncMLClient, MLClient, RetryPolicy, ServiceTimeoutError

#: The client's timeout in these tests, in seconds.
TIMEOUT_S = 0.5
#: How long each server drips, in seconds: many times any budget below.
DRIP_S = 8.0
#: One byte every ...
INTERVAL_S = 0.1
#: Slack for scheduling on a loaded 2-core machine: a call must end within its budget plus
#: this, which is still a small fraction of DRIP_S.
MARGIN_S = 1.0

_BODY = json.dumps(
    {
        "query_hash": 1,
        "predicted_execution_time_ms": 10.0,
        "confidence_score": 0.9,
        "confidence_interval": {"lower_bound_ms": 1.0, "upper_bound_ms": 20.0, "std_dev_ms": 2.0},
        "scenario": "current",
        "model_version": "v1.0",
        "prediction_timestamp": "2026-01-01T00:00:00",
        "source": "model",
        "padding": "x" * 5000,
    }
).encode()


def _slow_body(conn: RawConnection) -> None:
    conn.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\nConnection: close\r\n\r\n"
    )
    conn.drip(b"{" + b" " * 999, INTERVAL_S)


def _slow_headers(conn: RawConnection) -> None:
    conn.drip(b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * 1000 + b"\r\n\r\n", INTERVAL_S)


def _chunked_forever(conn: RawConnection) -> None:
    conn.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    while conn.send(b"1\r\n \r\n") and conn.pause(INTERVAL_S):
        pass


def _compressed_drip(conn: RawConnection) -> None:
    body = gzip.compress(_BODY)
    conn.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    conn.drip(body, INTERVAL_S)


BEHAVIOURS: dict[str, Callable[[RawConnection], None]] = {
    "slow-body": _slow_body,
    "slow-headers": _slow_headers,
    "chunked-forever": _chunked_forever,
    "compressed-drip": _compressed_drip,
}


@pytest.fixture(params=sorted(BEHAVIOURS))
def dripping(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    """A server dripping its answer in one of the ways above."""
    with RawServer(BEHAVIOURS[request.param], lifetime_s=DRIP_S) as server:
        yield server


def test_compressed_body_is_longer_than_the_budget_allows() -> None:
    # The compressed case drips for longer than the budget, else it would prove nothing.
    assert len(gzip.compress(_BODY)) * INTERVAL_S > 10 * TIMEOUT_S


def test_sync_call_ends_at_its_timeout(dripping: RawServer) -> None:
    with MLClient(dripping.url, timeout_s=TIMEOUT_S, retry=RetryPolicy.none()) as client:
        started = time.monotonic()
        with pytest.raises(ServiceTimeoutError):
            client.predict(1)
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert elapsed < DRIP_S / 4
    assert dripping.requests == 1


async def test_async_call_ends_at_its_timeout(dripping: RawServer) -> None:
    async with AsyncMLClient(dripping.url, timeout_s=TIMEOUT_S, retry=RetryPolicy.none()) as client:
        started = time.monotonic()
        with pytest.raises(ServiceTimeoutError):
            await client.predict(1)
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert elapsed < DRIP_S / 4
    assert dripping.requests == 1


# With retries, deadline_s bounds the whole call: attempts after the first get what is left.
_RETRYING = RetryPolicy(max_retries=10, backoff_base_s=0.01, backoff_max_s=0.01, deadline_s=1.2)


def test_sync_deadline_bounds_the_retries(dripping: RawServer) -> None:
    with MLClient(dripping.url, timeout_s=TIMEOUT_S, retry=_RETRYING) as client:
        started = time.monotonic()
        with pytest.raises(ServiceTimeoutError) as info:
            client.predict(1)
        elapsed = time.monotonic() - started
    assert info.value.attempts >= 2  # retried, but not past the deadline
    assert elapsed < 1.2 + MARGIN_S
    assert elapsed < DRIP_S / 3


async def test_async_deadline_bounds_the_retries(dripping: RawServer) -> None:
    async with AsyncMLClient(dripping.url, timeout_s=TIMEOUT_S, retry=_RETRYING) as client:
        started = time.monotonic()
        with pytest.raises(ServiceTimeoutError) as info:
            await client.predict(1)
        elapsed = time.monotonic() - started
    assert info.value.attempts >= 2
    assert elapsed < 1.2 + MARGIN_S
    assert elapsed < DRIP_S / 3


def test_a_timely_answer_still_succeeds_through_the_deadline_transport() -> None:
    # The deadline only cuts what runs late: a prompt server is served as before, and
    # its pooled connection is reused by later calls, each with its own deadline.
    def prompt(conn: RawConnection) -> None:
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(_BODY)}\r\nConnection: close\r\n\r\n".encode()
            + _BODY
        )

    with (
        RawServer(prompt, lifetime_s=DRIP_S) as server,
        MLClient(server.url, timeout_s=TIMEOUT_S, retry=RetryPolicy.none()) as client,
    ):
        assert [client.predict(1).predicted_execution_time_ms for _ in range(3)] == [10.0] * 3
        assert server.requests == 3


def test_waiting_for_a_pooled_connection_counts_against_the_timeout() -> None:
    # One connection, held by a dripping call: a second call waits for it within its own
    # budget, not on top of it.
    errors: list[BaseException] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with (
        RawServer(_slow_body, lifetime_s=DRIP_S) as server,
        MLClient(
            server.url, timeout_s=TIMEOUT_S, retry=RetryPolicy.none(), limits=limits
        ) as client,
    ):

        def hog() -> None:
            try:
                client.predict(1)
            except ServiceTimeoutError as exc:
                errors.append(exc)

        holder = threading.Thread(target=hog)
        holder.start()
        waited = time.monotonic()
        while server.requests == 0:
            if time.monotonic() - waited > 30:
                pytest.fail("the first request never reached the server")
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(ServiceTimeoutError):
            client.predict(2)
        elapsed = time.monotonic() - started
        holder.join()
    assert len(errors) == 1
    assert elapsed < TIMEOUT_S + MARGIN_S
