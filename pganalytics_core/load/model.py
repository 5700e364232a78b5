"""The two load models, as immutable configurations named in every result.

* :class:`ClosedModel`: ``workers`` threads (or tasks) each send a request, wait for its
  answer and send the next, ``iterations`` times or for ``duration_s``: the load adapts to
  the service (fewer requests when it slows down). Right for "N concurrent callers"
  questions (the backend's contention tests).
* :class:`OpenModel`: requests *arrive* at a fixed total ``rate_per_s`` for
  ``duration_s``, whatever the service does, as real traffic does. Latency is measured
  from each request's *intended* start (``t0 + i / rate``), so a stalled service shows up
  in the percentiles instead of silently lowering the load (no coordinated omission, as
  in wrk2). Right for capacity questions ("is p99 under 200 ms at 500 req/s?").

Both refuse sizes no machine could run (:data:`MAX_RATE_PER_S`, :data:`MAX_DURATION_S`,
:data:`MAX_REQUESTS`): a typo such as ``1e200`` is a ConfigError naming the field, never
an overflow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

from pganalytics_core._validation import check_in_range, check_int
from pganalytics_core.errors import ConfigError

__all__ = [
    "ClosedModel",
    "LoadModel",
    "MAX_DURATION_S",
    "MAX_RATE_PER_S",
    "MAX_REQUESTS",
    "ModelName",
    "OpenModel",
    "model_from_dict",
    "model_to_dict",
]

#: The name of a load model, as reported in results.
ModelName = Literal["closed", "open"]

#: The highest open-model rate accepted, in requests per second.
MAX_RATE_PER_S: Final = 10_000_000.0
#: The longest run accepted (and the largest millisecond setting, as seconds): ~116 days.
MAX_DURATION_S: Final = 10_000_000.0
#: The most requests one run may plan (8 bytes per sample and series: 8 GB of latencies).
MAX_REQUESTS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedModel:
    """``workers`` concurrent callers, each calling back-to-back; give exactly one of
    ``iterations`` and ``duration_s``.

    Attributes:
        workers: concurrent workers (threads, or tasks in the asyncio runner).
        iterations: requests per worker.
        duration_s: how long each worker keeps sending, in seconds.

    Raises:
        ConfigError: a field is out of range (see the module docstring for the upper
            bounds), or both or neither of ``iterations`` and ``duration_s`` are set.
    """

    workers: int = 10
    iterations: int | None = None
    duration_s: float | None = None

    #: The model's name in results.
    name: ClassVar[ModelName] = "closed"

    def __post_init__(self) -> None:
        check_int("workers", self.workers, 1, MAX_REQUESTS)
        if (self.iterations is None) == (self.duration_s is None):
            raise ConfigError("iterations", "set exactly one of iterations and duration_s")
        if self.iterations is not None:
            check_int("iterations", self.iterations, 1, MAX_REQUESTS // self.workers)
        if self.duration_s is not None:
            check_in_range("duration_s", self.duration_s, MAX_DURATION_S)

    @property
    def planned_requests(self) -> int | None:
        """``workers * iterations``, or None for a timed run."""
        return None if self.iterations is None else self.workers * self.iterations


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenModel:
    """Requests arriving at a constant total rate, measured from their intended start.

    Attributes:
        rate_per_s: requests per second, in total.
        duration_s: how long requests keep arriving, in seconds (``round(rate_per_s *
            duration_s)`` requests are scheduled).
        workers: threads sending the requests (the asyncio runner starts a task per
            request instead); while all are busy a request waits in the queue, and the
            wait counts in its latency.
        max_in_flight: the most requests outstanding (queued or being sent); one due
            while this many are is *dropped*: never sent, a failure of type ``"Dropped"``.
        late_after_ms: a request starting more than this after its intended start is *late*.
        max_scheduler_lag_ms, min_achieved_ratio, max_late_ratio: the generator counts as
            *saturated* when the p99 of its scheduling lag exceeds the first, it achieves
            less than the second fraction of its target rate, or more than the third
            fraction of the requests started late or found every worker busy when due.

    Raises:
        ConfigError: a field is out of range (see the module docstring for the upper
            bounds), or the run would send no request.
    """

    rate_per_s: float
    duration_s: float
    workers: int = 10
    max_in_flight: int = 1000
    late_after_ms: float = 10.0
    max_scheduler_lag_ms: float = 5.0
    min_achieved_ratio: float = 0.99
    max_late_ratio: float = 0.01

    #: The model's name in results.
    name: ClassVar[ModelName] = "open"

    def __post_init__(self) -> None:
        check_in_range("rate_per_s", self.rate_per_s, MAX_RATE_PER_S)
        check_in_range("duration_s", self.duration_s, MAX_DURATION_S)
        check_int("workers", self.workers, 1, MAX_REQUESTS)
        check_int("max_in_flight", self.max_in_flight, 1, MAX_REQUESTS)
        if self.max_in_flight < self.workers:
            raise ConfigError(
                "max_in_flight", f"must be >= workers ({self.workers}), got {self.max_in_flight}"
            )
        check_in_range("late_after_ms", self.late_after_ms, MAX_DURATION_S * 1000)
        check_in_range("max_scheduler_lag_ms", self.max_scheduler_lag_ms, MAX_DURATION_S * 1000)
        check_in_range("min_achieved_ratio", self.min_achieved_ratio, 1.0)
        check_in_range("max_late_ratio", self.max_late_ratio, 1.0, closed=True)
        scheduled = self.schedule_requests
        if scheduled < 1:
            raise ConfigError(
                "duration_s",
                f"rate_per_s * duration_s must schedule at least one request, "
                f"got {self.rate_per_s!r} * {self.duration_s!r}",
            )
        if scheduled > MAX_REQUESTS:
            raise ConfigError(
                "duration_s",
                f"rate_per_s * duration_s schedules {scheduled} requests, more than {MAX_REQUESTS}",
            )

    @property
    def schedule_requests(self) -> int:
        """How many requests the whole schedule holds: ``round(rate_per_s * duration_s)``."""
        return round(self.rate_per_s * self.duration_s)

    @property
    def planned_requests(self) -> int:
        """How many requests this run sends: the whole schedule."""
        return self.schedule_requests

    @property
    def target_rate_per_s(self) -> float:
        """The rate this run should achieve: ``rate_per_s``."""
        return float(self.rate_per_s)

    @property
    def schedule_span_ns(self) -> int:
        """How long the whole schedule lasts: one period per scheduled request, in ns."""
        return round(self.schedule_requests * 1_000_000_000 / self.rate_per_s)

    def intended_offset_ns(self, index: int) -> int:
        """The intended start of this run's request ``index`` (0-based), in ns after the start."""
        return round(index * 1_000_000_000 / self.rate_per_s)


#: Either load model.
LoadModel = ClosedModel | OpenModel


def model_to_dict(model: LoadModel) -> dict[str, object]:
    """Return a model's parameters as plain data, with its ``"name"``."""
    return {"name": model.name, **dataclasses.asdict(model)}


def model_from_dict(data: Mapping[str, object]) -> LoadModel:
    """Inverse of :func:`model_to_dict`.

    Raises:
        ValueError: not a model's data (ConfigError for out-of-range parameters).
    """
    fields = {key: value for key, value in data.items() if key != "name"}
    try:
        if data.get("name") == "closed":
            return ClosedModel(**fields)  # type: ignore[arg-type]
        if data.get("name") == "open":
            return OpenModel(**fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"not a load model: {exc}") from None
    raise ValueError(f"not a load model: name is {data.get('name')!r}")
