"""Property-based test: the breaker against a small, obviously-correct reference model.

Hypothesis drives random sequences of operations and clock advances on both and checks,
after every step, that the answers, the state and every counter agree.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from pganalytics_core import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from pganalytics_core.testing import FakeClock


@dataclass
class Model:
    """The breaker's rules written as plainly as possible (single-threaded)."""

    cfg: BreakerConfig
    now: float = 0.0
    state: str = "closed"
    streak: int = 0
    in_flight: int = 0
    open_until: float = 0.0
    timeout: float = 0.0
    successes: int = 0
    failures: int = 0
    rejections: int = 0
    transitions: int = 0
    generation: int = 0
    # Tokens (generations) of HALF_OPEN probes admitted by bare allow() calls, newest last.
    probe_tokens: list[int] = field(default_factory=list)
    window: deque[int] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.timeout = self.cfg.open_timeout_s

    def _go(self, new: str) -> None:
        if new != self.state:
            self.transitions += 1
        self.state = new
        self.generation += 1

    def _open(self) -> None:
        self.open_until = self.now + self.timeout
        self.in_flight = 0
        self.streak = 0
        self._go("open")

    def _close(self) -> None:
        self.streak = 0
        self.in_flight = 0
        self.timeout = self.cfg.open_timeout_s
        self.window.clear()
        self._go("closed")

    def observed_state(self) -> str:
        if self.state == "open" and self.now >= self.open_until:
            return "half-open"
        return self.state

    def allow(self) -> bool:
        """The bare protocol: a HALF_OPEN probe's token is remembered for record_*()."""
        admitted = self.admit()
        if admitted and self.state == "half-open":
            self.probe_tokens.append(self.generation)
        return admitted

    def admit(self) -> bool:
        """Admission as call() does it (the token travels with the call)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self.now < self.open_until:
                self.rejections += 1
                return False
            self.in_flight = 0
            self.streak = 0
            self._go("half-open")
        if self.in_flight >= self.cfg.half_open_max_calls:
            self.rejections += 1
            return False
        self.in_flight += 1
        return True

    def _bare_token(self) -> int:
        if self.probe_tokens:
            return self.probe_tokens.pop()
        return -2 if self.state == "half-open" else self.generation

    def record_success(self) -> None:
        if self.state == "closed" and self.streak == 0 and self.cfg.failure_rate_threshold is None:
            self.successes += 1  # the lock-free path: nothing changes, no token is used
            return
        self.success(self._bare_token())

    def record_failure(self) -> None:
        self.failure(self._bare_token())

    def success(self, token: int) -> None:
        self.successes += 1
        if token != self.generation:
            return  # stale: admitted under an earlier state
        if self.state == "closed":
            self.streak = 0
            if self.cfg.failure_rate_threshold is not None:
                self._push(0)
        elif self.state == "half-open":
            self.in_flight = max(self.in_flight - 1, 0)
            self.streak += 1
            if self.streak >= self.cfg.success_threshold:
                self._close()

    def failure(self, token: int) -> None:
        self.failures += 1
        if token != self.generation:
            return
        if self.state == "closed":
            self.streak += 1
            trip = self.streak >= self.cfg.failure_threshold
            rate = self.cfg.failure_rate_threshold
            if rate is not None:
                self._push(1)
                calls = len(self.window)
                if calls >= self.cfg.minimum_calls and sum(self.window) >= rate * calls:
                    trip = True
            if trip:
                self._open()
        elif self.state == "half-open":
            self.timeout = min(
                self.timeout * self.cfg.open_timeout_multiplier, self.cfg.open_timeout_cap_s
            )
            self._open()

    def _push(self, outcome: int) -> None:
        self.window.append(outcome)
        if len(self.window) > self.cfg.window_size:
            self.window.popleft()

    def reset(self) -> None:
        self.open_until = 0.0
        self._close()


configs = st.builds(
    BreakerConfig,
    failure_threshold=st.integers(1, 4),
    success_threshold=st.integers(1, 3),
    open_timeout_s=st.sampled_from([0.0, 1.0, 2.5]),
    half_open_max_calls=st.integers(1, 3),
    failure_rate_threshold=st.sampled_from([None, 0.25, 0.5, 1.0]),
    window_size=st.integers(4, 6),
    minimum_calls=st.integers(1, 4),
    open_timeout_multiplier=st.sampled_from([1.0, 2.0]),
    max_open_timeout_s=st.sampled_from([None, 4.0]),
)

operations = st.lists(
    st.one_of(
        st.sampled_from(
            ["allow", "success", "failure", "call_ok", "call_fail", "reset", "state", "metrics"]
        ),
        st.tuples(st.just("advance"), st.sampled_from([0.1, 0.5, 1.0, 2.5, 5.0])),
    ),
    min_size=10,
    max_size=80,
)


class Fail(Exception):
    pass


def _fail() -> None:
    raise Fail


@settings(max_examples=400, deadline=None)
@given(cfg=configs, ops=operations)
def test_breaker_matches_reference_model(cfg: BreakerConfig, ops: list[object]) -> None:
    clock = FakeClock(0.0)
    breaker = CircuitBreaker(cfg, clock=clock)
    model = Model(cfg)
    for op in ops:
        if isinstance(op, tuple):
            clock.advance(op[1])
            model.now += op[1]
        elif op == "allow":
            assert breaker.allow_request() == model.allow()
        elif op == "success":
            breaker.record_success()
            model.record_success()
        elif op == "failure":
            breaker.record_failure()
            model.record_failure()
        elif op in ("call_ok", "call_fail"):
            admitted = model.admit()
            try:
                if op == "call_ok":
                    breaker.call(int)
                else:
                    breaker.call(_fail)
            except CircuitOpenError:
                assert not admitted
            except Fail:
                assert admitted
            else:
                assert admitted
            if admitted:
                token = model.generation
                model.success(token) if op == "call_ok" else model.failure(token)
        elif op == "reset":
            breaker.reset()
            model.reset()
        assert breaker.state.value == model.observed_state()
        m = breaker.metrics()
        assert m.state.value == model.observed_state()
        assert m.total_successes == model.successes
        assert m.total_failures == model.failures
        assert m.total_rejections == model.rejections
        assert m.transitions == model.transitions
        assert m.half_open_in_flight == model.in_flight
        assert m.open_timeout_s == model.timeout
        expected_fail_streak = model.streak if model.state == "closed" else 0
        assert m.consecutive_failures == expected_fail_streak
        if model.state == "open":
            assert m.retry_after_s == max(model.open_until - model.now, 0.0)
        assert breaker.is_open == (model.observed_state() == State.OPEN.value)
        if cfg.failure_rate_threshold is not None:
            assert m.window_calls == len(model.window)
