"""The optional Locust integration: MLClient users, exact samples from every Locust process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pganalytics_core.errors import CircuitOpenError, ConfigError, ServerError
from pganalytics_core.load import locust_support
from pganalytics_core.load.locust_support import LocustSampleRecorder, merge_sample_files
from pganalytics_core.testing import FakeMLService

pytestmark = pytest.mark.load

LOCUSTFILE = Path(__file__).with_name("locustfile_ml.py")


def test_sample_recorder_counts_requests_exactly(tmp_path: Path) -> None:
    recorder = LocustSampleRecorder(tmp_path, name="unit")
    recorder.on_test_start()
    recorder.on_request(response_time=1.5)
    recorder.on_request(response_time=2.25, exception=ValueError("x"))
    recorder.on_rejection()  # the user's own breaker rejected a call: no request
    recorder.on_spawning_complete(user_count=3)
    recorder.on_test_stop()
    (path,) = tmp_path.glob("samples-*.zip")
    result = merge_sample_files([path])
    assert result.total_requests == 2
    assert result.failures == {"ValueError": 1}
    assert result.rejections == 1
    assert result.max_ms == 2.25
    assert result.model.workers == 3


def test_locust_processes_merge_into_one_exact_result(fake: FakeMLService, tmp_path: Path) -> None:
    env = {**os.environ, "PGANALYTICS_SAMPLES_DIR": str(tmp_path)}
    with socket.socket() as probe:  # a free port for Locust's master, on loopback only
        probe.bind(("127.0.0.1", 0))
        master_port = probe.getsockname()[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--processes",
            "2",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--master-port",
            str(master_port),
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "4s",
            "--host",
            fake.url,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    files = sorted(tmp_path.glob("samples-*.zip"))
    # one per Locust worker process that sent a request (on a starved machine a worker
    # may get its users too late to send any)
    assert 1 <= len(files) <= 2
    result = merge_sample_files(files)
    assert result.name == "locust-predictions"
    # Stopping the test kills each user's greenlet, possibly in the middle of a request
    # that reached the service but was never reported: at most one per user.
    arrived = fake.request_counts()["predict"]
    assert arrived - 4 <= result.total_requests <= arrived
    assert result.total_requests > 0
    assert result.model.workers <= 4
    assert result.failed_requests == 0


def test_a_rejection_by_the_users_breaker_is_not_reported_to_locust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = LocustSampleRecorder(tmp_path, name="unit")
    monkeypatch.setattr(locust_support, "_RECORDERS", [recorder])
    fired: list[dict[str, object]] = []

    def rejected() -> None:
        raise CircuitOpenError("load-client", 30.0)

    def failed() -> None:
        raise ServerError(503, "busy")

    locust_support._timed(lambda **kw: fired.append(kw), "predict", rejected)
    locust_support._timed(lambda **kw: fired.append(kw), "predict", failed)
    assert recorder.recorder.rejections == 1
    assert len(fired) == 1
    assert isinstance(fired[0]["exception"], ServerError)
    assert fired[0]["name"] == "predict"
    # checked before Locust is imported (importing it in process patches ssl)
    with pytest.raises(ConfigError, match="client_breaker"):
        locust_support.ml_user_class(client_breaker="off")  # type: ignore[arg-type]
