"""Scale-out: several processes at their share of the load, merged exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pganalytics_core.errors import ConfigError
from pganalytics_core.load import (
    OpenModel,
    merge_results,
    processes,
    read_samples,
    run_processes,
    run_scenario,
    scenarios,
    summarize,
    write_samples,
)
from pganalytics_core.load.result import unpack_samples
from pganalytics_core.testing import FakeMLService

pytestmark = pytest.mark.load


def test_processes_share_the_load_and_merge_exactly(fake: FakeMLService) -> None:
    # 45 requests over 2 processes: the interleaved shares send 23 + 22, exactly the
    # one-process schedule (halving the rate would send 22 + 22, or 23 + 23).
    result = run_processes(
        "constant-rate", processes=2, url=fake.url, rate_per_s=90, duration_s=0.5
    )
    stats = result.open_model
    assert stats is not None
    assert result.model == OpenModel(rate_per_s=90, duration_s=0.5, workers=10)
    assert result.total_requests == stats.issued_requests == 45
    assert fake.request_counts()["predict"] == 45
    assert result.samples is not None
    # the merged statistics are those of all the samples at once
    assert result.latency == summarize(unpack_samples(result.samples.latencies_ns))
    assert stats.scheduler_lag.count == 45
    assert stats.target_rate_per_s == 90


def test_the_breaker_scenario_is_not_split_and_starts_no_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_service(*args: object, **kwargs: object) -> None:
        raise AssertionError("the breaker workload calls no service")

    monkeypatch.setattr(processes, "FakeMLService", no_service)
    monkeypatch.setattr(scenarios, "FakeMLService", no_service)
    with pytest.raises(ConfigError, match="one circuit breaker shared by all its workers"):
        run_processes("breaker-stress", processes=2, iterations=2)
    result = run_scenario("breaker-stress", workers=2, iterations=3)
    assert result.total_requests == 6


def test_runs_saved_to_files_merge_like_one_run(fake: FakeMLService, tmp_path: Path) -> None:
    paths = []
    for index in range(3):
        part = run_scenario("sustained-predictions", url=fake.url, workers=2, iterations=7)
        paths.append(tmp_path / f"part{index}.zip")
        write_samples(paths[-1], part)
    parts = [read_samples(path) for path in paths]
    merged = merge_results(parts)
    assert merged.total_requests == 42
    assert merged.model.workers == 6
    everything = b"".join(p.samples.latencies_ns for p in parts if p.samples is not None)
    assert merged.latency == summarize(unpack_samples(everything))
