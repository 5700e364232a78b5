"""Test helpers shipped with the package: a fake clock (and, soon, the fake ML service)."""

from pganalytics_core.testing.clock import FakeClock

__all__ = ["FakeClock"]
