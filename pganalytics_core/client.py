"""Clients of the ML service: :class:`MLClient` (threads) and :class:`AsyncMLClient` (asyncio).

Both speak the HTTP contract of ``ml-service-api.md`` and share everything but the I/O.
The call policy is written once, without I/O, in modules by concept:
:mod:`pganalytics_core._policy` (attempt budgets, interpreting answers, retries with
:class:`~pganalytics_core.retry.RetryPolicy`, the cache) uses ``_requests`` (arguments,
URLs, headers, bodies), ``_bodies`` (bounded reading and inflation, strict JSON),
``_secrets`` (URL credentials, scrubbing), ``_translate`` (httpx exceptions and statuses
into errors, the one place), ``_batch_plan`` and ``_deadline`` (an attempt's end, on the
client's clock). The loops
that send, read and sleep are written once too, for asyncio, in
:mod:`pganalytics_core._async_client`; :mod:`pganalytics_core._sync_client` is generated
from it by ``benchtools/unasync.py`` (renaming, as httpcore does with unasync; a test
fails when it is stale), so the two clients differ only in how they send bytes, sleep
and run a batch at once (:mod:`pganalytics_core._batch`: threads or tasks).

Each HTTP attempt goes through the client's :class:`~pganalytics_core.breaker.CircuitBreaker`
(``call`` / ``call_async``, so a cancelled or interrupted attempt frees its half-open probe
slot without counting as an outcome). Breaker accounting:

* failures: timeouts, connection errors, 5xx, 408, 429, any other non-2xx status that is
  not a 4xx (a redirect is not an answer of a healthy ML service), and 2xx responses that
  are malformed or too large;
* successes: 2xx answers, and 4xx answers other than 408 and 429. Those are the caller's
  fault (a bad argument, an unknown job): the service answered them correctly and is
  healthy, so they must never open the circuit for every other caller. They are recorded
  as successes rather than ignored so that, while HALF_OPEN, such an answer frees its
  probe slot and counts towards closing the circuit: it proves the service is up.

A 4xx answer other than 408 and 429 keeps its typed status error whatever its body (too
long, undecodable, an unsupported encoding): only the excerpt suffers.

Retries follow the client's :class:`RetryPolicy`; ``train`` creates a job and is retried
only when the request certainly never reached the service. A :class:`CircuitOpenError` is
never retried.

Deadlines: each attempt is one exchange (waiting for a pooled connection, connect, send,
status line and headers, body, inflation) bounded as a whole by ``timeout_s``, or by the
time left of ``RetryPolicy.deadline_s`` (or of ``wait_for_training``) when that is less;
no attempt starts once nothing is left. httpx times each socket operation, not an
exchange, so the client's transports run on :mod:`pganalytics_core._deadline`'s network
backend, which cuts every connect, read and write to the time left in the attempt: a
server dripping its headers or body one byte at a time ends in
:class:`ServiceTimeoutError` when the budget runs out. Successful predictions are cached when a
:class:`PredictionCache` is given, except those the service answered from its mock data
(``source == "mock"``, its database being down): they would outlive the outage.

Response bodies and memory: the client asks for ``Accept-Encoding: identity`` and reads
the raw bytes (``iter_raw``), so ``max_response_bytes`` bounds what is held, never a body
inflated behind its back. A server that compresses anyway is served for ``gzip`` and
``deflate`` (RFC 9110's zlib format), inflated chunk by chunk with a bounded output, so a
compression bomb costs at most about ``max_response_bytes``; any other encoding (``br``,
``zstd``, stacked encodings) is refused with :class:`MalformedResponseError`, as
``brotli`` has no bounded-output API in the standard library. An error body's excerpt is
read the same way and never raises: an undecodable one is cut short. A response built in
memory (``httpx.MockTransport``, respx) was already read, and decoded, by httpx.

Secrets (the API key, the URL password and its Basic token) are scrubbed, in any letter
case, from everything taken from a response before it reaches a message, an attribute or
a result: header values, every JSON string and key (scrubbed once, after decoding, only
when the body shows a secret or an escape), body excerpts, and the text of the httpx,
httpcore and h11 exceptions chained to the client's errors. No exception that holds such
a value is kept as a ``__context__``. On an httpx exception the ``Authorization`` header
of the request it carries is replaced by ``[redacted]``. JSON is decoded as RFC 8259 has
it: ``NaN``, ``Infinity`` and numbers beyond a float's range are malformed answers.

Speed: the hot path builds an ``httpx.Request`` by hand from pre-bound URLs, pre-built
headers and a pre-built timeout (skipping ``Client.build_request``'s merging and
``send``'s timeout building), reads the body with a size limit, parses with
``json.loads`` on the bytes and hand-written dataclass parsing, and logs nothing.
"""

from __future__ import annotations

from pganalytics_core._async_client import AsyncMLClient
from pganalytics_core._policy import BREAKER_NAME, DEFAULT_MAX_RESPONSE_BYTES, RouterLike
from pganalytics_core._sync_client import MLClient

__all__ = [
    "AsyncMLClient",
    "BREAKER_NAME",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MLClient",
    "RouterLike",
]
