"""Percentile maths of the load runner, checked against known data and a sorted reference."""

from __future__ import annotations

import array
import functools
import math
import random
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pganalytics_core.load import stats
from pganalytics_core.load.stats import percentile_ranks, percentiles, select_ranks, summarize

WIKIPEDIA = [15, 20, 35, 40, 50]


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (75, 40), (95, 50), (100, 50)],
)
def test_nearest_rank_on_known_data(q: float, expected: float) -> None:
    assert percentiles(WIKIPEDIA, [q]) == (expected,)


@pytest.mark.parametrize(
    ("q", "expected"), [(0, 15), (40, 29), (50, 35), (75, 40), (90, 46), (100, 50)]
)
def test_inclusive_interpolates_like_numpy_linear(q: float, expected: float) -> None:
    # numpy.percentile([15, 20, 35, 40, 50], q) gives these values.
    assert percentiles(WIKIPEDIA, [q], method="inclusive") == pytest.approx((expected,))


def test_decimal_percentiles_are_exact() -> None:
    # 99.9 % of 1000 is exactly rank 999: a binary-float 99.9 would round up to 1000.
    data = list(range(1, 1001))
    assert percentiles(data, [99.9]) == (999.0,)
    assert percentile_ranks(1000, 99.9, "nearest-rank") == (998, 998, 0)


def test_small_samples() -> None:
    assert percentiles([7], [0, 50, 99, 99.9, 100]) == (7.0,) * 5
    assert percentiles([7], [50], method="inclusive") == (7.0,)
    assert percentiles([1, 2], [50, 51]) == (1.0, 2.0)
    assert percentiles([1, 2], [50], method="inclusive") == (1.5,)


def test_percentiles_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentiles([], [50])
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentiles([1], [101])
    with pytest.raises(ValueError, match="method must be one of"):
        percentiles([1], [50], method="exclusive")  # type: ignore[arg-type]


def test_summary_of_known_data_in_ms() -> None:
    summary = summarize([ms * 1_000_000 for ms in (1, 2, 3, 4, 100)])
    assert summary.count == 5
    assert summary.method == "nearest-rank"
    assert (summary.min_ms, summary.max_ms, summary.avg_ms) == (1.0, 100.0, 22.0)
    assert (summary.p50_ms, summary.p95_ms, summary.p99_ms) == (3.0, 100.0, 100.0)
    assert summary.p99_9_ms is None  # fewer than 1,000 samples


def test_summary_reports_p99_9_from_1000_samples() -> None:
    summary = summarize(array.array("q", range(1_000_000, 1_001_000_000, 1_000_000)))
    assert summary.count == 1000
    assert summary.p99_9_ms == 999.0
    assert summary.p99_ms == 990.0


def test_empty_summary_has_no_values() -> None:
    summary = summarize([])
    assert summary.count == 0
    assert summary.p50_ms is None
    assert summary.max_ms is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=300),
    st.sampled_from(["nearest-rank", "inclusive"]),
    st.floats(min_value=0, max_value=100),
)
def test_percentiles_stay_within_the_samples(
    data: list[int], method: stats.PercentileMethod, q: float
) -> None:
    (value,) = percentiles(data, [q], method=method)
    ordered = sorted(data)
    assert ordered[0] <= value <= ordered[-1]
    if method == "nearest-rank":
        assert value in data
        rank = max(math.ceil(q * len(data) / 100 - 1e-9), 1)
        # at least q % of the samples are <= value, and fewer are < value
        assert sum(1 for x in data if x <= value) * 100 >= q * len(data) - 1e-6
        assert value == ordered[percentile_ranks(len(data), q, method)[0]]
        assert abs(percentile_ranks(len(data), q, method)[0] + 1 - rank) <= 1


def _reference(data: array.array[int], ranks: list[int]) -> dict[int, int]:
    ordered = sorted(data)
    return {k: ordered[k] for k in ranks}


@functools.cache
def _distributions(n: int) -> dict[str, array.array[int]]:
    rng = random.Random(42)
    return {
        "lognormal": array.array("q", (int(rng.lognormvariate(13.5, 0.5)) for _ in range(n))),
        "stall": array.array(
            "q",
            (
                int(rng.lognormvariate(13.5, 0.3))
                if rng.random() > 0.02
                else rng.randrange(10**8, 3 * 10**8)
                for _ in range(n)
            ),
        ),
        "tight": array.array("q", (500_000 + rng.randrange(-3, 4) for _ in range(n))),
        "constant": array.array("q", [123_456] * n),
        "two-values": array.array("q", (rng.choice((0, 2**40)) for _ in range(n))),
        "wide": array.array("q", (rng.randrange(0, 2**62) for _ in range(n))),
        "with-negatives": array.array("q", (rng.randrange(-(10**6), 10**6) for _ in range(n))),
        "ascending": array.array("q", range(n)),
        "byte-edges": array.array("q", (rng.choice((255, 256, 65535, 65536)) for _ in range(n))),
    }


def _reference_summary(
    data: array.array[int], method: stats.PercentileMethod
) -> stats.LatencySummary:
    """The summary computed the slow, obvious way: a full sort and exact maths."""
    ordered = sorted(data)
    n = len(ordered)
    qs = [50.0, 95.0, 99.0] + ([99.9] if n >= stats.P99_9_MIN_SAMPLES else [])
    values = []
    for q in qs:
        low, high, weight = percentile_ranks(n, q, method)
        values.append(float(ordered[low] + weight * (ordered[high] - ordered[low])) / 1e6)
    return stats.LatencySummary(
        count=n,
        method=method,
        min_ms=ordered[0] / 1e6,
        avg_ms=sum(ordered) / n / 1e6,
        max_ms=ordered[-1] / 1e6,
        p50_ms=values[0],
        p95_ms=values[1],
        p99_ms=values[2],
        p99_9_ms=values[3] if len(values) > 3 else None,
    )


@pytest.mark.parametrize("name", sorted(_distributions(10)))
def test_select_ranks_equals_sorting(name: str) -> None:
    data = _distributions(60_000)[name]
    copy = array.array("q", data)
    n = len(data)
    ranks = [0, 1, n // 2 - 1, n // 2, int(n * 0.95), int(n * 0.99), int(n * 0.999), n - 2, n - 1]
    assert select_ranks(data, ranks) == _reference(data, ranks)
    assert data == copy  # not modified


@pytest.mark.parametrize("name", sorted(_distributions(10)))
def test_summaries_equal_the_sorted_reference_exactly(name: str) -> None:
    data = _distributions(60_000)[name]
    for method in ("nearest-rank", "inclusive"):
        assert summarize(data, method=method) == _reference_summary(data, method)
    # the mean is exact (no float accumulation, no int64 overflow: "wide" overflows)
    assert summarize(data).avg_ms == sum(data) / len(data) / 1e6


def test_without_numpy_the_load_runner_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "try:\n    import pganalytics_core.load\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == (
        "the load runner needs numpy: pip install 'pganalytics_core[load]'"
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 300),
            st.integers(0, 2**20),
            st.integers(-(2**63), 2**63 - 1),
        ),
        min_size=1,
        max_size=400,
    ),
    st.data(),
)
def test_select_ranks_equals_sorting_on_any_data(values: list[int], data: st.DataObject) -> None:
    samples = array.array("q", values)
    ranks = data.draw(st.lists(st.integers(0, len(values) - 1), min_size=1, max_size=8))
    assert select_ranks(samples, ranks) == _reference(samples, ranks)
    assert select_ranks(values, ranks) == _reference(samples, ranks)


def test_floats_are_refused_never_truncated() -> None:
    with pytest.raises(TypeError):
        percentiles([1.5, 2.0], [50])  # type: ignore[list-item]


def test_select_ranks_rejects_out_of_range_ranks() -> None:
    with pytest.raises(ValueError, match="ranks must be in"):
        select_ranks([1, 2, 3], [3])
    assert select_ranks([1, 2, 3], []) == {}


def test_summaries_of_other_int_arrays_are_exact() -> None:
    # An array('i') is 4 bytes a sample: it is converted, never read as int64 bytes.
    summary = summarize(array.array("i", [1] * 20_000 + [3] * 20_000))
    assert summary.avg_ms == 2e-6
    assert (summary.min_ms, summary.p50_ms, summary.max_ms) == (1e-6, 1e-6, 3e-6)
    assert percentiles(array.array("h", [5, 1, 3]), [50]) == (3.0,)
    assert select_ranks(array.array("B", range(200)), [0, 199]) == {0: 0, 199: 199}


def test_summary_beats_a_full_sort() -> None:
    # Speed is judged as a ratio measured in the same run, never as absolute time.
    rng = random.Random(7)
    data = array.array("q", (int(rng.lognormvariate(13.5, 0.5)) for _ in range(200_000)))
    summary_s = sort_s = math.inf
    for _ in range(2):
        started = time.perf_counter()
        summarize(data)
        summary_s = min(summary_s, time.perf_counter() - started)
        started = time.perf_counter()
        sorted(data)
        sort_s = min(sort_s, time.perf_counter() - started)
    assert summary_s < sort_s
