"""Fixtures of the load tests: the embedded fake service and a leak check.

Every test here is marked ``load`` (each module sets ``pytestmark``), runs real HTTP on
127.0.0.1 only, and is kept short: sizes are scaled down from the presets. The autouse
``no_leaks`` fixture fails a test that leaves a thread or a file descriptor behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from multiprocessing import resource_tracker

import pytest

from pganalytics_core.testing import FakeMLService


@pytest.fixture(scope="session", autouse=True)
def _multiprocessing_tracker() -> None:
    # multiprocessing starts one resource-tracker process per interpreter, on first use,
    # and keeps a pipe to it open for good: start it before any leak baseline is taken.
    resource_tracker.ensure_running()


@pytest.fixture(autouse=True)
def no_leaks(leak_check: None) -> None:
    """Every test here runs under the shared leak check (tests/conftest.py)."""


@pytest.fixture
def fake() -> Iterator[FakeMLService]:
    """An embedded fake ML service on 127.0.0.1 (fast training jobs)."""
    with FakeMLService(seed=0, training_step_s=0.01) as service:
        yield service
