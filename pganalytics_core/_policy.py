"""The ML service client's call policy, written once for both clients (no I/O here).

:class:`ClientBase` holds a client's configuration and the policy of a call: how long an
attempt may take (the attempt's share of the retry deadline), how an answer becomes a
result or an error, when to retry, what the cache keeps. The rules it applies live in
modules by concept, each written once:

* :mod:`pganalytics_core._requests`: the API's operations, URLs, headers, JSON bodies;
* :mod:`pganalytics_core._bodies`: bounded reading and inflation, strict JSON;
* :mod:`pganalytics_core._secrets`: URL credentials, the API key, scrubbing;
* :mod:`pganalytics_core._translate`: httpx exceptions and statuses into errors;
* :mod:`pganalytics_core._batch_plan`: what a batch sends;
* :mod:`pganalytics_core._deadline`: the end of an exchange, on the client's clock.

The I/O loops that use them are written once too, in :mod:`pganalytics_core._async_client`
(by hand); :mod:`pganalytics_core._sync_client` is generated from it by
``benchtools/unasync.py`` (a test fails when it is stale). The policy itself is described
in :mod:`pganalytics_core.client`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Final, Protocol, TypeVar

import httpx

from pganalytics_core._bodies import decode_json
from pganalytics_core._requests import Op, RequestBuilder
from pganalytics_core._secrets import Scrubber, authorization, normalise_base_url
from pganalytics_core._translate import is_breaker_failure, status_error
from pganalytics_core._validation import check_positive, check_type
from pganalytics_core.breaker import CircuitBreaker
from pganalytics_core.cache import PredictionCache
from pganalytics_core.errors import (
    ConfigError,
    MalformedResponseError,
    MLServiceError,
    ServiceStatusError,
    ServiceTimeoutError,
)
from pganalytics_core.models import Prediction, PredictionRequest
from pganalytics_core.retry import RetryPolicy

__all__ = [
    "BREAKER_NAME",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ClientBase",
    "RouterLike",
    "check_wait",
]

T = TypeVar("T")

#: The name of the breaker a client makes when none is given.
BREAKER_NAME: Final = "ml-service"

#: The default cap on a success body, in bytes (the service's answers are a few hundred).
DEFAULT_MAX_RESPONSE_BYTES: Final = 1 << 20

#: The ``source`` of a prediction the service made from its mock data (database down).
_MOCK_SOURCE: Final = "mock"


class RouterLike(Protocol):
    """Anything with request handlers like a ``respx.Router`` (usable as ``transport=``)."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` synchronously."""
        ...

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from asyncio."""
        ...


def _check_timeout(timeout_s: object) -> None:
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not 0 < timeout_s < math.inf
    ):
        raise ConfigError("timeout_s", f"must be a finite number of seconds > 0, got {timeout_s!r}")


def _check_max_response_bytes(max_response_bytes: object) -> None:
    if (
        isinstance(max_response_bytes, bool)
        or not isinstance(max_response_bytes, int)
        or max_response_bytes < 1
    ):
        raise ConfigError("max_response_bytes", "must be an int >= 1")


def check_wait(poll_interval_s: float, timeout_s: float) -> None:
    """Check ``wait_for_training``'s arguments (seconds, > 0)."""
    check_positive("poll_interval_s", poll_interval_s)
    check_positive("timeout_s", timeout_s)


class ClientBase:
    """Configuration, attempt budgets and response interpretation shared by both clients."""

    _base_url: httpx.URL
    _base: str

    def __init__(
        self,
        base_url: str | httpx.URL,
        *,
        timeout_s: float,
        retry: RetryPolicy,
        breaker: CircuitBreaker | None,
        cache: PredictionCache | None,
        api_key: str | None,
        max_response_bytes: int,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        self._base_url, basic, password = normalise_base_url(base_url)
        self._base = str(self._base_url).rstrip("/")
        _check_timeout(timeout_s)
        check_type("retry", retry, RetryPolicy)
        if breaker is None:
            breaker = CircuitBreaker(name=BREAKER_NAME)
        check_type("breaker", breaker, CircuitBreaker)
        if cache is not None:
            check_type("cache", cache, PredictionCache)
        _check_max_response_bytes(max_response_bytes)
        header = authorization(api_key, basic)
        # Scrubbed from everything a response brings: a proxy or a debug page may echo
        # request headers.
        self._scrubber = Scrubber(api_key, password, basic)
        self._requests = RequestBuilder(self._base, header)
        self._timeout_s = float(timeout_s)
        self._timeout = httpx.Timeout(self._timeout_s)
        # Passed to every request, so httpx.Client.send does not build a Timeout per call.
        self._extensions: dict[str, object] = {"timeout": self._timeout.as_dict()}
        self._retry = retry
        self._breaker = breaker
        self._cache = cache
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()

    # ------------------------------------------------------------------ introspection

    @property
    def base_url(self) -> str:
        """The service's base URL, without any credentials."""
        return self._base

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker every HTTP attempt goes through."""
        return self._breaker

    @property
    def cache(self) -> PredictionCache | None:
        """The prediction cache, or None when predictions are not cached."""
        return self._cache

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._retry

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} base_url={self._base!r} "
            f"breaker={self._breaker.name!r} state={self._breaker.state.value}>"
        )

    # ------------------------------------------------------------------ attempt budgets

    def _end_of_call(self, started: float, deadline: float | None) -> float | None:
        """The clock reading by which the call's attempts must end, or None."""
        budget_s = self._retry.deadline_s
        if budget_s is None:
            return deadline
        end = started + budget_s
        return end if deadline is None or end < deadline else deadline

    def _attempt_budget(self, op: Op[T], end: float, error: MLServiceError | None) -> float:
        """The seconds an attempt that must end by ``end`` (client's clock) may take.

        Raises:
            MLServiceError: nothing is left: the last attempt's error, or a
                :class:`ServiceTimeoutError` when there was none.
        """
        remaining = end - self._clock()
        if remaining <= 0:
            if error is not None:
                raise error
            raise ServiceTimeoutError(
                f"{op.operation}: no time left for an attempt",
                operation=op.operation,
                request_sent=False,
            )
        return remaining if remaining < self._timeout_s else self._timeout_s

    def _extensions_for(self, budget_s: float) -> dict[str, object]:
        """The request extensions of an attempt of ``budget_s`` seconds.

        Every socket operation is also cut to the end of the exchange (``_deadline``);
        the timeouts here bound the wait for a pooled connection, and the operations of
        a transport the caller passed in.
        """
        if budget_s >= self._timeout_s:
            return self._extensions
        return {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), budget_s)}

    # ------------------------------------------------------------------ responses

    def _interpret(
        self, op: Op[T], status: int, headers: httpx.Headers, body: bytes
    ) -> T | ServiceStatusError:
        """Turn a response into a result, a caller-fault error (returned) or a raise.

        Raises the errors that count against the service (so the breaker sees them as
        failures) and returns the ones that do not.
        """
        scrubber = self._scrubber
        if 200 <= status < 300:
            content_type = headers.get("content-type")
            if (
                content_type is not None
                and "json" not in content_type
                and "json" not in content_type.lower()
            ):
                raise MalformedResponseError(
                    f"{op.operation}: expected JSON, got content type "
                    f"{scrubber.text(content_type, 60)!r}",
                    operation=op.operation,
                )
            data = decode_json(body, op.operation, scrubber)
            try:
                return op.parse(data)
            except MalformedResponseError as exc:
                exc.operation = op.operation
                raise
        if status == 400 and op.accept_400 is not None:
            try:
                data = decode_json(body, op.operation, scrubber)
            except MalformedResponseError:
                accepted = None
            else:
                accepted = op.accept_400(data)
            if accepted is not None:
                return accepted
        error = status_error(op.operation, status, headers, scrubber.excerpt(body))
        if is_breaker_failure(status):
            raise error
        return error

    def _remember(self, request: PredictionRequest, prediction: Prediction) -> None:
        """Cache a prediction, unless the service made it from its mock data (its
        database was down): the cache must not serve it after the outage."""
        cache = self._cache
        if cache is not None and prediction.source != _MOCK_SOURCE:
            cache.put(request, prediction)

    def _retry_delay(
        self, op: Op[T], error: MLServiceError, attempt: int, started: float, end: float | None
    ) -> float | None:
        error.attempts = attempt
        if not op.retryable:
            return None
        now = self._clock()
        delay = self._retry.retry_delay_s(
            error,
            attempt,
            idempotent=op.idempotent,
            elapsed_s=now - started,
            rng=self._rng,
        )
        if delay is not None and end is not None and now + delay >= end:
            return None  # the next attempt would have no time left
        return delay
