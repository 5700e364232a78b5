"""Argument and configuration checks, written once for the whole package.

Two families, as the error tree has them:

* configuration (a config object's ``__post_init__``, a constructor): a
  :class:`~pganalytics_core.errors.ConfigError` naming the field;
* call arguments (a bad value passed to an operation): ``TypeError`` for the type,
  ``ValueError`` for the value, each naming the argument.

``bool`` is never taken for a number: ``True`` is an ``int`` to Python, not to a user.
"""

from __future__ import annotations

import math

from pganalytics_core.errors import ConfigError

# --------------------------------------------------------------------------- configuration


def check_int(field: str, value: object, minimum: int, maximum: int | None = None) -> None:
    """Require an int (not a bool) >= ``minimum`` (and <= ``maximum`` when given).

    Raises:
        ConfigError: naming ``field``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ConfigError(field, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(field, f"must be <= {maximum}, got {value}")


def check_seconds(field: str, value: object, *, allow_zero: bool = True) -> None:
    """Require a finite number of seconds >= 0 (> 0 unless ``allow_zero``).

    Raises:
        ConfigError: naming ``field``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(field, f"must be finite and {bound}, got {value!r}")


def check_in_range(
    field: str, value: object, maximum: float, *, minimum: float = 0.0, closed: bool = False
) -> None:
    """Require a finite number (not a bool) in ``(minimum, maximum]``, or in
    ``[minimum, maximum]`` when ``closed``.

    Raises:
        ConfigError: naming ``field``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum or (value == minimum and not closed):
        bound = f">= {minimum:g}" if closed else f"> {minimum:g}"
        raise ConfigError(field, f"must be finite and {bound}, got {value!r}")
    if value > maximum:
        raise ConfigError(field, f"must be <= {maximum:g}, got {value!r}")


def check_type(name: str, value: object, cls: type) -> None:
    """Require an instance of ``cls``.

    Raises:
        TypeError: naming ``name`` and the type it got.
    """
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")


# --------------------------------------------------------------------------- call arguments


def check_number(name: str, value: object) -> float:
    """Require a finite int or float (not a bool), and return it.

    Raises:
        TypeError: not a number. ValueError: NaN or an infinity.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_positive(name: str, value: object) -> None:
    """Require a finite number > 0.

    Raises:
        TypeError: not a number. ValueError: not finite, or <= 0.
    """
    if check_number(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_count(name: str, value: object, minimum: int) -> None:
    """Require exactly an int (no bool, no subclass) >= ``minimum``.

    Raises:
        TypeError: not an int. ValueError: less than ``minimum``.
    """
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_text(name: str, value: object) -> None:
    """Require a str with something other than whitespace in it.

    Raises:
        TypeError: not a str. ValueError: empty or blank.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
