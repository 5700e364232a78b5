"""The load runner: closed and open models, exact percentiles, thresholds and reports.

Run a preset against the embedded fake service and check it::

    from pganalytics_core.load import assert_thresholds, run_scenario

    result = run_scenario("sustained-predictions", iterations=20)
    assert_thresholds(result, {"p95_ms": "<200", "error_rate": "<0.01"})

or load any operation yourself (clients are built before the clock starts)::

    with MLClient(url, retry=RetryPolicy(max_retries=0)) as client:
        result = run_open(lambda: client.predict(4001), rate_per_s=500, duration_s=10)
    print(format_summary(result))

Modules: :mod:`~.model` (the two models), :mod:`~.recorder` (per-worker samples),
:mod:`~.stats` (exact percentiles), :mod:`~.result` (results and exact merges),
:mod:`~.runner` (threads and asyncio), :mod:`~.thresholds` and :mod:`~.assertions`
(k6-style pass/fail), :mod:`~.scenarios` (the backend's presets), :mod:`~.report` (text,
JSON, SVG, sample files),
:mod:`~.cli` (``pganalytics-load``), :mod:`~.locust_support` (many processes and machines,
through Locust). The generator's own accuracy and costs are benchmarked in
``benchmarks/bench_load.py``.
"""

from pganalytics_core.load.assertions import assert_thresholds
from pganalytics_core.load.model import ClosedModel, LoadModel, OpenModel
from pganalytics_core.load.recorder import Recorder, error_type
from pganalytics_core.load.report import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    build_report,
    format_summary,
    read_report,
    read_samples,
    render_svg,
    write_report,
    write_samples,
    write_svg,
)
from pganalytics_core.load.result import (
    LoadTestResult,
    OpenModelStats,
    RunSamples,
    build_result,
    merge_results,
)
from pganalytics_core.load.runner import (
    Progress,
    run_closed,
    run_closed_async,
    run_model,
    run_model_async,
    run_open,
    run_open_async,
)
from pganalytics_core.load.scenarios import (
    SCENARIOS,
    Scenario,
    Workload,
    build_workload,
    get_scenario,
    run_scenario,
)
from pganalytics_core.load.stats import (
    PERCENTILE_METHODS,
    LatencySummary,
    PercentileMethod,
    percentiles,
    select_ranks,
    summarize,
)
from pganalytics_core.load.thresholds import (
    METRICS,
    Threshold,
    ThresholdResult,
    evaluate_thresholds,
    parse_thresholds,
)
from pganalytics_core.testing.fake_service.process import FakeServiceProcess

__all__ = [
    "ClosedModel",
    "FakeServiceProcess",
    "LatencySummary",
    "LoadModel",
    "LoadTestResult",
    "METRICS",
    "OpenModel",
    "OpenModelStats",
    "PERCENTILE_METHODS",
    "PercentileMethod",
    "Progress",
    "REPORT_SCHEMA",
    "REPORT_SCHEMA_VERSION",
    "Recorder",
    "RunSamples",
    "SCENARIOS",
    "Scenario",
    "Threshold",
    "ThresholdResult",
    "Workload",
    "assert_thresholds",
    "build_report",
    "build_result",
    "build_workload",
    "error_type",
    "evaluate_thresholds",
    "format_summary",
    "get_scenario",
    "merge_results",
    "parse_thresholds",
    "percentiles",
    "read_report",
    "read_samples",
    "render_svg",
    "run_closed",
    "run_closed_async",
    "run_model",
    "run_model_async",
    "run_open",
    "run_open_async",
    "run_scenario",
    "select_ranks",
    "summarize",
    "write_report",
    "write_samples",
    "write_svg",
]


_REMOVED = {
    "run_processes": "scale out with Locust (locust --processes N, or --master/--worker) "
    "and merge its samples exactly with locust_support.merge_sample_files",
    "split_model": "scale out with Locust; its samples merge exactly with "
    "locust_support.merge_sample_files",
}


def __getattr__(name: str) -> object:
    if name in _REMOVED:
        raise AttributeError(f"pganalytics_core.load.{name} was removed in 0.2: {_REMOVED[name]}")
    raise AttributeError(f"module 'pganalytics_core.load' has no attribute {name!r}")
