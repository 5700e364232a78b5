"""The asyncio client of the ML service: :class:`AsyncMLClient`, and its I/O loops.

This file is the single source of both clients' loops: ``benchtools/unasync.py``
generates :mod:`pganalytics_core._sync_client` (:class:`MLClient`) from it by renaming
(``async def`` -> ``def``, ``await`` dropped, ``aiter_raw`` -> ``iter_raw``, ...), as
httpcore does with unasync, and a test fails when the generated file is stale. Edit this
file, then run ``make unasync``. Everything that is not I/O lives in
:mod:`pganalytics_core._policy` and the modules it names; :mod:`pganalytics_core.client`
is the public module.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TypeVar

import httpx

from pganalytics_core import _deadline
from pganalytics_core._batch import amap_bounded
from pganalytics_core._batch_plan import check_batch, merge_outcomes, plan_batch
from pganalytics_core._bodies import (
    body_inflater,
    check_declared_length,
    check_time_left,
    excerpt_inflater,
    held_body,
    inflated_body,
    undecodable,
)
from pganalytics_core._policy import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ClientBase,
    RouterLike,
    check_wait,
)
from pganalytics_core._requests import (
    DETECT_PATTERNS,
    HEALTH,
    PREDICT,
    TRAIN,
    TRAINING_STATUS,
    VALIDATE,
    Op,
    detect_body,
    train_body,
    validate_body,
)
from pganalytics_core._translate import translate
from pganalytics_core.breaker import CircuitBreaker
from pganalytics_core.cache import PredictionCache
from pganalytics_core.errors import (
    CircuitOpenError,
    MLServiceError,
    PgAnalyticsError,
    ResponseTooLargeError,
    ServiceStatusError,
    ServiceTimeoutError,
    TrainingJobFailedError,
    TrainingTimeoutError,
    trim_body,
)
from pganalytics_core.models import (
    PatternDetection,
    Prediction,
    PredictionOutcome,
    PredictionRequest,
    TrainingJob,
    TrainingState,
    TrainingStatus,
    ValidationResult,
)
from pganalytics_core.retry import RetryPolicy

T = TypeVar("T")


async def _aread_body(
    response: httpx.Response, limit: int, operation: str, describe: Callable[[str, int], str]
) -> bytes:
    """Read a whole success body of at most ``limit`` bytes, refusing a longer one early.

    Raises:
        ResponseTooLargeError: the body, raw or inflated, is longer than ``limit``.
        MalformedResponseError: an unsupported or broken content encoding.
    """
    headers = response.headers
    check_declared_length(headers, limit, operation)
    if response.is_stream_consumed:
        return held_body(response, limit, operation)
    inflater = body_inflater(headers, limit, operation, describe)
    if inflater is not None:
        try:
            async for chunk in response.aiter_raw():
                if not inflater.feed(chunk):
                    raise ResponseTooLargeError(limit, operation=operation)
                check_time_left(operation)
        except zlib.error:
            raise undecodable(operation) from None
        return inflated_body(inflater, operation)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_raw():
        total += len(chunk)
        if total > limit:
            raise ResponseTooLargeError(limit, operation=operation)
        chunks.append(chunk)
        check_time_left(operation)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _aread_excerpt(
    response: httpx.Response, limit: int, operation: str, describe: Callable[[str, int], str]
) -> bytes:
    """Read at most ``limit`` bytes of a non-2xx body; never raises for its content.

    A compressed body is inflated up to ``limit`` bytes and cut where it stops decoding;
    an unsupported encoding gives a stand-in text. The rest is dropped with the connection.
    """
    if response.is_stream_consumed:
        return response.content[:limit]
    inflater = excerpt_inflater(response.headers, limit, describe)
    if inflater is not None:
        if isinstance(inflater, bytes):
            return inflater
        try:
            async for chunk in response.aiter_raw():
                if not inflater.feed(chunk):
                    break
                check_time_left(operation)
        except zlib.error:
            pass
        return inflater.output()
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        total += len(chunk)
        if total >= limit:
            break
        check_time_left(operation)
    return b"".join(chunks)[:limit]


def _async_transport(
    transport: httpx.AsyncBaseTransport | RouterLike | None, limits: httpx.Limits | None
) -> httpx.AsyncBaseTransport:
    if transport is None:
        return _deadline.async_transport(limits if limits is not None else httpx.Limits())
    if isinstance(transport, httpx.AsyncBaseTransport):
        return transport
    handler = getattr(transport, "async_handler", None)
    if callable(handler):
        return httpx.MockTransport(handler)
    raise TypeError(
        f"transport must be an httpx transport or a respx router, got {type(transport).__name__}"
    )


class AsyncMLClient(ClientBase):
    """An asyncio client of the ML service with retries, a circuit breaker and a cache.

    One pooled ``httpx.AsyncClient`` per instance; share one instance between the tasks of
    one event loop. Use it as an async context manager or await :meth:`aclose`.

    Args:
        base_url: the service's root, e.g. ``http://127.0.0.1:8081``. Credentials in it
            (``http://user:pass@host``) are moved to a Basic ``Authorization`` header and
            never shown.
        timeout_s: the bound on each attempt as a whole (connect, send, headers, body),
            in seconds, cut to what is left of ``retry.deadline_s`` or of a training
            wait; an attempt that runs out raises :class:`ServiceTimeoutError`.
        retry: when and how long to retry.
        breaker: the circuit breaker every attempt goes through; None makes one named
            ``ml-service`` with the default config.
        cache: a cache for successful predictions, except those the service made from
            its mock data (``source == "mock"``); None disables caching.
        api_key: sent as ``Authorization: Bearer <key>``; never shown in a repr, an error
            or a log line.
        limits: connection-pool limits (ignored when ``transport`` is given).
        transport: an httpx transport (e.g. ``httpx.MockTransport``) or a respx router,
            for tests. Its per-operation timeouts are cut to the time left and the body
            is checked against the deadline between chunks, but what happens inside it
            (a server dripping headers) is bounded only by the transport itself.
        max_response_bytes: the largest success body accepted, in bytes, raw and (when a
            server compresses it anyway) inflated.
        sleep: how to wait between retries and polls, awaited (inject
            ``FakeClock.async_sleep`` in tests).
        clock: a monotonic clock in seconds, for the retry deadline and training waits.
        rng: the source of retry jitter.

    Raises:
        ConfigError: a configuration value is invalid (the error names it).
        TypeError: an argument has the wrong type.
    """

    def __init__(
        self,
        base_url: str | httpx.URL = "http://127.0.0.1:8081",
        *,
        timeout_s: float = 5.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - immutable
        breaker: CircuitBreaker | None = None,
        cache: PredictionCache | None = None,
        api_key: str | None = None,
        limits: httpx.Limits | None = None,
        transport: httpx.AsyncBaseTransport | RouterLike | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout_s=timeout_s,
            retry=retry,
            breaker=breaker,
            cache=cache,
            api_key=api_key,
            max_response_bytes=max_response_bytes,
            clock=clock,
            rng=rng,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            timeout=self._timeout,
            limits=limits if limits is not None else httpx.Limits(),
            transport=_async_transport(transport, limits),
            follow_redirects=False,
            trust_env=False,
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMLClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ the loop

    async def _attempt(
        self, op: Op[T], url: httpx.URL, content: bytes | None, budget_s: float
    ) -> T | ServiceStatusError:
        request = self._requests.build(op, url, content, self._extensions_for(budget_s))
        operation = op.operation
        token = _deadline.start_exchange(budget_s, self._clock)
        try:
            response = await self._http.send(request, stream=True)
            try:
                status = response.status_code
                if 200 <= status < 300:
                    body = await _aread_body(
                        response, self._max_response_bytes, operation, self._scrubber.text
                    )
                elif status == 400 and op.accept_400 is not None:
                    # Maybe a failed job's body; unreadable, it is a plain bad request.
                    body = await _aread_excerpt(
                        response, self._max_response_bytes, operation, self._scrubber.text
                    )
                else:
                    body = await _aread_excerpt(
                        response, self._scrubber.excerpt_bytes, operation, self._scrubber.text
                    )
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise translate(exc, request, operation, self._scrubber) from exc
        finally:
            _deadline.end_exchange(token)
        return self._interpret(op, status, response.headers, body)

    async def _call(
        self,
        op: Op[T],
        url: httpx.URL,
        content: bytes | None = None,
        deadline: float | None = None,
    ) -> T:
        breaker = self._breaker
        started = self._clock()
        end = (
            None
            if deadline is None and self._retry.deadline_s is None
            else self._end_of_call(started, deadline)
        )
        budget_s = self._timeout_s
        attempt = 1
        error: MLServiceError | None = None
        while True:
            if end is not None:
                budget_s = self._attempt_budget(op, end, error)
            try:
                result = await breaker.call_async(self._attempt, op, url, content, budget_s)
            except MLServiceError as exc:
                error = exc
            except CircuitOpenError as exc:
                if error is not None:
                    raise exc from error
                raise
            else:
                if not isinstance(result, ServiceStatusError):
                    return result
                error = result
            delay = self._retry_delay(op, error, attempt, started, end)
            if delay is None:
                raise error
            await self._sleep(delay)
            attempt += 1

    # ------------------------------------------------------------------ operations

    async def health(self) -> bool:
        """Ask ``GET /health`` once (no retries).

        Returns:
            True when the service answered 200 with ``"status": "healthy"``; False for any
            other answer, a timeout or a connection error.

        Raises:
            CircuitOpenError: the breaker is open; no request was made.
        """
        try:
            return await self._call(HEALTH, self._requests.health)
        except MLServiceError:
            return False

    async def predict(
        self,
        query_hash: int,
        *,
        parameters: Mapping[str, object] | None = None,
        scenario: str = "current",
    ) -> Prediction:
        """Predict a query's execution time (``POST /api/predict/query-execution``).

        Served from the cache when it holds the same request. A prediction the service
        made from its mock data (``source == "mock"``: its database was down) is returned
        but never cached, so the cache does not serve it after the outage.

        Args:
            query_hash: the query's hash, an int > 0.
            parameters: JSON-serialisable parameters, or None.
            scenario: ``"current"`` or ``"optimized"``.

        Returns:
            The prediction.

        Raises:
            ValueError, TypeError: a bad argument; no request was made.
            CircuitOpenError: the breaker is open; no request was made.
            MLServiceError: the call failed (after retries); see the subclasses.
        """
        request = PredictionRequest.create(query_hash, parameters=parameters, scenario=scenario)
        cache = self._cache
        if cache is not None:
            hit = cache.get(request)
            if hit is not None:
                return hit
        prediction = await self._call(PREDICT, self._requests.predict, request.body())
        self._remember(request, prediction)
        return prediction

    async def _predict_outcome(self, request: PredictionRequest) -> PredictionOutcome | Exception:
        try:
            prediction = await self._call(PREDICT, self._requests.predict, request.body())
        except PgAnalyticsError as exc:
            return PredictionOutcome(request, error=exc)
        except Exception as exc:  # raised by predict_many once the others are done
            return exc
        self._remember(request, prediction)
        return PredictionOutcome(request, prediction)

    async def predict_many(
        self, requests: Iterable[PredictionRequest], *, max_concurrency: int = 8
    ) -> list[PredictionOutcome]:
        """Predict a batch: de-duplicated, served from the cache where possible, concurrent.

        Identical requests are sent once and share one outcome; cached ones are not sent;
        the rest go out concurrently over the client's pool, as tasks of one
        :class:`asyncio.TaskGroup`, at most ``max_concurrency`` at once, none outliving
        the call (even a cancelled one). One
        request failing does not affect the others: its outcome holds the error. An
        unexpected exception (not a :class:`PgAnalyticsError`: a bug, a broken transport)
        is not wrapped; it propagates, but only once every other request of the batch has
        finished (their successes are cached) and no worker is left.

        Args:
            requests: the requests (build them with ``PredictionRequest.create``).
            max_concurrency: the most requests in flight at once.

        Returns:
            One :class:`PredictionOutcome` per request, in input order, each holding the
            prediction or the error (:class:`MLServiceError` or :class:`CircuitOpenError`).

        Raises:
            TypeError, ValueError: a bad argument; no request was made.
            Exception: the first unexpected exception of a request, in input order.
        """
        batch = check_batch(requests, max_concurrency)
        outcomes, todo = plan_batch(batch, self._cache)
        results = await amap_bounded(self._predict_outcome, todo, max_concurrency)
        return merge_outcomes(batch, outcomes, results)

    async def train(
        self,
        *,
        database_name: str = "pganalytics",
        lookback_days: int = 90,
        model_type: str = "linear_regression",
        force_retrain: bool = False,
    ) -> TrainingJob:
        """Start training a model (``POST /api/train/performance-model``).

        Not idempotent: retried only when the request certainly never reached the service
        (a connect error or timeout), never after a read timeout or a 5xx.

        Args:
            database_name: the database the model learns from.
            lookback_days: days of history to use, >= 7.
            model_type: ``linear_regression``, ``decision_tree`` or ``random_forest``.
            force_retrain: retrain even when a recent model exists.

        Returns:
            The accepted job; follow it with :meth:`training_status` or
            :meth:`wait_for_training`.

        Raises:
            ValueError, TypeError: a bad argument; no request was made.
            CircuitOpenError: the breaker is open; no request was made.
            MLServiceError: the call failed; see the subclasses.
        """
        body = train_body(database_name, lookback_days, model_type, force_retrain)
        return await self._call(TRAIN, self._requests.train, body)

    async def training_status(self, job_id: str) -> TrainingStatus:
        """Get a training job's state (``GET /api/train/performance-model/{job_id}``).

        A failed job is a result here (the service reports it with a 400), not an error.

        Args:
            job_id: the job's id; one path segment of letters, digits and ``-._~``.

        Returns:
            The job's state.

        Raises:
            ValueError, TypeError: a job id that would change the URL; no request was made.
            NotFoundError: the service does not know the job.
            CircuitOpenError, MLServiceError: as for :meth:`predict`.
        """
        return await self._call(TRAINING_STATUS, self._requests.status(job_id))

    async def wait_for_training(
        self, job_id: str, *, poll_interval_s: float = 1.0, timeout_s: float = 300.0
    ) -> TrainingStatus:
        """Poll a training job until it completes.

        Each poll, retries included, runs within the wait: its attempts' timeouts are cut
        to the time left, and no poll or retry starts once none is left (so the last poll
        is the last one that starts before ``timeout_s`` has passed).

        Args:
            job_id: the job's id.
            poll_interval_s: seconds between polls.
            timeout_s: how long to wait in all, in seconds (measured with the client's
                clock); a job can stay ``training`` forever when the service's worker is
                down.

        Returns:
            The completed job's status (with its model fields).

        Raises:
            TrainingJobFailedError: the job failed.
            TrainingTimeoutError: the job was still running after ``timeout_s``, or the
                wait ran out during a poll (``last_status`` is ``"unknown"`` when no poll
                answered).
            ValueError, TypeError, CircuitOpenError, MLServiceError: as for
                :meth:`training_status`.
        """
        url = self._requests.status(job_id)
        check_wait(poll_interval_s, timeout_s)
        started = self._clock()
        deadline = started + timeout_s
        last_status = "unknown"
        while True:
            try:
                status = await self._call(TRAINING_STATUS, url, deadline=deadline)
            except ServiceTimeoutError as exc:
                now = self._clock()
                if now < deadline:
                    raise
                raise TrainingTimeoutError(
                    job_id, now - started, last_status, operation="wait_for_training"
                ) from exc
            last_status = status.status.value
            if status.status is TrainingState.COMPLETED:
                return status
            if status.status is TrainingState.FAILED:
                raise TrainingJobFailedError(
                    job_id,
                    trim_body(status.error or "no reason given"),
                    operation="wait_for_training",
                )
            remaining = deadline - self._clock()
            if remaining > 0:
                await self._sleep(min(poll_interval_s, remaining))
                if self._clock() < deadline:
                    continue
            # No poll starts at the deadline: it would have no time for its request.
            raise TrainingTimeoutError(
                job_id, self._clock() - started, last_status, operation="wait_for_training"
            )

    async def validate(
        self,
        *,
        prediction_id: str,
        query_hash: int,
        predicted_execution_time_ms: float,
        actual_execution_time_ms: float,
        model_version: str = "v1.0",
    ) -> ValidationResult:
        """Compare a prediction with the actual time (``POST /api/validate/prediction``).

        Args:
            prediction_id: the caller's id for the prediction, non-empty.
            query_hash: the query's hash, an int > 0.
            predicted_execution_time_ms: the predicted time, > 0 (the service takes 0 for
                "missing").
            actual_execution_time_ms: the measured time, > 0.
            model_version: the version of the model that predicted.

        Returns:
            The comparison.

        Raises:
            ValueError, TypeError: a bad argument; no request was made.
            CircuitOpenError, MLServiceError: as for :meth:`predict`.
        """
        body = validate_body(
            prediction_id,
            query_hash,
            predicted_execution_time_ms,
            actual_execution_time_ms,
            model_version,
        )
        return await self._call(VALIDATE, self._requests.validate, body)

    async def detect_patterns(self, *, database_name: str, lookback_days: int) -> PatternDetection:
        """Detect workload patterns (``POST /api/detect/patterns``).

        Today's real service does not have this endpoint and answers 404
        (:class:`NotFoundError`).

        Args:
            database_name: the database to analyse.
            lookback_days: days of history to analyse, >= 1.

        Returns:
            The detected patterns.

        Raises:
            ValueError, TypeError: a bad argument; no request was made.
            CircuitOpenError, MLServiceError: as for :meth:`predict`.
        """
        body = detect_body(database_name, lookback_days)
        return await self._call(DETECT_PATTERNS, self._requests.detect, body)
