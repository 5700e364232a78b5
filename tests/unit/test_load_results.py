"""Results, exact merges, models, thresholds and the assertion helper (no network, no sleep)."""

from __future__ import annotations

import array
import pickle
import random

import pytest

from pganalytics_core.errors import ConfigError, ServerError
from pganalytics_core.load import (
    ClosedModel,
    LoadTestResult,
    OpenModel,
    RunSamples,
    assert_thresholds,
    build_result,
    evaluate_thresholds,
    merge_results,
    parse_thresholds,
    summarize,
)
from pganalytics_core.load.model import model_from_dict, model_to_dict
from pganalytics_core.load.recorder import Recorder, error_type
from pganalytics_core.load.result import merge_samples, pack_samples, unpack_samples
from pganalytics_core.load.scenarios import SCENARIOS, scale_model

MS = 1_000_000


def _samples(latencies_ms: list[float], failures: dict[str, int] | None = None) -> RunSamples:
    return RunSamples(
        latencies_ns=pack_samples(array.array("q", (round(ms * MS) for ms in latencies_ms))),
        failures_by_type=tuple(sorted((failures or {}).items())),
        started_at_unix_ns=1_000_000_000_000,
        duration_ns=2_000_000_000,
    )


def _closed_result(
    latencies_ms: list[float], failures: dict[str, int] | None = None
) -> LoadTestResult:
    model = ClosedModel(workers=1, iterations=max(len(latencies_ms), 1))
    return build_result("known", model, _samples(latencies_ms, failures))


# ----------------------------------------------------------------------------- results


def test_accounting_and_rates_of_a_result() -> None:
    result = _closed_result([1.0, 2.0, 3.0, 4.0], {"ServerError(500)": 1})
    assert result.total_requests == 4
    assert result.successful_requests == 3
    assert result.failed_requests == 1
    assert result.successful_requests + result.failed_requests == result.total_requests
    assert result.error_rate == 0.25
    assert result.duration_s == 2.0
    assert result.requests_per_second == 2.0
    assert result.failures == {"ServerError(500)": 1}
    assert result.model_name == "closed"
    assert result.percentile_method == "nearest-rank"
    assert (result.p50_ms, result.max_ms) == (2.0, 4.0)


def test_result_is_frozen_and_pickles_with_its_samples() -> None:
    result = _closed_result([1.0, 5.0])
    with pytest.raises(AttributeError):
        result.total_requests = 3  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(result))
    assert again == result
    assert again.samples == result.samples


def test_pack_and_unpack_are_inverse() -> None:
    data = array.array("q", [0, 1, 2**40, 2**62, 123])
    assert unpack_samples(pack_samples(data)) == data


def test_merge_equals_one_run_over_the_same_samples() -> None:
    rng = random.Random(3)
    latencies = [rng.lognormvariate(1.0, 0.7) for _ in range(5000)]
    cuts = sorted(rng.sample(range(1, 5000), 3))
    pieces = [latencies[a:b] for a, b in zip([0, *cuts], [*cuts, 5000], strict=True)]
    parts = [
        build_result(
            "part",
            ClosedModel(workers=2, iterations=10),
            _samples(piece, {"ServerError(503)": index + 1}),
        )
        for index, piece in enumerate(pieces)
    ]
    merged = merge_results(parts, name="whole")
    whole = _samples(latencies)
    assert merged.latency == summarize(unpack_samples(whole.latencies_ns))
    assert merged.total_requests == 5000
    assert merged.failures == {"ServerError(503)": 1 + 2 + 3 + 4}
    assert merged.successful_requests == 5000 - 10
    assert merged.latency.p99_9_ms is not None
    # the same for the inclusive method
    inclusive = merge_results(parts, method="inclusive")
    assert inclusive.latency == summarize(unpack_samples(whole.latencies_ns), method="inclusive")


def test_merge_of_open_runs_adds_rates_and_counters() -> None:
    def part(start_s: int) -> LoadTestResult:
        samples = RunSamples(
            latencies_ns=pack_samples(array.array("q", [MS, 2 * MS])),
            service_times_ns=pack_samples(array.array("q", [MS, MS])),
            scheduler_lag_ns=pack_samples(array.array("q", [10_000, 20_000, 30_000])),
            started_at_unix_ns=start_s * 1_000_000_000,
            duration_ns=1_000_000_000,
            issued=2,
            dropped=1,
            late=1,
            schedule_ns=1_000_000_000,
        )
        return build_result("p", OpenModel(rate_per_s=3, duration_s=1, workers=1), samples)

    merged = merge_results([part(10), part(10)])
    assert isinstance(merged.model, OpenModel)
    assert merged.model.rate_per_s == 6
    assert merged.model.workers == 2
    stats = merged.open_model
    assert stats is not None
    assert (stats.issued_requests, stats.dropped_requests, stats.late_requests) == (4, 2, 2)
    assert stats.scheduler_lag.count == 6
    assert stats.achieved_rate_per_s == 4.0
    assert stats.saturated
    assert any("dropped" in reason for reason in stats.saturation_reasons)
    # concurrent parts span one second; staggered ones span their union
    assert merged.duration_s == 1.0
    assert merge_results([part(10), part(11)]).duration_s == 2.0


def _open_samples(
    *, started: int, issued: int, late: int, queued: int, span_s: float
) -> RunSamples:
    return RunSamples(
        latencies_ns=pack_samples(array.array("q", [MS] * issued)),
        service_times_ns=pack_samples(array.array("q", [MS] * started)),
        scheduler_lag_ns=pack_samples(array.array("q", [10_000] * issued)),
        duration_ns=round(span_s * 1e9),
        issued=issued,
        late=late,
        queued=queued,
        schedule_ns=round(span_s * 1e9),
    )


def test_achieved_rate_counts_actual_starts_and_flags_a_starved_generator() -> None:
    model = OpenModel(rate_per_s=100, duration_s=1, workers=2)
    on_time = build_result(
        "ok", model, _open_samples(started=100, issued=100, late=1, queued=1, span_s=1)
    )
    assert on_time.open_model is not None
    assert on_time.open_model.achieved_rate_per_s == 100.0
    assert on_time.open_model.saturation_reasons == ()
    # The workers took 4 s to start what was due within 1 s: every request was handed
    # over on time, but only 25 per second actually started.
    starved = build_result(
        "starved", model, _open_samples(started=100, issued=100, late=97, queued=98, span_s=4)
    )
    stats = starved.open_model
    assert stats is not None
    assert stats.achieved_rate_per_s == 25.0
    assert stats.queued_requests == 98
    assert stats.saturated
    assert stats.saturation_reasons == (
        "achieved 25.0 req/s, below 99% of the target 100 req/s",
        "97 of 100 requests (97.0%) started more than 10 ms late",
        "98 of 100 requests found no idle worker (of 2) when due and waited in the queue "
        "(add workers, or lower the rate)",
    )
    assert starved.as_dict()["open_model"]["queued_requests"] == 98  # type: ignore[index]
    assert [v.passed for v in evaluate_thresholds(starved, {"saturated": "==0"})] == [False]
    assert [v.passed for v in evaluate_thresholds(on_time, {"saturated": "==0"})] == [True]


def test_merge_rejects_what_cannot_be_merged() -> None:
    with pytest.raises(ValueError, match="nothing to merge"):
        merge_results([])
    bare = build_result(
        "bare", ClosedModel(workers=1, iterations=1), _samples([1]), keep_samples=False
    )
    with pytest.raises(ValueError, match="no samples"):
        merge_results([bare])
    a = build_result("a", ClosedModel(workers=1, iterations=1), _samples([1]))
    b = build_result("b", ClosedModel(workers=1, iterations=2), _samples([1, 2]))
    with pytest.raises(ValueError, match="share iterations"):
        merge_results([a, b])
    with pytest.raises(ValueError, match="nothing to merge"):
        merge_samples([])


# ------------------------------------------------------------------------------ models


def test_models_validate_their_fields() -> None:
    with pytest.raises(ConfigError, match="exactly one of iterations and duration_s"):
        ClosedModel(workers=2)
    with pytest.raises(ConfigError, match="workers"):
        ClosedModel(workers=0, iterations=1)
    with pytest.raises(ConfigError, match="rate_per_s"):
        OpenModel(rate_per_s=0, duration_s=1)
    with pytest.raises(ConfigError, match="max_in_flight"):
        OpenModel(rate_per_s=1, duration_s=1, workers=5, max_in_flight=2)
    with pytest.raises(ConfigError, match="at least one request"):
        OpenModel(rate_per_s=1, duration_s=0.1)
    assert OpenModel(rate_per_s=1000, duration_s=2).planned_requests == 2000
    assert OpenModel(rate_per_s=3, duration_s=1).intended_offset_ns(2) == 666_666_667
    assert ClosedModel(workers=3, iterations=4).planned_requests == 12


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate_per_s": 1e200, "duration_s": 1e200}, "rate_per_s: must be <= 1e\\+07"),
        ({"rate_per_s": 10, "duration_s": 1e200}, "duration_s: must be <= 1e\\+07"),
        ({"rate_per_s": 1e6, "duration_s": 1e6}, "duration_s: .* schedules 1000000000000"),
        ({"rate_per_s": 1, "duration_s": 1, "late_after_ms": 1e306}, "late_after_ms"),
        ({"rate_per_s": 1, "duration_s": 1, "max_late_ratio": 2}, "max_late_ratio"),
    ],
)
def test_open_model_refuses_sizes_that_would_overflow(
    fields: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        OpenModel(**fields)  # type: ignore[arg-type]


def test_closed_model_refuses_sizes_that_would_overflow() -> None:
    with pytest.raises(ConfigError, match="duration_s: must be <= "):
        ClosedModel(workers=1, duration_s=1e200)
    with pytest.raises(ConfigError, match="iterations: must be <= 500000000"):
        ClosedModel(workers=2, iterations=10**100)


@pytest.mark.parametrize(
    "model",
    [
        ClosedModel(workers=3, iterations=4),
        ClosedModel(workers=3, duration_s=1.5),
        OpenModel(rate_per_s=50, duration_s=2, workers=4, max_in_flight=9),
        OpenModel(rate_per_s=50, duration_s=2, max_late_ratio=0.5, min_achieved_ratio=0.9),
    ],
)
def test_models_round_trip_through_plain_data(model: ClosedModel | OpenModel) -> None:
    assert model_from_dict(model_to_dict(model)) == model


def test_scale_model_overrides_and_rejects() -> None:
    base = SCENARIOS["sustained-predictions"].model
    assert scale_model(base, iterations=5) == ClosedModel(workers=10, iterations=5)
    assert scale_model(base, duration_s=0.5) == ClosedModel(workers=10, duration_s=0.5)
    with pytest.raises(ConfigError, match="open model only"):
        scale_model(base, rate_per_s=5)
    with pytest.raises(ConfigError, match="closed model only"):
        scale_model(SCENARIOS["constant-rate"].model, iterations=5)


def test_scenarios_pickle_for_child_processes() -> None:
    for scenario in SCENARIOS.values():
        assert pickle.loads(pickle.dumps(scenario)) == scenario


# --------------------------------------------------------------------------- recorder


def test_recorder_counts_outcomes() -> None:
    recorder = Recorder()
    recorder.time_call(lambda: None)

    def fail() -> None:
        raise ServerError(503, "busy")

    recorder.time_call(fail)
    recorder.record_failure(5, "Custom")
    recorder.record_success(7)
    assert len(recorder) == 4
    assert recorder.failures == 2
    assert dict(recorder.errors) == {"ServerError(503)": 1, "Custom": 1}
    assert recorder.latencies_ns[-1] == 7
    assert error_type(ValueError("x")) == "ValueError"


# ------------------------------------------------------------------------- thresholds


def test_parse_thresholds_accepts_k6_style() -> None:
    parsed = parse_thresholds({"p95_ms": "<200", "error_rate": ["< 0.05", "<=0.1"], "rps": ">=1e2"})
    assert [(t.metric, t.op, t.limit) for t in parsed] == [
        ("p95_ms", "<", 200.0),
        ("error_rate", "<", 0.05),
        ("error_rate", "<=", 0.1),
        ("rps", ">=", 100.0),
    ]
    assert parsed[0].expression == "<200"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"p95": "<200"}, "unknown metric 'p95'; known metrics: "),
        ({"p95_ms": "200"}, "cannot read condition '200'"),
        ({"p95_ms": "<fast"}, "cannot read condition"),
        ({"p95_ms": []}, "at least one condition"),
        ({"p95_ms": [200]}, "must be a string"),
        ({"p95_ms": 200}, "must be a string like '<200' \\(or a list of them\\), got 200"),
        ({"p95_ms": None}, "must be a string like '<200' \\(or a list of them\\), got None"),
        ({"p95_ms": b"<200"}, "must be a string"),
    ],
)
def test_parse_thresholds_explains_errors(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_thresholds(spec)  # type: ignore[arg-type]


def test_thresholds_pass_and_fail_exactly() -> None:
    result = _closed_result([1.0, 2.0, 3.0, 4.0], {"ServerError(500)": 1})
    verdicts = evaluate_thresholds(
        result,
        {
            "p50_ms": "<=2",
            "max_ms": "<4",
            "error_rate": "<0.25",
            "failed_requests": "==1",
            "rps": ">1.9",
            "p99_9_ms": "<1000",
            "lag_p99_ms": "<1",
        },
    )
    assert [(v.threshold.metric, v.passed) for v in verdicts] == [
        ("p50_ms", True),
        ("max_ms", False),
        ("error_rate", False),
        ("failed_requests", True),
        ("rps", True),
        ("p99_9_ms", False),  # too few samples: no value is never a pass
        ("lag_p99_ms", False),  # an open-model metric on a closed run
    ]
    assert verdicts[5].actual is None
    assert verdicts[1].describe() == "max_ms < 4: 4 FAILED"


def test_thresholds_show_their_limits_exactly() -> None:
    result = _closed_result([1.0, 2.0, 3.0, 4.0], {"ServerError(500)": 1})
    verdicts = evaluate_thresholds(
        result, {"error_rate": ["<0.1234567", "<0.2500001", "==0.25"], "p50_ms": "<1e20"}
    )
    assert [v.threshold.expression for v in verdicts] == [
        "<0.1234567",
        "<0.2500001",
        "==0.25",
        "<1e+20",
    ]
    assert verdicts[0].describe() == "error_rate < 0.1234567: 0.25 FAILED"
    assert verdicts[1].describe() == "error_rate < 0.2500001: 0.25 ok"
    assert verdicts[2].describe() == "error_rate == 0.25: 0.25 ok"
    # an actual that six digits would show equal to the limit is shown in full
    near = evaluate_thresholds(_closed_result([2.000004]), {"p50_ms": "<2"})[0]
    assert near.describe() == "p50_ms < 2: 2.000004 FAILED"
    assert evaluate_thresholds(_closed_result([2.0]), {"p50_ms": "<2"})[0].actual_text == "2"


def test_assert_thresholds_has_a_readable_message() -> None:
    result = _closed_result([1.0, 250.0], {"ServerError(503)": 1})
    assert len(assert_thresholds(result, {"p50_ms": "<10"})) == 1
    with pytest.raises(AssertionError) as caught:
        assert_thresholds(result, {"p50_ms": "<10", "max_ms": "<200"})
    message = str(caught.value)
    assert message.startswith("1 of 2 thresholds failed for 'known' (closed model, 2 requests")
    assert "max_ms < 200: 250 FAILED" in message
    assert "p50_ms < 10: 1 ok" in message
    assert "failures by type: ServerError(503): 1" in message
