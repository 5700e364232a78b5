"""Instruction counts (benchmarks/instructions_harness.py) are deterministic and mean
something: two runs agree, twice the work counts twice, the floors sit far below.

The measuring tests run valgrind for real (CI installs it, see .ci/run); without it they
fail with the command to install it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_instructions  # noqa: E402
from benchmarks import instructions_harness as harness  # noqa: E402
from benchmarks.instructions_operations import OPERATIONS  # noqa: E402

#: Benchmark names are history: these must keep existing (append, never rename).
HISTORY = (
    "breaker_allow_request",
    "breaker_record_success",
    "breaker_record_failure",
    "breaker_state",
    "breaker_is_open",
    "breaker_metrics",
    "breaker_reset",
    "breaker_call_success",
    "breaker_call_failure",
    "breaker_call_success_window",
    "breaker_call_failure_window",
    "breaker_with_block",
    "breaker_guard_block",
    "breaker_decorated_call",
    "breaker_call_async",
    "breaker_async_with",
    "breaker_call_rejected",
    "breaker_allow_request_open",
    "breaker_state_open",
    "breaker_allow_record_state",
    "breaker_state_cycle",
    "breaker_metrics_with_history",
    "floor_empty_call",
    "floor_call_under_lock",
    "floor_raise_and_catch",
    "floor_await_bare",
    "floor_raw_httpx_post_json",
    "floor_raw_httpx_get_health",
    "client_health",
    "client_predict",
    "client_predict_cached",
    "client_predict_many_100",
    "client_predict_server_error",
    "client_predict_rejected",
    "client_train",
    "client_training_status",
    "client_wait_for_training",
    "client_validate",
    "client_detect_patterns",
    "client_async_predict",
    "load_percentiles_10000",
    "load_record_success",
)

EXTRA_OPERATIONS = """
from benchmarks.common import noop
from benchmarks.instructions_operations import _breaker, operation


@operation("test_call_success_x2", 2000)
def _twice():
    call = _breaker().call

    def body():
        call(noop)
        call(noop)

    return body


@operation("test_missing_api", 10)
def _missing():
    raise NotImplementedError("no such API in this commit")


@operation("test_broken", 10)
def _broken():
    def body():
        raise ValueError("broken operation")

    return body
"""


@pytest.fixture
def valgrind() -> None:
    if harness.valgrind_path() is None:
        pytest.fail(harness.VALGRIND_HINT)


def _relative_differences(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {name: abs(a[name] - b[name]) / a[name] for name in a}


@pytest.mark.slow
@pytest.mark.timeout(300)  # three valgrind runs, ~30 s on a quiet machine
@pytest.mark.usefixtures("valgrind")
def test_two_runs_agree_within_a_thousandth_and_a_subset_counts_the_same() -> None:
    names = [
        "floor_empty_call",
        "breaker_call_success",
        "breaker_with_block",
        "breaker_call_async",
        "client_predict",
        "client_predict_cached",
    ]
    first = harness.count_instructions(names)
    second = harness.count_instructions(names)
    subset = harness.count_instructions(["client_predict", "breaker_with_block"])

    assert first.failed == {}
    assert first.unavailable == {}
    assert set(first.instructions) == set(names)
    differences = _relative_differences(first.instructions, second.instructions)
    assert max(differences.values()) <= 1e-3, (first.instructions, second.instructions)
    assert _relative_differences(subset.instructions, first.instructions) == {
        "client_predict": pytest.approx(0.0, abs=1e-3),
        "breaker_with_block": pytest.approx(0.0, abs=1e-3),
    }


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("valgrind")
def test_counts_mean_something(tmp_path: Path) -> None:
    extra = tmp_path / "extra_operations.py"
    extra.write_text(EXTRA_OPERATIONS)
    names = [
        "floor_empty_call",
        "floor_call_under_lock",
        "breaker_call_success",
        "breaker_call_rejected",
        "test_call_success_x2",
        "test_missing_api",
        "test_broken",
    ]
    counts = harness.count_instructions(names, extra=[extra])
    n = counts.instructions

    # The floor (loop + body call) is in every count; twice the work, twice the rest.
    once = n["breaker_call_success"] - n["floor_empty_call"]
    twice = n["test_call_success_x2"] - n["floor_empty_call"]
    assert twice / once == pytest.approx(2.0, rel=0.05)
    assert n["floor_empty_call"] * 3 < n["breaker_call_success"]
    assert n["floor_empty_call"] < n["floor_call_under_lock"]
    assert n["breaker_call_rejected"] > n["floor_empty_call"]
    # A missing API is n/a, a broken operation an error; neither stops the others.
    assert counts.unavailable == {"test_missing_api": "no such API in this commit"}
    assert set(counts.failed) == {"test_broken"}
    assert "ValueError: broken operation" in counts.failed["test_broken"]


def test_without_valgrind_every_benchmark_is_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no valgrind there
    with pytest.raises(NotImplementedError, match="apt-get install valgrind"):
        harness.count_instructions(["floor_empty_call"])

    suite = bench_instructions.Instructions()
    reason = suite.setup_cache()
    assert reason == harness.VALGRIND_HINT
    with pytest.raises(NotImplementedError, match="apt-get install valgrind"):
        suite.setup(reason)


def test_one_track_method_per_operation_and_history_kept() -> None:
    suite = bench_instructions.Instructions
    tracks = {name[len("track_") :] for name in dir(suite) if name.startswith("track_")}
    assert tracks == set(OPERATIONS)
    assert set(HISTORY) <= tracks
    for name in tracks:
        method = getattr(suite, f"track_{name}")
        assert method.unit == "instructions"
        assert method.__name__ == f"track_{name}"


def test_track_reports_its_count_and_setup_skips_or_fails_its_operation() -> None:
    counts = harness.Counts(
        instructions={"breaker_state": 1225.0},
        unavailable={"breaker_guard_block": "CircuitBreaker.guard is not in this commit"},
        failed={"client_predict": "Traceback ...\nValueError: boom"},
    )
    suite = bench_instructions.Instructions()
    suite.setup(counts)

    state = suite.track_breaker_state  # type: ignore[attr-defined]
    state.setup(counts)
    assert state(counts) == 1225.0
    with pytest.raises(NotImplementedError, match="guard is not in this commit"):
        suite.track_breaker_guard_block.setup(counts)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match=r"(?s)client_predict: .*ValueError: boom"):
        suite.track_client_predict.setup(counts)  # type: ignore[attr-defined]


def test_heap_padding_runs_first_and_only_when_asked() -> None:
    plain, padded = harness._bootstrap_code(0), harness._bootstrap_code(3)
    assert "_padding" not in plain
    assert padded.startswith("_padding = [bytes(n) for n in range(0, 480, 8) for _ in range(3)]")
    assert padded.endswith(plain)
    compile(padded, "<bootstrap>", "exec")
