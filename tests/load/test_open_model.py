"""The open model: no coordinated omission, dropping, exact accounting, and asyncio twins."""

from __future__ import annotations

import threading
from array import array

import pytest

from pganalytics_core.client import AsyncMLClient, MLClient
from pganalytics_core.load import (
    ClosedModel,
    OpenModel,
    Progress,
    run_closed_async,
    run_model_async,
    run_open,
    run_open_async,
)
from pganalytics_core.load.runner import _dropped_latencies, _Schedule
from pganalytics_core.retry import RetryPolicy
from pganalytics_core.testing import FakeMLService

pytestmark = pytest.mark.load

NO_RETRY = RetryPolicy(max_retries=0)
STALL_S = 0.6


def test_a_stall_shows_in_latency_p99_but_not_in_service_time(fake: FakeMLService) -> None:
    calls = 0
    with MLClient(fake.url, retry=NO_RETRY) as client:

        def operation() -> object:
            nonlocal calls
            calls += 1
            if calls != 40:
                return client.predict(4001)
            # The service stalls on this one request (its delay is decided on arrival).
            fake.update_faults(latency_s=STALL_S, endpoints=frozenset({"predict"}))
            try:
                return client.predict(4001)
            finally:
                fake.clear_faults()

        result = run_open(operation, rate_per_s=200, duration_s=1.0, workers=1)
    stats = result.open_model
    assert stats is not None
    assert result.total_requests == stats.issued_requests == 200
    assert stats.dropped_requests == 0
    assert result.failed_requests == 0
    assert result.p99_ms is not None
    assert stats.service_time.p99_ms is not None
    assert stats.service_time.max_ms is not None
    assert stats.service_time.max_ms >= STALL_S * 1000
    # The requests due during the stall waited in the queue: from their intended start
    # they took almost as long as the stall, so p99 (the 3rd slowest of 200) shows it...
    assert result.p99_ms >= 0.8 * STALL_S * 1000
    # ...while only one request's service time was long, so the service p99 does not.
    assert stats.service_time.p99_ms < STALL_S * 1000 / 4
    assert stats.late_requests >= 30


def test_requests_beyond_max_in_flight_are_dropped_and_counted() -> None:
    gate = threading.Event()
    seen: list[Progress] = []

    def release_after_the_schedule(progress: Progress) -> None:
        seen.append(progress)
        if progress.elapsed_s > 0.5:
            gate.set()

    result = run_open(
        lambda: gate.wait(10.0),
        rate_per_s=200,
        duration_s=0.1,
        workers=1,
        max_in_flight=2,
        progress=release_after_the_schedule,
        progress_interval_s=0.02,
    )
    stats = result.open_model
    assert stats is not None
    # one request runs, one waits in the queue; the other 18 find 2 outstanding
    assert stats.issued_requests == 2
    assert stats.dropped_requests == 18
    assert stats.issued_requests + stats.dropped_requests == 20
    # a dropped request is a failed request, never a vanished one
    assert result.total_requests == 20
    assert result.failures == {"Dropped": 18}
    assert result.error_rate == 0.9
    assert stats.scheduler_lag.count == 20
    assert stats.service_time.count == 2
    assert stats.saturated
    assert any("18 requests dropped" in reason for reason in stats.saturation_reasons)
    # Each dropped request waited for a slot: until the first request ended, when the
    # gate opened (after 0.5 s, long after the 0.1 s schedule), so the stall shows in
    # every percentile instead of vanishing with the requests it delayed.
    assert result.min_ms is not None
    assert stats.service_time.max_ms is not None
    assert result.min_ms >= 0.75 * stats.service_time.max_ms
    assert seen
    assert seen[-1].dropped == 18
    assert seen[-1].model == "open"


def test_too_few_workers_lower_the_achieved_rate_and_saturate(fake: FakeMLService) -> None:
    # One worker, each request three periods long: every request is handed over on
    # time, but they can only start one after the other, ever later.
    fake.update_faults(latency_s=0.015, endpoints=frozenset({"predict"}))
    with MLClient(fake.url, retry=NO_RETRY) as client:
        result = run_open(lambda: client.predict(4001), rate_per_s=200, duration_s=0.25, workers=1)
    stats = result.open_model
    assert stats is not None
    assert result.total_requests == stats.issued_requests == 50
    assert stats.dropped_requests == 0
    # Requests actually started per second, not hand-offs: about a third of the target.
    assert stats.achieved_rate_per_s < 0.5 * stats.target_rate_per_s
    # Only the first request found the worker idle.
    assert stats.queued_requests >= 48
    assert stats.late_requests >= 45
    assert stats.saturated
    reasons = " | ".join(stats.saturation_reasons)
    assert "below 99% of the target 200 req/s" in reasons
    assert "found no idle worker (of 1) when due" in reasons
    assert "started more than 10 ms late" in reasons


def test_open_model_accounting_with_failures(fake: FakeMLService) -> None:
    fake.fail_next(4, status=500)  # fewer than the breaker's 5 consecutive failures
    with MLClient(fake.url, retry=NO_RETRY) as client:
        result = run_open(lambda: client.predict(4001), rate_per_s=150, duration_s=0.4, workers=4)
    stats = result.open_model
    assert stats is not None
    assert result.total_requests == stats.issued_requests == 60
    assert result.failures == {"ServerError(500)": 4}
    assert result.successful_requests + result.failed_requests == result.total_requests
    assert stats.achieved_rate_per_s <= 150.0 + 1e-9
    assert stats.scheduler_lag.count == 60


async def test_async_closed_model(fake: FakeMLService) -> None:
    async with AsyncMLClient(fake.url, retry=NO_RETRY) as client:
        result = await run_model_async(
            ClosedModel(workers=5, iterations=8), lambda: client.predict(4001)
        )
    assert result.total_requests == 40
    assert result.failed_requests == 0
    assert fake.request_counts()["predict"] == 40


async def test_async_open_model(fake: FakeMLService) -> None:
    fake.fail_next(3, status=503)
    async with AsyncMLClient(fake.url, retry=NO_RETRY) as client:
        result = await run_model_async(
            OpenModel(rate_per_s=100, duration_s=0.3, workers=1), lambda: client.predict(4001)
        )
    stats = result.open_model
    assert stats is not None
    assert result.total_requests == stats.issued_requests == 30
    assert result.failures == {"ServerError(503)": 3}
    assert stats.service_time.count == 30


async def test_the_deprecated_async_shorthands_warn_and_still_run(fake: FakeMLService) -> None:
    async with AsyncMLClient(fake.url, retry=NO_RETRY) as client:
        with pytest.warns(DeprecationWarning, match=r"use await run_model_async\(ClosedModel"):
            closed = await run_closed_async(lambda: client.predict(4001), workers=2, iterations=3)
        with pytest.warns(DeprecationWarning, match=r"use await run_model_async\(OpenModel"):
            opened = await run_open_async(
                lambda: client.predict(4001), rate_per_s=100, duration_s=0.05, name="o"
            )
    assert (closed.name, closed.total_requests) == ("closed", 6)
    assert (opened.name, opened.total_requests) == ("o", 5)
    assert fake.request_counts()["predict"] == 11


def test_a_dropped_request_counts_until_the_first_request_that_ended_after_it() -> None:
    schedule = _Schedule()
    for intended, dropped_at in [(100, 110), (200, 250), (250, 260), (400, 900)]:
        schedule.handled(intended, dropped_at, sent=False)
    ends = [array("q", [120, 260]), array("q", [240, 800])]
    # First end at or after each drop (in time order), over every worker: 120, 260, 260 (the same
    # instant counts), none (until the drop itself: an interrupted run).
    assert list(_dropped_latencies(schedule, ends)) == [20, 60, 10, 500]
    assert list(_dropped_latencies(schedule, [])) == [10, 50, 10, 500]
    assert schedule.issued == 0
    assert list(schedule.lag_ns) == [10, 50, 10, 500]
