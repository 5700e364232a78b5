"""Scale-out: several processes at their share of the load, merged exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pganalytics_core.load import (
    merge_results,
    read_samples,
    run_processes,
    run_scenario,
    summarize,
    write_samples,
)
from pganalytics_core.load.result import unpack_samples
from pganalytics_core.testing import FakeMLService

pytestmark = pytest.mark.load


def test_processes_share_the_load_and_merge_exactly(fake: FakeMLService) -> None:
    result = run_processes(
        "constant-rate", processes=2, url=fake.url, rate_per_s=100, duration_s=0.5
    )
    stats = result.open_model
    assert stats is not None
    assert result.model.rate_per_s == 100  # type: ignore[union-attr]
    assert result.total_requests == stats.issued_requests == 50
    assert fake.request_counts()["predict"] == 50
    assert result.samples is not None
    # the merged statistics are those of all the samples at once
    assert result.latency == summarize(unpack_samples(result.samples.latencies_ns))
    assert stats.scheduler_lag.count == 50


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
