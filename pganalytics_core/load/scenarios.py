"""The backend's load scenarios as named presets, runnable against the fake service or a URL.

:data:`SCENARIOS` holds them (``pganalytics-load --list-scenarios`` prints their
descriptions): predictions with a client per worker or one shared client, closed or open,
training jobs polled until they complete, and ``breaker-stress``, which calls one shared
:class:`~pganalytics_core.breaker.CircuitBreaker` in process (no service). Each carries
default thresholds, and :func:`scale_model` sizes it down for tests (``iterations=5``).
:func:`run_scenario` starts an embedded :class:`~pganalytics_core.testing.FakeMLService`
(optionally with :class:`~pganalytics_core.testing.Faults`) unless given a ``url``, builds
every client before the clock starts, with retries off (a load test measures single
attempts), and closes everything afterwards.

A load run measures the *service*, so its clients get a circuit breaker that never opens
(``client_breaker="never-opens"``, the default): with the client's default breaker, five
failures in a row would open it and the workers would spin on local ``CircuitOpenError``
rejections instead of loading the service. ``client_breaker="default"`` loads the service
through the breaker callers really use; either way a rejection is counted as a
*rejection* (``LoadTestResult.rejections``), never as a request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, Unpack, get_args

import httpx

from pganalytics_core.breaker import BreakerConfig, CircuitBreaker
from pganalytics_core.client import MLClient
from pganalytics_core.errors import ConfigError
from pganalytics_core.load.model import ClosedModel, LoadModel, OpenModel
from pganalytics_core.load.result import LoadTestResult
from pganalytics_core.load.runner import MeasureOptions, Operation, OperationFactory, run_model
from pganalytics_core.retry import RetryPolicy
from pganalytics_core.testing.fake_service import FakeMLService, Faults

__all__ = [
    "CLIENT_BREAKERS",
    "ClientBreaker",
    "InjectedFailure",
    "SCENARIOS",
    "Scenario",
    "Workload",
    "WorkloadKind",
    "build_workload",
    "get_scenario",
    "make_client_breaker",
    "run_scenario",
    "scale_model",
]

#: What one operation of a scenario does.
WorkloadKind = Literal["predict", "predict-shared-client", "breaker", "train"]
#: The circuit breaker of the clients a scenario builds: one that never opens (measure
#: the service), or the client's default one (measure what callers get).
ClientBreaker = Literal["never-opens", "default"]
#: The accepted values of :data:`ClientBreaker`.
CLIENT_BREAKERS: Final[tuple[str, ...]] = get_args(ClientBreaker)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A named load test: a model, a workload and default pass/fail thresholds.

    Attributes:
        name: the preset's name.
        description: one sentence for ``--list-scenarios``.
        model: the load model at full size.
        workload: what each operation does (see :data:`WorkloadKind`).
        thresholds: default k6-style thresholds, metric -> condition.
        breaker_fail_every: ``breaker`` workload: every n-th guarded call of a worker fails.
        client_breaker: the circuit breaker of the clients built for the run (see the
            module docstring); the in-process ``breaker`` workload ignores it.
    """

    name: str
    description: str
    model: LoadModel
    workload: WorkloadKind
    thresholds: Mapping[str, str] = dataclasses.field(default_factory=dict)
    breaker_fail_every: int = 10
    client_breaker: ClientBreaker = "never-opens"

    def __post_init__(self) -> None:
        # A read-only view, so that a preset cannot be changed through its thresholds.
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))
        _check_client_breaker(self.client_breaker)

    def __reduce__(self) -> tuple[Callable[..., Scenario], tuple[object, ...]]:
        # A mappingproxy does not pickle: rebuild from the fields, thresholds as a dict.
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["thresholds"] = dict(self.thresholds)
        return (functools.partial(Scenario, **fields), ())


def _check_client_breaker(value: object) -> None:
    if value not in CLIENT_BREAKERS:
        raise ConfigError(
            "client_breaker", f"must be one of {', '.join(CLIENT_BREAKERS)}, got {value!r}"
        )


def make_client_breaker(kind: ClientBreaker) -> CircuitBreaker:
    """Return a new load client's circuit breaker: ``"never-opens"`` ignores every exception
    (no failure is ever counted, so the circuit stays CLOSED), ``"default"`` is the client's.

    Raises:
        ConfigError: an unknown kind.
    """
    _check_client_breaker(kind)
    if kind == "default":
        return CircuitBreaker(name="load-client")
    return CircuitBreaker(BreakerConfig(ignored_exceptions=(Exception,)), name="load-client")


#: The presets, by name.
SCENARIOS: Final[Mapping[str, Scenario]] = MappingProxyType(
    {
        s.name: s
        for s in (
            Scenario(
                name="sustained-predictions",
                description="10 workers x 100 predictions, a client per worker",
                model=ClosedModel(workers=10, iterations=100),
                workload="predict",
                thresholds={"error_rate": "<0.01", "p95_ms": "<200"},
            ),
            Scenario(
                name="breaker-stress",
                description="20 workers x 500 calls through one shared circuit breaker "
                "(in process, every 10th call fails)",
                model=ClosedModel(workers=20, iterations=500),
                workload="breaker",
                thresholds={"p99_ms": "<50"},
            ),
            Scenario(
                name="concurrent-training",
                description="5 workers x 20 training jobs, each polled until it completes",
                model=ClosedModel(workers=5, iterations=20),
                workload="train",
                thresholds={"error_rate": "<0.01"},
            ),
            Scenario(
                name="high-contention",
                description="50 workers x 200 predictions through one shared client",
                model=ClosedModel(workers=50, iterations=200),
                workload="predict-shared-client",
                thresholds={"error_rate": "<0.01", "p99_ms": "<1000"},
            ),
            Scenario(
                name="sustained-load",
                description="10 workers sending predictions back to back for 5 s",
                model=ClosedModel(workers=10, duration_s=5.0),
                workload="predict",
                thresholds={"error_rate": "<0.01", "p95_ms": "<200"},
            ),
            Scenario(
                name="constant-rate",
                description="200 predictions/s for 5 s (open model, latency from the "
                "intended start)",
                model=OpenModel(rate_per_s=200.0, duration_s=5.0, workers=10),
                workload="predict",
                thresholds={"error_rate": "<0.01", "p99_ms": "<200", "achieved_ratio": ">0.99"},
            ),
        )
    }
)


def get_scenario(name: str) -> Scenario:
    """Return the preset called ``name``.

    Raises:
        ConfigError: no such preset (the message lists them).
    """
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            "scenario", f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}"
        ) from None


def scale_model(
    model: LoadModel,
    *,
    workers: int | None = None,
    iterations: int | None = None,
    duration_s: float | None = None,
    rate_per_s: float | None = None,
    max_in_flight: int | None = None,
) -> LoadModel:
    """Return ``model`` with the parameters given changed (None keeps one): in the closed
    model ``iterations`` or ``duration_s`` replaces the other; the open one has no iterations.

    Raises:
        ConfigError: a parameter does not apply to the model or is out of range.
    """
    if isinstance(model, ClosedModel):
        if rate_per_s is not None or max_in_flight is not None:
            raise ConfigError("rate_per_s", "applies to the open model only")
        if iterations is not None and duration_s is not None:
            raise ConfigError("iterations", "set iterations or duration_s, not both")
        if iterations is not None or duration_s is not None:
            model = dataclasses.replace(model, iterations=iterations, duration_s=duration_s)
        return model if workers is None else dataclasses.replace(model, workers=workers)
    if iterations is not None:
        raise ConfigError("iterations", "applies to the closed model only; use duration_s")
    if workers is not None and max_in_flight is None:
        max_in_flight = max(model.max_in_flight, workers)  # room for every worker
    changes = {"workers": workers, "duration_s": duration_s, "rate_per_s": rate_per_s}
    changes["max_in_flight"] = max_in_flight
    given = {name: value for name, value in changes.items() if value is not None}
    return dataclasses.replace(model, **given)  # type: ignore[arg-type]


class InjectedFailure(Exception):
    """The failure the ``breaker`` workload's guarded function raises on purpose."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """The operations of a scenario, built before the clock starts.

    Attributes:
        operation_factory: builds worker ``i``'s operation.
        breaker: the shared breaker of the ``breaker`` workload (to check its counts).
    """

    operation_factory: OperationFactory
    breaker: CircuitBreaker | None = None


_NO_RETRIES: Final = RetryPolicy(max_retries=0)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs 0.1-0.3 s per httpx client: build it once for all.
    return ssl.create_default_context()


def _predictor(client: MLClient) -> Operation:
    # Cycle through 1,000 query hashes so the service sees varied but bounded requests.
    hashes = itertools.cycle(range(4001, 5001))
    predict = client.predict
    return lambda: predict(next(hashes))


def _trainer(client: MLClient, timeout_s: float) -> Operation:
    def operation() -> object:
        job = client.train(database_name="pganalytics", lookback_days=30)
        return client.wait_for_training(job.job_id, poll_interval_s=0.01, timeout_s=timeout_s)

    return operation


def _breaker_caller(breaker: CircuitBreaker, fail_every: int) -> Operation:
    calls = itertools.count(1)

    def guarded() -> None:
        if next(calls) % fail_every == 0:
            raise InjectedFailure("injected")

    return functools.partial(breaker.call, guarded)


@contextlib.contextmanager
def build_workload(
    scenario: Scenario,
    url: str,
    *,
    workers: int,
    timeout_s: float = 5.0,
    api_key: str | None = None,
    client_breaker: ClientBreaker | None = None,
) -> Iterator[Workload]:
    """Build a scenario's operations for ``workers`` workers; close them on exit.

    Args:
        scenario: the scenario.
        url: the ML service's base URL (unused by the in-process ``breaker`` workload).
        workers: how many workers will call the operations.
        timeout_s: the clients' timeout per request, in seconds.
        api_key: sent as a Bearer token when set.
        client_breaker: the clients' breaker (default: the scenario's).

    Yields:
        The workload.
    """
    breaker = scenario.client_breaker if client_breaker is None else client_breaker
    _check_client_breaker(breaker)
    with contextlib.ExitStack() as stack:

        def client(pool: int) -> MLClient:
            limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
            transport = httpx.HTTPTransport(verify=_tls_context(), limits=limits)
            built = MLClient(
                url,
                timeout_s=timeout_s,
                retry=_NO_RETRIES,
                api_key=api_key,
                transport=transport,
                breaker=make_client_breaker(breaker),
            )
            return stack.enter_context(built)

        shared: CircuitBreaker | None = None
        if scenario.workload == "breaker":
            shared = CircuitBreaker(
                BreakerConfig(failure_threshold=5, success_threshold=1, open_timeout_s=0.005),
                name=f"load-{scenario.name}",
            )
            fail_every = scenario.breaker_fail_every
            operations = [_breaker_caller(shared, fail_every) for _ in range(workers)]
        elif scenario.workload == "predict-shared-client":
            one_client = client(workers)  # one pool, but each worker its own hash cycle
            operations = [_predictor(one_client) for _ in range(workers)]
        elif scenario.workload == "train":
            operations = [_trainer(client(1), max(timeout_s, 10.0)) for _ in range(workers)]
        else:
            operations = [_predictor(client(1)) for _ in range(workers)]
        yield Workload(operation_factory=operations.__getitem__, breaker=shared)


def run_scenario(
    scenario: Scenario | str,
    *,
    url: str | None = None,
    faults: Faults | None = None,
    workers: int | None = None,
    iterations: int | None = None,
    duration_s: float | None = None,
    rate_per_s: float | None = None,
    max_in_flight: int | None = None,
    timeout_s: float = 5.0,
    api_key: str | None = None,
    client_breaker: ClientBreaker | None = None,
    before_start: Callable[[], object] | None = None,
    on_workload: Callable[[Workload], object] | None = None,
    **options: Unpack[MeasureOptions],
) -> LoadTestResult:
    """Run a scenario; return its result, named after it (the caller checks thresholds).

    Args:
        scenario: a :class:`Scenario` or a preset's name.
        url: the ML service to load; None starts an embedded fake service on 127.0.0.1
            for the run (not for the in-process ``breaker`` workload).
        faults: faults for the embedded fake service (only without ``url``).
        workers, iterations, duration_s, rate_per_s, max_in_flight: override the
            scenario's model (see :func:`scale_model`).
        timeout_s: each request's timeout, in seconds.
        api_key: the service's API key, if it needs one.
        client_breaker: the clients' circuit breaker (default: the scenario's);
            rejections are counted in ``LoadTestResult.rejections``, never as requests.
        options: how the run is measured, as for :func:`~pganalytics_core.load.runner.run_model`
            (:class:`~pganalytics_core.load.runner.MeasureOptions`; ``name``: the scenario's).
        before_start: called after the clients are built, right before the clock starts.
        on_workload: called with the built :class:`Workload` (to inspect its breaker).

    Raises:
        ConfigError: an unknown scenario, parameters that do not fit its model, or faults
            together with a ``url`` or for the ``breaker`` workload.
    """
    chosen = get_scenario(scenario) if isinstance(scenario, str) else scenario
    model = scale_model(
        chosen.model,
        workers=workers,
        iterations=iterations,
        duration_s=duration_s,
        rate_per_s=rate_per_s,
        max_in_flight=max_in_flight,
    )
    if url is not None and faults is not None:
        raise ConfigError("faults", "can only be injected into the embedded fake service")
    if chosen.workload == "breaker" and faults is not None:
        raise ConfigError("faults", f"{chosen.name!r} runs in process and calls no service")
    with contextlib.ExitStack() as stack:
        if chosen.workload == "breaker":
            url = url or "http://127.0.0.1:9"  # in process: no service is called
        elif url is None:
            url = stack.enter_context(FakeMLService(seed=0, faults=faults or Faults())).url
        workload = stack.enter_context(
            build_workload(
                chosen,
                url,
                workers=model.workers,
                timeout_s=timeout_s,
                api_key=api_key,
                client_breaker=client_breaker,
            )
        )
        if on_workload is not None:
            on_workload(workload)
        if before_start is not None:
            before_start()
        options.setdefault("name", chosen.name)
        return run_model(model, operation_factory=workload.operation_factory, **options)
