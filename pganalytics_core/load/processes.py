"""Scale a run out over several processes, and run the fake service in a process of its own.

Python threads share one interpreter lock, so one process tops out at a few thousand
requests per second. :func:`run_processes` starts ``processes`` worker processes
(``multiprocessing`` with the *spawn* method, safe with threads), gives each its share of
the load (every N-th request of the open model's schedule, phase-shifted, so that together
they send exactly the one-process schedule; ``workers / N`` in the closed one), lets them
build their clients, starts them together at a barrier, and merges their raw samples
*exactly* with :func:`~pganalytics_core.load.result.merge_results`: the merged percentiles
are those of one run over all the samples. The ``breaker-stress`` preset is refused: its
workers must share one in-process breaker.

Beyond one machine, use an existing distributed load engine rather than a home-made
cluster: :mod:`pganalytics_core.load.locust_support` drives :class:`MLClient` from Locust
users and turns the raw samples of every Locust worker into one exact
:class:`~pganalytics_core.load.result.LoadTestResult`. Results of runs on several machines
can also be merged by hand: save each with ``--samples FILE`` (see
:func:`~pganalytics_core.load.report.write_samples`) and merge the files with
:func:`~pganalytics_core.load.report.read_samples` and :func:`merge_results` (their wall
clocks must be synchronized for the merged duration to be right).

:class:`FakeServiceProcess` runs the embedded fake service in a child process, so that the
load generator does not share its interpreter lock with the server it measures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Protocol

from pganalytics_core.errors import ConfigError
from pganalytics_core.load.model import ClosedModel, LoadModel
from pganalytics_core.load.result import LoadTestResult, merge_results
from pganalytics_core.load.scenarios import Scenario, get_scenario, run_scenario, scale_model
from pganalytics_core.load.stats import PercentileMethod
from pganalytics_core.testing.fake_service import FakeMLService, Faults

__all__ = ["FakeServiceProcess", "run_processes", "split_model"]

_START_TIMEOUT_S: Final = 120.0


def split_model(model: LoadModel, processes: int) -> list[LoadModel]:
    """Split a model into shares, one per process, that add up to it exactly.

    Open model: share ``k`` of ``N`` sends the requests ``k, k + N, k + 2N, ...`` of the
    whole schedule (phase ``k / rate``, period ``N / rate``; see ``OpenModel.share_index``),
    so the union of the shares is exactly the single-process schedule: no synchronized
    bursts, no request lost to rounding. A schedule of fewer requests than ``processes``
    is split into one share per request.
    Each share gets its part of the workers (at least one) and of ``max_in_flight``.
    Closed model: the workers are divided (so ``workers >= processes``), iterations or
    duration stay per worker.

    Raises:
        ConfigError: ``processes < 1``, an open model that is already a share, or fewer
            closed-model workers than processes.
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ConfigError("processes", f"must be an int >= 1, got {processes!r}")
    if isinstance(model, ClosedModel):
        if model.workers < processes:
            raise ConfigError(
                "processes",
                f"the closed model's {model.workers} workers cannot be split over "
                f"{processes} processes",
            )
        base, extra = divmod(model.workers, processes)
        return [
            dataclasses.replace(model, workers=base + (1 if index < extra else 0))
            for index in range(processes)
        ]
    if model.share_count != 1:
        raise ConfigError("model", "is already a share of a schedule; split the whole model")
    count = min(processes, model.schedule_requests)
    workers = max(math.ceil(model.workers / count), 1)
    in_flight = max(math.ceil(model.max_in_flight / count), workers)
    return [
        dataclasses.replace(
            model,
            workers=workers,
            max_in_flight=in_flight,
            share_index=index,
            share_count=count,
        )
        for index in range(count)
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class _ChildSpec:
    scenario: Scenario
    model: LoadModel
    url: str
    timeout_s: float
    api_key: str | None
    method: PercentileMethod


def _child_main(
    spec: _ChildSpec,
    go: EventLike,
    results: multiprocessing.Queue[tuple[str, object]],
) -> None:
    def wait_for_the_others() -> None:
        results.put(("ready", None))
        if not go.wait(_START_TIMEOUT_S):
            raise RuntimeError("the other load processes did not get ready in time")

    try:
        scenario = dataclasses.replace(spec.scenario, model=spec.model)
        result = run_scenario(
            scenario,
            url=spec.url,
            timeout_s=spec.timeout_s,
            api_key=spec.api_key,
            method=spec.method,
            before_start=wait_for_the_others,
        )
        results.put(("ok", result))
    except BaseException as exc:  # report every failure to the parent, then exit
        results.put(("error", f"{type(exc).__name__}: {exc}"))


class EventLike(Protocol):
    """What a child needs of its start signal (a ``multiprocessing`` event)."""

    def wait(self, timeout: float | None = None) -> bool: ...


def run_processes(
    scenario: Scenario | str,
    *,
    processes: int,
    url: str | None = None,
    faults: Faults | None = None,
    workers: int | None = None,
    iterations: int | None = None,
    duration_s: float | None = None,
    rate_per_s: float | None = None,
    max_in_flight: int | None = None,
    timeout_s: float = 5.0,
    api_key: str | None = None,
    method: PercentileMethod = "nearest-rank",
) -> LoadTestResult:
    """Run a scenario in ``processes`` processes at once and merge the results exactly.

    The children are *spawned*: a script calling this must guard its entry point with
    ``if __name__ == "__main__":``. An open-model schedule of fewer requests than
    ``processes`` runs in one process per request.

    Args:
        scenario: a :class:`Scenario` or a preset's name.
        processes: how many worker processes.
        url: the ML service; None starts an embedded fake service in this process (idle
            while the children run, so the server has this interpreter to itself).
        faults: faults for the embedded fake service.
        workers, iterations, duration_s, rate_per_s, max_in_flight: the *total* model,
            as for :func:`~pganalytics_core.load.scenarios.run_scenario`.
        timeout_s, api_key, method: as for ``run_scenario``.

    Returns:
        The merged result; its model is the total model.

    Raises:
        ConfigError: bad parameters (see :func:`split_model`), or the ``breaker``
            workload, whose workers must share one in-process breaker.
        RuntimeError: a child process failed (the message carries its error).
    """
    chosen = get_scenario(scenario) if isinstance(scenario, str) else scenario
    if chosen.workload == "breaker":
        raise ConfigError(
            "processes",
            f"{chosen.name!r} measures one circuit breaker shared by all its workers; "
            "split over processes, each would have its own: run it in one process",
        )
    model = scale_model(
        chosen.model,
        workers=workers,
        iterations=iterations,
        duration_s=duration_s,
        rate_per_s=rate_per_s,
        max_in_flight=max_in_flight,
    )
    shares = split_model(model, processes)
    if url is not None and faults is not None:
        raise ConfigError("faults", "can only be injected into the embedded fake service")
    context = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        if url is None:
            service = stack.enter_context(
                FakeMLService(seed=0, faults=faults if faults is not None else Faults())
            )
            url = service.url
        # A start signal rather than a Barrier: a Barrier keeps shared memory mapped.
        go = context.Event()
        results: multiprocessing.Queue[tuple[str, object]] = context.Queue()
        children = [
            context.Process(
                target=_child_main,
                args=(
                    _ChildSpec(
                        scenario=chosen,
                        model=share,
                        url=url,
                        timeout_s=timeout_s,
                        api_key=api_key,
                        method=method,
                    ),
                    go,
                    results,
                ),
                name=f"pganalytics-load-{index}",
                daemon=True,
            )
            for index, share in enumerate(shares)
        ]
        stack.callback(_close_queue, results)
        stack.callback(_reap, children)
        for child in children:
            child.start()
        collected = _gather(children, results, go)
    errors = [str(payload) for status, payload in collected if status != "ok"]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(shares)} load processes failed: {errors[0]}")
    parts = [payload for _, payload in collected if isinstance(payload, LoadTestResult)]
    merged = merge_results(parts, name=chosen.name, method=method)
    return dataclasses.replace(merged, model=model)


def _gather(
    children: Sequence[multiprocessing.process.BaseProcess],
    results: multiprocessing.Queue[tuple[str, object]],
    go: multiprocessing.synchronize.Event,
) -> list[tuple[str, object]]:
    """Start the children together once all are ready; collect one outcome from each."""
    ready = 0
    collected: list[tuple[str, object]] = []
    while len(collected) < len(children):
        try:
            status, payload = results.get(timeout=0.5)
        except queue.Empty:
            # A child that died without reporting (killed, crashed interpreter).
            dead = [c for c in children if not c.is_alive() and c.exitcode not in (0, None)]
            if dead and results.empty():
                collected.append(("error", f"{dead[0].name} exited with {dead[0].exitcode}"))
                break
            continue
        if status == "ready":
            ready += 1
            if ready == len(children):
                go.set()
            continue
        collected.append((status, payload))
        if status != "ok" and not go.is_set():
            break  # the others would wait for it in vain
    if len(collected) < len(children):
        for child in children:
            if child.is_alive():
                child.terminate()
    return collected


def _reap(children: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for child in children:
        if child.pid is None:  # never started
            continue
        child.join(10.0)
        if child.is_alive():
            child.terminate()
            child.join()
        child.close()  # releases the process's sentinel file descriptor


def _close_queue(results: multiprocessing.Queue[tuple[str, object]]) -> None:
    results.close()
    results.join_thread()


def _serve_fake(
    faults: Faults,
    seed: int,
    training_step_s: float,
    conn: multiprocessing.connection.Connection,
) -> None:
    try:
        with FakeMLService(seed=seed, faults=faults, training_step_s=training_step_s) as service:
            conn.send(("ok", service.url))
            conn.recv()  # anything, or EOF when the parent goes away, stops the service
    except EOFError:
        pass
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class FakeServiceProcess:
    """The embedded fake ML service, in a child process (spawned), on 127.0.0.1.

    Use as a context manager; :attr:`url` is valid inside. Faults are fixed for the
    process's lifetime (use an in-process :class:`FakeMLService` to change them mid-run).

    Args:
        faults: the faults to inject.
        seed: the service's random seed.
        training_step_s: seconds a training job stays queued, then training.
    """

    def __init__(
        self, faults: Faults | None = None, *, seed: int = 0, training_step_s: float = 0.05
    ) -> None:
        self._faults = faults if faults is not None else Faults()
        self._seed = seed
        self._training_step_s = training_step_s
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The service's base URL."""
        if self._url is None:
            raise RuntimeError("FakeServiceProcess is not running")
        return self._url

    def __enter__(self) -> FakeServiceProcess:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_serve_fake,
            args=(self._faults, self._seed, self._training_step_s, child),
            name="pganalytics-fake-ml",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        try:
            if not parent.poll(_START_TIMEOUT_S):
                raise RuntimeError("the fake service process did not start in time")
            status, payload = parent.recv()
        except BaseException:
            self._shutdown()
            raise
        if status != "ok":
            self._shutdown()
            raise RuntimeError(f"the fake service process failed: {payload}")
        self._url = str(payload)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        self._url = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send("stop")
            conn.close()
        if process is not None:
            process.join(10.0)
            if process.is_alive():
                process.terminate()
                process.join()
            process.close()
