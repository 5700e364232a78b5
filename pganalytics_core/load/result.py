"""Results of a load run, and their exact merge.

A run's raw measurements are kept in a :class:`RunSamples` (immutable, picklable, 8 bytes
per sample), from which :func:`build_result` computes the :class:`LoadTestResult`. Merging
results (of several processes, or machines) concatenates their raw samples and computes
the statistics again, so a merge is *exactly* the result of one run over the same
samples: no histogram error, no averaging of percentiles.
"""

from __future__ import annotations

import array
import dataclasses
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Self, overload

from pganalytics_core.load.model import ClosedModel, LoadModel, ModelName, OpenModel
from pganalytics_core.load.stats import LatencySummary, PercentileMethod, _as_int64, summarize

__all__ = [
    "LoadTestResult",
    "OpenModelStats",
    "RunSamples",
    "build_result",
    "merge_results",
    "merge_samples",
    "pack_samples",
    "unpack_samples",
]


def pack_samples(samples: array.array[int]) -> bytes:
    """Serialize int64 samples as little-endian bytes (portable between machines)."""
    return _as_int64(samples).astype("<i8", copy=False).tobytes()


def unpack_samples(data: bytes) -> array.array[int]:
    """Inverse of :func:`pack_samples`: a new ``array('q')``."""
    samples = array.array("q", data)
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


#: The :class:`RunSamples` fields that hold sample arrays (little-endian int64 bytes).
SAMPLE_ARRAYS: Final = ("latencies_ns", "service_times_ns", "scheduler_lag_ns")
#: The :class:`RunSamples` fields that count requests (they add up in a merge).
SAMPLE_COUNTS: Final = ("issued", "dropped", "late", "queued", "rejections")


def _sorted_counts(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSamples:
    """Everything a run measured, raw. Byte fields hold little-endian int64 nanoseconds.

    Attributes:
        latencies_ns: one latency per finished request (from the intended start in the
            open model), and in the open model one per dropped request too.
        failures_by_type: failed requests by error type, most frequent first (dropped
            requests are failures of type ``"Dropped"``).
        started_at_unix_ns: wall-clock start (``time.time_ns``), to align merged runs.
        duration_ns: from the start to the last finished request.
        service_times_ns: open model: one service time per request actually sent.
        scheduler_lag_ns: open model: per scheduled request (sent or dropped), from its
            intended start to the moment the scheduler handled it.
        issued, dropped, late, queued: open model: the counts of :class:`OpenModelStats`.
        schedule_ns: open model: how long *starting* the schedule took: its nominal
            length, or up to one period after the last actual start when that was late
            (the achieved rate is the requests actually sent per second of this).
        rejections: operations rejected by the client's own circuit breaker: no request
            was made, so no sample, and not in ``total_requests``.
    """

    latencies_ns: bytes
    failures_by_type: tuple[tuple[str, int], ...] = ()
    started_at_unix_ns: int = 0
    duration_ns: int = 0
    service_times_ns: bytes = b""
    scheduler_lag_ns: bytes = b""
    issued: int = 0
    dropped: int = 0
    late: int = 0
    schedule_ns: int = 0
    queued: int = 0
    rejections: int = 0

    @property
    def total_requests(self) -> int:
        """Finished requests (successful or failed), dropped ones included."""
        return len(self.latencies_ns) // 8

    @property
    def failed_requests(self) -> int:
        """Failed requests."""
        return sum(count for _, count in self.failures_by_type)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenModelStats:
    """What only the open model measures.

    Attributes:
        target_rate_per_s: the rate asked for.
        achieved_rate_per_s: requests actually *started* per second of the schedule
            (:attr:`RunSamples.schedule_ns`): below target when requests were late or dropped.
        issued_requests: requests handed to a worker.
        dropped_requests: requests never sent because ``max_in_flight`` were outstanding
            (also counted as failures of type ``"Dropped"``).
        late_requests: requests that started more than ``late_after_ms`` late.
        late_after_ms: the late threshold in force.
        queued_requests: requests that found every worker busy when they were due and
            waited in the hand-off queue (0 in the asyncio runner: a task per request).
        service_time: time from each request's *actual* start to its end (what a
            closed-model tool would report).
        scheduler_lag: time from each request's intended start to the moment the
            scheduler handed it over (the generator's own accuracy).
        saturated: True when the generator could not hold the schedule.
        saturation_reasons: one sentence per reason, empty when not saturated.
    """

    target_rate_per_s: float
    achieved_rate_per_s: float
    issued_requests: int
    dropped_requests: int
    late_requests: int
    late_after_ms: float
    queued_requests: int
    service_time: LatencySummary
    scheduler_lag: LatencySummary
    saturated: bool
    saturation_reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """Return the stats as a plain dict (the JSON report's shape)."""
        return {**dataclasses.asdict(self), "saturation_reasons": list(self.saturation_reasons)}


class _Latency:
    """A statistic of the run's :class:`LatencySummary`, read as an attribute of the result."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, result: None, owner: type) -> Self: ...
    @overload
    def __get__(self, result: LoadTestResult, owner: type) -> float | None: ...
    def __get__(self, result: LoadTestResult | None, owner: type) -> Self | float | None:
        if result is None:
            return self
        value: float | None = getattr(result.latency, self.name)
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTestResult:
    """The outcome of one load run (or of an exact merge of several). Immutable.

    Attributes:
        name: the scenario's (or caller's) name for the run.
        model: the load model that ran, with its parameters.
        total_requests: finished requests, and dropped ones in the open model; always
            ``successful + failed``.
        successful_requests: requests whose operation returned.
        failed_requests: requests whose operation raised, and dropped requests.
        failures_by_type: failed requests by error type, most frequent first.
        duration_s: from the start to the last finished request, in seconds.
        requests_per_second: ``total_requests / duration_s``.
        latency: latency of every finished request (failures included), in ms: from the
            intended start in the open model, from the actual start in the closed one.
            A dropped request counts from its intended start until a slot freed.
        open_model: the open model's extra measurements; None for the closed model.
        rejections: operations rejected by the client's own circuit breaker
            (``CircuitOpenError``): no request was made, so they are counted here only.
        started_at_unix_s: wall-clock start, in seconds since the epoch.
        samples: the raw samples (kept for exact merges; not compared, not shown).
    """

    name: str
    model: LoadModel
    total_requests: int
    successful_requests: int
    failed_requests: int
    failures_by_type: tuple[tuple[str, int], ...]
    duration_s: float
    requests_per_second: float
    latency: LatencySummary
    open_model: OpenModelStats | None = None
    rejections: int = 0
    started_at_unix_s: float = 0.0
    samples: RunSamples | None = field(default=None, repr=False, compare=False)

    @property
    def model_name(self) -> ModelName:
        """``"closed"`` or ``"open"``."""
        return self.model.name

    @property
    def error_rate(self) -> float:
        """``failed / total`` (0.0 when nothing finished)."""
        return self.failed_requests / self.total_requests if self.total_requests else 0.0

    @property
    def failures(self) -> dict[str, int]:
        """Failures by error type, as a new dict."""
        return dict(self.failures_by_type)

    @property
    def sample_count(self) -> int:
        """How many latency samples the percentiles are computed from."""
        return self.latency.count

    @property
    def percentile_method(self) -> PercentileMethod:
        """How the percentiles were computed."""
        return self.latency.method

    min_ms = _Latency("The fastest request, in ms.")
    avg_ms = _Latency("The mean latency, in ms.")
    max_ms = _Latency("The slowest request, in ms.")
    p50_ms = _Latency("The median latency, in ms.")
    p95_ms = _Latency("The 95th percentile latency, in ms.")
    p99_ms = _Latency("The 99th percentile latency, in ms.")
    p99_9_ms = _Latency("The 99.9th percentile latency in ms; None below 1,000 samples.")

    def as_dict(self) -> dict[str, object]:
        """Return the result as plain data (the ``results`` part of the JSON report)."""
        return {
            "name": self.name,
            "model": self.model_name,
            "total_requests": self.total_requests,
            "successful_requests": self.successful_requests,
            "failed_requests": self.failed_requests,
            "error_rate": self.error_rate,
            "rejections": self.rejections,
            "failures_by_type": dict(self.failures_by_type),
            "duration_s": self.duration_s,
            "requests_per_second": self.requests_per_second,
            "started_at_unix_s": self.started_at_unix_s,
            "latency": self.latency.as_dict(),
            "open_model": None if self.open_model is None else self.open_model.as_dict(),
        }


def _open_stats(model: OpenModel, samples: RunSamples, method: PercentileMethod) -> OpenModelStats:
    schedule_s = max(samples.schedule_ns, 1) / 1e9
    # The generator's accuracy: operations it started, a rejection by the client's own
    # breaker included (started on time; it just sent nothing).
    started = len(samples.service_times_ns) // 8 + samples.rejections
    achieved = started / schedule_s
    target = model.target_rate_per_s
    lag = summarize(unpack_samples(samples.scheduler_lag_ns), method=method)
    reasons: list[str] = []
    if achieved < model.min_achieved_ratio * target:
        reasons.append(
            f"achieved {achieved:.1f} req/s, below {model.min_achieved_ratio:.0%} "
            f"of the target {target:g} req/s"
        )
    if lag.p99_ms is not None and lag.p99_ms > model.max_scheduler_lag_ms:
        reasons.append(
            f"scheduler lag p99 {lag.p99_ms:.2f} ms exceeds {model.max_scheduler_lag_ms:g} ms"
        )
    if samples.dropped:
        reasons.append(
            f"{samples.dropped} requests dropped: {model.max_in_flight} were already "
            "outstanding (max_in_flight)"
        )
    if started and samples.late > model.max_late_ratio * started:
        reasons.append(
            f"{samples.late} of {started} requests ({samples.late / started:.1%}) started "
            f"more than {model.late_after_ms:g} ms late"
        )
    if samples.issued and samples.queued > model.max_late_ratio * samples.issued:
        reasons.append(
            f"{samples.queued} of {samples.issued} requests found no idle worker "
            f"(of {model.workers}) when due and waited in the queue (add workers, or "
            "lower the rate)"
        )
    return OpenModelStats(
        target_rate_per_s=target,
        achieved_rate_per_s=achieved,
        issued_requests=samples.issued,
        dropped_requests=samples.dropped,
        late_requests=samples.late,
        late_after_ms=float(model.late_after_ms),
        queued_requests=samples.queued,
        service_time=summarize(unpack_samples(samples.service_times_ns), method=method),
        scheduler_lag=lag,
        saturated=bool(reasons),
        saturation_reasons=tuple(reasons),
    )


def build_result(
    name: str,
    model: LoadModel,
    samples: RunSamples,
    *,
    method: PercentileMethod = "nearest-rank",
    keep_samples: bool = True,
) -> LoadTestResult:
    """Compute a :class:`LoadTestResult` from raw samples.

    Args:
        name: the run's name.
        model, samples: the model that ran, and its raw samples.
        method: the percentile method.
        keep_samples: keep ``samples`` on the result (needed to merge it later).

    Returns:
        The result.
    """
    total = samples.total_requests
    failed = samples.failed_requests
    duration_s = samples.duration_ns / 1e9
    return LoadTestResult(
        name=name,
        model=model,
        total_requests=total,
        successful_requests=total - failed,
        failed_requests=failed,
        failures_by_type=samples.failures_by_type,
        duration_s=duration_s,
        requests_per_second=total / duration_s if duration_s > 0 else 0.0,
        latency=summarize(unpack_samples(samples.latencies_ns), method=method),
        open_model=_open_stats(model, samples, method) if isinstance(model, OpenModel) else None,
        rejections=samples.rejections,
        started_at_unix_s=samples.started_at_unix_ns / 1e9,
        samples=samples if keep_samples else None,
    )


def merge_samples(parts: Sequence[RunSamples]) -> RunSamples:
    """Concatenate the raw samples of runs that ran at the same time (exact): the merged
    duration spans from the earliest start to the latest end on the (synchronized) wall
    clocks."""
    if not parts:
        raise ValueError("nothing to merge")
    failures = sum((Counter(dict(part.failures_by_type)) for part in parts), Counter[str]())
    start = min(part.started_at_unix_ns for part in parts)
    end = max(part.started_at_unix_ns + part.duration_ns for part in parts)
    merged: dict[str, Any] = {
        name: b"".join(getattr(part, name) for part in parts) for name in SAMPLE_ARRAYS
    }
    merged |= {name: sum(getattr(part, name) for part in parts) for name in SAMPLE_COUNTS}
    return RunSamples(
        **merged,
        failures_by_type=_sorted_counts(failures),
        started_at_unix_ns=start,
        duration_ns=end - start,
        schedule_ns=max(part.schedule_ns for part in parts),
    )


def _merge_models(models: Sequence[LoadModel]) -> LoadModel:
    """The model of runs made side by side: their workers (and rates) add up."""
    first = models[0]
    if isinstance(first, ClosedModel):
        closed = [m for m in models if isinstance(m, ClosedModel)]
        if len(closed) != len(models) or len({(m.iterations, m.duration_s) for m in closed}) != 1:
            raise ValueError("closed runs merge only when they share iterations or duration_s")
        return dataclasses.replace(first, workers=sum(m.workers for m in closed))
    opened = [m for m in models if isinstance(m, OpenModel)]
    if len(opened) != len(models):
        raise ValueError("cannot merge closed-model and open-model runs")
    return dataclasses.replace(
        first,
        rate_per_s=sum(m.rate_per_s for m in opened),
        duration_s=max(m.duration_s for m in opened),
        workers=sum(m.workers for m in opened),
        max_in_flight=sum(m.max_in_flight for m in opened),
    )


def merge_results(
    results: Iterable[LoadTestResult],
    *,
    name: str | None = None,
    method: PercentileMethod | None = None,
) -> LoadTestResult:
    """Merge results of runs that ran at the same time into one, exactly: the statistics
    are computed again over the concatenated raw samples. Rates, workers and
    ``max_in_flight`` add up.

    Args:
        results: the results; each must carry its ``samples`` (``keep_samples=True``).
        name: the merged run's name (default: the first result's).
        method: the percentile method (default: the first result's).

    Returns:
        The merged result.

    Raises:
        ValueError: no results, a result without samples, or models that do not merge.
    """
    items = list(results)
    if not items:
        raise ValueError("nothing to merge")
    parts: list[RunSamples] = []
    for item in items:
        if item.samples is None:
            raise ValueError(f"result {item.name!r} has no samples (keep_samples=False)")
        parts.append(item.samples)
    return build_result(
        items[0].name if name is None else name,
        _merge_models([item.model for item in items]),
        merge_samples(parts),
        method=items[0].percentile_method if method is None else method,
    )
