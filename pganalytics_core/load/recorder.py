"""Per-worker sample recording: raw nanosecond ints in an ``array('q')`` and an error tally.

A :class:`Recorder` has exactly one writer (the worker that owns it), so recording takes
no lock: appending an int to an ``array('q')`` is a C call of a few tens of nanoseconds
(amortised growth; measured faster than writing into a preallocated array by index, whose
index bookkeeping costs more bytecodes than the occasional resize). Readers (the progress
line) only read lengths and ints, which is safe under the GIL.

Timing a call with :meth:`Recorder.time_call` costs two ``time.perf_counter_ns`` calls and
one append, well under a microsecond, so microsecond operations such as a circuit breaker
admission can be measured with it too.
"""

from __future__ import annotations

import array
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from pganalytics_core.errors import CircuitOpenError

__all__ = ["DROPPED", "Recorder", "error_type", "is_rejection"]

#: The failure type of an open-model request that was never sent because
#: ``max_in_flight`` requests were already outstanding.
DROPPED: Final = "Dropped"


def is_rejection(exc: BaseException) -> bool:
    """Whether an operation's exception is a rejection by the caller's own circuit breaker.

    A :class:`~pganalytics_core.errors.CircuitOpenError` means no request was made: it is
    counted as a *rejection*, never as a request (no latency sample, not in the
    throughput), so that a load run measures the service, not the client's breaker.
    """
    return isinstance(exc, CircuitOpenError)


def error_type(exc: BaseException) -> str:
    """Name the kind of a failure for the failures-by-type tally.

    Args:
        exc: the exception an operation raised.

    Returns:
        The exception's class name, with the HTTP status for errors that carry one
        (``"ServerError(503)"``, ``"RateLimitedError(429)"``).
    """
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return f"{name}({status})"
    return name


@dataclass(slots=True, eq=False, repr=False)  # slots: attribute reads on the hot path
class Recorder:
    """Raw samples of one worker: latencies, service times and failures.

    Attributes:
        latencies_ns: one latency per finished request, in ns (successes and failures).
        service_times_ns: open model only: one service time per finished request, in ns
            (from the actual start; ``latencies_ns`` counts from the intended start).
        end_times_ns: open model only: when each finished request ended
            (``time.perf_counter_ns``), in the order the worker finished them.
        errors: failures by :func:`error_type`.
        failures: the sum of ``errors``, readable while the worker runs.
        late: open model only: requests that started later than the late threshold.
        rejections: operations rejected by the caller's own circuit breaker (see
            :func:`is_rejection`): not requests, so not in ``latencies_ns``.
    """

    latencies_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    service_times_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    end_times_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    errors: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    late: int = 0
    rejections: int = 0

    def __len__(self) -> int:
        return len(self.latencies_ns)

    def record_success(self, latency_ns: int) -> None:
        """Record a successful request that took ``latency_ns`` nanoseconds."""
        self.latencies_ns.append(latency_ns)

    def record_failure(self, latency_ns: int, kind: str) -> None:
        """Record a failed request that took ``latency_ns`` ns and failed with ``kind``."""
        self.latencies_ns.append(latency_ns)
        self.errors[kind] += 1
        self.failures += 1

    def count_exception(
        self, exc: BaseException, classify: Callable[[BaseException], str] = error_type
    ) -> bool:
        """Count an operation's exception; the one failure policy of every runner.

        Returns:
            False for a rejection by the caller's own breaker (:func:`is_rejection`,
            counted in ``rejections``: no request was made); True for a failed request,
            counted under ``classify(exc)``, whose latency the caller then records.
        """
        if is_rejection(exc):
            self.rejections += 1
            return False
        self.errors[classify(exc)] += 1
        self.failures += 1
        return True

    def time_call(
        self,
        fn: Callable[[], object],
        classify: Callable[[BaseException], str] = error_type,
    ) -> None:
        """Call ``fn()`` once and record its duration and outcome.

        An ``Exception`` from ``fn`` is recorded as a failure and not raised (a rejection
        by the caller's breaker as a rejection); other ``BaseException``s
        (``KeyboardInterrupt``) propagate unrecorded.
        """
        clock = time.perf_counter_ns
        start = clock()
        try:
            fn()
        except Exception as exc:
            end = clock()
            if self.count_exception(exc, classify):
                self.latencies_ns.append(end - start)
        else:
            self.latencies_ns.append(clock() - start)
