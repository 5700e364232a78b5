"""Fixtures of the load tests: the embedded fake service and a leak check.

Every test here is marked ``load`` (each module sets ``pytestmark``), runs real HTTP on
127.0.0.1 only, and is kept short: sizes are scaled down from the presets. The autouse
``no_leaks`` fixture fails a test that leaves a thread or a file descriptor behind.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from multiprocessing import resource_tracker

import pytest

from pganalytics_core.testing import FakeMLService

#: How long a test's threads and sockets get to wind down after it, in seconds.
LEAK_GRACE_S = 2.0
_FD_DIR = "/proc/self/fd"


def _open_fds() -> int | None:
    try:
        return len(os.listdir(_FD_DIR))
    except OSError:  # not Linux: thread check only
        return None


@pytest.fixture(scope="session", autouse=True)
def _multiprocessing_tracker() -> None:
    # multiprocessing starts one resource-tracker process per interpreter, on first use,
    # and keeps a pipe to it open for good: start it before any leak baseline is taken.
    resource_tracker.ensure_running()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves threads or file descriptors behind."""
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()

    def leaks() -> tuple[list[str], int]:
        threads = [t.name for t in threading.enumerate() if t not in threads_before]
        fds = _open_fds()
        extra = 0 if fds is None or fds_before is None else fds - fds_before
        return threads, extra

    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    threads, extra_fds = leaks()
    while (threads or extra_fds > 0) and time.monotonic() < deadline:
        time.sleep(0.01)
        threads, extra_fds = leaks()
    assert not threads, f"threads left behind: {threads}"
    assert extra_fds <= 0, f"{extra_fds} file descriptor(s) left behind"


@pytest.fixture
def fake() -> Iterator[FakeMLService]:
    """An embedded fake ML service on 127.0.0.1 (fast training jobs)."""
    with FakeMLService(seed=0, training_step_s=0.01) as service:
        yield service
