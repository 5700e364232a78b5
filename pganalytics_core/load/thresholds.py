"""Pass/fail thresholds in the style of k6: ``{"p95_ms": "<200", "error_rate": "<0.05"}``.

Each key is a metric of a :class:`~pganalytics_core.load.result.LoadTestResult` (see
:data:`METRICS`), each value a condition (``"<200"``: an operator among ``<``, ``<=``,
``>``, ``>=``, ``==``, ``!=`` and a number) or a list of them (``["<200", "<=250"]``). A
metric without a value (a percentile of a run with no samples, an open-model metric of a
closed run) fails its threshold: absence is never a pass. Open-model runs of the
``pganalytics-load`` command also check :data:`OPEN_MODEL_THRESHOLDS` (no dropped request,
a generator that held its schedule) unless told otherwise.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from pganalytics_core.errors import ConfigError
from pganalytics_core.load.result import LoadTestResult

__all__ = [
    "METRICS",
    "OPEN_MODEL_THRESHOLDS",
    "Threshold",
    "ThresholdResult",
    "ThresholdSpec",
    "evaluate_thresholds",
    "format_number",
    "parse_thresholds",
]

#: What :func:`parse_thresholds` accepts: metric -> condition or conditions.
ThresholdSpec = Mapping[str, str | Iterable[str]]


def _of_open_model(path: str) -> Callable[[LoadTestResult], float | None]:
    """Read ``path`` of the result's :class:`OpenModelStats` (no value for a closed run)."""
    read = operator.attrgetter(path)
    return lambda result: None if result.open_model is None else read(result.open_model)


def _achieved_ratio(result: LoadTestResult) -> float | None:
    stats = result.open_model
    if stats is None or not stats.target_rate_per_s:
        return None
    return stats.achieved_rate_per_s / stats.target_rate_per_s


#: Every metric a threshold can name, with how to read it from a result.
METRICS: Final[Mapping[str, Callable[[LoadTestResult], float | None]]] = {
    "total_requests": operator.attrgetter("total_requests"),
    "successful_requests": operator.attrgetter("successful_requests"),
    "failed_requests": operator.attrgetter("failed_requests"),
    "error_rate": lambda r: r.error_rate if r.total_requests else None,
    "rejections": operator.attrgetter("rejections"),
    "rps": operator.attrgetter("requests_per_second"),
    **{name: operator.attrgetter(name) for name in ("duration_s", "min_ms", "avg_ms", "max_ms")},
    **{name: operator.attrgetter(name) for name in ("p50_ms", "p95_ms", "p99_ms", "p99_9_ms")},
    "achieved_rate": _of_open_model("achieved_rate_per_s"),
    "achieved_ratio": _achieved_ratio,
    "dropped_requests": _of_open_model("dropped_requests"),
    "late_requests": _of_open_model("late_requests"),
    "service_p50_ms": _of_open_model("service_time.p50_ms"),
    "service_p95_ms": _of_open_model("service_time.p95_ms"),
    "service_p99_ms": _of_open_model("service_time.p99_ms"),
    "lag_p50_ms": _of_open_model("scheduler_lag.p50_ms"),
    "lag_p99_ms": _of_open_model("scheduler_lag.p99_ms"),
    "queued_requests": _of_open_model("queued_requests"),
    # 1 when the generator could not hold the schedule, 0 when it did.
    "saturated": _of_open_model("saturated"),
}

#: The thresholds the CLI adds to every open-model run (unless told otherwise): a run
#: that dropped requests or could not hold its schedule did not measure what it claims.
OPEN_MODEL_THRESHOLDS: Final[Mapping[str, str]] = MappingProxyType(
    {"dropped_requests": "==0", "saturated": "==0"}
)

_OPERATORS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION: Final = re.compile(
    r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """One condition on one metric, e.g. ``p95_ms < 200``.

    Attributes:
        metric: a name from :data:`METRICS`.
        op: the comparison operator.
        limit: the number compared against.
    """

    metric: str
    op: str
    limit: float

    @property
    def expression(self) -> str:
        """The condition, normalized but exact: ``"<200"``, ``"<0.1234567"``."""
        return f"{self.op}{format_number(self.limit)}"

    def check(self, value: float | None) -> bool:
        """Return whether ``value`` satisfies the condition (None never does)."""
        return value is not None and _OPERATORS[self.op](value, self.limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdResult:
    """The verdict on one threshold.

    Attributes:
        threshold: the condition.
        actual: the metric's value, or None when the run has no such value.
        passed: whether the condition holds.
    """

    threshold: Threshold
    actual: float | None
    passed: bool

    def describe(self) -> str:
        """One line for a person: ``"p95_ms < 200: 12.3 ok"``."""
        verdict = "ok" if self.passed else "FAILED"
        t = self.threshold
        return f"{t.metric} {t.op} {format_number(t.limit)}: {self.actual_text} {verdict}"

    @property
    def actual_text(self) -> str:
        """The actual value for a person: six significant digits, or every digit needed
        to tell it from the limit (``0.0100003`` against ``<0.01``); ``"no value"``."""
        if self.actual is None:
            return "no value"
        short = f"{self.actual:.6g}"
        if float(short) == self.threshold.limit and self.actual != self.threshold.limit:
            return format_number(self.actual)
        return short

    def as_dict(self) -> dict[str, object]:
        """The verdict as plain data (the JSON report's shape)."""
        return {
            "metric": self.threshold.metric,
            "condition": self.threshold.expression,
            "actual": self.actual,
            "passed": self.passed,
        }


def format_number(value: float) -> str:
    """Write a limit exactly: ``200`` for a whole number, else the shortest exact repr."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _parse_condition(metric: str, text: object) -> Threshold:
    if not isinstance(text, str):
        raise ConfigError(
            f"thresholds[{metric!r}]", f"a condition must be a string like '<200', got {text!r}"
        )
    match = _CONDITION.match(text)
    if match is None:
        raise ConfigError(
            f"thresholds[{metric!r}]",
            f"cannot read condition {text!r}: write an operator (<, <=, >, >=, ==, !=) "
            "and a number, e.g. '<200'",
        )
    limit = float(match.group(2))
    if not math.isfinite(limit):
        raise ConfigError(f"thresholds[{metric!r}]", f"the limit must be finite, got {text!r}")
    return Threshold(metric=metric, op=match.group(1), limit=limit)


def parse_thresholds(spec: ThresholdSpec) -> tuple[Threshold, ...]:
    """Read a k6-style threshold mapping.

    Args:
        spec: metric name -> condition (``"<200"``) or an iterable of conditions.

    Returns:
        One :class:`Threshold` per condition, in the order given.

    Raises:
        ConfigError: not a mapping, an unknown metric (the message lists the known ones)
            or a condition that cannot be read (not a string, no operator, no number).
    """
    if not isinstance(spec, Mapping):
        raise ConfigError("thresholds", f"must be a mapping of metric to condition, got {spec!r}")
    parsed: list[Threshold] = []
    for metric, conditions in spec.items():
        if metric not in METRICS:
            raise ConfigError(
                "thresholds",
                f"unknown metric {metric!r}; known metrics: {', '.join(sorted(METRICS))}",
            )
        if isinstance(conditions, str):
            items: list[object] = [conditions]
        elif isinstance(conditions, Iterable) and not isinstance(conditions, bytes | Mapping):
            items = list(conditions)
        else:
            raise ConfigError(
                f"thresholds[{metric!r}]",
                f"a condition must be a string like '<200' (or a list of them), got {conditions!r}",
            )
        if not items:
            raise ConfigError(f"thresholds[{metric!r}]", "needs at least one condition")
        parsed.extend(_parse_condition(metric, item) for item in items)
    return tuple(parsed)


def evaluate_thresholds(
    result: LoadTestResult, thresholds: ThresholdSpec | Iterable[Threshold]
) -> tuple[ThresholdResult, ...]:
    """Check thresholds against a result.

    Args:
        result: the run's result.
        thresholds: a k6-style mapping, or thresholds from :func:`parse_thresholds`.

    Returns:
        One verdict per condition, in order.

    Raises:
        ConfigError: the mapping cannot be read (see :func:`parse_thresholds`).
    """
    parsed = parse_thresholds(thresholds) if isinstance(thresholds, Mapping) else tuple(thresholds)
    verdicts: list[ThresholdResult] = []
    for t in parsed:
        value = METRICS[t.metric](result)
        actual = None if value is None else float(value)
        verdicts.append(ThresholdResult(threshold=t, actual=actual, passed=t.check(actual)))
    return tuple(verdicts)
