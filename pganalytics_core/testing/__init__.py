"""Test helpers shipped with the package: a fake clock and the fake ML service."""

from pganalytics_core.testing.clock import FakeClock
from pganalytics_core.testing.fake_service import (
    ENDPOINT_NAMES,
    FAULT_MODES,
    FakeMLService,
    FaultChanges,
    Faults,
)

__all__ = [
    "ENDPOINT_NAMES",
    "FAULT_MODES",
    "FakeClock",
    "FakeMLService",
    "FaultChanges",
    "Faults",
]
