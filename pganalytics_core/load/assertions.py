"""A test helper: assert k6-style thresholds on a result, with a message a person can read.

``assert_thresholds(result, {"p95_ms": "<200", "error_rate": "<0.01"})`` fails with::

    AssertionError: 1 of 2 thresholds failed for 'sustained-predictions' (closed model,
    200 requests, 0 failed):
      p95_ms < 200: 231.5 FAILED
      error_rate < 0.01: 0 ok
"""

from __future__ import annotations

from collections.abc import Iterable

from pganalytics_core.load.result import LoadTestResult
from pganalytics_core.load.thresholds import (
    Threshold,
    ThresholdResult,
    ThresholdSpec,
    evaluate_thresholds,
)

__all__ = ["assert_thresholds"]


def assert_thresholds(
    result: LoadTestResult, thresholds: ThresholdSpec | Iterable[Threshold]
) -> tuple[ThresholdResult, ...]:
    """Assert that every threshold holds.

    Args:
        result: the run's result.
        thresholds: a k6-style mapping (``{"p95_ms": "<200"}``) or parsed thresholds.

    Returns:
        The verdicts (all passed).

    Raises:
        AssertionError: a threshold failed; the message lists every verdict and the
            failures by type.
        ConfigError: the thresholds cannot be read.
    """
    verdicts = evaluate_thresholds(result, thresholds)
    failed = [v for v in verdicts if not v.passed]
    if failed:
        lines = [
            f"{len(failed)} of {len(verdicts)} thresholds failed for {result.name!r} "
            f"({result.model_name} model, {result.total_requests} requests, "
            f"{result.failed_requests} failed):"
        ]
        lines.extend(f"  {verdict.describe()}" for verdict in verdicts)
        if result.failures_by_type:
            kinds = ", ".join(f"{kind}: {count}" for kind, count in result.failures_by_type)
            lines.append(f"  failures by type: {kinds}")
        raise AssertionError("\n".join(lines))
    return verdicts
