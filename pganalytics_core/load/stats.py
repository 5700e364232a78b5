"""Exact latency statistics: order statistics, percentiles and summaries of int samples.

Samples are ints of nanoseconds in an ``array('q')``. Every statistic is exact: nothing is
binned or estimated, so the percentiles of a merge of several runs equal those of one run
over the same samples.

Percentile methods (the method is named in every summary):

* ``"nearest-rank"`` (the default; what wrk2 and HdrHistogram report): the ``q``-th
  percentile is the smallest sample such that at least ``q`` % of the samples are less
  than or equal to it, i.e. the sample of 1-based rank ``ceil(q / 100 * n)``. It is always
  one of the samples, so it can never exceed the maximum.
* ``"inclusive"`` (Excel's ``PERCENTILE.INC``, numpy's default ``"linear"``, R type 7):
  linear interpolation between the samples of 0-based ranks ``floor(h)`` and
  ``floor(h) + 1`` with ``h = (n - 1) * q / 100``. Also bounded by the minimum and the
  maximum.

p99.9 is only reported from 1,000 samples on: below that, its nearest rank is the maximum.

Speed: sorting 10^6 ints with ``sorted`` takes 0.3-0.6 s on a small shared machine, too
slow for a summary. :func:`select_ranks` finds the few order statistics a summary needs
without sorting everything:

* when numpy can be imported (it is optional, never a dependency), ``numpy.partition``
  (introselect) on a copy of the samples: exact, ~15 ms for 10^6 samples;
* otherwise a most-significant-byte-first radix *selection* that works on whole byte
  planes of the samples with C-speed ``bytes`` methods (``translate`` to count a bucket
  and to keep the few bytes at a plane's ends, big-int ``&``/``|`` to keep a bucket's
  members), places every wanted rank in a bucket (a sample of the data guesses where;
  the highest ranks are read from the sorted tail of the plane, the minimum and maximum
  from its few extreme bytes), narrows each to at most 65,536 samples, extracts those
  (``bytes.find`` skips the rest) and selects among them. Each sample is touched by a
  handful of C passes over one byte each, never boxed, except by the exact ``sum``.

Both paths give identical results; :func:`sorted` remains the reference they are tested
against. For 10^6 log-normal latencies a summary took ~120-140 ms with the previous pure
selection, ~80-90 ms with this one, ~15 ms with numpy (a quiet 2-core machine).
"""

from __future__ import annotations

import array
import bisect
import functools
import importlib
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import ModuleType
from typing import Final, Literal, get_args

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

# Inputs of at most this many samples are sorted (faster than any selection there).
_SORT_CUTOFF: Final = 16384
# Size of the strided sample that guesses each rank's bucket (a guess only: every bucket
# is then confirmed by exact counts, so a bad guess costs time, never correctness).
_GUESS_SAMPLE: Final = 16384
# Buckets of at most this many samples are extracted (about 0.3 us a sample) rather than
# split further in place (a few full passes over one byte plane, several ms).
_EXTRACT_MAX: Final = 65536
# Up to this many bytes of a plane's edge are sorted or scanned (about 0.1 us a byte) to
# place the extreme ranks, rather than searched by counting (a full pass per count).
_TAIL_MAX: Final = 16384
# Use numpy for large inputs when it can be imported (tests switch it off and on).
_USE_NUMPY = True
_INT64_MAX: Final = 2**63 - 1

_DELETE_AT_LEAST: Final = tuple(bytes(range(t, 256)) for t in range(257))  # keeps < t
_DELETE_BELOW: Final = tuple(bytes(range(t)) for t in range(257))  # keeps >= t
_EQUAL_FF: Final = tuple(bytes(0xFF if v == c else 0 for v in range(256)) for c in range(256))
_ABOVE_FF: Final = tuple(bytes(0xFF if v > c else 0 for v in range(256)) for c in range(256))
_FF_TO_ONE: Final = bytes(1 if v == 0xFF else 0 for v in range(256))
_NEGATIVE_TOP_BYTES: Final = bytes(range(0x80, 0x100))


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
        ValueError: ``samples`` is empty, a percentile is out of range, or the method is
            unknown.
    """
    _check_method(method)
    values = _as_int64(samples)
    n = len(values)
    if n == 0:
        raise ValueError("cannot compute percentiles of no samples")
    plans = [percentile_ranks(n, q, method) for q in qs]
    wanted = {rank for low, high, _ in plans for rank in (low, high)}
    found = select_ranks(values, wanted)
    return tuple(_interpolate(found, low, high, weight) for low, high, weight in plans)


def _interpolate(found: dict[int, int], low: int, high: int, weight: Fraction) -> float:
    base = found[low]
    if not weight:
        return float(base)
    return float(base + weight * (found[high] - base))


def select_ranks(values: Sequence[int], ranks: Iterable[int]) -> dict[int, int]:
    """Return the order statistics of ``values`` at the given 0-based ranks.

    ``select_ranks(v, [k])[k] == sorted(v)[k]``, computed without sorting ``v`` when it is
    large (see the module docstring). ``values`` is not modified.

    Args:
        values: int samples; an ``array('q')`` is used as it is, anything else is copied
            into one.
        ranks: 0-based ranks, each in ``[0, len(values))``.

    Returns:
        A dict from each requested rank to its value.

    Raises:
        ValueError: a rank is out of range.
    """
    data = _as_int64(values)
    n = len(data)
    wanted = sorted(set(ranks))
    if wanted and (wanted[0] < 0 or wanted[-1] >= n):
        raise ValueError(f"ranks must be in [0, {n}), got {wanted[0]}..{wanted[-1]}")
    if not wanted:
        return {}
    return _select(data, wanted, None)


def _as_int64(values: Sequence[int]) -> array.array[int]:
    """``values`` as an ``array('q')``: itself when it is one, else a copy (ints only)."""
    if isinstance(values, array.array) and values.typecode == "q":
        return values
    return array.array("q", values)


def _select(data: array.array[int], wanted: list[int], planes: _Planes | None) -> dict[int, int]:
    """:func:`select_ranks` on an ``array('q')``, with valid sorted ranks."""
    n = len(data)
    if n > _SORT_CUTOFF:
        numpy = _numpy()
        if numpy is not None:
            return _numpy_select(numpy, data, wanted)
        if planes is None:
            planes = _Planes(data)
        if not planes.has_negative():
            return _radix_select(planes, data, wanted)
    ordered = sorted(data)
    return {k: ordered[k] for k in wanted}


# ------------------------------------------------------------ the optional numpy path


@functools.cache
def _load_numpy() -> ModuleType | None:
    try:
        return importlib.import_module("numpy")
    except ImportError:
        return None


def _numpy() -> ModuleType | None:
    """numpy when it can be imported and :data:`_USE_NUMPY` is on, else None."""
    return _load_numpy() if _USE_NUMPY else None


def _numpy_select(numpy: ModuleType, data: array.array[int], wanted: list[int]) -> dict[int, int]:
    # np.partition (introselect) on a copy: exact, and the samples are left untouched.
    view = numpy.frombuffer(data, dtype=numpy.int64)
    parted = numpy.partition(view, wanted)
    return {k: int(parted[k]) for k in wanted}


def _numpy_sum(numpy: ModuleType, data: array.array[int], low: int, high: int) -> int:
    n = len(data)
    if max(abs(low), abs(high)) * n <= _INT64_MAX:  # no int64 overflow: exact
        return int(numpy.frombuffer(data, dtype=numpy.int64).sum(dtype=numpy.int64))
    return sum(data)


# -------------------------------------------------------------- the pure-Python path


class _Planes:
    """Byte planes of int64 samples: plane ``k`` holds byte ``k`` of every sample.

    One little-endian copy of the samples is sliced into planes lazily, and each plane
    (and its big-int form) is kept for the rest of the selection.
    """

    __slots__ = ("_ints", "_planes", "n", "raw")

    def __init__(self, data: array.array[int]) -> None:
        self.n = len(data)
        self.raw = _little_endian_bytes(data)
        self._planes: dict[int, bytes] = {}
        self._ints: dict[int, int] = {}

    def plane(self, level: int) -> bytes:
        found = self._planes.get(level)
        if found is None:
            found = self._planes[level] = self.raw[level::8]
        return found

    def plane_int(self, level: int) -> int:
        found = self._ints.get(level)
        if found is None:
            found = self._ints[level] = int.from_bytes(self.plane(level), "little")
        return found

    def has_negative(self) -> bool:
        top = self.plane(7)
        if top.count(top[0]) == self.n:  # the usual case: one top byte, checked once
            return top[0] >= 0x80
        return len(top.translate(None, _NEGATIVE_TOP_BYTES)) != self.n


def _little_endian_bytes(data: array.array[int]) -> bytes:
    if sys.byteorder == "little":
        return data.tobytes()
    swapped = array.array("q", data)
    swapped.byteswap()
    return swapped.tobytes()


def _extract(data: array.array[int], selector: bytes) -> array.array[int]:
    """The samples whose selector byte is 0xFF, in order (``bytes.find`` skips the rest
    at C speed, so only the selected samples cost Python work)."""
    found: array.array[int] = array.array("q")
    append = found.append
    get = data.__getitem__
    find = selector.find
    index = find(0xFF)
    while index >= 0:
        append(get(index))
        index = find(0xFF, index + 1)
    return found


def _radix_select(planes: _Planes, data: array.array[int], ranks: list[int]) -> dict[int, int]:
    """Radix selection over non-negative int64 samples; see the module docstring.

    Each *group* of ranks shares a value range ``[low, low + 256 ** (level + 1))`` whose
    members it knows only as a byte mask over ``data`` (``members``, 0xFF per member, as a
    big int; ``None`` for all of ``data``) plus the non-members above it (``above``), so
    that the composite plane ``(plane & members) | above`` orders members by their byte
    at ``level`` while non-members sort to 0x00 (below) or 0xFF (above), and counting
    ``composite < t`` minus ``below`` (the samples under the range) counts members.
    A bucket of at most :data:`_EXTRACT_MAX` samples (and an eighth of them) is not split
    further: its samples are extracted (every such bucket of a group in one pass) and
    the ranks are selected among the extracted samples.
    """
    n = len(data)
    plane = planes.plane

    level = 7
    prefix = 0
    while level >= 0:
        current = plane(level)
        if current.count(current[0]) != n:
            break
        prefix |= current[0] << (8 * level)
        level -= 1
    if level < 0:  # every sample is equal
        return dict.fromkeys(ranks, prefix)

    guesses = sorted(data[:: max(n // _GUESS_SAMPLE, 1)])
    n_guesses = len(guesses)
    extract_max = min(_EXTRACT_MAX, n // 8)
    result: dict[int, int] = {}
    # (ranks, level, low, below, size, members, above)
    pending: list[tuple[list[int], int, int, int, int, int | None, int]] = [
        (ranks, level, prefix, 0, n, None, 0)
    ]
    extracted: list[tuple[int, int, int, list[int]]] = []  # (low, below, size, ranks)
    pieces: list[array.array[int]] = []  # the samples of the extracted buckets
    while pending:
        group_ranks, level, low, below, size, members, above = pending.pop()
        shift = 8 * level
        bytes_at = plane(level)
        if members is None:
            composite = bytes_at
        else:
            composite = ((planes.plane_int(level) & members) | above).to_bytes(n, "little")
        members_below = _MemberCounter(composite, below, size)

        buckets: dict[int, list[int]] = {}
        previous: int | None = None  # the bucket of the previous (lower) rank
        for rank in group_ranks:
            target = rank - below
            guess = guesses[min(rank * n_guesses // n, n_guesses - 1)]
            start = min(max((guess - low) >> shift, 0), 255)
            members_below.rank = rank
            bucket = None
            if target == 0:
                bucket = members_below.smallest(start)
            elif previous is not None:
                bucket = members_below.in_tail(previous, target)
            if bucket is None and target == size - 1:
                bucket = members_below.largest(start)
            if bucket is None:
                bucket = _find_bucket(members_below, target, start)
            buckets.setdefault(bucket, []).append(rank)
            previous = bucket
        by_translate = bytearray(256)  # the buckets the composite itself can select
        by_mask: list[int] = []  # the others (0 or 255 while non-members sort there too)
        for bucket, bucket_ranks in buckets.items():
            members_below.rank = bucket_ranks[0]
            under = members_below(bucket)
            bucket_size = members_below(bucket + 1) - under
            bucket_low = low + (bucket << shift)
            if level == 0:  # the bucket holds a single value
                for rank in bucket_ranks:
                    result[rank] = bucket_low
            elif bucket_size <= extract_max:
                extracted.append((bucket_low, below + under, bucket_size, bucket_ranks))
                if (bucket or not below) and (bucket != 255 or below + size == n):
                    by_translate[bucket] = 0xFF
                else:
                    by_mask.append(bucket)
            else:
                # Split further: the members of this bucket, and the samples above it.
                equal = int.from_bytes(bytes_at.translate(_EQUAL_FF[bucket]), "little")
                higher = int.from_bytes(bytes_at.translate(_ABOVE_FF[bucket]), "little")
                pending.append(
                    (
                        bucket_ranks,
                        level - 1,
                        bucket_low,
                        below + under,
                        bucket_size,
                        equal if members is None else equal & members,
                        higher if members is None else above | (higher & members),
                    )
                )
        if any(by_translate):
            pieces.append(_extract(data, composite.translate(by_translate)))
        for bucket in by_mask:
            assert members is not None  # the whole plane never needs a mask
            equal = int.from_bytes(bytes_at.translate(_EQUAL_FF[bucket]), "little")
            pieces.append(_extract(data, (equal & members).to_bytes(n, "little")))
    if extracted:
        # The extracted buckets are disjoint value ranges: in value order, a rank's place
        # among the extracted samples follows from the sizes of the buckets before it.
        union = array.array("q")
        for piece in pieces:
            union.extend(piece)
        extracted.sort(key=lambda item: item[0])
        mapped: dict[int, int] = {}
        offset = 0
        for _, under, bucket_size, bucket_ranks in extracted:
            for rank in bucket_ranks:
                mapped[rank] = offset + rank - under
            offset += bucket_size
        if 2 * len(union) > n:  # many ranks in many buckets: no gain in recursing
            ordered = sorted(union)
            found = {k: ordered[k] for k in mapped.values()}
        else:
            found = select_ranks(union, mapped.values())
        for rank, union_rank in mapped.items():
            result[rank] = found[union_rank]
    return result


class _MemberCounter:
    """Counts the members of a group whose byte at the current level is below a bucket."""

    __slots__ = ("_below", "_composite", "_counts", "_size", "_tail", "rank")

    def __init__(self, composite: bytes, below: int, size: int) -> None:
        self._composite = composite
        self._below = below
        self._size = size
        self._counts: dict[int, int] = {}
        self._tail: tuple[int, int, list[int]] | None = None
        #: The rank being searched: decides which side of the plane is cheaper to copy.
        self.rank = 0

    def __call__(self, t: int) -> int:
        if t <= 0:
            return 0
        if t >= 256:
            return self._size
        found = self._counts.get(t)
        if found is None:
            # One pass keeps the smaller side of the plane (by the rank searched); the
            # count of its edge byte then gives the next bucket's count too (a bucket
            # search almost always asks for t and t + 1).
            composite = self._composite
            n = len(composite)
            below = self._below
            if 2 * self.rank < n:
                head = composite.translate(None, _DELETE_AT_LEAST[min(t + 1, 256)])
                upto = len(head) - below
                found = upto - head.count(t)
                if t < 255:
                    self._counts[t + 1] = upto
            else:
                tail = composite.translate(None, _DELETE_BELOW[t])
                found = n - len(tail) - below
                if t < 255:
                    self._counts[t + 1] = found + tail.count(t)
            self._counts[t] = found
        return found

    def smallest(self, start: int) -> int | None:
        """The smallest member byte, for the group that holds the minimum of all the
        samples (``start`` is the bucket of a sample, so the answer is <= ``start``);
        None when too many bytes are below ``start`` to compare them cheaply."""
        if self._below:  # the group holds the minimum only when nothing is below it
            return None
        if start == 0:
            return 0
        head = self._composite.translate(None, _DELETE_AT_LEAST[start])
        self._counts.setdefault(start, len(head))
        if not head:
            return start
        return min(head) if len(head) <= _TAIL_MAX else None

    def largest(self, start: int) -> int | None:
        """The largest member byte, for the group that holds the maximum of all the
        samples (``start`` is the bucket of a sample, so the answer is >= ``start``);
        None when too many bytes are above ``start`` to compare them cheaply.

        A heavy tail's maximum, which a sample guesses badly, costs one pass over the
        plane and a look at the few bytes above the guess, instead of a long search.
        """
        composite = self._composite
        n = len(composite)
        if n - self._below - self._size:  # samples above the group: not the maximum
            return None
        if start == 255:
            return 255
        tail = composite.translate(None, _DELETE_BELOW[start + 1])
        self._counts.setdefault(start + 1, n - len(tail) - self._below)
        if not tail:
            return start
        return max(tail) if len(tail) <= _TAIL_MAX else None

    def in_tail(self, low_bucket: int, target: int) -> int | None:
        """The bucket of the member of 0-based rank ``target`` within the group, read
        from the sorted bytes >= ``low_bucket`` (a bucket known to be <= the answer),
        when those are few; else None. The sorted tail is kept for the next ranks and
        answers their counts too, so the highest percentiles cost one pass together.
        """
        if low_bucket == 0:  # the tail would hold the samples below the group too
            return None
        tail = self._tail
        if tail is None or tail[0] != low_bucket:
            base = self(low_bucket)
            if len(self._composite) - self._below - base > _TAIL_MAX:
                return None
            kept = self._composite.translate(None, _DELETE_BELOW[low_bucket])
            tail = self._tail = (low_bucket, base, sorted(kept))
        _, base, ordered = tail
        bucket = ordered[target - base]
        counts = self._counts
        counts.setdefault(bucket, base + bisect.bisect_left(ordered, bucket))
        if bucket < 255:
            counts.setdefault(bucket + 1, base + bisect.bisect_left(ordered, bucket + 1))
        return bucket


def _find_bucket(members_below: Callable[[int], int], target: int, start: int) -> int:
    """Return the largest bucket c in [0, 255] with members_below(c) <= target.

    Gallops from ``start`` (a guess) and then bisects, so a good guess costs two counts.
    """
    if members_below(start) <= target:
        low, high, step = start, 255, 1
        while low < 255:
            probe = min(low + step, 255)
            if members_below(probe) <= target:
                low = probe
                step *= 2
            else:
                high = probe - 1
                break
    else:
        low, high, step = 0, start - 1, 1
        while True:
            probe = max(high - step + 1, 0)
            if members_below(probe) <= target:
                low = probe
                break
            high = probe - 1
            step *= 2
    while low < high:
        middle = (low + high + 1) // 2
        if members_below(middle) <= target:
            low = middle
        else:
            high = middle - 1
    return low


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencySummary:
    """Exact statistics of a set of duration samples, in milliseconds.

    Every value is ``None`` when there are no samples; ``p99_9_ms`` is also ``None`` below
    :data:`P99_9_MIN_SAMPLES` samples.

    Attributes:
        count: the number of samples.
        method: how the percentiles were computed (see :mod:`pganalytics_core.load.stats`).
        min_ms, avg_ms, max_ms: the smallest, mean and largest sample.
        p50_ms, p95_ms, p99_ms, p99_9_ms: percentiles.
    """

    count: int
    method: PercentileMethod
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None

    def as_dict(self) -> dict[str, object]:
        """Return the summary as a plain dict (the JSON report's shape)."""
        return {
            "count": self.count,
            "method": self.method,
            "min_ms": self.min_ms,
            "avg_ms": self.avg_ms,
            "max_ms": self.max_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "p99_9_ms": self.p99_9_ms,
        }


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
        return LatencySummary(
            count=0,
            method=method,
            min_ms=None,
            avg_ms=None,
            max_ms=None,
            p50_ms=None,
            p95_ms=None,
            p99_ms=None,
            p99_9_ms=None,
        )
    qs: list[float] = [50.0, 95.0, 99.0]
    if n >= P99_9_MIN_SAMPLES:
        qs.append(99.9)
    plans = [percentile_ranks(n, q, method) for q in qs]
    wanted = sorted({0, n - 1} | {rank for low, high, _ in plans for rank in (low, high)})
    numpy = _numpy() if n > _SORT_CUTOFF else None
    planes = _Planes(data) if n > _SORT_CUTOFF and numpy is None else None
    found = _select(data, wanted, planes)
    low, high = found[0], found[n - 1]
    # sum() over an array('q') is exact and as fast as any pure-Python alternative
    # measured (summing byte planes, folding a big int): one C loop over the samples.
    total = sum(data) if numpy is None else _numpy_sum(numpy, data, low, high)
    values = [_interpolate(found, lo, hi, weight) / _NS_PER_MS for lo, hi, weight in plans]
    return LatencySummary(
        count=n,
        method=method,
        min_ms=low / _NS_PER_MS,
        avg_ms=total / n / _NS_PER_MS,
        max_ms=high / _NS_PER_MS,
        p50_ms=values[0],
        p95_ms=values[1],
        p99_ms=values[2],
        p99_9_ms=values[3] if len(values) > 3 else None,
    )
