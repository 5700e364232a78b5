"""The pganalytics-load command, end to end against the embedded fake service."""

from __future__ import annotations

import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pganalytics_core.load import read_report
from pganalytics_core.load.cli import main
from pganalytics_core.testing import FakeMLService

pytestmark = pytest.mark.load


def test_a_passing_run_writes_json_and_svg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, plot = tmp_path / "run.json", tmp_path / "run.svg"
    code = main(
        [
            "--scenario",
            "sustained-predictions",
            "--workers",
            "2",
            "--iterations",
            "5",
            "--fake-in-process",
            "--threshold",
            "total_requests==10",
            "--json",
            str(report),
            "--plot",
            str(plot),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sustained-predictions (closed model: 2 workers x 5 iterations)" in out
    assert "result         PASSED" in out
    data = read_report(report)
    assert data["passed"] is True
    assert data["config"]["scenario"] == "sustained-predictions"  # type: ignore[index]
    assert data["model"] == {"name": "closed", "workers": 2, "iterations": 5, "duration_s": None}
    assert data["results"]["total_requests"] == 10  # type: ignore[index]
    metrics = {t["metric"] for t in data["thresholds"]}  # type: ignore[union-attr,index]
    assert metrics == {"error_rate", "p95_ms", "total_requests"}
    assert ET.parse(plot).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_a_failed_threshold_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--scenario",
            "breaker-stress",
            "--workers",
            "2",
            "--iterations",
            "20",
            "--threshold",
            "p50_ms<0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "p50_ms <0" in out
    assert "FAILED (1 of 2 thresholds)" in out


def test_an_open_run_against_a_url_with_the_fake_in_a_child_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "open.json"
    code = main(
        ["--model", "open", "--rate", "50", "--duration", "0.4", "--quiet", "--json", str(report)]
    )
    out = capsys.readouterr().out
    assert "open model: 50 req/s for 0.4 s" in out
    assert "embedded fake service, child process" in out
    assert "20 total, 20 ok, 0 failed" in out
    # Open runs check that the generator held its schedule; whether a loaded machine
    # let it is not up to the test, but the exit status must agree with the report.
    data = read_report(report)
    saturated = data["results"]["open_model"]["saturated"]  # type: ignore[index]
    assert code == (1 if saturated else 0), out
    checked = {(t["metric"], t["condition"]) for t in data["thresholds"]}  # type: ignore[union-attr,index]
    assert checked == {("dropped_requests", "==0"), ("saturated", "==0")}


def test_an_open_run_that_drops_requests_fails_unless_told_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # One request at a time, 30 ms each, 200 due per second: most are dropped.
    argv = [
        "--model",
        "open",
        "--rate",
        "200",
        "--duration",
        "0.1",
        "--workers",
        "1",
        "--max-in-flight",
        "1",
        "--latency-ms",
        "30",
        "--fake-in-process",
        "--quiet",
    ]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "20 total" in out
    assert "Dropped x" in out
    assert "dropped_requests ==0" in out
    assert "saturated ==0" in out
    assert "FAILED (2 of 2 thresholds)" in out
    assert main([*argv, "--no-default-thresholds"]) == 0
    assert "thresholds" not in capsys.readouterr().out
    # an explicit threshold on the same metric replaces the implicit one
    assert main([*argv, "--threshold", "dropped_requests<=20", "--threshold", "saturated<=1"]) == 0
    out = capsys.readouterr().out
    assert "dropped_requests <=20" in out
    assert "dropped_requests ==0" not in out


def test_faults_go_to_the_fake_service(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--scenario",
            "sustained-predictions",
            "--workers",
            "2",
            "--iterations",
            "3",
            "--fake-in-process",
            "--error-rate",
            "1",
            "--error-status",
            "502",
            "--fault-endpoints",
            "predict",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "ServerError(502) x6" in out


def test_an_unreachable_service_exits_2_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["--url", f"http://127.0.0.1:{port}", "--iterations", "1", "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot reach http://127.0.0.1:{port}: ConnectError" in err
    assert "Traceback" not in err


def test_against_a_running_service_url(
    fake: FakeMLService, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--url", fake.url, "--scenario", "high-contention", "--iterations", "2"])
    assert code == 0
    assert fake.request_counts()["predict"] == 100
    assert "100 total, 100 ok" in capsys.readouterr().out


def test_module_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pganalytics_core.load", "--list-scenarios"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "constant-rate" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "pganalytics_core.load", "--duration", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "duration must be finite and > 0" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_clients_own_breaker_rejections_are_reported_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "run.json"
    argv = ["--scenario", "sustained-predictions", "--workers", "1", "--iterations", "10"]
    argv += ["--fake-in-process", "--error-rate", "1", "--fault-endpoints", "predict"]
    argv += ["--client-breaker", "default", "--threshold", "rejections==0"]
    code = main([*argv, "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 1
    # 5 failures open the client's breaker; the other 5 calls made no request
    assert "5 total, 0 ok, 5 failed" in out
    assert "rejections     5 by the client's own circuit breaker" in out
    data = read_report(report)
    assert data["results"]["rejections"] == 5  # type: ignore[index]
    assert data["config"]["client_breaker"] == "default"  # type: ignore[index]
