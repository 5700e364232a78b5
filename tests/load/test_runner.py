"""The thread runner's exact accounting and lifecycle, with in-process operations."""

from __future__ import annotations

import itertools
import time

import pytest

from pganalytics_core.errors import CircuitOpenError
from pganalytics_core.load import Progress, format_summary, run_closed, run_model, run_open
from pganalytics_core.load.model import ClosedModel, OpenModel

pytestmark = pytest.mark.load


class Flaky(Exception):
    """A failure raised on purpose."""


def test_closed_accounting_is_exact_under_concurrency() -> None:
    built: list[tuple[int, float]] = []

    def factory(index: int) -> object:
        built.append((index, time.time()))
        calls = itertools.count(1)

        def operation() -> None:
            if next(calls) % 3 == 0:
                raise Flaky("every third call")

        return operation

    result = run_closed(operation_factory=factory, workers=8, iterations=30)  # type: ignore[arg-type]
    assert result.total_requests == 240
    assert result.failed_requests == 80
    assert result.failures == {"Flaky": 80}
    assert result.successful_requests == 160
    assert result.sample_count == 240
    assert sorted(index for index, _ in built) == list(range(8))
    # operations are built before the clock starts
    assert max(when for _, when in built) <= result.started_at_unix_s


def test_shared_operation_is_called_exactly_total_times() -> None:
    counter = itertools.count()
    result = run_closed(lambda: next(counter), workers=6, iterations=500)
    assert result.total_requests == 3000
    assert next(counter) == 3000


def test_custom_classifier_names_failures() -> None:
    def fail() -> None:
        raise Flaky("x")

    result = run_closed(fail, workers=2, iterations=3, classify=lambda exc: "mine")
    assert result.failures == {"mine": 6}


def test_timed_closed_run_and_progress() -> None:
    seen: list[Progress] = []
    result = run_closed(
        lambda: time.sleep(0.001),
        workers=3,
        duration_s=0.3,
        progress=seen.append,
        progress_interval_s=0.05,
    )
    assert result.duration_s >= 0.3
    assert result.total_requests > 0
    assert seen
    assert all(p.model == "closed" and p.planned is None for p in seen)
    assert seen[-1].finished <= result.total_requests


def test_open_run_of_a_no_op_holds_its_schedule() -> None:
    result = run_open(lambda: None, rate_per_s=400, duration_s=0.25, workers=2)
    stats = result.open_model
    assert stats is not None
    assert result.total_requests == stats.issued_requests == 100
    assert stats.dropped_requests == 0
    assert stats.scheduler_lag.count == 100
    assert result.duration_s >= 0.2475  # the last request is due at 99/400 s


def test_a_crashing_classifier_fails_the_run_without_leaking_threads() -> None:
    def broken(exc: BaseException) -> str:
        raise RuntimeError("classifier bug")

    def fail() -> None:
        raise Flaky("x")

    with pytest.raises(RuntimeError, match="a load worker failed"):
        run_closed(fail, workers=3, iterations=5, classify=broken)


def test_an_interrupt_from_progress_stops_and_joins_every_worker() -> None:
    def interrupt(progress: Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_closed(
            lambda: time.sleep(0.001),
            workers=4,
            duration_s=30.0,
            progress=interrupt,
            progress_interval_s=0.05,
        )


def test_operation_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="exactly one of operation and operation_factory"):
        run_model(ClosedModel(workers=1, iterations=1))
    with pytest.raises(TypeError, match="exactly one of operation and operation_factory"):
        run_model(
            ClosedModel(workers=1, iterations=1),
            lambda: None,
            operation_factory=lambda i: lambda: None,
        )
    with pytest.raises(TypeError, match="returned a non-callable"):
        run_model(ClosedModel(workers=1, iterations=1), operation_factory=lambda i: 3)  # type: ignore[arg-type,return-value]


def _rejecting_every_other_call() -> object:
    calls = itertools.count(1)

    def operation() -> None:
        call = next(calls)
        if call % 2 == 0:
            raise CircuitOpenError("client", 30.0)
        if call % 3 == 0:
            raise Flaky("a real failure")

    return operation


@pytest.mark.parametrize(
    "model",
    [ClosedModel(workers=1, iterations=12), OpenModel(rate_per_s=400, duration_s=0.03, workers=1)],
    ids=["closed", "open"],
)
def test_rejections_by_the_callers_breaker_are_no_requests(
    model: ClosedModel | OpenModel,
) -> None:
    result = run_model(model, _rejecting_every_other_call())  # type: ignore[arg-type]
    # calls 1..12: 6 rejected (even), 2 failed (3 and 9), 4 succeeded
    assert result.rejections == 6
    assert result.total_requests == 6
    assert result.sample_count == 6
    assert result.failures == {"Flaky": 2}
    assert result.error_rate == 2 / 6
    assert "6 by the client's own circuit breaker" in format_summary(result)
    if result.open_model is not None:
        assert result.open_model.service_time.count == 6
        assert result.open_model.issued_requests == 12
