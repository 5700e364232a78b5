"""Scale-out is Locust's job: our sample files merge exactly; the removed runner says so."""

from __future__ import annotations

from pathlib import Path

import pytest

import pganalytics_core.load
from pganalytics_core.load import (
    FakeServiceProcess,
    merge_results,
    read_samples,
    run_scenario,
    scenarios,
    summarize,
    write_samples,
)
from pganalytics_core.load.result import unpack_samples
from pganalytics_core.testing import FakeMLService, Faults

pytestmark = pytest.mark.load


def test_the_breaker_scenario_starts_no_service(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_service(*args: object, **kwargs: object) -> None:
        raise AssertionError("the breaker workload calls no service")

    monkeypatch.setattr(scenarios, "FakeMLService", no_service)
    result = run_scenario("breaker-stress", workers=2, iterations=3)
    assert result.total_requests + result.rejections == 6


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


def test_the_fake_service_runs_in_a_child_process_with_its_faults() -> None:
    faults = Faults(error_rate=1.0, error_status=503, endpoints=frozenset({"predict"}))
    with FakeServiceProcess(faults) as service:
        result = run_scenario("sustained-predictions", url=service.url, workers=2, iterations=3)
    assert result.failures == {"ServerError(503)": 6}
    with pytest.raises(RuntimeError, match="is not running"):
        _ = service.url


@pytest.mark.parametrize("name", ["run_processes", "split_model"])
def test_the_removed_multi_process_runner_names_its_replacement(name: str) -> None:
    with pytest.raises(AttributeError, match=f"{name} was removed in 0.2: scale out with Locust"):
        getattr(pganalytics_core.load, name)
