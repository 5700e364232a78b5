"""Reports of the load runner: text table, JSON schema, SVG, sample files, CLI arguments."""

from __future__ import annotations

import array
import importlib
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pganalytics_core.load import (
    REPORT_SCHEMA_VERSION,
    ClosedModel,
    OpenModel,
    RunSamples,
    build_report,
    build_result,
    cli,
    evaluate_thresholds,
    format_summary,
    read_report,
    read_samples,
    render_svg,
    write_report,
    write_samples,
)
from pganalytics_core.load.cli import main
from pganalytics_core.load.report import format_progress, redact_url
from pganalytics_core.load.result import pack_samples
from pganalytics_core.load.runner import Progress

MS = 1_000_000


def _open_result() -> object:
    samples = RunSamples(
        latencies_ns=pack_samples(array.array("q", [i * MS // 10 for i in range(1, 2001)])),
        service_times_ns=pack_samples(array.array("q", [MS] * 2000)),
        scheduler_lag_ns=pack_samples(array.array("q", [50_000] * 2000)),
        failures_by_type=(("ServerError(500)", 3),),
        started_at_unix_ns=1_700_000_000_000_000_000,
        duration_ns=2_000_000_000,
        issued=2000,
        schedule_ns=2_000_000_000,
    )
    return build_result("rate", OpenModel(rate_per_s=1000, duration_s=2), samples)


def test_summary_table_names_model_method_and_verdicts() -> None:
    result = _open_result()
    verdicts = evaluate_thresholds(result, {"p99_ms": "<250", "error_rate": "<0.001"})  # type: ignore[arg-type]
    text = format_summary(result, verdicts, target="embedded fake service")  # type: ignore[arg-type]
    assert "rate (open model: 1000 req/s for 2 s" in text
    assert "2000 total, 1997 ok, 3 failed" in text
    assert "nearest-rank percentiles of 2000 samples" in text
    assert "target 1000 req/s, achieved 1000.0 req/s; dropped 0" in text
    assert "p99_ms <250" in text
    assert "FAILED (1 of 2 thresholds)" in text
    assert "ServerError(500) x3" in text


def test_json_report_has_the_versioned_schema(tmp_path: Path) -> None:
    result = _open_result()
    verdicts = evaluate_thresholds(result, {"p99_ms": "<500"})  # type: ignore[arg-type]
    report = build_report(result, verdicts, config={"scenario": "rate"})  # type: ignore[arg-type]
    path = tmp_path / "report.json"
    write_report(path, report)
    data = read_report(path)
    assert data["schema"] == "pganalytics-load-report"
    assert data["schema_version"] == REPORT_SCHEMA_VERSION == 1
    assert set(data) == {
        "schema",
        "schema_version",
        "generated_at",
        "passed",
        "config",
        "model",
        "environment",
        "results",
        "thresholds",
    }
    assert data["passed"] is True
    assert data["model"]["name"] == "open"  # type: ignore[index]
    results = data["results"]
    assert isinstance(results, dict)
    assert results["total_requests"] == 2000
    assert results["rejections"] == 0
    assert results["latency"]["method"] == "nearest-rank"
    assert results["latency"]["p99_9_ms"] == 199.8
    assert results["open_model"]["scheduler_lag"]["p99_ms"] == 0.05
    assert data["thresholds"] == [
        {"metric": "p99_ms", "condition": "<500", "actual": 198.0, "passed": True}
    ]
    assert "cpu_count" in data["environment"]  # type: ignore[operator]


def test_read_report_rejects_other_documents(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"schema": "pganalytics-load-report", "schema_version": 99}))
    with pytest.raises(ValueError, match="unsupported schema_version 99"):
        read_report(path)
    path.write_text("[]")
    with pytest.raises(ValueError, match="is not a pganalytics-load-report"):
        read_report(path)


def test_svg_plot_is_well_formed_and_has_both_curves() -> None:
    svg = render_svg(_open_result())  # type: ignore[arg-type]
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 2
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert "99.9%" in labels
    assert "service time" in labels
    with pytest.raises(ValueError, match="needs a result with samples"):
        render_svg(
            build_result(
                "x",
                ClosedModel(workers=1, iterations=1),
                RunSamples(latencies_ns=b""),
                keep_samples=False,
            )
        )


def test_sample_files_round_trip_exactly(tmp_path: Path) -> None:
    result = _open_result()
    path = tmp_path / "samples.zip"
    write_samples(path, result)  # type: ignore[arg-type]
    again = read_samples(path)
    assert again == result
    assert again.samples == result.samples  # type: ignore[attr-defined]
    closed = build_result(
        "rejected",
        ClosedModel(workers=1, iterations=3),
        RunSamples(latencies_ns=pack_samples(array.array("q", [MS])), rejections=2),
    )
    write_samples(path, closed)
    assert read_samples(path).rejections == 2
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a samples file"):
        read_samples(tmp_path / "bad.zip")


def test_progress_line_and_url_redaction() -> None:
    line = format_progress(
        Progress(model="open", elapsed_s=2.0, finished=100, failed=1, planned=400, dropped=2)
    )
    assert line == "[open]    2.0 s  100/400 requests      50.0 req/s  1 failed  2 dropped"
    rejected = Progress(
        model="closed", elapsed_s=1.0, finished=5, failed=0, planned=None, rejections=7
    )
    assert format_progress(rejected).endswith("0 failed  7 rejected")
    assert redact_url("http://user:secret@127.0.0.1:8081/x?token=1#f") == "http://127.0.0.1:8081/x"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "nope"], "invalid choice"),
        (["--workers", "0"], "must be >= 1"),
        (["--rate", "fast"], "not a number"),
        (["--model", "open"], "--model open needs --rate"),
        (["--threshold", "p95<1"], "unknown metric 'p95'"),
        (["--threshold", "fast"], "cannot read threshold"),
        (["--url", "ftp://x"], "not an http(s) URL"),
        (["--url", "http://127.0.0.1:1", "--error-rate", "0.5"], "fault injection needs"),
        (["--scenario", "constant-rate", "--iterations", "5"], "closed model only"),
        (["--plot", "x.png"], "--plot writes SVG"),
        (["--error-rate", "2"], "fraction"),
        # sizes that would overflow are a one-line error naming the field
        (["--model", "open", "--rate", "1e200", "--duration", "1e200"], "rate_per_s: must be <="),
        (["--model", "open", "--rate", "1e6", "--duration", "1e6"], "schedules 1000000000000"),
        (["--model", "closed", "--duration", "1e200"], "duration_s: must be <="),
        # options the run would ignore are refused
        (["--model", "closed", "--rate", "50"], "--rate and --max-in-flight apply to --model open"),
        (["--model", "closed", "--max-in-flight", "5"], "apply to --model open only"),
        (["--model", "closed", "--iterations", "2", "--duration", "1"], "not both"),
        (["--model", "open", "--rate", "5", "--iterations", "3"], "--iterations applies to"),
        # the home-made multi-process runner is gone: the message names the replacement
        (["--scenario", "breaker-stress", "--processes", "2"], "--processes was removed"),
        (["--scenario", "breaker-stress", "--url", "http://127.0.0.1:1"], "calls no service"),
        (["--scenario", "breaker-stress", "--latency-ms", "5"], "fault options do not apply"),
        (["--scenario", "breaker-stress", "--client-breaker", "default"], "--client-breaker"),
        (["--client-breaker", "off"], "invalid choice"),
        (["--url", "http://127.0.0.1:1", "--fake-in-process"], "--fake-in-process starts"),
        (["--model", "closed", "--workers", "2", "--processes", "3"], "scale out with Locust"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_turns_any_error_before_the_run_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def overflow(args: object) -> None:
        raise OverflowError("int too large to convert")

    monkeypatch.setattr(cli, "_faults", overflow)
    with pytest.raises(SystemExit) as caught:
        main(["--scenario", "breaker-stress"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "pganalytics-load: error: OverflowError: int too large to convert"
    )
    assert "Traceback" not in err


def test_cli_lists_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-scenarios"]) == 0
    out = capsys.readouterr().out
    for name in (
        "sustained-predictions",
        "breaker-stress",
        "concurrent-training",
        "high-contention",
        "sustained-load",
        "constant-rate",
    ):
        assert name in out


@pytest.mark.parametrize(
    "name",
    [
        "pganalytics_core.load",
        "pganalytics_core.load.assertions",
        "pganalytics_core.load.cli",
        "pganalytics_core.load.locust_support",
        "pganalytics_core.load.model",
        "pganalytics_core.load.processes",
        "pganalytics_core.load.recorder",
        "pganalytics_core.load.report",
        "pganalytics_core.load.result",
        "pganalytics_core.load.runner",
        "pganalytics_core.load.scenarios",
        "pganalytics_core.load.stats",
        "pganalytics_core.load.thresholds",
    ],
)
def test_load_modules_export_a_sorted_importable_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert hasattr(module, attr), attr
    assert "locust" not in sys.modules  # the Locust integration imports it only when used
