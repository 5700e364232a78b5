"""Unit tests of the circuit breaker: transitions, rules, filtering, listeners, guards.

Every test drives time with FakeClock; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading

import pytest

from pganalytics_core import (
    BreakerConfig,
    BreakerMetrics,
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    PermitUsedError,
    State,
)
from pganalytics_core.testing import FakeClock


class Boom(Exception):
    pass


class Harmless(Exception):
    pass


def make(clock: FakeClock, **config: object) -> CircuitBreaker:
    return CircuitBreaker(BreakerConfig(**config), name="t", clock=clock)  # type: ignore[arg-type]


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        assert breaker.allow_request()
        breaker.record_failure()


def boom() -> None:
    raise Boom("no")


# --------------------------------------------------------------------------- config


def test_default_config_values() -> None:
    c = BreakerConfig()
    assert (c.failure_threshold, c.success_threshold, c.open_timeout_s) == (5, 3, 30.0)
    assert c.half_open_max_calls == 1
    assert c.failure_rate_threshold is None
    assert c.probe_timeout_s is None  # the lease defaults to the open timeout


def test_config_is_frozen_and_keyword_only() -> None:
    c = BreakerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.failure_threshold = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        BreakerConfig(5)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_threshold", 0),
        ("failure_threshold", True),
        ("failure_threshold", 2.5),
        ("success_threshold", 0),
        ("open_timeout_s", -1.0),
        ("open_timeout_s", math.nan),
        ("open_timeout_s", math.inf),
        ("open_timeout_s", "30"),
        ("half_open_max_calls", 0),
        ("failure_rate_threshold", 0.0),
        ("failure_rate_threshold", 1.5),
        ("window_size", 0),
        ("minimum_calls", 0),
        ("open_timeout_multiplier", 0.5),
        ("max_open_timeout_s", -2.0),
        ("probe_timeout_s", 0.0),
        ("probe_timeout_s", -1.0),
        ("probe_timeout_s", math.inf),
        ("probe_timeout_s", math.nan),
        ("probe_timeout_s", True),
        ("probe_timeout_s", "5"),
        ("failure_exceptions", [Exception]),
        ("ignored_exceptions", (int,)),
        ("is_failure", 3),
    ],
)
def test_bad_config_value_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}: ") as info:
        BreakerConfig(**{field: value})  # type: ignore[arg-type]
    assert isinstance(info.value, ConfigError)
    assert info.value.field == field


def test_minimum_calls_above_window_rejected_when_rate_rule_on() -> None:
    with pytest.raises(ConfigError, match="minimum_calls"):
        BreakerConfig(failure_rate_threshold=0.5, window_size=10, minimum_calls=11)


def test_max_open_timeout_below_base_rejected() -> None:
    with pytest.raises(ConfigError, match="max_open_timeout_s"):
        BreakerConfig(open_timeout_s=10, max_open_timeout_s=5)


def test_breaker_rejects_non_config() -> None:
    with pytest.raises(TypeError, match="BreakerConfig"):
        CircuitBreaker({"failure_threshold": 1})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- transitions


def test_starts_closed_and_allows() -> None:
    b = make(FakeClock())
    assert b.state is State.CLOSED
    assert not b.is_open
    assert b.allow_request()
    assert b.name == "t"
    assert str(State.HALF_OPEN) == "half-open"
    assert [s.value for s in State] == ["closed", "open", "half-open"]


def test_consecutive_failures_open_the_circuit() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=3)
    fail(b, 2)
    assert b.state is State.CLOSED
    fail(b)
    assert b.state is State.OPEN
    assert b.is_open
    assert not b.allow_request()
    m = b.metrics()
    assert m.total_failures == 3
    assert m.total_rejections == 1
    assert m.opened_at == clock()
    assert m.retry_after_s == pytest.approx(30.0)


def test_success_resets_the_failure_streak() -> None:
    b = make(FakeClock(), failure_threshold=3)
    fail(b, 2)
    assert b.allow_request()
    b.record_success()
    assert b.metrics().consecutive_failures == 0
    fail(b, 2)
    assert b.state is State.CLOSED


def test_open_until_timeout_then_half_open() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=10)
    fail(b)
    clock.advance(9.999)
    assert b.state is State.OPEN
    assert not b.allow_request()
    clock.advance(0.001)
    assert b.state is State.HALF_OPEN  # reported before any call observes it
    assert not b.is_open
    assert b.allow_request()
    assert b.metrics().state is State.HALF_OPEN
    assert b.metrics().half_open_in_flight == 1


def test_half_open_successes_close() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, success_threshold=2, open_timeout_s=1)
    fail(b)
    clock.advance(1)
    assert b.allow_request()
    b.record_success()
    assert b.state is State.HALF_OPEN
    assert b.metrics().consecutive_successes == 1
    assert b.allow_request()
    b.record_success()
    assert b.state is State.CLOSED
    assert b.metrics().opened_at is None


def test_half_open_failure_reopens() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=5)
    fail(b)
    clock.advance(5)
    assert b.allow_request()
    b.record_failure()
    assert b.state is State.OPEN
    assert b.metrics().retry_after_s == pytest.approx(5.0)


def test_half_open_admits_at_most_max_calls() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1, half_open_max_calls=2)
    fail(b)
    clock.advance(1)
    assert [b.allow_request() for _ in range(4)] == [True, True, False, False]
    b.record_success()
    assert b.allow_request()  # a slot was freed
    assert not b.allow_request()


def test_rejection_in_half_open_has_zero_retry_after() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1)
    fail(b)
    clock.advance(1)
    assert b.allow_request()
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: None)
    assert info.value.retry_after_s == 0.0


def test_open_timeout_grows_and_is_capped() -> None:
    clock = FakeClock()
    b = make(
        clock,
        failure_threshold=1,
        open_timeout_s=1,
        open_timeout_multiplier=2,
        max_open_timeout_s=5,
    )
    fail(b)
    seen = []
    for _ in range(4):
        timeout = b.metrics().retry_after_s
        seen.append(timeout)
        clock.advance(timeout)
        assert b.allow_request()
        b.record_failure()
    assert seen == [1.0, 2.0, 4.0, 5.0]
    clock.advance(5)
    assert b.allow_request()
    for _ in range(3):
        b.record_success()
        b.allow_request()
    assert b.state is State.CLOSED
    assert b.metrics().open_timeout_s == 1.0  # back to the base after closing


def test_transitions_are_counted() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, success_threshold=1, open_timeout_s=1)
    fail(b)
    clock.advance(1)
    assert b.allow_request()
    b.record_success()
    assert b.state is State.CLOSED
    assert b.metrics().transitions == 3  # closed->open->half-open->closed


# --------------------------------------------------------------------------- reset and force


def test_force_open_rejects_until_reset() -> None:
    clock = FakeClock()
    b = make(clock)
    b.force_open()
    clock.advance(10**6)
    assert b.state is State.OPEN
    assert not b.allow_request()
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: 1)
    assert info.value.retry_after_s == math.inf
    assert b.metrics().retry_after_s == math.inf
    b.reset()
    assert b.state is State.CLOSED
    assert b.call(lambda: 1) == 1


def test_reset_clears_current_counters_keeps_totals() -> None:
    b = make(FakeClock(), failure_threshold=3)
    fail(b, 2)
    b.reset()
    m = b.metrics()
    assert m.consecutive_failures == 0
    assert m.total_failures == 2
    assert m.state is State.CLOSED


def test_reset_while_probes_in_flight_frees_slots() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1, half_open_max_calls=2)
    fail(b)
    clock.advance(1)
    assert b.allow_request()
    assert b.allow_request()
    b.reset()
    assert b.metrics().half_open_in_flight == 0
    # Late outcomes of the old probes must not corrupt the fresh state.
    b.record_success()
    b.record_success()
    m = b.metrics()
    assert m.half_open_in_flight == 0
    assert m.state is State.CLOSED


def test_record_without_admitted_call_never_goes_negative() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1, success_threshold=5)
    for _ in range(3):
        b.record_success()  # closed, nothing admitted
    fail(b)
    for _ in range(3):
        b.record_success()  # open: ignored for the state
    assert b.state is State.OPEN
    clock.advance(1)
    assert b.allow_request()
    b.record_success()
    b.record_success()  # one more than admitted
    m = b.metrics()
    assert m.half_open_in_flight == 0
    assert m.state is State.HALF_OPEN
    assert b.allow_request()  # the slot is free, not stuck


# --------------------------------------------------------------------------- failure rate


def rate_breaker(clock: FakeClock) -> CircuitBreaker:
    return make(
        clock,
        failure_threshold=1000,
        failure_rate_threshold=0.5,
        window_size=10,
        minimum_calls=4,
    )


def test_failure_rate_waits_for_minimum_calls() -> None:
    b = rate_breaker(FakeClock())
    fail(b, 3)  # 100% failures but only 3 calls
    assert b.state is State.CLOSED
    assert b.metrics().failure_rate == 1.0
    fail(b)
    assert b.state is State.OPEN


def test_failure_rate_over_sliding_window() -> None:
    b = rate_breaker(FakeClock())
    for _ in range(10):
        assert b.allow_request()
        b.record_success()
    fail(b, 4)  # window: 6 successes, 4 failures -> 40 %
    m = b.metrics()
    assert m.window_calls == 10
    assert m.failure_rate == pytest.approx(0.4)
    assert b.state is State.CLOSED
    fail(b)  # oldest success slides out: 5 of 10
    assert b.state is State.OPEN


def test_failure_rate_off_reports_none() -> None:
    b = make(FakeClock())
    fail(b)
    assert b.metrics().failure_rate is None
    assert b.metrics().window_calls == 0


def test_window_cleared_when_closing_again() -> None:
    clock = FakeClock()
    b = make(
        clock,
        failure_threshold=1000,
        failure_rate_threshold=0.5,
        window_size=4,
        minimum_calls=2,
        success_threshold=1,
        open_timeout_s=1,
    )
    fail(b, 2)
    assert b.state is State.OPEN
    clock.advance(1)
    assert b.allow_request()
    b.record_success()
    assert b.state is State.CLOSED
    assert b.metrics().window_calls == 0
    fail(b)
    assert b.state is State.CLOSED  # one call is below minimum_calls


# --------------------------------------------------------------------------- exceptions


def test_call_reraises_the_same_exception_and_counts_it() -> None:
    b = make(FakeClock(), failure_threshold=2)
    err = Boom("x")

    def raiser() -> None:
        raise err

    with pytest.raises(Boom) as info:
        b.call(raiser)
    assert info.value is err
    assert b.metrics().total_failures == 1


def test_ignored_exception_is_neither_success_nor_failure() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, ignored_exceptions=(Harmless,), open_timeout_s=1)

    def harmless() -> None:
        raise Harmless

    with pytest.raises(Harmless):
        b.call(harmless)
    m = b.metrics()
    assert (m.total_failures, m.total_successes, m.state) == (0, 0, State.CLOSED)
    # In half-open an ignored exception frees the probe slot without counting.
    fail(b)
    clock.advance(1)
    with pytest.raises(Harmless):
        b.call(harmless)
    m = b.metrics()
    assert m.half_open_in_flight == 0
    assert m.consecutive_successes == 0
    assert b.allow_request()


def test_failure_exceptions_restrict_what_counts() -> None:
    b = make(FakeClock(), failure_threshold=1, failure_exceptions=(Boom,))
    with pytest.raises(KeyError):
        b.call(lambda: {}["x"])
    assert b.state is State.CLOSED
    with pytest.raises(Boom):
        b.call(boom)
    assert b.state is State.OPEN


def test_is_failure_predicate() -> None:
    b = make(FakeClock(), failure_threshold=1, is_failure=lambda e: "count" in str(e))
    with pytest.raises(ValueError, match="skip"):
        b.call(_raise, ValueError("skip me"))
    assert b.state is State.CLOSED
    with pytest.raises(ValueError, match="count"):
        b.call(_raise, ValueError("count me"))
    assert b.state is State.OPEN


def _raise(exc: BaseException) -> None:
    raise exc


def test_base_exceptions_are_not_failures_and_free_the_slot() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1)
    fail(b)
    clock.advance(1)
    with pytest.raises(KeyboardInterrupt):
        b.call(_raise, KeyboardInterrupt())
    assert b.metrics().half_open_in_flight == 0
    assert b.state is State.HALF_OPEN


def test_rejection_does_not_run_function_and_errors_are_fresh() -> None:
    b = make(FakeClock(), failure_threshold=1)
    fail(b)
    ran = []
    errors = []
    for _ in range(3):
        with pytest.raises(CircuitOpenError) as info:
            b.call(ran.append, 1)
        errors.append(info.value)
    assert ran == []
    assert len({id(e) for e in errors}) == 3
    assert all(e.__traceback__ is not None and e.__context__ is None for e in errors)
    assert errors[0].breaker_name == "t"
    assert "circuit 't' is open" in str(errors[0])
    assert b.metrics().total_rejections == 3


# --------------------------------------------------------------------------- listeners


def test_listeners_get_every_change_in_order() -> None:
    clock = FakeClock()
    seen: list[tuple[str, State, State]] = []
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=1, success_threshold=1, open_timeout_s=1),
        name="L",
        clock=clock,
        listeners=[lambda br, old, new: seen.append((br.name, old, new))],
    )
    fail(b)
    clock.advance(1)
    assert b.allow_request()
    b.record_success()
    b.force_open()
    b.reset()
    b.reset()  # no change, no event
    assert seen == [
        ("L", State.CLOSED, State.OPEN),
        ("L", State.OPEN, State.HALF_OPEN),
        ("L", State.HALF_OPEN, State.CLOSED),
        ("L", State.CLOSED, State.OPEN),
        ("L", State.OPEN, State.CLOSED),
    ]


def test_raising_listener_never_breaks_the_breaker(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[State] = []

    def bad(br: CircuitBreaker, old: State, new: State) -> None:
        raise RuntimeError("listener bug")

    b = CircuitBreaker(
        BreakerConfig(failure_threshold=1),
        clock=FakeClock(),
        listeners=[bad, lambda br, old, new: seen.append(new)],
    )
    with caplog.at_level(logging.ERROR, logger="pganalytics_core.breaker"), pytest.raises(Boom):
        b.call(boom)
    assert b.state is State.OPEN
    assert seen == [State.OPEN]  # the second listener still ran
    assert "listener" in caplog.text


def test_listener_runs_without_the_lock_held() -> None:
    observed: list[State] = []

    def reenter(br: CircuitBreaker, old: State, new: State) -> None:
        observed.append(br.metrics().state)  # would deadlock if the lock were held

    b = CircuitBreaker(BreakerConfig(failure_threshold=1), clock=FakeClock(), listeners=[reenter])
    fail(b)
    assert observed == [State.OPEN]


# --------------------------------------------------------------------------- guards


def test_decorator_on_sync_function_keeps_metadata() -> None:
    b = make(FakeClock(), failure_threshold=1)

    @b
    def add(x: int, y: int) -> int:
        """Add."""
        return x + y

    assert add(2, 3) == 5
    assert add.__name__ == "add"
    assert add.__doc__ == "Add."
    assert b.metrics().total_successes == 1


async def test_decorator_on_async_function() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1)

    @b
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @b
    async def broken() -> None:
        raise Boom

    assert asyncio.iscoroutinefunction(double)
    assert await double(4) == 8
    with pytest.raises(Boom):
        await broken()
    with pytest.raises(CircuitOpenError):
        await double(1)
    m = b.metrics()
    assert (m.total_successes, m.total_failures, m.total_rejections) == (1, 1, 1)


async def test_call_async_cancellation_frees_the_probe() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1)
    fail(b)
    clock.advance(1)
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(b.call_async(slow))
    await started.wait()
    assert b.metrics().half_open_in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.metrics().half_open_in_flight == 0
    assert b.state is State.HALF_OPEN


def test_with_block_records_outcomes() -> None:
    b = make(FakeClock(), failure_threshold=2)
    with b:
        pass
    with pytest.raises(Boom), b:
        boom()
    m = b.metrics()
    assert (m.total_successes, m.total_failures) == (1, 1)
    with pytest.raises(Boom), b:
        boom()
    ran = []
    with pytest.raises(CircuitOpenError), b:
        ran.append(1)
    assert ran == []


def test_nested_with_blocks_on_two_breakers() -> None:
    clock = FakeClock()
    outer = make(clock, failure_threshold=1, open_timeout_s=1)
    inner = make(clock, failure_threshold=1, open_timeout_s=1)
    fail(inner)
    clock.advance(1)
    with outer, inner:  # a half-open probe
        pass
    assert outer.metrics().total_successes == 1
    assert inner.metrics().consecutive_successes == 1
    assert inner.metrics().half_open_in_flight == 0


async def test_async_with_block() -> None:
    b = make(FakeClock(), failure_threshold=1)
    async with b:
        await asyncio.sleep(0)
    with pytest.raises(Boom):
        async with b:
            raise Boom
    assert b.state is State.OPEN
    with pytest.raises(CircuitOpenError):
        async with b:
            pass


def test_repr_and_metrics_snapshot_is_frozen() -> None:
    b = make(FakeClock())
    assert repr(b) == "<CircuitBreaker 't' state=closed>"
    m = b.metrics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.state = State.OPEN  # type: ignore[misc]
    assert b.config.failure_threshold == 5


def test_circuit_open_error_carries_facts_and_pickles() -> None:
    import pickle

    err = CircuitOpenError("ml-service", 2.5)
    again = pickle.loads(pickle.dumps(err))
    assert (again.breaker_name, again.retry_after_s) == ("ml-service", 2.5)
    assert str(again) == "circuit 'ml-service' is open; retry after 2.500 s"


# --------------------------------------------------------------------------- review fixes


def test_raising_predicate_counts_as_failure_and_keeps_the_original_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()

    def predicate(exc: BaseException) -> bool:
        raise AttributeError("bug in predicate")

    b = make(clock, failure_threshold=1, open_timeout_s=1, is_failure=predicate)
    fail(b)
    clock.advance(1)
    with caplog.at_level(logging.ERROR), pytest.raises(Boom):
        b.call(boom)  # the function's own error, not the predicate's
    m = b.metrics()
    assert m.half_open_in_flight == 0
    assert m.state is State.OPEN  # the failed probe reopened the circuit
    assert "is_failure predicate raised" in caplog.text


def test_guard_holds_its_own_token_across_contexts() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1, success_threshold=1)
    fail(b)
    clock.advance(1)
    gate = b.guard()
    gate.__enter__()  # the probe is admitted here ...
    assert b.metrics().half_open_in_flight == 1
    import threading

    t = threading.Thread(target=gate.__exit__, args=(None, None, None))
    t.start()  # ... and finishes in another thread
    t.join()
    assert b.state is State.CLOSED


def test_with_block_admitted_while_closed_counts_wherever_it_exits() -> None:
    import contextvars

    b = make(FakeClock(), failure_threshold=1)
    b.__enter__()
    contextvars.Context().run(b.__exit__, Boom, Boom(), None)
    m = b.metrics()
    assert (m.total_failures, m.state) == (1, State.OPEN)


def test_with_probe_exited_in_another_context_is_stale_and_its_lease_frees_the_slot() -> None:
    import contextvars

    clock = FakeClock()
    b = make(clock, failure_threshold=1, success_threshold=1, open_timeout_s=10)
    fail(b)
    clock.advance(10)
    b.__enter__()  # a probe; its token stays in this context
    contextvars.Context().run(b.__exit__, None, None, None)
    m = b.metrics()
    assert (m.state, m.half_open_in_flight, m.total_successes) == (State.HALF_OPEN, 1, 1)
    clock.advance(10)
    assert not b.allow_request()  # the lease ran out: a failed probe, reopened
    assert b.metrics().expired_probes == 1


def test_with_block_of_a_closed_era_does_not_take_a_probe_slot() -> None:
    import contextvars

    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1, success_threshold=1)
    slow = contextvars.copy_context()
    slow.run(b.__enter__)  # admitted while CLOSED, still running
    fail(b)  # meanwhile the circuit opens ...
    clock.advance(1)
    gate = b.guard()
    gate.__enter__()  # ... and a probe is admitted
    slow.run(b.__exit__, None, None, None)  # the slow CLOSED-era block succeeds: stale
    m = b.metrics()
    assert (m.state, m.half_open_in_flight, m.total_successes) == (State.HALF_OPEN, 1, 1)
    gate.__exit__(None, None, None)
    assert b.state is State.CLOSED


def test_nested_with_blocks_keep_probe_tokens_apart() -> None:
    clock = FakeClock()
    outer = make(clock, failure_threshold=1, open_timeout_s=1, success_threshold=1)
    inner = make(clock, failure_threshold=2)
    fail(outer)
    clock.advance(1)
    with outer:  # a probe of outer, its token in this context
        with pytest.raises(Boom), inner:  # CLOSED: inner's failure is inner's
            boom()
        assert inner.metrics().consecutive_failures == 1
        assert outer.metrics().half_open_in_flight == 1
    assert outer.state is State.CLOSED
    assert inner.metrics().total_failures == 1


def test_bare_outcome_of_a_closed_era_call_does_not_take_a_probe_slot() -> None:
    import contextvars

    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1, success_threshold=1)
    slow = contextvars.copy_context()
    assert slow.run(b.allow_request)  # admitted while CLOSED, still running
    fail(b)  # meanwhile the circuit opens ...
    clock.advance(1)
    assert b.allow_request()  # ... and a probe is admitted in this context
    slow.run(b.record_success)  # the slow CLOSED-era call finishes: stale
    m = b.metrics()
    assert (m.state, m.half_open_in_flight, m.total_successes) == (State.HALF_OPEN, 1, 1)
    assert not b.allow_request()  # the probe budget is still taken by the real probe
    b.record_success()  # the probe's own outcome closes the circuit
    assert b.state is State.CLOSED


def test_failure_rate_exactly_at_threshold_opens() -> None:
    b = make(
        FakeClock(),
        failure_threshold=1000,
        failure_rate_threshold=0.07,
        window_size=100,
        minimum_calls=100,
    )
    for i in range(100):
        assert b.allow_request()
        if i < 93:
            b.record_success()
        else:
            b.record_failure()
    assert b.metrics().state is State.OPEN


@pytest.mark.parametrize(
    "types", [(), (BaseException,), (KeyboardInterrupt,), (Exception, SystemExit)]
)
def test_failure_exceptions_must_be_countable(types: tuple[type[BaseException], ...]) -> None:
    with pytest.raises(ConfigError, match="failure_exceptions"):
        BreakerConfig(failure_exceptions=types)


def test_decorator_refuses_generators() -> None:
    b = make(FakeClock())

    def gen() -> object:
        yield 1

    async def agen() -> object:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        b(gen)
    with pytest.raises(TypeError, match="generator"):
        b(agen)


async def test_decorator_on_async_callable_object() -> None:
    b = make(FakeClock(), failure_threshold=1)

    class Handler:
        async def __call__(self) -> None:
            raise Boom

    guarded = b(Handler())
    with pytest.raises(Boom):
        await guarded()
    assert b.state is State.OPEN


# --------------------------------------------------------------------------- probe lease


def test_lost_probe_no_longer_wedges_the_breaker() -> None:
    # Default lease: the open timeout. The probe's caller never records an outcome.
    clock = FakeClock()
    b = make(clock, failure_threshold=1, success_threshold=1, open_timeout_s=10)
    fail(b)
    clock.advance(10)
    assert b.allow_request()  # the probe ... is lost
    assert not b.allow_request()  # its slot is taken (half_open_max_calls=1)
    clock.advance(9.999)
    assert not b.allow_request()  # still within its lease
    assert b.metrics().half_open_in_flight == 1
    clock.advance(0.001)
    # The lease ran out: a failed probe, observed by this admission. The circuit reopened
    # as of the lease's end, so this call is rejected and a probe is due 10 s later.
    assert not b.allow_request()
    m = b.metrics()
    assert (m.state, m.half_open_in_flight, m.expired_probes) == (State.OPEN, 0, 1)
    assert m.opened_at == clock()
    assert m.retry_after_s == 10.0
    assert m.total_failures == 1  # lifetime totals count recorded outcomes only
    clock.advance(10)
    assert b.allow_request()  # a new probe
    b.record_success()
    assert b.state is State.CLOSED


def test_expired_lease_reopens_as_of_its_end_so_a_late_caller_probes_at_once() -> None:
    clock = FakeClock()
    events: list[tuple[State, State]] = []
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=1, success_threshold=1, open_timeout_s=10),
        clock=clock,
        listeners=[lambda br, old, new: events.append((old, new))],
    )
    fail(b)
    clock.advance(10)
    assert b.allow_request()  # lost; its lease ends at +20
    clock.advance(1000)
    assert b.allow_request()  # reopened at +20 until +30: long past, so this is a probe
    assert b.metrics().expired_probes == 1
    b.record_success()
    assert events == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.OPEN),  # the expired lease
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


@pytest.mark.parametrize("way", ["allow_request", "guard"])
def test_a_rejection_that_observes_an_expired_lease_tells_the_listeners_at_once(
    way: str,
) -> None:
    # The admission that sees the lease run out reopens the circuit and rejects the
    # caller; the listeners hear of the reopening then, not at some later call.
    clock = FakeClock()
    events: list[tuple[State, State]] = []
    b = CircuitBreaker(
        BreakerConfig(failure_threshold=1, open_timeout_s=10, probe_timeout_s=2),
        clock=clock,
        listeners=[lambda br, old, new: events.append((old, new))],
    )
    fail(b)
    clock.advance(10)
    assert b.allow_request()  # a lost probe; its lease ends at +12
    clock.advance(3)  # reopened as of +12, until +22: this caller is rejected
    if way == "allow_request":
        assert not b.allow_request()
    else:
        with pytest.raises(CircuitOpenError) as raised, b.guard():
            pass
        assert raised.value.retry_after_s == pytest.approx(9.0)
    assert events[-1] == (State.HALF_OPEN, State.OPEN)
    assert b.metrics().expired_probes == 1
    assert b.metrics().total_rejections == 1


def test_an_admission_that_finds_the_circuit_closed_meanwhile_holds_no_probe_slot() -> None:
    # The admission reads the clock before it takes the lock; a reset() in between (here
    # from the clock itself) makes it an ordinary CLOSED admission.
    fake = FakeClock()
    resets: list[CircuitBreaker] = []

    def clock() -> float:
        while resets:
            resets.pop().reset()
        return fake()

    b = CircuitBreaker(BreakerConfig(failure_threshold=2, open_timeout_s=10), clock=clock)
    fail(b, 2)
    fake.advance(10)  # a probe is due
    resets.append(b)
    permit = b.acquire()
    assert permit is not None
    assert b.state is State.CLOSED
    assert b.metrics().half_open_in_flight == 0
    permit.failure()  # counts toward the CLOSED period's run
    assert b.metrics().consecutive_failures == 1
    fail(b)
    assert b.state is State.OPEN


def test_a_listener_interrupting_an_admission_gives_the_probe_slot_back() -> None:
    clock = FakeClock()

    def interrupt(br: CircuitBreaker, old: State, new: State) -> None:
        if new is State.HALF_OPEN:
            raise KeyboardInterrupt

    b = CircuitBreaker(
        BreakerConfig(failure_threshold=1, open_timeout_s=10), clock=clock, listeners=[interrupt]
    )
    fail(b)
    clock.advance(10)
    with pytest.raises(KeyboardInterrupt):
        b.allow_request()
    assert b.state is State.HALF_OPEN
    assert b.metrics().half_open_in_flight == 0  # the slot is free for the next caller
    assert b.allow_request()
    b.record_success()
    assert b.metrics().consecutive_successes == 1


def test_expired_probes_late_success_does_not_close_the_circuit() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, success_threshold=1, open_timeout_s=10, probe_timeout_s=2)
    fail(b)
    clock.advance(10)
    assert b.call(clock.advance, 2.5) == clock()  # the probe succeeds, but too late
    m = b.metrics()
    assert m.state is State.OPEN
    assert (m.expired_probes, m.total_successes, m.half_open_in_flight) == (1, 1, 0)
    assert m.opened_at == clock() - 0.5  # as of the lease's end
    assert m.retry_after_s == 9.5


def test_expired_probes_late_failure_does_not_grow_the_timeout_twice() -> None:
    clock = FakeClock()
    b = make(
        clock, failure_threshold=1, open_timeout_s=10, open_timeout_multiplier=2, probe_timeout_s=1
    )
    fail(b)
    clock.advance(10)
    gate = b.guard()
    gate.__enter__()
    clock.advance(3)
    gate.__exit__(Boom, Boom(), None)  # late: the lease ended 2 s ago
    m = b.metrics()
    assert (m.state, m.expired_probes, m.total_failures) == (State.OPEN, 1, 2)
    assert m.open_timeout_s == 20.0  # grown once, for the expired lease only
    assert m.retry_after_s == 18.0


def test_a_timely_probe_after_an_expired_one_is_stale() -> None:
    clock = FakeClock()
    b = make(
        clock,
        failure_threshold=1,
        success_threshold=1,
        open_timeout_s=10,
        half_open_max_calls=2,
        probe_timeout_s=2,
    )
    fail(b)
    clock.advance(10)
    lost, timely = b.guard(), b.guard()
    lost.__enter__()  # lease ends at +12
    clock.advance(1)
    timely.__enter__()  # lease ends at +13
    clock.advance(1.5)
    timely.__exit__(None, None, None)  # in time, but the first probe failed before it
    m = b.metrics()
    assert (m.state, m.expired_probes, m.half_open_in_flight) == (State.OPEN, 1, 0)
    assert m.opened_at == clock() - 0.5


def test_probe_within_its_lease_is_unaffected() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, success_threshold=1, open_timeout_s=10, probe_timeout_s=5)
    fail(b)
    clock.advance(10)
    gate = b.guard()
    gate.__enter__()
    clock.advance(4.999)
    assert not b.allow_request()  # the slot is still the probe's
    gate.__exit__(None, None, None)
    assert b.state is State.CLOSED
    assert b.metrics().expired_probes == 0


def test_ignored_outcome_of_an_expired_probe_still_reopens() -> None:
    clock = FakeClock()
    b = make(
        clock,
        failure_threshold=1,
        open_timeout_s=10,
        probe_timeout_s=1,
        ignored_exceptions=(Harmless,),
    )
    fail(b)
    clock.advance(10)

    def slow_and_harmless() -> None:
        clock.advance(2)
        raise Harmless

    with pytest.raises(Harmless):
        b.call(slow_and_harmless)
    m = b.metrics()
    assert (m.state, m.expired_probes, m.total_failures) == (State.OPEN, 1, 1)


def test_zero_open_timeout_without_probe_timeout_has_no_lease() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=0)
    fail(b)
    assert b.allow_request()  # a probe at once, never recorded
    clock.advance(10**6)
    assert not b.allow_request()  # documented: no time scale to tie a lease to
    assert b.metrics().expired_probes == 0


def test_explicit_probe_timeout_with_zero_open_timeout() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=0, probe_timeout_s=5)
    fail(b)
    assert b.allow_request()  # lost
    clock.advance(5)
    assert b.allow_request()  # expired, reopened for 0 s: this is the next probe
    assert b.metrics().expired_probes == 1


def test_lease_follows_the_grown_open_timeout() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, open_timeout_s=1, open_timeout_multiplier=4)
    fail(b)
    clock.advance(1)
    assert b.allow_request()
    b.record_failure()  # a failed probe: the open timeout grows to 4 s
    clock.advance(4)
    assert b.allow_request()  # lost; its lease is the 4 s in force
    clock.advance(3.999)
    assert not b.allow_request()
    assert b.metrics().expired_probes == 0
    clock.advance(0.001)
    assert not b.allow_request()
    assert b.metrics().expired_probes == 1


def test_metrics_snapshot_sets_every_field_like_the_constructor() -> None:
    clock = FakeClock()
    b = make(
        clock, failure_threshold=1000, failure_rate_threshold=0.5, window_size=4, minimum_calls=3
    )
    fail(b, 1)
    assert b.allow_request()
    b.record_success()
    m = b.metrics()
    fields = {f.name: getattr(m, f.name) for f in dataclasses.fields(BreakerMetrics)}
    assert m == BreakerMetrics(**fields)  # every slot is set, the type is exact
    assert type(m) is BreakerMetrics
    assert fields == {
        "name": "t",
        "state": State.CLOSED,
        "consecutive_failures": 0,
        "consecutive_successes": 0,
        "total_successes": 1,
        "total_failures": 1,
        "total_rejections": 0,
        "failure_rate": 0.5,
        "window_calls": 2,
        "half_open_in_flight": 0,
        "opened_at": None,
        "retry_after_s": 0.0,
        "open_timeout_s": 30.0,
        "transitions": 0,
        "expired_probes": 0,
    }
    assert b.metrics().total_successes == 1  # reading the totals does not change them


def test_a_lost_bare_probe_token_never_swallows_a_later_failure() -> None:
    """The bare protocol's rule (record_success's docstring): a probe never recorded
    leaves its token in its context; once the probe no longer holds its slot, the token
    is dropped, and later outcomes there count against the current state. (Before issue
    19 the next outcome was taken as the lost probe's and counted in the totals only.)"""
    clock = FakeClock()
    b = make(clock, failure_threshold=2, success_threshold=1, open_timeout_s=1)
    fail(b, 2)
    clock.advance(1)
    assert b.allow_request()  # a probe, lost: never recorded
    clock.advance(1)
    assert not b.allow_request()  # its lease ran out: reopened as of then
    assert b.metrics().expired_probes == 1
    clock.advance(1)
    assert b.allow_request()
    b.record_success()  # the next probe closes the circuit
    assert b.state is State.CLOSED
    # The next failure_threshold failures on this thread open it exactly at the threshold.
    assert b.allow_request()
    b.record_failure()
    m = b.metrics()
    assert (m.total_failures, m.consecutive_failures, m.state) == (3, 1, State.CLOSED)
    assert b.allow_request()
    b.record_failure()
    assert b.state is State.OPEN
    assert b.metrics().total_failures == 4


def test_a_permit_carries_its_own_token_across_threads() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=2, success_threshold=1, open_timeout_s=1)
    fail(b, 2)
    clock.advance(1)
    probe = b.acquire()
    assert probe is not None
    assert b.acquire() is None  # one probe slot (half_open_max_calls=1): rejected
    assert b.metrics().half_open_in_flight == 1
    done = threading.Thread(target=probe.success)  # recorded from another thread
    done.start()
    done.join(10)
    assert b.state is State.CLOSED
    assert "used" in repr(probe)


def test_a_permit_records_once_and_counts_like_call() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=2, success_threshold=1, open_timeout_s=1)
    first = b.acquire()
    assert first is not None
    first.success()
    with pytest.raises(PermitUsedError, match="already recorded"):
        first.failure()
    failures = [b.acquire() for _ in range(2)]
    for permit in failures:
        assert permit is not None
        permit.failure()
    m = b.metrics()
    assert (m.total_successes, m.total_failures, m.state) == (1, 2, State.OPEN)
    assert b.acquire() is None
    assert b.metrics().total_rejections == 1
    clock.advance(1)
    probe = b.acquire()
    assert probe is not None
    probe.release()  # abandoned: the slot is free again, nothing counted
    assert b.metrics().half_open_in_flight == 0
    assert b.metrics().total_failures == 2
    again = b.acquire()
    assert again is not None
    again.failure()  # a failed probe reopens
    assert b.state is State.OPEN


def test_a_permit_from_an_earlier_state_counts_in_the_totals_only() -> None:
    clock = FakeClock()
    b = make(clock, failure_threshold=1, success_threshold=1, open_timeout_s=1)
    closed_era = b.acquire()
    assert closed_era is not None
    b.force_open()
    b.reset()  # a new CLOSED period: the permit's generation is gone
    closed_era.failure()
    m = b.metrics()
    assert (m.total_failures, m.consecutive_failures, m.state) == (1, 0, State.CLOSED)
