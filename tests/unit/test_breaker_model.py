"""Property-based test: the breaker against a small, obviously-correct reference model.

Hypothesis drives random sequences of operations and clock advances on both and checks,
after every step, that the answers, the state and every counter agree. Gates entered and
left open (``enter``) are calls in flight: they finish in any order (``exit``), late, or
never, which is what exercises the probe lease.
"""

from __future__ import annotations

import math
from collections import deque
from contextlib import AbstractContextManager
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
    open_until: float = 0.0
    opened_at: float | None = None
    timeout: float = 0.0
    successes: int = 0
    failures: int = 0
    rejections: int = 0
    transitions: int = 0
    expired: int = 0
    # Generations and probe tokens are drawn from one sequence (a token names one call).
    generation: int = 0
    last_token: int = 0
    # The probes holding a HALF_OPEN slot: token -> lease deadline.
    probes: dict[int, float] = field(default_factory=dict)
    # Tokens of HALF_OPEN probes admitted by bare allow() calls, newest last.
    probe_tokens: list[int] = field(default_factory=list)
    window: deque[int] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.timeout = self.cfg.open_timeout_s

    def _new_token(self) -> int:
        self.last_token += 1
        return self.last_token

    def _go(self, new: str) -> None:
        if new != self.state:
            self.transitions += 1
        self.state = new
        self.generation = self._new_token()
        self.probes = {}

    def _open(self, at: float) -> None:
        self.opened_at = at
        self.open_until = at + self.timeout
        self.streak = 0
        self._go("open")

    def _grow(self) -> None:
        self.timeout = min(
            self.timeout * self.cfg.open_timeout_multiplier, self.cfg.open_timeout_cap_s
        )

    def _expire(self) -> None:
        """A probe whose lease ran out is a failed probe, as of its deadline."""
        if self.state == "half-open" and self.probes:
            deadline = min(self.probes.values())
            if self.now >= deadline:
                self.expired += 1
                self._grow()
                self._open(at=deadline)

    def _close(self) -> None:
        self.streak = 0
        self.opened_at = None
        self.timeout = self.cfg.open_timeout_s
        self.window.clear()
        self._go("closed")

    def observed_state(self) -> str:
        if self.state == "open" and self.now >= self.open_until:
            return "half-open"
        return self.state

    def allow(self) -> bool:
        """The bare protocol: a HALF_OPEN probe's token is remembered for record_*()."""
        token = self.admit()
        if token is not None and token != self.generation:
            self.probe_tokens.append(token)
        return token is not None

    def admit(self) -> int | None:
        """Admission as call() does it: the call's token, or None when rejected."""
        if self.state == "closed":
            return self.generation
        self._expire()
        if self.state == "open":
            if self.now < self.open_until:
                self.rejections += 1
                return None
            self.streak = 0
            self._go("half-open")
        if len(self.probes) >= self.cfg.half_open_max_calls:
            self.rejections += 1
            return None
        token = self._new_token()
        lease = self.cfg.probe_timeout_s or self.timeout
        self.probes[token] = self.now + lease if lease > 0 else math.inf
        return token

    def _take_probe(self, token: int) -> bool:
        """Free a probe's slot; False when the token holds none (stale or expired)."""
        if token not in self.probes:
            return False
        self._expire()
        return self.probes.pop(token, None) is not None

    def _bare_token(self) -> int:
        """The latest remembered probe that still holds its slot (tokens of probes that do
        not are dropped), else the current state's token (issue 19's rule)."""
        while self.probe_tokens:
            token = self.probe_tokens.pop()
            if token in self.probes:
                return token
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
        if token == self.generation:
            if self.state == "closed":
                self.streak = 0
                if self.cfg.failure_rate_threshold is not None:
                    self._push(0)
        elif self._take_probe(token):
            self.streak += 1
            if self.streak >= self.cfg.success_threshold:
                self._close()

    def failure(self, token: int) -> None:
        self.failures += 1
        if token != self.generation:
            if self._take_probe(token):
                self._grow()
                self._open(at=self.now)
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
                self._open(at=self.now)

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
    probe_timeout_s=st.sampled_from([None, None, 0.5, 1.0, 3.0]),
)

operations = st.lists(
    st.one_of(
        st.sampled_from(
            ["allow", "success", "failure", "call_ok", "call_fail", "reset", "state", "metrics"]
        ),
        st.just("enter"),
        st.tuples(st.just("exit"), st.integers(0, 7), st.booleans()),
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
    # Gates in flight, with the model's token for each: finished in any order, or never.
    in_flight: list[tuple[AbstractContextManager[CircuitBreaker], int]] = []
    for op in ops:
        if isinstance(op, tuple) and op[0] == "advance":
            clock.advance(op[1])
            model.now += op[1]
        elif isinstance(op, tuple):
            if in_flight:
                gate, token = in_flight.pop(op[1] % len(in_flight))
                if op[2]:
                    gate.__exit__(None, None, None)
                    model.success(token)
                else:
                    gate.__exit__(Fail, Fail(), None)
                    model.failure(token)
        elif op == "enter":
            gate = breaker.guard()
            expected = model.admit()
            try:
                gate.__enter__()
            except CircuitOpenError:
                assert expected is None
            else:
                assert expected is not None
                in_flight.append((gate, expected))
        elif op == "allow":
            assert breaker.allow_request() == model.allow()
        elif op == "success":
            breaker.record_success()
            model.record_success()
        elif op == "failure":
            breaker.record_failure()
            model.record_failure()
        elif op in ("call_ok", "call_fail"):
            token = model.admit()
            try:
                if op == "call_ok":
                    breaker.call(int)
                else:
                    breaker.call(_fail)
            except CircuitOpenError:
                assert token is None
            except Fail:
                assert token is not None
            else:
                assert token is not None
            if token is not None:
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
        assert m.half_open_in_flight == len(model.probes)
        assert m.expired_probes == model.expired
        assert m.opened_at == model.opened_at
        assert m.open_timeout_s == model.timeout
        expected_fail_streak = model.streak if model.state == "closed" else 0
        assert m.consecutive_failures == expected_fail_streak
        if model.state == "open":
            assert m.retry_after_s == max(model.open_until - model.now, 0.0)
        assert breaker.is_open == (model.observed_state() == State.OPEN.value)
        if cfg.failure_rate_threshold is not None:
            assert m.window_calls == len(model.window)
