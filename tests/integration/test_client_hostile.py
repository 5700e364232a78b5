"""A hostile server: non-finite numbers (issue 12.2) and echoed secrets (issue 12.3).

A raw-socket server answers each request the way a test asks. For the secrets, it echoes
the request's ``Authorization`` header (and, for Basic credentials, the decoded
``user:password``) everywhere it can: in header values, JSON strings, keys, bodies and a
malformed header line. Neither client may let any of it reach a message, a repr, an
exception's args, context or cause (recursively), a result's repr or a log record of
ours, whatever the case the server echoes it in.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from raw_http import RawConnection, RawServer

from pganalytics_core import (
    AsyncMLClient,
    CircuitBreaker,
    MalformedResponseError,
    MLClient,
    MLServiceError,
    PredictionCache,
    RetryPolicy,
    ServiceConnectionError,
    ServiceStatusError,
    TrainingJobFailedError,
)
from pganalytics_core.models import PredictionRequest

API_KEY = "sk-Live-Secret-9f8E7d6C"
USER = "alice"
PASSWORD = "Pa55-Word-Xyz-42"
BASIC_TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
JOB_ID = "job-1"

Answer = Callable[[RawConnection, str], bytes]


def _response(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "Connection: close"]
    if not any(h.lower().startswith("content-type:") for h in headers):
        head.append("Content-Type: application/json")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _prediction(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "query_hash": 1,
        "predicted_execution_time_ms": 10.0,
        "confidence_score": 0.9,
        "confidence_interval": {"lower_bound_ms": 1.0, "upper_bound_ms": 20.0, "std_dev_ms": 2.0},
        "scenario": "current",
        "model_version": "v1.0",
        "prediction_timestamp": "2026-01-01T00:00:00",
        "source": "model",
    }
    body.update(changes)
    return body


def _status(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {"job_id": JOB_ID, "status": "completed"}
    body.update(changes)
    return body


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _escaped(text: str) -> str:
    # The echo spelt with JSON escapes: the raw body never shows it.
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


class Echo:
    """A server answering every request with ``answer(conn, echo)``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def __call__(self, conn: RawConnection) -> None:
        echo = conn.headers.get("authorization", "none")
        if echo.startswith("Basic "):
            echo += " " + base64.b64decode(echo.removeprefix("Basic ")).decode()
        conn.send(self.answer(conn, echo))


# ------------------------------------------------------------------ clients, both kinds


def _run(kind: str, url: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    kwargs.setdefault("retry", RetryPolicy.none())
    kwargs.setdefault("timeout_s", 5.0)
    if kind == "sync":
        with MLClient(url, **kwargs) as client:
            return call(client)

    async def main() -> Any:
        async with AsyncMLClient(url, **kwargs) as client:
            result = call(client)
            return await result

    return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client the test drives."""
    return str(request.param)


# ------------------------------------------------------------------ non-finite numbers

NON_FINITE = {
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "overflow": b"1e999",
}


@pytest.mark.parametrize("literal", sorted(NON_FINITE))
@pytest.mark.parametrize("field", ["predicted_execution_time_ms", "std_dev_ms"])
def test_a_non_finite_number_is_malformed_a_failure_and_never_cached(
    kind: str, literal: str, field: str
) -> None:
    placeholder = 12345.678
    body = _prediction()
    if field == "std_dev_ms":
        body["confidence_interval"] = {
            "lower_bound_ms": 1.0,
            "upper_bound_ms": 2.0,
            "std_dev_ms": placeholder,
        }
    else:
        body[field] = placeholder
    raw = _json(body).replace(str(placeholder).encode(), NON_FINITE[literal])
    breaker = CircuitBreaker(name="nan")
    cache = PredictionCache(max_entries=8)
    with (
        RawServer(Echo(lambda conn, echo: _response("200 OK", raw))) as server,
        pytest.raises(MalformedResponseError, match="not JSON"),
    ):
        _run(kind, server.url, lambda c: c.predict(1), breaker=breaker, cache=cache)
    metrics = breaker.metrics()
    assert (metrics.total_failures, metrics.total_successes) == (1, 0)
    assert cache.get(PredictionRequest.create(1)) is None
    assert len(cache) == 0


def test_a_non_finite_number_deep_in_any_answer_is_refused(kind: str) -> None:
    body = _json(
        {"patterns": [{"type": "spike", "confidence": 0.5, "metadata": {"x": [1.5]}}]}
    ).replace(b"1.5", b"NaN")
    with (
        RawServer(Echo(lambda conn, echo: _response("200 OK", body))) as server,
        pytest.raises(MalformedResponseError),
    ):
        _run(kind, server.url, lambda c: c.detect_patterns(database_name="d", lookback_days=1))


# ------------------------------------------------------------------ echoed secrets


def _texts(exc: BaseException) -> list[str]:
    """Every text an exception shows or keeps: messages, reprs, args, attributes, chain."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts += [repr(value) for value in getattr(current, "__dict__", {}).values()]
        texts += [repr(getattr(current, "doc", ""))]  # json.JSONDecodeError keeps the body
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return texts


@pytest.fixture(params=["api_key", "url_credentials"])
def credentials(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """(how to build the client, the secrets that must never show)."""
    if request.param == "api_key":
        yield {"api_key": API_KEY}, [API_KEY]
    else:
        yield {"userinfo": f"{USER}:{PASSWORD}@"}, [PASSWORD, BASIC_TOKEN]


#: The shortest piece of a secret that counts as a leak (a cut can leave a piece).
FRAGMENT_CHARS = 8


def _assert_clean(texts: list[str], secrets: list[str]) -> None:
    pieces = {
        secret[i : i + FRAGMENT_CHARS].lower()
        for secret in secrets
        for i in range(len(secret) - FRAGMENT_CHARS + 1)
    }
    for text in texts:
        folded = text.lower()
        for piece in pieces:
            assert piece not in folded, (piece, text[:300])


# Each case: the answer (given the echo), the call, the error expected (None: a result).
Case = tuple[Answer, Callable[[Any], Any], type[BaseException] | None]

CASES: dict[str, Case] = {
    "content-type": (
        lambda conn, echo: _response("200 OK", _json(_prediction()), f"Content-Type: {echo}"),
        lambda c: c.predict(1),
        MalformedResponseError,
    ),
    "content-encoding": (
        lambda conn, echo: _response("200 OK", b"{}", f"Content-Encoding: {echo}"),
        lambda c: c.predict(1),
        MalformedResponseError,
    ),
    "content-encoding-of-an-error": (
        lambda conn, echo: _response("500 Oops", b"x", f"Content-Encoding: {echo}"),
        lambda c: c.predict(1),
        ServiceStatusError,
    ),
    "error-body": (
        lambda conn, echo: _response("500 Oops", f"denied for {echo}".encode()),
        lambda c: c.predict(1),
        ServiceStatusError,
    ),
    "gzipped-error-body": (
        lambda conn, echo: _response(
            "503 Busy", gzip.compress(f"no, {echo}".encode()), "Content-Encoding: gzip"
        ),
        lambda c: c.predict(1),
        ServiceStatusError,
    ),
    "not-json": (
        lambda conn, echo: _response("200 OK", f"<p>{echo}</p>".encode()),
        lambda c: c.predict(1),
        MalformedResponseError,
    ),
    "training-status-field": (
        lambda conn, echo: _response(
            "202 Accepted",
            _json(
                {
                    "job_id": JOB_ID,
                    "status": echo,
                    "database_name": "d",
                    "lookback_days": 7,
                    "model_type": "linear_regression",
                }
            ),
        ),
        lambda c: c.train(database_name="d", lookback_days=7),
        MalformedResponseError,
    ),
    "timestamp-field": (
        lambda conn, echo: _response("200 OK", _json(_prediction(prediction_timestamp=echo))),
        lambda c: c.predict(1),
        MalformedResponseError,
    ),
    "field-name": (
        lambda conn, echo: _response(
            "200 OK", _json(_status(feature_importance={echo: "not a number"}))
        ),
        lambda c: c.training_status(JOB_ID),
        MalformedResponseError,
    ),
    "failed-job-reason": (
        lambda conn, echo: _response(
            "400 Bad Request", _json(_status(status="failed", error=echo))
        ),
        lambda c: c.wait_for_training(JOB_ID, poll_interval_s=0.01, timeout_s=5.0),
        TrainingJobFailedError,
    ),
    "illegal-header-line": (
        lambda conn, echo: f"HTTP/1.1 200 OK\r\n{echo}\r\n\r\n".encode("latin-1"),
        lambda c: c.predict(1),
        ServiceConnectionError,
    ),
    "json-string-in-a-result": (
        lambda conn, echo: _response("200 OK", _json(_prediction(model_version=echo))),
        lambda c: c.predict(1),
        None,
    ),
    "escaped-json-string-in-a-result": (
        lambda conn, echo: _response(
            "200 OK",
            _json(_prediction(model_version="@")).replace(b'"@"', f'"{_escaped(echo)}"'.encode()),
        ),
        lambda c: c.predict(1),
        None,
    ),
    "failed-job-in-a-result": (
        lambda conn, echo: _response(
            "400 Bad Request", _json(_status(status="failed", error=echo))
        ),
        lambda c: c.training_status(JOB_ID),
        None,
    ),
}


def _uppercase(answer: Answer) -> Answer:
    return lambda conn, echo: answer(conn, echo.upper())


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("echo_case", ["as-sent", "upper"])
def test_an_echoed_secret_shows_nowhere(
    kind: str,
    case: str,
    echo_case: str,
    credentials: tuple[dict[str, Any], list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer, call, expected = CASES[case]
    if echo_case == "upper":
        answer = _uppercase(answer)
    client_kwargs, secrets = credentials
    caplog.set_level(logging.DEBUG, logger="pganalytics_core")
    with RawServer(Echo(answer)) as server:
        url = server.url
        userinfo = client_kwargs.pop("userinfo", None)
        if userinfo is not None:
            url = url.replace("http://", f"http://{userinfo}")
        texts: list[str] = []
        if expected is None:
            result = _run(kind, url, call, **client_kwargs)
            texts += [repr(result), str(result)]
        else:
            with pytest.raises(expected) as info:
                _run(kind, url, call, **client_kwargs)
            texts += _texts(info.value)
            assert isinstance(info.value, MLServiceError)
        assert server.requests >= 1
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.exc_info) for record in caplog.records if record.exc_info]
    _assert_clean(texts, secrets)


def test_the_server_really_echoes_the_secret() -> None:
    # Guards the test above: without scrubbing, the echo would be there to find.
    seen: list[str] = []

    def answer(conn: RawConnection, echo: str) -> bytes:
        seen.append(echo)
        return _response("200 OK", _json(_prediction()))

    with RawServer(Echo(answer)) as server:
        _run(
            "sync",
            server.url.replace("http://", f"http://{USER}:{PASSWORD}@"),
            lambda c: c.predict(1),
        )
        _run("sync", server.url, lambda c: c.predict(1), api_key=API_KEY)
    assert BASIC_TOKEN in seen[0]
    assert PASSWORD in seen[0]
    assert API_KEY in seen[1]
