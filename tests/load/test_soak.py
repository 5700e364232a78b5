"""Soak: each client against the fake service at a fixed rate with injected faults (issue 12).

For ``PGA_SOAK_S`` seconds (10 by default; 60 for the figure in docs/performance.md) a
client sends one prediction every 1/RATE_PER_S seconds. A seeded plan gives each request
its fault, set on the service just before it is sent (one request is in flight at a
time, so a fault never reaches the wrong request): 5% each of a 500, a connection reset,
an answer slower than the client's timeout, a malformed body, a body whose numbers are
NaN and a body dripped a byte at a time (each byte well within the timeout, the whole
body far beyond it); the rest are clean.

Every request must be accounted for: successes + each failure type + breaker rejections
== sent, each fault kind must end as exactly its own error type (or as a rejection), and
the service must have seen every request the breaker let through. Resident memory may
grow by less than 5 MB after the warm-up (the first fifth), and the process's threads and
file descriptors must return to their baseline once the client and service are closed.

Run the long one, printing its figures, with::

    PGA_SOAK_S=60 flock /tmp/pga-timing.lock .venv/bin/pytest tests/load/test_soak.py -s -q
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from pganalytics_core import (
    AsyncMLClient,
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    MalformedResponseError,
    MLClient,
    RetryPolicy,
    ServerError,
    ServiceConnectionError,
    ServiceTimeoutError,
)
from pganalytics_core.testing import FakeMLService, Faults

pytestmark = pytest.mark.load

SOAK_S = float(os.environ.get("PGA_SOAK_S", "10"))
RATE_PER_S = 25.0
TIMEOUT_S = 0.2
#: How late a "timeout" answer comes: well past the client's timeout.
LATE_S = 0.6
FAULT_SHARE = 0.05
WARM_UP_SHARE = 0.2
RSS_GROWTH_LIMIT_BYTES = 5 * 1024 * 1024

#: What the service does for each kind of request.
FAULTS: dict[str, Faults] = {
    "ok": Faults(),
    "server_error": Faults(error_rate=1.0, error_status=500),
    "reset": Faults(mode="reset"),
    "timeout": Faults(latency_s=LATE_S),
    "malformed": Faults(mode="malformed_json"),
    "non_finite": Faults(mode="non_finite"),
    "drip": Faults(mode="drip", drip_interval_s=TIMEOUT_S / 4),
}
#: The error each kind must end in.
EXPECTED: dict[str, type[Exception] | None] = {
    "ok": None,
    "server_error": ServerError,
    "reset": ServiceConnectionError,
    "timeout": ServiceTimeoutError,
    "malformed": MalformedResponseError,
    "non_finite": MalformedResponseError,
    "drip": ServiceTimeoutError,
}
_FAULT_KINDS = [kind for kind in FAULTS if kind != "ok"]


def _plan(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    plan = []
    for _ in range(n):
        draw = rng.random()
        index = int(draw / FAULT_SHARE)
        plan.append(_FAULT_KINDS[index] if index < len(_FAULT_KINDS) else "ok")
    return plan


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Tally:
    """What was sent and how each request ended."""

    sent: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # error type name, or "ok"
    rejected: Counter[str] = field(default_factory=Counter)  # by injected kind
    unexpected: list[str] = field(default_factory=list)
    rss_after_warm_up: int = 0
    rss_at_end: int = 0

    def start(self, service: FakeMLService, current: str, kind: str) -> str:
        """Set the service's faults for the next request (of ``kind``) and count it."""
        if kind != current:
            service.set_faults(FAULTS[kind])
        self.sent += 1
        self.injected[kind] += 1
        return kind

    def mark_warm_up(self, i: int, warm_up_end: float) -> None:
        """Take the RSS baseline once request ``i`` ends the warm-up."""
        if i + 1 == round(warm_up_end):
            self.rss_after_warm_up = _rss_bytes()

    def record(self, kind: str, error: BaseException | None) -> None:
        if isinstance(error, CircuitOpenError):
            self.rejected[kind] += 1
            return
        name = "ok" if error is None else type(error).__name__
        self.outcomes[name] += 1
        expected = EXPECTED[kind]
        if (error is None) != (expected is None) or (
            expected is not None and not isinstance(error, expected)
        ):
            self.unexpected.append(f"{kind} -> {name}: {error}")

    def summary(self, name: str, service_requests: int) -> str:
        return (
            f"SOAK {name}: {SOAK_S:.0f} s at {RATE_PER_S:.0f}/s, sent={self.sent} "
            f"service_saw={service_requests} injected={dict(sorted(self.injected.items()))} "
            f"outcomes={dict(sorted(self.outcomes.items()))} "
            f"rejections={sum(self.rejected.values())} "
            f"rss_growth_after_warm_up_kib={(self.rss_at_end - self.rss_after_warm_up) // 1024}"
        )


def _breaker() -> CircuitBreaker:
    # The real breaker, with a short open timeout: five faults in a row (rare at 20%)
    # open it briefly, and the requests it rejects meanwhile must be counted as such.
    return CircuitBreaker(name="soak", config=BreakerConfig(open_timeout_s=0.5))


def _check(tally: Tally, service_requests: int) -> None:
    rejections = sum(tally.rejected.values())
    assert tally.sent == round(SOAK_S * RATE_PER_S)
    assert sum(tally.outcomes.values()) + rejections == tally.sent
    assert tally.unexpected == []
    # Each request ended as its kind's error (checked one by one in ``unexpected``); by
    # error type, the counts add up to what was injected less what the breaker rejected.
    by_error: Counter[str] = Counter()
    for kind, error in EXPECTED.items():
        name = "ok" if error is None else error.__name__
        by_error[name] += tally.injected[kind] - tally.rejected[kind]
    assert +tally.outcomes == +by_error
    assert service_requests == tally.sent - rejections
    # Each fault kind really happened, at about its share (a seeded plan: exact counts).
    for kind in _FAULT_KINDS:
        assert tally.injected[kind] >= tally.sent * FAULT_SHARE / 2, kind
    assert tally.rss_at_end - tally.rss_after_warm_up < RSS_GROWTH_LIMIT_BYTES


def _settled(threads_before: int, fds_before: int) -> tuple[int, int]:
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if threading.active_count() <= threads_before and _fds() <= fds_before:
            break
        time.sleep(0.02)
    return threading.active_count(), _fds()


def test_sync_client_soak() -> None:
    threads_before, fds_before = threading.active_count(), _fds()
    plan = _plan(round(SOAK_S * RATE_PER_S), seed=12)
    tally = Tally()
    with (
        FakeMLService(seed=1) as service,
        MLClient(
            service.url, timeout_s=TIMEOUT_S, retry=RetryPolicy.none(), breaker=_breaker()
        ) as client,
    ):
        current = "ok"
        start = time.monotonic()
        warm_up_end = len(plan) * WARM_UP_SHARE
        for i, kind in enumerate(plan):
            delay = start + i / RATE_PER_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            current = tally.start(service, current, kind)
            try:
                client.predict(1 + i)
            except Exception as exc:
                tally.record(kind, exc)
            else:
                tally.record(kind, None)
            tally.mark_warm_up(i, warm_up_end)
        tally.rss_at_end = _rss_bytes()
        service_requests = service.total_requests()
    print(tally.summary("sync", service_requests))
    _check(tally, service_requests)
    assert _settled(threads_before, fds_before) == (threads_before, fds_before)


async def test_async_client_soak() -> None:
    threads_before, fds_before = threading.active_count(), _fds()
    plan = _plan(round(SOAK_S * RATE_PER_S), seed=13)
    tally = Tally()
    with FakeMLService(seed=2) as service:
        async with AsyncMLClient(
            service.url, timeout_s=TIMEOUT_S, retry=RetryPolicy.none(), breaker=_breaker()
        ) as client:
            current = "ok"
            start = time.monotonic()
            warm_up_end = len(plan) * WARM_UP_SHARE
            for i, kind in enumerate(plan):
                delay = start + i / RATE_PER_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                current = tally.start(service, current, kind)
                try:
                    await client.predict(1 + i)
                except Exception as exc:
                    tally.record(kind, exc)
                else:
                    tally.record(kind, None)
                tally.mark_warm_up(i, warm_up_end)
            tally.rss_at_end = _rss_bytes()
        service_requests = service.total_requests()
    print(tally.summary("async", service_requests))
    _check(tally, service_requests)
    assert _settled(threads_before, fds_before) == (threads_before, fds_before)
