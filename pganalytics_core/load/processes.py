"""Where :class:`FakeServiceProcess` used to live; it is part of the fake service now
(:mod:`pganalytics_core.testing.fake_service.process`). This path keeps working."""

from pganalytics_core.testing.fake_service.process import FakeServiceProcess

__all__ = ["FakeServiceProcess"]
