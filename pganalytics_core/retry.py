"""When and how long to wait before trying a call to the ML service again.

:class:`RetryPolicy` is an immutable value with pure methods: it never sleeps, never
reads a clock and never draws random numbers itself. The client passes it the attempt
number, the elapsed time and a ``random.Random``, and does the sleeping. That keeps the
maths testable without time passing, and one policy shareable by any number of clients.

The decision (:meth:`RetryPolicy.retry_delay_s`) in one table:

=====================================  ===========  ===============
error                                  idempotent   not idempotent
=====================================  ===========  ===============
connection error, request not sent     retry        retry
connect or pool timeout                retry        retry
connection error after sending         retry        never
read or write timeout                  retry        never
status in ``retry_statuses``           retry        never
anything else (4xx, malformed, ...)    never        never
=====================================  ===========  ===============

A retry waits ``Retry-After`` when the service sent one (up to ``max_retry_after_s``:
beyond it the call gives up at once and the caller sees the error with its
``retry_after_s``), otherwise exponential backoff with jitter, capped at
``backoff_max_s``. No retry starts after ``deadline_s`` would be exceeded, and the client
bounds each attempt as a whole (connect, send, headers, body) by what is left of
``deadline_s``, so a call lasts about ``deadline_s`` at most, whatever the server does.
"""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass

from pganalytics_core._validation import check_seconds
from pganalytics_core.errors import (
    ConfigError,
    MLServiceError,
    ServiceConnectionError,
    ServiceStatusError,
    ServiceTimeoutError,
)

__all__ = ["DEFAULT_RETRY_STATUSES", "RetryPolicy"]

#: Statuses worth another try: request timeout, rate limited, and the transient 5xx.
DEFAULT_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How the client retries a failed call. Immutable; vary it with ``dataclasses.replace``.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        backoff_base_s: the delay before the first retry, before jitter, in seconds.
        backoff_max_s: the cap on any backoff delay, in seconds.
        jitter: the fraction of each backoff delay that is random, 0..1: the delay is
            drawn uniformly from ``[d * (1 - jitter), d]``. 0 is deterministic, 1 is
            "full jitter".
        retry_statuses: HTTP statuses that are retried (when the call is idempotent).
        max_retry_after_s: the longest ``Retry-After`` the client waits, in seconds; a
            longer one ends the call with the error (which carries ``retry_after_s``).
        deadline_s: optional budget for the whole call including retries, in seconds: no
            retry starts when its delay would end past it, and the client bounds each
            attempt as a whole (connect, send, headers, body) by the time left. None
            means no budget.

    Raises:
        ConfigError: a field is out of range (the error names it).
    """

    max_retries: int = 2
    backoff_base_s: float = 0.1
    backoff_max_s: float = 2.0
    jitter: float = 0.5
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    max_retry_after_s: float = 30.0
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigError("max_retries", "must be an int")
        if self.max_retries < 0:
            raise ConfigError("max_retries", f"must be >= 0, got {self.max_retries}")
        check_seconds("backoff_base_s", self.backoff_base_s)
        check_seconds("backoff_max_s", self.backoff_max_s)
        if self.backoff_max_s < self.backoff_base_s:
            raise ConfigError(
                "backoff_max_s",
                f"must be >= backoff_base_s ({self.backoff_base_s}), got {self.backoff_max_s}",
            )
        jitter = self.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int | float):
            raise ConfigError("jitter", "must be a number")
        if not 0 <= jitter <= 1:
            raise ConfigError("jitter", f"must be in [0, 1], got {jitter!r}")
        if not isinstance(self.retry_statuses, frozenset) or not all(
            type(s) is int and 100 <= s <= 599 for s in self.retry_statuses
        ):
            raise ConfigError("retry_statuses", "must be a frozenset of HTTP status codes")
        check_seconds("max_retry_after_s", self.max_retry_after_s)
        if self.deadline_s is not None:
            check_seconds("deadline_s", self.deadline_s, allow_zero=False)

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_retries=0)

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Return the backoff delay after failed attempt number ``attempt``.

        Args:
            attempt: the number of the attempt that just failed, from 1.
            rng: the source of jitter.

        Returns:
            ``min(backoff_base_s * 2 ** (attempt - 1), backoff_max_s)``, jittered
            downwards by up to ``jitter`` of itself; in seconds.
        """
        # Bound the exponent first: 2.0 ** 1100 overflows a float.
        exponent = min(max(attempt - 1, 0), 64)
        delay = min(self.backoff_base_s * 2.0**exponent, self.backoff_max_s)
        if self.jitter:
            delay *= 1.0 - self.jitter * rng.random()
        return delay

    @staticmethod
    def parse_retry_after(header: str | None, now: float) -> float | None:
        """Parse a ``Retry-After`` header into seconds from ``now``.

        Args:
            header: the header value: delay seconds (``"120"``) or an HTTP-date
                (``"Wed, 21 Oct 2015 07:28:00 GMT"``); None when absent.
            now: the current wall-clock time, in seconds since the epoch (only used for
                the HTTP-date form).

        Returns:
            The delay in seconds, never negative (a date in the past gives 0.0), or None
            when the header is absent or unparsable.
        """
        if header is None:
            return None
        text = header.strip()
        if not text:
            return None
        if text.isascii() and text.isdigit():
            return float(text)
        try:
            seconds = float(text)
        except ValueError:
            pass
        else:
            # Not RFC 9110, but common enough ("1.5") to honour; NaN/inf/negative are not.
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        return max(moment.timestamp() - now, 0.0)

    def is_retryable(self, error: BaseException, *, idempotent: bool) -> bool:
        """Tell whether ``error`` is worth another attempt at all (ignoring budgets).

        Args:
            error: what the failed attempt raised.
            idempotent: whether repeating the request is harmless. A non-idempotent call
                is retried only when the request certainly never reached the service.

        Returns:
            True when another attempt may be made.
        """
        if isinstance(error, ServiceConnectionError | ServiceTimeoutError):
            return idempotent or not error.request_sent
        if isinstance(error, ServiceStatusError):
            return idempotent and error.status_code in self.retry_statuses
        return False

    def retry_delay_s(
        self,
        error: BaseException,
        attempt: int,
        *,
        idempotent: bool,
        elapsed_s: float,
        rng: random.Random,
    ) -> float | None:
        """Decide whether to retry after a failed attempt, and after how long.

        Args:
            error: what attempt number ``attempt`` raised.
            attempt: the number of the attempt that failed, from 1.
            idempotent: whether repeating the request is harmless.
            elapsed_s: seconds since the first attempt started.
            rng: the source of jitter.

        Returns:
            The delay before the next attempt, in seconds, or None to give up.
        """
        if attempt > self.max_retries or not isinstance(error, MLServiceError):
            return None
        if not self.is_retryable(error, idempotent=idempotent):
            return None
        retry_after = error.retry_after_s if isinstance(error, ServiceStatusError) else None
        if retry_after is not None:
            if retry_after > self.max_retry_after_s:
                return None
            delay = float(retry_after)
        else:
            delay = self.backoff_s(attempt, rng)
        if self.deadline_s is not None and elapsed_s + delay > self.deadline_s:
            return None
        return delay
