"""A thread-safe circuit breaker with a lock-free fast path.

States and transitions::

    CLOSED --(failure_threshold consecutive failures, or the failure-rate rule)--> OPEN
    OPEN --(open_timeout_s elapsed; observed by the next allow_request)--> HALF_OPEN
    HALF_OPEN --(success_threshold consecutive successful probes)--> CLOSED
    HALF_OPEN --(a failed probe, or a probe whose lease ran out)--> OPEN
                                           (the open timeout may grow, capped)
    any --reset()--> CLOSED;  any --force_open()--> OPEN until reset()

Design notes (why it looks the way it does):

* Every way in (``call``, ``call_async``, the decorator, ``with``/``async with``,
  ``guard()``, and the bare protocol: ``allow_request``/``record_*`` and ``acquire``'s
  permits) goes through one core: :meth:`CircuitBreaker._admit` decides an admission,
  ``_on_outcome``/``_on_success``/``_on_failure``/``_on_ignored`` what an outcome does.
  The two answers that take no lock are set by the core at each state change and only
  read by the ways: the *free pass* (``_closed_token``: while CLOSED, every caller is
  admitted under the CLOSED period's token) and the *free success* (``_fast_success``: a
  success that changes nothing only counts). ``call()`` repeats one test of the core, the
  lock-free rejection while OPEN: raising it from ``_admit`` costs a rejected call 21 %
  more instructions (5,944 -> 7,200, ``breaker_call_rejected``).
* One ``threading.Lock`` guards the bookkeeping, and it is never held while the guarded
  function runs or while listeners run.
* The two hottest paths take no lock at all: admitting a call while CLOSED (reading one
  attribute is atomic) and recording a success that changes nothing (CLOSED, no
  consecutive failures, no sliding window). Lifetime totals are counters
  (``pganalytics_core._counter``): iterators whose ``next()`` is atomic, so no count is
  ever lost: over ``range(sys.maxsize)`` where the GIL makes ``next()`` atomic, behind a
  lock on a free-threaded build without it.
* Rejections while OPEN are lock-free too: ``_open_until`` is written before ``_state``,
  so a reader that sees OPEN sees a deadline at least as late as the one that applies.
  The free pass is one attribute, written after the state: a caller reads a CLOSED
  period's token or None.
* So are failures while CLOSED without a failure-rate window, except the one that opens
  the circuit: the run of consecutive failures is such a counter too (``next()`` returns
  the run so far). A success that ends a run, and every state change, installs a new
  counter; a failure counts into the one it read, so a late failure lands in a discarded
  run (the ordering that makes this exact is spelled out in ``_on_failure``).
* Every CLOSED period has a token of its own. A call carries the token it was
  admitted under; an outcome whose token is stale still counts in the lifetime
  totals but never changes the current state (a slow success admitted while CLOSED cannot
  close a breaker that opened meanwhile, and a late probe cannot free a slot it does not
  hold).
  ``call()``, ``guard()`` and permits carry their token with the call; the bare protocol and
  ``with breaker:`` keep only probes' tokens, per context (a ``ContextVar`` write costs
  several times a whole CLOSED ``with`` block), so their CLOSED-era outcomes apply to the
  state current at exit, but never to a probe's slot.
* A HALF_OPEN probe holds its slot on a lease (``probe_timeout_s``). Each probe gets a
  token of its own (drawn from the same sequence as the CLOSED periods', so it never
  equals one) and a deadline, kept in ``_probes`` (insertion order is deadline order, as the
  lease is fixed for a HALF_OPEN period). A probe whose deadline has passed is a failed
  probe, observed under the lock by the next admission or probe outcome: there is no
  timer thread. Its late outcome finds no lease and counts in the totals only.
* Time comes from an injected monotonic ``clock``; nothing here ever sleeps.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from pganalytics_core import _counter
from pganalytics_core._validation import check_int, check_seconds
from pganalytics_core.errors import CircuitOpenError, ConfigError, PermitUsedError

__all__ = [
    "BreakerConfig",
    "BreakerMetrics",
    "CircuitBreaker",
    "State",
    "StateListener",
]

_log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class State(enum.Enum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"

    def __str__(self) -> str:
        return self.value


_CLOSED = State.CLOSED
_OPEN = State.OPEN
_HALF_OPEN = State.HALF_OPEN

#: A listener receives (breaker, old_state, new_state) after each state change.
StateListener = Callable[["CircuitBreaker", State, State], object]

#: Token returned for a rejected admission.
_REJECTED = -1
#: Token of an outcome that must not touch the current state (never a real token).
_STALE = -2
#: How ``_admit`` answers a rejection: raise CircuitOpenError, or return _REJECTED.
#: (Passed by position: a keyword costs a rejection about 170 instructions more.)
_RAISE_REJECTION = True
_RETURN_REJECTION = False

# Counters (lifetime totals, runs of CLOSED failures): ``iter(_COUNTS)`` is a fresh one,
# ``next()`` counts one and returns the count so far, ``_read`` gets the count without
# counting; lock-free under the GIL, locked without it (pganalytics_core._counter).
_COUNTS = _counter.COUNTS
_read = _counter.read


def _check_exception_types(field: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        raise ConfigError(field, "must be a tuple of exception types")


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """How a :class:`CircuitBreaker` decides. Immutable; vary it with ``dataclasses.replace``.

    Attributes:
        failure_threshold: consecutive failures (while CLOSED) that open the circuit.
        success_threshold: consecutive successful probes (while HALF_OPEN) that close it.
        open_timeout_s: seconds the circuit stays OPEN before the first probe.
        half_open_max_calls: probes allowed in flight at once while HALF_OPEN; callers
            beyond it are rejected at once, never queued.
        failure_rate_threshold: optional second rule: open when the failure rate over the
            last ``window_size`` calls reaches this fraction (0 < x <= 1), once at least
            ``minimum_calls`` calls are in the window. ``None`` disables the rule.
        window_size: the number of most recent calls the failure-rate rule looks at.
        minimum_calls: calls the window must hold before the failure-rate rule applies.
        open_timeout_multiplier: after a failed probe, the open timeout is multiplied by
            this factor (1.0, the default, keeps it constant).
        max_open_timeout_s: cap for the grown open timeout (``None``: 10x open_timeout_s).
        probe_timeout_s: the lease of a HALF_OPEN probe, in seconds: a probe that has not
            reported its outcome within it gives its slot back and counts as a failed
            probe (the circuit reopens as of the lease's end), so a lost probe (a caller
            that crashed or never recorded) cannot keep the breaker half-open forever.
            Its late outcome counts in the lifetime totals only. ``None`` (the default):
            the open timeout in force when the probe was admitted, so a lost probe costs
            at most one more open period; with ``open_timeout_s=0`` that is no lease at
            all (probes then hold their slots until they report).
        failure_exceptions: exception types that count as failures.
        ignored_exceptions: exception types that never count (checked first); an ignored
            exception is neither a success nor a failure.
        is_failure: optional predicate that must also return True for an exception to
            count as a failure.
    """

    failure_threshold: int = 5
    success_threshold: int = 3
    open_timeout_s: float = 30.0
    half_open_max_calls: int = 1
    failure_rate_threshold: float | None = None
    window_size: int = 100
    minimum_calls: int = 10
    open_timeout_multiplier: float = 1.0
    max_open_timeout_s: float | None = None
    probe_timeout_s: float | None = None
    failure_exceptions: tuple[type[BaseException], ...] = (Exception,)
    ignored_exceptions: tuple[type[BaseException], ...] = ()
    is_failure: Callable[[BaseException], bool] | None = None
    # Derived in __post_init__ for the breaker's hot paths, once per config rather than
    # per breaker (not arguments, not compared, not shown).
    _trip_index: int = field(init=False, repr=False, compare=False)
    _plain_failures: tuple[type[BaseException], ...] = field(init=False, repr=False, compare=False)
    _open_timeout_float: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int("failure_threshold", self.failure_threshold, 1)
        check_int("success_threshold", self.success_threshold, 1)
        check_seconds("open_timeout_s", self.open_timeout_s, allow_zero=True)
        check_int("half_open_max_calls", self.half_open_max_calls, 1)
        check_int("window_size", self.window_size, 1)
        check_int("minimum_calls", self.minimum_calls, 1)
        rate = self.failure_rate_threshold
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ConfigError("failure_rate_threshold", "must be a number or None")
            if not 0 < rate <= 1:
                raise ConfigError("failure_rate_threshold", f"must be in (0, 1], got {rate!r}")
            if self.minimum_calls > self.window_size:
                raise ConfigError(
                    "minimum_calls",
                    f"must be <= window_size ({self.window_size}), got {self.minimum_calls}",
                )
        mult = self.open_timeout_multiplier
        if isinstance(mult, bool) or not isinstance(mult, int | float):
            raise ConfigError("open_timeout_multiplier", "must be a number")
        if not math.isfinite(mult) or mult < 1:
            raise ConfigError("open_timeout_multiplier", f"must be finite and >= 1, got {mult!r}")
        if self.max_open_timeout_s is not None:
            check_seconds("max_open_timeout_s", self.max_open_timeout_s, allow_zero=True)
            if self.max_open_timeout_s < self.open_timeout_s:
                raise ConfigError(
                    "max_open_timeout_s",
                    f"must be >= open_timeout_s ({self.open_timeout_s}), "
                    f"got {self.max_open_timeout_s}",
                )
        if self.probe_timeout_s is not None:
            check_seconds("probe_timeout_s", self.probe_timeout_s, allow_zero=False)
        _check_exception_types("failure_exceptions", self.failure_exceptions)
        if not self.failure_exceptions:
            raise ConfigError("failure_exceptions", "must name at least one exception type")
        for exc_type in self.failure_exceptions:
            if not issubclass(exc_type, Exception):
                # KeyboardInterrupt, CancelledError and friends are never failures: they
                # free a probe slot without counting (see CircuitBreaker.call).
                raise ConfigError(
                    "failure_exceptions",
                    f"{exc_type.__name__} is not an Exception subclass and would never count",
                )
        _check_exception_types("ignored_exceptions", self.ignored_exceptions)
        if self.is_failure is not None and not callable(self.is_failure):
            raise ConfigError("is_failure", "must be callable or None")
        derive = functools.partial(object.__setattr__, self)
        derive("_trip_index", self.failure_threshold - 1)  # next() on a run: the run so far
        # Exceptions that are failures without asking is_failure or ignored_exceptions.
        plain = self.is_failure is None and not self.ignored_exceptions
        derive("_plain_failures", self.failure_exceptions if plain else ())
        derive("_open_timeout_float", float(self.open_timeout_s))

    @property
    def open_timeout_cap_s(self) -> float:
        """The largest open timeout the multiplier can grow to, in seconds."""
        if self.max_open_timeout_s is not None:
            return self.max_open_timeout_s
        return self.open_timeout_s * 10.0

    def counts_as_failure(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` raised by a guarded call counts as a failure.

        Args:
            exc: the exception the guarded function raised.

        Returns:
            True when it counts as a failure; False when it is ignored (neither a success
            nor a failure).
        """
        if self.ignored_exceptions and isinstance(exc, self.ignored_exceptions):
            return False
        if not isinstance(exc, self.failure_exceptions):
            return False
        return self.is_failure is None or bool(self.is_failure(exc))


_DEFAULT_CONFIG = BreakerConfig()


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerMetrics:
    """A consistent snapshot of a breaker, taken under its lock.

    Attributes:
        name: the breaker's name.
        state: the state as :attr:`CircuitBreaker.state` reports it.
        consecutive_failures: failures in a row in the current CLOSED period.
        consecutive_successes: successful probes in a row in the current HALF_OPEN period.
        total_successes: lifetime successful calls.
        total_failures: lifetime failed calls.
        total_rejections: lifetime calls rejected without running.
        failure_rate: failures / calls over the sliding window, or None when the
            failure-rate rule is off or the window is empty.
        window_calls: calls currently in the sliding window (0 when the rule is off).
        half_open_in_flight: probes currently holding a slot (a probe whose lease ran out
            holds it until the next admission or probe outcome observes that).
        opened_at: clock reading when the circuit last opened, or None while never opened
            since the last close.
        retry_after_s: seconds until a probe is allowed (0.0 unless OPEN; inf when forced).
        open_timeout_s: the open timeout currently in force (grows after failed probes).
        transitions: number of state changes so far.
        expired_probes: lifetime number of probes whose lease ran out before they
            reported (each reopened the circuit; see ``BreakerConfig.probe_timeout_s``).
    """

    name: str
    state: State
    consecutive_failures: int
    consecutive_successes: int
    total_successes: int
    total_failures: int
    total_rejections: int
    failure_rate: float | None
    window_calls: int
    half_open_in_flight: int
    opened_at: float | None
    retry_after_s: float
    open_timeout_s: float
    transitions: int
    expired_probes: int = 0


class _Window:
    """A count-based sliding window of call outcomes (1 = failure)."""

    __slots__ = ("_outcomes", "_pos", "calls", "failures")

    def __init__(self, size: int) -> None:
        self._outcomes = bytearray(size)
        self._pos = 0
        self.calls = 0
        self.failures = 0

    def add(self, failed: bool) -> None:
        size = len(self._outcomes)
        if self.calls == size:
            self.failures -= self._outcomes[self._pos]
        else:
            self.calls += 1
        bit = 1 if failed else 0
        self._outcomes[self._pos] = bit
        self.failures += bit
        self._pos = (self._pos + 1) % size

    def clear(self) -> None:
        self._outcomes[:] = bytes(len(self._outcomes))
        self._pos = 0
        self.calls = 0
        self.failures = 0


# Per-context stacks of admission tokens, keyed by the breaker itself (not its id(), which
# a later breaker may reuse): one for ``with breaker:`` blocks, one for HALF_OPEN probes
# admitted by the bare ``allow_request()``. Contexts are per thread and per asyncio task,
# so one breaker serves many of both at once. A stack keeps at most _MAX_TOKENS entries,
# so admissions whose outcome is never recorded cannot grow it without bound.
_MAX_TOKENS = 64
_TokenStack = tuple[tuple["CircuitBreaker", int], ...]
_TokenVar = contextvars.ContextVar[_TokenStack]
_GATE_TOKENS: _TokenVar = contextvars.ContextVar("pganalytics_breaker_gate_tokens", default=())
_PROBE_TOKENS: _TokenVar = contextvars.ContextVar("pganalytics_breaker_probe_tokens", default=())


def _push_token(var: _TokenVar, key: CircuitBreaker, token: int) -> None:
    stack = var.get()
    if len(stack) >= _MAX_TOKENS:
        stack = stack[1 - _MAX_TOKENS :]
    var.set((*stack, (key, token)))


def _pop_token(var: _TokenVar, key: CircuitBreaker) -> int | None:
    stack = var.get()
    if stack and stack[-1][0] is key:  # the usual case: strictly nested
        var.set(stack[:-1])
        return stack[-1][1]
    for i in range(len(stack) - 2, -1, -1):
        if stack[i][0] is key:
            var.set(stack[:i] + stack[i + 1 :])
            return stack[i][1]
    return None


class _Events:
    """Pending state changes of a breaker that has listeners, delivered in order."""

    __slots__ = ("delivering", "listeners", "pending")

    def __init__(self, listeners: tuple[StateListener, ...]) -> None:
        self.listeners = listeners
        self.pending: list[tuple[State, State]] = []
        self.delivering = threading.Lock()


class _Gate:
    """One ``with breaker.guard():`` block; holds its own admission token.

    Built by :meth:`CircuitBreaker.guard` without an ``__init__`` (a Python-level one would
    add a fifth of the block's cost).
    """

    __slots__ = ("_breaker", "_token")

    _breaker: CircuitBreaker
    _token: int

    def __enter__(self) -> CircuitBreaker:
        breaker = self._breaker
        token = breaker._closed_token
        self._token = token if token is not None else breaker._admit(_RAISE_REJECTION, None)
        return breaker

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        breaker = self._breaker
        if exc is None and breaker._fast_success:
            next(breaker._success_total)  # changes nothing: see the module notes
        else:
            breaker._on_outcome(self._token, exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Permit:
    """One admission the caller holds (:meth:`CircuitBreaker.acquire`): the two-step
    protocol with its own token, so its outcome always finds its own probe slot, from
    any thread or task, whatever other admissions did meanwhile.

    Record its outcome exactly once, with :meth:`success`, :meth:`failure` or
    :meth:`release` (neither: the call was abandoned); a second one raises
    :class:`~pganalytics_core.errors.PermitUsedError`. Its outcome applies to the state it
    was admitted under: a permit from an earlier state counts in the totals only. A permit
    belongs to one caller: the once-only check is not meant for two threads recording the
    same permit at the same moment.
    """

    __slots__ = ("_breaker", "_token", "_used")

    _breaker: CircuitBreaker
    _token: int
    _used: bool

    def success(self) -> None:
        """The admitted call succeeded."""
        self._use()
        breaker = self._breaker
        if breaker._fast_success:
            next(breaker._success_total)  # changes nothing: see the module notes
        else:
            breaker._on_success(self._token)

    def failure(self) -> None:
        """The admitted call failed."""
        self._use()
        self._breaker._on_failure(self._token)

    def release(self) -> None:
        """The call was abandoned: free its probe slot, count nothing."""
        self._use()
        self._breaker._on_ignored(self._token)

    def _use(self) -> None:
        if self._used:
            raise PermitUsedError("this permit's outcome was already recorded")
        self._used = True

    def __repr__(self) -> str:
        state = "used" if self._used else "held"
        return f"<Permit of {self._breaker._name!r} {state}>"


class CircuitBreaker:
    """A circuit breaker that is safe to share between threads and asyncio tasks.

    Args:
        config: the decision rules; ``None`` uses :class:`BreakerConfig` defaults.
        name: a name for errors, metrics and logs.
        clock: a monotonic clock returning seconds (inject a fake one in tests).
        listeners: callables run after each state change with
            ``(breaker, old_state, new_state)``; their exceptions are logged, never raised.

    Use it in one of six ways::

        breaker.call(fn, *args)            # or: await breaker.call_async(coro_fn, *args)
        @breaker                           # on a def or an async def
        with breaker: ...                  # or: async with breaker: ...
        with breaker.guard(): ...          # a block that carries its own token
        if breaker.allow_request(): ... then record_success() / record_failure()
        permit = breaker.acquire()         # the bare protocol with a permit you hold
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_closed_failures",
        "_closed_token",
        "_config",
        "_events",
        "_expired_probes",
        "_failure_total",
        "_fast_success",
        "_lock",
        "_name",
        "_next_token",
        "_open_timeout_s",
        "_open_until",
        "_opened_at",
        "_probes",
        "_rejection_total",
        "_state",
        "_streak",
        "_success_total",
        "_transitions",
        "_window",
    )

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        name: str = "default",
        clock: Callable[[], float] = time.monotonic,
        listeners: Iterable[StateListener] = (),
    ) -> None:
        if config is None:
            config = _DEFAULT_CONFIG
        elif not isinstance(config, BreakerConfig):
            raise TypeError(f"config must be a BreakerConfig, got {type(config).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self._config = config
        self._name = name
        self._clock = clock
        listeners = tuple(listeners)
        self._events = _Events(listeners) if listeners else None
        self._lock = threading.Lock()
        self._state = _CLOSED
        # The CLOSED period's token (None while not CLOSED): every caller is admitted under
        # it, lock-free. Tokens of CLOSED periods and of probes come from one sequence, so
        # they never coincide.
        self._closed_token: int | None = 0
        self._next_token = 1
        # Consecutive failures while CLOSED, consecutive successful probes while HALF_OPEN.
        self._streak = 0
        # While HALF_OPEN: the lease deadline of each probe holding a slot, by token.
        self._probes: dict[int, float] | None = None
        self._expired_probes = 0
        self._open_until = 0.0
        self._opened_at: float | None = None
        self._open_timeout_s = config._open_timeout_float
        self._transitions = 0
        self._success_total = iter(_COUNTS)
        self._failure_total = iter(_COUNTS)
        self._rejection_total = iter(_COUNTS)
        self._window = (
            _Window(config.window_size) if config.failure_rate_threshold is not None else None
        )
        self._fast_success = self._window is None
        # While CLOSED without a failure-rate window: the current run of consecutive
        # failures, counted lock-free (see _on_failure); None otherwise.
        self._closed_failures = iter(_COUNTS) if self._window is None else None

    # ------------------------------------------------------------------ introspection

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self._name

    @property
    def config(self) -> BreakerConfig:
        """The breaker's (immutable) configuration."""
        return self._config

    @property
    def state(self) -> State:
        """The current state; an OPEN breaker whose timeout has passed reports HALF_OPEN."""
        state = self._state
        if state is _OPEN and self._clock() >= self._open_until:
            return _HALF_OPEN
        return state

    @property
    def is_open(self) -> bool:
        """True when calls are being rejected because the circuit is open."""
        return self._state is _OPEN and self._clock() < self._open_until

    def metrics(self) -> BreakerMetrics:
        """Return a consistent, frozen snapshot of the breaker's counters and state."""
        with self._lock:
            now = self._clock()
            state = self._state
            reported, retry_after = state, 0.0
            if state is _OPEN:
                if now >= self._open_until:
                    reported = _HALF_OPEN
                else:
                    retry_after = self._open_until - now
            window = self._window
            return BreakerMetrics(
                name=self._name,
                state=reported,
                consecutive_failures=self._closed_run_locked() if state is _CLOSED else 0,
                consecutive_successes=self._streak if state is _HALF_OPEN else 0,
                total_successes=_read(self._success_total),
                total_failures=_read(self._failure_total),
                total_rejections=_read(self._rejection_total),
                failure_rate=(
                    window.failures / window.calls if window is not None and window.calls else None
                ),
                window_calls=window.calls if window is not None else 0,
                half_open_in_flight=len(self._probes) if self._probes is not None else 0,
                opened_at=self._opened_at,
                retry_after_s=retry_after,
                open_timeout_s=self._open_timeout_s,
                transitions=self._transitions,
                expired_probes=self._expired_probes,
            )

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self._name!r} state={self.state.value}>"

    # ------------------------------------------------------------------ the bare protocol

    def allow_request(self) -> bool:
        """Tell whether a call may proceed now, and if so, admit it.

        While HALF_OPEN an admitted call holds one of the ``half_open_max_calls`` probe
        slots until its outcome is recorded with :meth:`record_success` or
        :meth:`record_failure`, or until its lease (``BreakerConfig.probe_timeout_s``)
        runs out.

        The probe's token is kept in the calling thread (or asyncio task) until an outcome
        is recorded there (see :meth:`record_success`). :meth:`acquire` hands the caller a
        :class:`Permit` that carries its token instead, as :meth:`call` and :meth:`guard`
        do: prefer it where admission and outcome may be in different contexts.

        Returns:
            True when the call may proceed; False when it is rejected (counted as a
            rejection in :meth:`metrics`).
        """
        if self._closed_token is not None:
            return True
        return self._admit(_RETURN_REJECTION, _PROBE_TOKENS) != _REJECTED

    def acquire(self) -> Permit | None:
        """Admit a call and hand its permit to the caller, or None when it is rejected.

        The two-step protocol with an explicit permit (as gobreaker's two-step breaker)::

            permit = breaker.acquire()
            if permit is None:
                ...  # rejected (counted as a rejection)
            else:
                try:
                    result = work()
                except Exception:
                    permit.failure()
                    raise
                permit.success()

        Unlike :meth:`allow_request` and ``record_*()``, the permit carries its own token:
        it may be recorded from another thread or task, and no other admission's outcome
        can take its place.
        """
        token = self._closed_token
        if token is None:
            token = self._admit(_RETURN_REJECTION, None)
            if token == _REJECTED:
                return None
        permit = Permit()
        permit._breaker = self
        permit._token = token
        permit._used = False
        return permit

    def record_success(self) -> None:
        """Record that a call admitted by :meth:`allow_request` succeeded.

        Without a permit, an outcome belongs to the latest HALF_OPEN probe that this
        thread (or asyncio task) was admitted as and that still holds its slot. Tokens of
        probes that no longer hold one (their lease ran out, or the state changed) are
        dropped on the way, so an unrecorded probe never takes a later call's outcome.
        With no such probe, the outcome applies to the breaker's current state: CLOSED,
        it counts toward the failure rules; HALF_OPEN, in the lifetime totals only (a
        call admitted while CLOSED that finished late must not close the circuit).
        """
        if self._fast_success:
            next(self._success_total)
            return
        self._on_success(self._context_token(_PROBE_TOKENS))

    def record_failure(self) -> None:
        """Record that a call admitted by :meth:`allow_request` failed (same rule as
        :meth:`record_success`)."""
        self._on_failure(self._context_token(_PROBE_TOKENS))

    def _context_token(self, tokens: _TokenVar) -> int:
        """The token of the latest probe this context holds that still holds its slot;
        else the CLOSED period's token (``_STALE`` while not CLOSED).

        Tokens of probes without a slot are dropped: the slot is checked here without the
        lock and again under it, so a lease that runs out in between makes the outcome a
        late probe's (totals only), never another probe's.
        """
        while tokens.get():
            token = _pop_token(tokens, self)
            if token is None:
                break
            probes = self._probes
            if probes is not None and token in probes:
                return token
        token = self._closed_token
        return _STALE if token is None else token

    def reset(self) -> None:
        """Close the circuit and clear the counters of the current state.

        Probes in flight lose their slots; their outcomes, when they arrive, only count in
        the lifetime totals. Lifetime totals and the transition count are kept.
        """
        with self._lock:
            self._enter_closed_locked()
        if self._events is not None:
            self._deliver()

    def force_open(self) -> None:
        """Open the circuit until :meth:`reset`; every call is rejected meanwhile."""
        with self._lock:
            self._open_until = math.inf
            self._opened_at = self._clock()
            self._probes = None
            self._streak = 0
            self._fast_success = False
            self._set_state_locked(_OPEN)
            self._closed_failures = None
        self._deliver()

    # ------------------------------------------------------------------ guarded calls

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` through the breaker.

        Returns:
            What ``fn`` returns.

        Raises:
            CircuitOpenError: the breaker rejected the call; ``fn`` did not run.
            BaseException: whatever ``fn`` raised, unchanged.
        """
        token = self._closed_token
        if token is None:
            if self._state is _OPEN:  # _admit's lock-free rejection, inlined (see the notes)
                now = self._clock()
                if now < self._open_until:
                    next(self._rejection_total)
                    raise CircuitOpenError(self._name, self._open_until - now)
            token = self._admit(_RAISE_REJECTION, None)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._on_outcome(token, exc)
            raise
        if self._fast_success:
            next(self._success_total)
        else:
            self._on_success(token)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Cancellation of the awaiting task frees the probe slot without counting an outcome.

        Returns:
            What the awaitable returns.

        Raises:
            CircuitOpenError: the breaker rejected the call; ``fn`` was not called.
            BaseException: whatever ``fn`` raised, unchanged.
        """
        token = self._closed_token
        if token is None:
            token = self._admit(_RAISE_REJECTION, None)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._on_outcome(token, exc)
            raise
        if self._fast_success:
            next(self._success_total)
        else:
            self._on_success(token)
        return result

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function (``def`` or ``async def``) so every call is guarded.

        Raises:
            TypeError: ``fn`` is a generator or async generator function, whose body runs
                after the call returns and so cannot be guarded this way.
        """
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"cannot guard generator function {getattr(fn, '__qualname__', fn)!r}; "
                "guard the code that consumes it with `with breaker.guard():`"
            )
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__):

            @functools.wraps(fn)
            async def async_guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call_async(fn, *args, **kwargs)

            return async_guarded

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        return guarded

    def guard(self) -> _Gate:
        """Return a gate for one ``with`` / ``async with`` block that holds its own token.

        Unlike ``with breaker:``, a gate may be entered and exited in different threads or
        tasks and may interleave with other blocks (generators, callbacks).

        Raises:
            CircuitOpenError: on entering, when the breaker rejects the call.
        """
        gate = _Gate()
        gate._breaker = self
        return gate

    def __enter__(self) -> CircuitBreaker:
        """Gate a block: admit it or raise CircuitOpenError; its exception is the outcome.

        A HALF_OPEN probe's token is kept per thread / asyncio task, so ``with breaker:``
        blocks must be exited in the context that entered them and be strictly nested. A
        block admitted while CLOSED keeps no token (that would cost a context-variable
        write, several times the block's own cost): like the bare protocol's, its outcome
        applies to the state current when it exits, except that it never takes a probe's
        place. Use :meth:`guard` (or :meth:`call`) where that matters.
        """
        if self._closed_token is None:
            self._admit(_RAISE_REJECTION, _GATE_TOKENS)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None and self._fast_success and not _GATE_TOKENS.get():
            next(self._success_total)  # changes nothing: see the module notes
            return
        self._on_outcome(self._context_token(_GATE_TOKENS), exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ the core: admission

    def _admit(self, or_raise: bool, keep_in: _TokenVar | None) -> int:
        """The admission rule, for a caller without the free pass (``_closed_token`` None).

        Args:
            or_raise: raise :class:`CircuitOpenError` for a rejection (the ways that
                raise) rather than return ``_REJECTED``.
            keep_in: the context's token stack to keep a HALF_OPEN probe's token in, for
                ways whose outcome comes without one (``with breaker:``, the bare
                protocol); None for the ways that carry their token.

        Returns:
            The call's token: the CLOSED period's (the breaker closed meanwhile) or a
            HALF_OPEN probe's own (its slot held on a lease); or ``_REJECTED``. A
            rejection is counted in the totals either way.
        """
        # One clock reading serves the lock-free check and the decision under the lock (a
        # waiter decides as of when it arrived: a lease is never longer than promised).
        now = self._clock()
        if self._state is _OPEN and now < self._open_until:
            next(self._rejection_total)  # lock-free rejection: see the module notes
            if or_raise:
                raise CircuitOpenError(self._name, self._open_until - now)
            return _REJECTED
        with self._lock:
            if self._probes:
                self._expire_probes_locked(now)
            closed = self._closed_token
            if closed is not None:
                return closed  # closed meanwhile: an ordinary CLOSED admission
            retry_after_s = 0.0  # (a full probe budget: a slot may free up at any moment)
            if self._state is _OPEN:
                if now < self._open_until:  # a probe's lease ran out just now, reopening
                    retry_after_s = self._open_until - now
                else:
                    self._streak = 0
                    self._probes = {}
                    self._set_state_locked(_HALF_OPEN)
            probes = self._probes
            if probes is None or len(probes) >= self._config.half_open_max_calls:
                next(self._rejection_total)
                token = _REJECTED
            else:
                token = self._next_token
                self._next_token = token + 1
                lease = self._config.probe_timeout_s or self._open_timeout_s
                probes[token] = now + lease if lease > 0 else math.inf
        if self._events is not None:
            try:
                self._deliver()  # (also what an expired lease observed here changed)
            except BaseException:
                # A listener raised KeyboardInterrupt or the like: give the slot back.
                if token != _REJECTED:
                    self._on_ignored(token)
                raise
        if token == _REJECTED:
            if or_raise:
                raise CircuitOpenError(self._name, retry_after_s)
        elif keep_in is not None:
            _push_token(keep_in, self, token)
        return token

    def _expire_probes_locked(self, now: float) -> None:
        """Reopen the circuit if the oldest probe's lease ran out (a failed probe)."""
        probes = self._probes
        if probes:
            deadline = next(iter(probes.values()))  # the oldest probe's: insertion order
            if now >= deadline:
                self._expired_probes += 1
                self._grow_open_timeout_locked()
                self._enter_open_locked(deadline)  # opened when the lease ran out

    def _holds_probe_locked(self, token: int) -> bool:
        """Free ``token``'s probe slot; False when it holds none (stale or expired)."""
        probes = self._probes
        if not probes or token not in probes:
            return False
        now = self._clock()
        if now >= next(iter(probes.values())):  # the oldest lease ran out: a failed probe
            self._expire_probes_locked(now)  # (which came first)
            if self._probes is not probes:
                return False
        del probes[token]
        return True

    # ------------------------------------------------------------------ the core: outcomes

    def _on_outcome(self, token: int, exc: BaseException | None) -> None:
        """Record the outcome of an admitted call: None for success, else its exception."""
        if exc is None:
            self._on_success(token)
        elif isinstance(exc, self._config._plain_failures):  # (saves a call)
            self._on_failure(token)
        elif not isinstance(exc, Exception):
            self._on_ignored(token)  # KeyboardInterrupt, CancelledError, GeneratorExit
        else:
            try:
                failed = self._config.counts_as_failure(exc)
            except Exception:
                _log.exception(
                    "circuit breaker %r: the is_failure predicate raised; counted as a failure",
                    self._name,
                )
                failed = True
            if failed:
                self._on_failure(token)
            else:
                self._on_ignored(token)

    def _on_success(self, token: int) -> None:
        next(self._success_total)
        with self._lock:
            if token == self._closed_token:
                self._streak = 0
                if self._window is not None:
                    self._window.add(False)
                else:
                    # Flag first, then a new run: see _on_failure.
                    self._fast_success = True
                    self._closed_failures = iter(_COUNTS)
                return
            if self._holds_probe_locked(token):
                self._streak += 1
                if self._streak >= self._config.success_threshold:
                    self._enter_closed_locked()
            # else stale: admitted under an earlier state, or its lease ran out
        if self._events is not None:
            self._deliver()  # (also what an expired lease observed here changed)

    def _on_failure(self, token: int) -> None:
        next(self._failure_total)
        # CLOSED without a window, the common case, takes no lock unless this failure
        # completes the run. The run is read before the token: a state change writes the
        # CLOSED token first and the run after, so a matching token means the run
        # read is this period's or an earlier one (whose count nobody reads again). The
        # success flag is cleared after counting, so a concurrent success that starts a
        # new run (flag first) never leaves a counted failure behind a set flag.
        run = self._closed_failures
        if run is not None and token == self._closed_token:
            if next(run) >= self._config._trip_index:
                self._trip(run)
            self._fast_success = False
            return
        with self._lock:
            if token == self._closed_token:
                if not self._count_closed_failure_locked():
                    return
                self._enter_open_locked(self._clock())
            elif self._holds_probe_locked(token):  # a failed probe
                self._grow_open_timeout_locked()
                self._enter_open_locked(self._clock())
            else:
                return  # stale: admitted under an earlier state, or its lease ran out
        if self._events is not None:
            self._deliver()

    def _count_closed_failure_locked(self) -> bool:
        """Count a failure while CLOSED; True when the circuit must open."""
        self._fast_success = False
        run = self._closed_failures
        if run is not None:  # (no window: counted as in _on_failure)
            return next(run) >= self._config._trip_index
        self._streak += 1
        trip = self._streak >= self._config.failure_threshold
        window = self._window
        if window is not None:
            window.add(True)
            rate = self._config.failure_rate_threshold
            # failures / calls, not failures >= rate * calls: 0.07 * 100 is
            # 7.000000000000001 in floating point.
            if (
                rate is not None
                and window.calls >= self._config.minimum_calls
                and window.failures / window.calls >= rate
            ):
                trip = True
        return trip

    def _trip(self, run: Iterator[int]) -> None:
        """Open the circuit for a lock-free failure that completed ``run``."""
        with self._lock:
            if self._closed_failures is not run:
                return  # a success ended the run, or the state changed, meanwhile
            self._enter_open_locked(self._clock())
        if self._events is not None:
            self._deliver()

    def _closed_run_locked(self) -> int:
        """The consecutive failures of the current CLOSED period."""
        run = self._closed_failures
        if run is None:
            return self._streak  # (with a window, counted under the lock)
        if self._fast_success:
            return 0
        return _read(run)

    def _on_ignored(self, token: int) -> None:
        with self._lock:
            if token != self._closed_token:
                self._holds_probe_locked(token)  # frees the slot, counts nothing
        if self._events is not None:
            self._deliver()  # an expired lease observed here may have reopened the circuit

    # ------------------------------------------------------------------ state changes

    def _set_state_locked(self, new: State) -> None:
        """Change the state (the caller sets up the new one); no free pass until CLOSED
        gets its token (``_enter_closed_locked``)."""
        old = self._state
        if new is not old:
            self._transitions += 1
            if self._events is not None:
                self._events.pending.append((old, new))
        self._state = new
        self._closed_token = None

    def _grow_open_timeout_locked(self) -> None:
        config = self._config
        self._open_timeout_s = min(
            self._open_timeout_s * config.open_timeout_multiplier, config.open_timeout_cap_s
        )

    def _enter_open_locked(self, now: float) -> None:
        self._opened_at = now
        self._open_until = now + self._open_timeout_s  # written before _state: see notes
        self._probes = None
        self._streak = 0
        self._fast_success = False
        self._set_state_locked(_OPEN)
        self._closed_failures = None  # after the token: see _on_failure

    def _enter_closed_locked(self) -> None:
        self._probes = None
        self._opened_at = None
        # _open_until keeps its old value: it is read only while OPEN, and every way into
        # OPEN writes it first (zeroing it here would let a lock-free reader that still
        # sees OPEN report HALF_OPEN).
        self._open_timeout_s = self._config._open_timeout_float
        self._set_state_locked(_CLOSED)
        # A new CLOSED period, its token after the state (see the module notes): calls
        # admitted before it are stale.
        self._closed_token = self._next_token
        self._next_token += 1
        window = self._window
        if window is None:
            self._fast_success = True
            self._closed_failures = iter(_COUNTS)  # after the token: see _on_failure
        else:
            self._streak = 0  # (without a window the run counts CLOSED failures)
            window.clear()

    def _deliver(self) -> None:
        """Run the listeners for pending state changes, in order, without the lock held.

        Whoever holds ``delivering`` drains the queue for everyone; a thread that cannot
        take it leaves its events to that thread, which re-checks the queue after letting
        go, so no event is lost or delivered twice, and events reach listeners in the
        order the state changed. A listener may call back into the breaker.
        """
        events = self._events
        if events is None:
            return
        while events.pending:
            if not events.delivering.acquire(blocking=False):
                return
            try:
                while True:
                    with self._lock:
                        batch = events.pending
                        if not batch:
                            break
                        events.pending = []
                    for old, new in batch:
                        for listener in events.listeners:
                            try:
                                listener(self, old, new)
                            except Exception:
                                _log.exception(
                                    "circuit breaker %r: state listener %r raised; ignored",
                                    self._name,
                                    listener,
                                )
            finally:
                events.delivering.release()
