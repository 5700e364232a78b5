"""RetryPolicy: validation, backoff maths, Retry-After parsing and the retry decision."""

from __future__ import annotations

import dataclasses
import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pganalytics_core.errors import (
    BadRequestError,
    CircuitOpenError,
    ConfigError,
    MalformedResponseError,
    MLServiceError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ServiceConnectionError,
    ServiceStatusError,
    ServiceTimeoutError,
)
from pganalytics_core.retry import DEFAULT_RETRY_STATUSES, RetryPolicy

NOW = 1_700_000_000.0


def _rng() -> random.Random:
    return random.Random(0)


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 2
    assert policy.retry_statuses == frozenset({408, 429, 500, 502, 503, 504})
    assert policy.retry_statuses is DEFAULT_RETRY_STATUSES
    assert policy.deadline_s is None
    assert RetryPolicy.none().max_retries == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_retries = 5  # type: ignore[misc]
    assert dataclasses.replace(policy, max_retries=5).max_retries == 5


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"backoff_base_s": -0.1}, "backoff_base_s"),
        ({"backoff_base_s": float("nan")}, "backoff_base_s"),
        ({"backoff_base_s": 5.0, "backoff_max_s": 1.0}, "backoff_max_s"),
        ({"backoff_max_s": float("inf")}, "backoff_max_s"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": "half"}, "jitter"),
        ({"retry_statuses": {500}}, "retry_statuses"),
        ({"retry_statuses": frozenset({99})}, "retry_statuses"),
        ({"max_retry_after_s": -1}, "max_retry_after_s"),
        ({"deadline_s": 0}, "deadline_s"),
        ({"deadline_s": "soon"}, "deadline_s"),
    ],
)
def test_invalid_fields_raise_a_config_error_naming_them(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        RetryPolicy(**changes)  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_base_s=0.1, backoff_max_s=1.0, jitter=0.0)
    delays = [policy.backoff_s(attempt, _rng()) for attempt in range(1, 7)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_backoff_of_huge_attempt_numbers_is_the_cap() -> None:
    policy = RetryPolicy(backoff_base_s=0.1, backoff_max_s=3.0, jitter=0.0)
    assert policy.backoff_s(10_000, _rng()) == 3.0


def test_backoff_jitter_uses_the_injected_rng() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=1.0, jitter=0.5)
    expected = 1.0 * (1.0 - 0.5 * random.Random(42).random())
    assert policy.backoff_s(1, random.Random(42)) == pytest.approx(expected)
    assert policy.backoff_s(1, random.Random(42)) == policy.backoff_s(1, random.Random(42))


@given(
    attempt=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0.0, max_value=5.0),
    extra=st.floats(min_value=0.0, max_value=60.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_stays_within_its_jitter_band_and_the_cap(
    attempt: int, base: float, extra: float, jitter: float, seed: int
) -> None:
    policy = RetryPolicy(backoff_base_s=base, backoff_max_s=base + extra, jitter=jitter)
    nominal = min(base * 2.0 ** min(attempt - 1, 64), base + extra)
    delay = policy.backoff_s(attempt, random.Random(seed))
    assert nominal * (1.0 - jitter) - 1e-9 <= delay <= nominal + 1e-9
    assert delay <= policy.backoff_max_s + 1e-9


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("\u00b2", None),  # a superscript two is a "digit" to str.isdigit, not a number
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00", None),  # an HTTP-date without its GMT zone
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert RetryPolicy.parse_retry_after(header, NOW) == expected


def test_parse_retry_after_http_date() -> None:
    future = email.utils.formatdate(NOW + 30, usegmt=True)
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert RetryPolicy.parse_retry_after(future, NOW) == pytest.approx(30.0)
    assert RetryPolicy.parse_retry_after(past, NOW) == 0.0


def _status(code: int, retry_after_s: float | None = None) -> ServiceStatusError:
    if code == 429:
        return RateLimitedError(code, "", retry_after_s=retry_after_s)
    cls = {400: BadRequestError, 404: NotFoundError}.get(
        code, ServerError if code >= 500 else ServiceStatusError
    )
    return cls(code, "", retry_after_s=retry_after_s)


@pytest.mark.parametrize(
    ("error", "idempotent", "expected"),
    [
        (ServiceConnectionError("refused", request_sent=False), True, True),
        (ServiceConnectionError("refused", request_sent=False), False, True),
        (ServiceConnectionError("reset", request_sent=True), True, True),
        (ServiceConnectionError("reset", request_sent=True), False, False),
        (ServiceTimeoutError("connect", request_sent=False), False, True),
        (ServiceTimeoutError("read"), True, True),
        (ServiceTimeoutError("read"), False, False),
        (_status(500), True, True),
        (_status(500), False, False),
        (_status(502), True, True),
        (_status(503), True, True),
        (_status(504), True, True),
        (_status(408), True, True),
        (_status(429), True, True),
        (_status(429), False, False),
        (_status(501), True, False),
        (_status(400), True, False),
        (_status(404), True, False),
        (_status(409), True, False),
        (MalformedResponseError("bad"), True, False),
        (MLServiceError("other"), True, False),
        (CircuitOpenError("ml-service", 3.0), True, False),
        (ValueError("bug"), True, False),
    ],
)
def test_what_is_retryable(error: BaseException, idempotent: bool, expected: bool) -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.is_retryable(error, idempotent=idempotent) is expected
    delay = policy.retry_delay_s(error, 1, idempotent=idempotent, elapsed_s=0.0, rng=_rng())
    assert (delay is not None) is expected


def test_retry_delay_stops_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=2, backoff_base_s=0.5, jitter=0.0)
    error = _status(503)
    delays = [
        policy.retry_delay_s(error, attempt, idempotent=True, elapsed_s=0.0, rng=_rng())
        for attempt in (1, 2, 3)
    ]
    assert delays == [0.5, 1.0, None]
    assert (
        RetryPolicy.none().retry_delay_s(error, 1, idempotent=True, elapsed_s=0.0, rng=_rng())
        is None
    )


def test_retry_after_replaces_the_backoff_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff_base_s=0.1, jitter=0.0, max_retry_after_s=10.0)

    def delay(error: BaseException) -> float | None:
        return policy.retry_delay_s(error, 1, idempotent=True, elapsed_s=0.0, rng=_rng())

    assert delay(_status(429, retry_after_s=3.0)) == 3.0
    assert delay(_status(503, retry_after_s=0.0)) == 0.0
    assert delay(_status(429, retry_after_s=10.0)) == 10.0
    assert delay(_status(429, retry_after_s=10.5)) is None  # beyond the cap: give up now
    assert delay(_status(429)) == 0.1  # no header: the backoff


def test_deadline_refuses_a_retry_that_would_end_past_it() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, jitter=0.0, deadline_s=5.0)
    error = ServiceTimeoutError("read")
    assert policy.retry_delay_s(error, 1, idempotent=True, elapsed_s=3.5, rng=_rng()) == 1.0
    assert policy.retry_delay_s(error, 1, idempotent=True, elapsed_s=4.5, rng=_rng()) is None
    ra = _status(429, retry_after_s=2.0)
    assert policy.retry_delay_s(ra, 1, idempotent=True, elapsed_s=3.5, rng=_rng()) is None


def test_custom_retry_statuses() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({409}), jitter=0.0)
    assert policy.is_retryable(_status(409), idempotent=True)
    assert not policy.is_retryable(_status(503), idempotent=True)
