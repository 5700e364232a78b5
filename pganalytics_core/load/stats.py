"""Exact latency statistics: order statistics, percentiles and summaries of int samples.

Samples are ints of nanoseconds in an ``array('q')``. Nothing is binned or estimated, so
the percentiles of a merge of several runs equal those of one run over the same samples.
Percentile methods (the method is named in every summary):

* ``"nearest-rank"`` (the default; what wrk2 and HdrHistogram report): the ``q``-th
  percentile is the smallest sample such that at least ``q`` % of the samples are less
  than or equal to it, i.e. the sample of 1-based rank ``ceil(q / 100 * n)``: always a
  sample, so never above the maximum.
* ``"inclusive"`` (Excel's ``PERCENTILE.INC``, numpy's default ``"linear"``, R type 7):
  linear interpolation between the samples of 0-based ranks ``floor(h)`` and
  ``floor(h) + 1`` with ``h = (n - 1) * q / 100``; also within the minimum and maximum.

p99.9 is only reported from 1,000 samples on: below that, its nearest rank is the maximum.

The ranks are computed here, exactly (``99.9`` is 999/10, not the nearest binary float),
and the order statistics at those ranks come from ``numpy.partition`` (introselect, on a
copy: the samples are left untouched); the interpolation weight is an exact fraction and
the mean an exact integer sum. numpy is a dependency of the load runner (the ``load``
extra): sorting 10^6 ints in pure Python takes 0.3-0.6 s, a summary with numpy ~15 ms.
"""

from __future__ import annotations

import array
import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal, get_args

try:
    import numpy
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("the load runner needs numpy: pip install 'pganalytics_core[load]'") from exc

__all__ = [
    "LatencySummary",
    "P99_9_MIN_SAMPLES",
    "PERCENTILE_METHODS",
    "PercentileMethod",
    "percentile_ranks",
    "percentiles",
    "select_ranks",
    "summarize",
]

#: How a percentile is computed from the samples; see the module docstring.
PercentileMethod = Literal["nearest-rank", "inclusive"]
#: The accepted values of :data:`PercentileMethod`.
PERCENTILE_METHODS: Final[tuple[str, ...]] = get_args(PercentileMethod)
#: The smallest sample count for which a summary reports p99.9.
P99_9_MIN_SAMPLES: Final = 1000

_INT64_MAX: Final = 2**63 - 1
_Int64s = numpy.ndarray[tuple[int], numpy.dtype[numpy.int64]]


def _check_method(method: str) -> None:
    if method not in PERCENTILE_METHODS:
        raise ValueError(f"method must be one of {list(PERCENTILE_METHODS)}, got {method!r}")


def _fraction(q: float) -> Fraction:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 100:
        raise ValueError(f"a percentile must be a number in [0, 100], got {q!r}")
    # From the decimal text, so that 99.9 means 999/10 and not the nearest binary float.
    return Fraction(repr(float(q)))


def percentile_ranks(n: int, q: float, method: PercentileMethod) -> tuple[int, int, Fraction]:
    """Return the 0-based ranks a percentile reads and the interpolation weight.

    Args:
        n: the number of samples (>= 1).
        q: the percentile, in [0, 100].
        method: ``"nearest-rank"`` or ``"inclusive"``.

    Returns:
        ``(low, high, weight)``: the percentile is ``x[low] + weight * (x[high] - x[low])``
        over the sorted samples ``x``; for nearest-rank ``low == high`` and ``weight == 0``.
    """
    _check_method(method)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    fraction = _fraction(q)
    if method == "nearest-rank":
        rank = max(math.ceil(fraction * n / 100), 1)  # 1-based
        return rank - 1, rank - 1, Fraction(0)
    h = fraction * (n - 1) / 100
    low = math.floor(h)
    weight = h - low
    return low, min(low + 1, n - 1), weight


def percentiles(
    samples: Sequence[int], qs: Iterable[float], *, method: PercentileMethod = "nearest-rank"
) -> tuple[float, ...]:
    """Compute exact percentiles of int samples, in the samples' unit.

    Args:
        samples: the samples (an ``array('q')`` is fastest; any sequence of ints works).
        qs: the percentiles wanted, each in [0, 100].
        method: ``"nearest-rank"`` (default) or ``"inclusive"``; see the module docstring.

    Returns:
        One value per entry of ``qs``, in order (floats; whole numbers for nearest-rank).

    Raises:
        ValueError: no samples, a percentile out of range, or an unknown method.
    """
    _check_method(method)
    data = _as_int64(samples)
    if len(data) == 0:
        raise ValueError("cannot compute percentiles of no samples")
    return tuple(_percentiles(data, qs, method)[0])


def _percentiles(
    data: _Int64s,
    qs: Iterable[float],
    method: PercentileMethod,
    ranks: Iterable[int] = (),
) -> tuple[list[float], dict[int, int]]:
    """The percentiles ``qs`` of ``data`` (not empty), and the order statistics read for
    them and at ``ranks``, found in one selection."""
    plans = [percentile_ranks(len(data), q, method) for q in qs]
    found = _select(data, {*ranks, *(rank for low, high, _ in plans for rank in (low, high))})
    values = [
        float(found[low] + weight * (found[high] - found[low])) if weight else float(found[low])
        for low, high, weight in plans
    ]
    return values, found


def select_ranks(values: Sequence[int], ranks: Iterable[int]) -> dict[int, int]:
    """Return the order statistics of ``values`` at the given 0-based ranks:
    ``select_ranks(v, [k])[k] == sorted(v)[k]``, by ``numpy.partition`` (``v`` untouched).

    Args:
        values: int samples; an ``array('q')`` is read in place, anything else is copied
            into one (so floats are refused, never truncated).
        ranks: 0-based ranks, each in ``[0, len(values))``.

    Returns:
        A dict from each requested rank to its value.

    Raises:
        ValueError: a rank is out of range.
    """
    data = _as_int64(values)
    wanted = set(ranks)
    if wanted and (min(wanted) < 0 or max(wanted) >= len(data)):
        raise ValueError(f"ranks must be in [0, {len(data)}), got {min(wanted)}..{max(wanted)}")
    return _select(data, wanted) if wanted else {}


def _as_int64(values: Sequence[int]) -> _Int64s:
    """``values`` as an int64 numpy view: of the array itself when it is an ``array('q')``."""
    if not (isinstance(values, array.array) and values.typecode == "q"):
        values = array.array("q", values)  # ints only: a float is a TypeError
    return numpy.frombuffer(values, dtype=numpy.int64)


def _select(data: _Int64s, wanted: set[int]) -> dict[int, int]:
    """The order statistics at valid ranks (introselect on a copy)."""
    ordered = sorted(wanted)
    parted = numpy.partition(data, ordered)
    return {k: int(parted[k]) for k in ordered}


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencySummary:
    """Exact statistics of duration samples, in milliseconds: every value is ``None`` without
    samples, ``p99_9_ms`` also below :data:`P99_9_MIN_SAMPLES` samples.

    Attributes:
        count: the number of samples.
        method: how the percentiles were computed (see :mod:`pganalytics_core.load.stats`).
        min_ms, avg_ms, max_ms: the smallest, mean and largest sample.
        p50_ms, p95_ms, p99_ms, p99_9_ms: percentiles.
    """

    count: int
    method: PercentileMethod
    min_ms: float | None = None
    avg_ms: float | None = None
    max_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    p99_9_ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the summary as a plain dict (the JSON report's shape)."""
        return dataclasses.asdict(self)


_NS_PER_MS: Final = 1_000_000


def summarize(
    samples_ns: Sequence[int], *, method: PercentileMethod = "nearest-rank"
) -> LatencySummary:
    """Summarize duration samples given in nanoseconds.

    Args:
        samples_ns: the samples, ints of nanoseconds (an ``array('q')`` is fastest).
        method: the percentile method; see the module docstring.

    Returns:
        The exact summary, in milliseconds.

    Raises:
        ValueError: the method is unknown.
    """
    _check_method(method)
    data = _as_int64(samples_ns)
    n = len(data)
    if n == 0:
        return LatencySummary(count=0, method=method)
    qs = [50.0, 95.0, 99.0, 99.9] if n >= P99_9_MIN_SAMPLES else [50.0, 95.0, 99.0]
    values, found = _percentiles(data, qs, method, (0, n - 1))
    low, high = found[0], found[n - 1]
    values_ms = [value / _NS_PER_MS for value in values]
    if max(abs(low), abs(high)) * n <= _INT64_MAX:  # no int64 overflow: exact
        total = int(data.sum(dtype=numpy.int64))
    else:
        total = sum(data.tolist())
    return LatencySummary(
        count=n,
        method=method,
        min_ms=low / _NS_PER_MS,
        avg_ms=total / n / _NS_PER_MS,
        max_ms=high / _NS_PER_MS,
        p50_ms=values_ms[0],
        p95_ms=values_ms[1],
        p99_ms=values_ms[2],
        p99_9_ms=values_ms[3] if n >= P99_9_MIN_SAMPLES else None,
    )
