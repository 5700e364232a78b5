"""Fault injection: the :class:`Faults` configuration and the injector that applies it.

:class:`FaultInjector` owns the live fault state (the configuration, pending
:meth:`~FakeMLService.fail_next` instructions and the seeded ``random.Random``) behind its
own lock, held only to decide what a request gets (:meth:`FaultInjector.plan`). What a
plan means on the wire is :mod:`.connection`'s business; :func:`spoil` rewrites the
answer for the modes that keep the connection healthy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import threading
from dataclasses import dataclass
from typing import Final, NamedTuple, TypedDict, Unpack

from pganalytics_core._validation import check_seconds
from pganalytics_core.testing.fake_service.responses import HTML, JSON, PROXY_PAGE, Response
from pganalytics_core.testing.fake_service.routes import ENDPOINT_NAMES

#: The values :attr:`Faults.mode` accepts besides ``None``.
FAULT_MODES: Final[frozenset[str]] = frozenset(
    {
        "reset",
        "malformed_json",
        "truncated",
        "oversized",
        "wrong_content_type",
        "non_finite",
        "drip",
    }
)

_TRAINING_OUTCOMES: Final = frozenset({"completed", "failed"})


def check_status(name: str, value: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int in 100..599."""
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError(f"{name} must be an HTTP status code in 100..599, got {value!r}")


def check_endpoints(name: str, value: object) -> frozenset[str] | None:
    """Return ``value`` as a frozenset of known endpoint names (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, frozenset | set | list | tuple):
        raise ValueError(f"{name} must be a frozenset of endpoint names or None, got {value!r}")
    names = frozenset(value)
    unknown = sorted(str(n) for n in names - ENDPOINT_NAMES)
    if unknown:
        raise ValueError(
            f"{name} holds unknown endpoint name(s) {unknown}; known: {sorted(ENDPOINT_NAMES)}"
        )
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """What the fake service does wrong, and to which endpoints. Immutable.

    Vary it with :func:`dataclasses.replace` or :meth:`FakeMLService.update_faults`.
    For each request a configuration applies to, the service draws from its
    ``random.Random(seed)`` in this order: one ``random()`` when ``error_rate > 0`` (the
    request fails when the draw is below ``error_rate``), then one
    ``uniform(0, jitter_s)`` when ``jitter_s > 0``. The sequence of faults therefore
    depends only on the seed and on the order in which matching requests arrive.

    Attributes:
        latency_s: fixed delay before answering, in seconds (also how to exceed a
            client's timeout). The delay is announced in an ``X-Injected-Delay-Ms``
            response header.
        jitter_s: extra uniform random delay in ``[0, jitter_s]`` seconds.
        error_rate: fraction (0..1) of requests answered with ``error_status``.
        error_status: the HTTP status of injected errors (100..599).
        retry_after_s: when set, injected error responses (including those of
            :meth:`FakeMLService.fail_next`) carry ``Retry-After``: these seconds, rounded
            up to an integer.
        mode: ``None`` or one of ``"reset"`` (send the headers and half the body, then
            reset the connection), ``"malformed_json"`` (200 and a body that is not valid
            JSON), ``"truncated"`` (a ``Content-Length`` larger than the body sent, then
            close), ``"oversized"`` (200 and the real JSON body padded to
            ``oversized_bytes``), ``"wrong_content_type"`` (200 and a ``text/html`` page),
            ``"non_finite"`` (the real JSON answer with every number written as ``NaN``,
            as a careless ``json.dumps`` does: not JSON), ``"drip"`` (the real answer, its
            body sent one byte every ``drip_interval_s``, then the connection closed: a
            server never idle long enough to trip a per-read timeout).
            The endpoint's handler still runs (a training job is still created): only its
            answer is spoiled. An injected error takes precedence over the mode.
        oversized_bytes: body size of ``"oversized"`` answers, in bytes.
        drip_interval_s: the pause before each body byte of ``"drip"`` answers (> 0).
        endpoints: the endpoint names (see :data:`ENDPOINT_NAMES`) the faults apply to;
            ``None`` means all.
        training_outcome: how training jobs created from now on end: ``"completed"`` or
            ``"failed"``.

    Raises:
        ValueError: a field is out of range; the message names the field.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    retry_after_s: float | None = None
    mode: str | None = None
    oversized_bytes: int = 2_000_000
    drip_interval_s: float = 0.05
    endpoints: frozenset[str] | None = None
    training_outcome: str = "completed"

    def __post_init__(self) -> None:
        check_seconds("latency_s", self.latency_s)
        check_seconds("jitter_s", self.jitter_s)
        check_seconds("drip_interval_s", self.drip_interval_s, allow_zero=False)
        rate = self.error_rate
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not 0.0 <= rate <= 1.0
        ):
            raise ValueError(f"error_rate must be a fraction in [0, 1], got {rate!r}")
        check_status("error_status", self.error_status)
        if self.retry_after_s is not None:
            check_seconds("retry_after_s", self.retry_after_s)
        if self.mode is not None and self.mode not in FAULT_MODES:
            raise ValueError(
                f"mode must be None or one of {sorted(FAULT_MODES)}, got {self.mode!r}"
            )
        size = self.oversized_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"oversized_bytes must be an int >= 0 (bytes), got {size!r}")
        # Accept any set-like collection but store a frozenset, so Faults stays hashable.
        object.__setattr__(self, "endpoints", check_endpoints("endpoints", self.endpoints))
        if self.training_outcome not in _TRAINING_OUTCOMES:
            raise ValueError(
                f"training_outcome must be one of {sorted(_TRAINING_OUTCOMES)}, "
                f"got {self.training_outcome!r}"
            )

    def applies_to(self, endpoint: str) -> bool:
        """Return whether these faults apply to ``endpoint`` (an endpoint name)."""
        return self.endpoints is None or endpoint in self.endpoints


class FaultChanges(TypedDict, total=False):
    """The keyword arguments of :meth:`FakeMLService.update_faults`: fields of :class:`Faults`."""

    latency_s: float
    jitter_s: float
    error_rate: float
    error_status: int
    retry_after_s: float | None
    mode: str | None
    oversized_bytes: int
    drip_interval_s: float
    endpoints: frozenset[str] | None
    training_outcome: str


NO_FAULTS: Final = Faults()


class Plan(NamedTuple):
    """What to do wrong with one request, decided by :meth:`FaultInjector.plan`."""

    delay_s: float
    error_status: int | None
    retry_after_s: float | None
    mode: str | None
    oversized_bytes: int
    drip_interval_s: float = 0.05


class _FailRule:
    """A pending :meth:`FakeMLService.fail_next` instruction."""

    __slots__ = ("endpoints", "remaining", "retry_after_s", "status")

    def __init__(
        self,
        remaining: int,
        status: int,
        retry_after_s: float | None,
        endpoints: frozenset[str] | None,
    ) -> None:
        self.remaining = remaining
        self.status = status
        self.retry_after_s = retry_after_s
        self.endpoints = endpoints


class FaultInjector:
    """The live fault state of one service; thread-safe.

    Args:
        faults: the initial configuration.
        seed: seed of the ``random.Random`` that draws error rates and jitter.
    """

    def __init__(self, faults: Faults, seed: int) -> None:
        self._lock = threading.Lock()
        # Everything below is guarded by _lock.
        self._faults = faults
        self._active = faults != NO_FAULTS
        self._rules: list[_FailRule] = []
        self._random = random.Random(seed)

    @property
    def faults(self) -> Faults:
        """The current configuration."""
        return self._faults

    def set(self, faults: Faults) -> None:
        """Replace the configuration; pending failures are kept."""
        if not isinstance(faults, Faults):
            raise TypeError(f"faults must be a Faults, got {type(faults).__name__}")
        with self._lock:
            self._faults = faults
            self._active = faults != NO_FAULTS

    def update(self, **changes: Unpack[FaultChanges]) -> None:
        """Change some fields of the configuration (all or nothing)."""
        with self._lock:
            faults = dataclasses.replace(self._faults, **changes)
            self._faults = faults
            self._active = faults != NO_FAULTS

    def clear(self) -> None:
        """Remove the configuration and every pending failure."""
        with self._lock:
            self._faults = NO_FAULTS
            self._active = False
            self._rules.clear()

    def fail_next(
        self,
        n: int,
        *,
        status: int,
        retry_after_s: float | None,
        endpoints: frozenset[str] | None,
    ) -> None:
        """Queue a :meth:`FakeMLService.fail_next` instruction (arguments checked there)."""
        with self._lock:
            self._rules.append(_FailRule(n, status, retry_after_s, endpoints))

    def plan(self, endpoint: str) -> Plan | None:
        """Decide the faults of one request to ``endpoint``; ``None`` when it has none.

        Draws from the seeded random generator in the order :class:`Faults` documents.
        """
        with self._lock:
            if not self._active and not self._rules:
                return None
            faults = self._faults
            delay_s = 0.0
            error_status: int | None = None
            retry_after_s: float | None = None
            mode: str | None = None
            if faults.applies_to(endpoint):
                delay_s = faults.latency_s
                if faults.error_rate > 0.0 and self._random.random() < faults.error_rate:
                    error_status = faults.error_status
                    retry_after_s = faults.retry_after_s
                if faults.jitter_s > 0.0:
                    delay_s += self._random.uniform(0.0, faults.jitter_s)
                mode = faults.mode
            for index, rule in enumerate(self._rules):
                if rule.endpoints is None or endpoint in rule.endpoints:
                    error_status = rule.status
                    retry_after_s = (
                        faults.retry_after_s if rule.retry_after_s is None else rule.retry_after_s
                    )
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self._rules[index]
                    break
            return Plan(
                delay_s,
                error_status,
                retry_after_s,
                mode,
                faults.oversized_bytes,
                faults.drip_interval_s,
            )


def _not_a_number(value: object) -> object:
    """``value`` (decoded JSON) with every number, at any depth, replaced by NaN."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return math.nan
    if isinstance(value, dict):
        return {key: _not_a_number(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_not_a_number(item) for item in value]
    return value


def spoil(response: Response, mode: str, oversized_bytes: int) -> Response:
    """Rewrite an answer for the modes that keep the connection healthy.

    ``"malformed_json"`` drops the body's closing brace (an answer that is not a JSON
    object becomes a JSON fragment), ``"non_finite"`` writes every number of a JSON
    answer as ``NaN``, ``"wrong_content_type"`` answers a portal's HTML
    page, ``"oversized"`` adds a ``"padding"`` member up to ``oversized_bytes`` (still
    valid JSON; an answer that is not a JSON object is replaced). All answer 200 and keep
    the answer's extra headers.
    """
    body = response.body
    if mode == "malformed_json":
        stripped = body.rstrip()
        broken = stripped[:-1] if stripped.endswith(b"}") else b'{"status": "ok", '
        return Response(200, broken, JSON, response.headers)
    if mode == "wrong_content_type":
        return Response(200, PROXY_PAGE, HTML, response.headers)
    if mode == "non_finite":
        try:
            data = json.loads(body)
        except ValueError:
            data = {"value": 0}
        return Response(200, json.dumps(_not_a_number(data)).encode(), JSON, response.headers)
    if mode == "oversized":
        stripped = body.rstrip()
        if response.content_type != JSON or not stripped.startswith(b"{"):
            stripped = b"{}"
        head = b'{"padding":"' if stripped == b"{}" else stripped[:-1] + b',"padding":"'
        padding = max(oversized_bytes - len(head) - 2, 0)
        return Response(200, b"".join((head, b"x" * padding, b'"}')), JSON, response.headers)
    raise ValueError(f"mode {mode!r} is not a body rewrite")
