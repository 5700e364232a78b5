"""The exchange deadline's policy (pganalytics_core._deadline), without a network."""

from __future__ import annotations

import asyncio

import httpcore
import pytest

from pganalytics_core import _deadline
from pganalytics_core.testing import FakeClock


def test_outside_an_exchange_timeouts_pass_through() -> None:
    assert _deadline.time_left() is None
    assert _deadline.clamp(3.0, httpcore.ReadTimeout) == 3.0
    assert _deadline.clamp(None, httpcore.ReadTimeout) is None


def test_inside_an_exchange_the_smaller_bound_wins() -> None:
    with _deadline.exchange_deadline(100.0):
        assert _deadline.clamp(3.0, httpcore.ReadTimeout) == 3.0
        unbounded = _deadline.clamp(None, httpcore.ReadTimeout)
        assert unbounded is not None
        assert 99.0 < unbounded <= 100.0
    with _deadline.exchange_deadline(1.0):
        short = _deadline.clamp(30.0, httpcore.WriteTimeout)
        assert short is not None
        assert 0.0 < short <= 1.0
    assert _deadline.time_left() is None  # reset on exit


@pytest.mark.parametrize(
    "error", [httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.ConnectTimeout]
)
def test_a_passed_end_raises_the_operation_timeout_at_once(error: type[Exception]) -> None:
    with _deadline.exchange_deadline(-0.001), pytest.raises(error, match="deadline passed"):
        _deadline.clamp(5.0, error)


def test_exchanges_nest_and_restore() -> None:
    token = _deadline.start_exchange(50.0)
    try:
        with _deadline.exchange_deadline(-1.0):
            left = _deadline.time_left()
            assert left is not None
            assert left < 0
        outer = _deadline.time_left()
        assert outer is not None
        assert outer > 40.0
    finally:
        _deadline.end_exchange(token)
    assert _deadline.time_left() is None


async def test_each_task_has_its_own_deadline() -> None:
    seen: dict[str, float | None] = {}

    async def task(name: str, budget_s: float) -> None:
        with _deadline.exchange_deadline(budget_s):
            await asyncio.sleep(0)
            seen[name] = _deadline.time_left()

    await asyncio.gather(task("short", 1.0), task("long", 100.0))
    assert seen["short"] is not None
    assert seen["long"] is not None
    assert seen["short"] <= 1.0 < 99.0 < seen["long"]
    assert _deadline.time_left() is None


def test_the_end_is_measured_with_the_clock_the_exchange_was_given() -> None:
    clock = FakeClock()
    with _deadline.exchange_deadline(5.0, clock):
        assert _deadline.time_left() == 5.0
        clock.advance(3.0)
        assert _deadline.time_left() == 2.0
        assert _deadline.clamp(30.0, httpcore.ReadTimeout) == 2.0
        clock.advance(2.0)
        with pytest.raises(httpcore.ReadTimeout, match="deadline passed"):
            _deadline.clamp(30.0, httpcore.ReadTimeout)
    assert _deadline.time_left() is None
