"""The package's one set of argument and configuration checks."""

from __future__ import annotations

import math

import pytest

from pganalytics_core._validation import (
    check_count,
    check_int,
    check_number,
    check_positive,
    check_seconds,
    check_text,
    check_type,
)
from pganalytics_core.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "allow_zero", "match"),
    [
        (True, True, r"^f: must be a number of seconds, got bool$"),
        ("1", True, r"^f: must be a number of seconds, got str$"),
        (-0.5, True, r"^f: must be finite and >= 0, got -0.5$"),
        (math.inf, True, r"^f: must be finite and >= 0, got inf$"),
        (math.nan, True, r"^f: must be finite and >= 0, got nan$"),
        (0, False, r"^f: must be finite and > 0, got 0$"),
    ],
)
def test_check_seconds_refuses(value: object, allow_zero: bool, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_seconds("f", value, allow_zero=allow_zero)


def test_check_seconds_and_int_accept_their_bounds() -> None:
    check_seconds("f", 0)
    check_seconds("f", 0.001, allow_zero=False)
    check_int("n", 1, 1)
    with pytest.raises(ConfigError, match=r"^n: must be an int, got bool$"):
        check_int("n", True, 0)
    with pytest.raises(ConfigError, match=r"^n: must be >= 1, got 0$"):
        check_int("n", 0, 1)


def test_check_type_names_both_types() -> None:
    check_type("x", 3, int)
    with pytest.raises(TypeError, match=r"^x must be a str, got int$"):
        check_type("x", 3, str)


def test_call_argument_checks() -> None:
    assert check_number("a", 2) == 2
    with pytest.raises(TypeError, match=r"^a must be a number, got bool$"):
        check_number("a", False)
    with pytest.raises(ValueError, match=r"^a must be finite, got nan$"):
        check_number("a", math.nan)
    with pytest.raises(ValueError, match=r"^a must be > 0, got 0.0$"):
        check_positive("a", 0.0)
    with pytest.raises(TypeError, match=r"^c must be an int, got bool$"):
        check_count("c", True, 1)
    with pytest.raises(ValueError, match=r"^c must be >= 7, got 6$"):
        check_count("c", 6, 7)
    with pytest.raises(TypeError, match=r"^t must be a str, got NoneType$"):
        check_text("t", None)
    with pytest.raises(ValueError, match=r"^t must not be empty$"):
        check_text("t", "  ")
