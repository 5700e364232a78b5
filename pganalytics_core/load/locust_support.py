"""Beyond one process: drive :class:`MLClient` from Locust and merge its samples exactly.

Our runner runs in one process. Locust (``pip install locust``; optional) spreads users
over processes and machines; this module lets them call the ML service through
:class:`~pganalytics_core.client.MLClient` and records every request's exact latency in
each Locust process, so that all of them merge *exactly* into one
:class:`~pganalytics_core.load.result.LoadTestResult` (Locust's own statistics round
response times into buckets). A locustfile::

    from locust import task
    from pganalytics_core.load.locust_support import ml_user_class, record_samples

    record_samples("locust-samples")        # every process writes samples-<pid>.zip there
    MLUser = ml_user_class()

    class Predictions(MLUser):
        @task
        def predict(self):
            self.timed("predict", lambda: self.ml.predict(4001))

Run it anywhere Locust runs (``locust -f file.py --headless -u 50 -r 10 -t 60s --host
http://ml:8081``, with ``--processes N`` or ``--master``/``--worker`` on several machines;
the master listens on every interface by default: on one machine add ``--master-bind-host
127.0.0.1 --master-port P --master-bind-port P``), collect every worker's ``samples-*.zip``
into one directory, and merge::

    result = merge_sample_files(Path("locust-samples").glob("samples-*.zip"))

Each user's client gets a circuit breaker that never opens unless
``ml_user_class(client_breaker="default")``: a load test measures the service. A call the
breaker rejects (``CircuitOpenError``) is not reported to Locust but counted as a
rejection in the samples file. Locust's users wait for each answer, so this is the
*closed* model (latency from each request's actual start; coordinated omission applies):
for constant-rate questions on one machine, prefer
:func:`~pganalytics_core.load.runner.run_open`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from pganalytics_core.client import MLClient
from pganalytics_core.load.model import ClosedModel
from pganalytics_core.load.recorder import Recorder, error_type, is_rejection
from pganalytics_core.load.report import read_samples, write_samples
from pganalytics_core.load.result import (
    LoadTestResult,
    RunSamples,
    _sorted_counts,
    build_result,
    merge_results,
    pack_samples,
)
from pganalytics_core.load.scenarios import _NO_RETRIES, ClientBreaker, make_client_breaker

__all__ = ["LocustSampleRecorder", "merge_sample_files", "ml_user_class", "record_samples"]


# The recorders of this process, told when a user of ml_user_class starts.
_RECORDERS: list[LocustSampleRecorder] = []


def _locust() -> Any:  # the locust module, imported only when used
    try:
        return importlib.import_module("locust")
    except ImportError:
        raise ImportError("the Locust integration needs locust: pip install locust") from None


class LocustSampleRecorder:
    """Records every Locust request of one process exactly; writes them when the test stops.

    Args:
        directory: where ``samples-<pid>.zip`` is written at the end of the test.
        name: the run's name in the result.
    """

    def __init__(self, directory: str | os.PathLike[str], name: str = "locust") -> None:
        self.directory = Path(directory)
        self.name = name
        self.recorder = Recorder()
        self._started_ns = time.perf_counter_ns()
        self._started_unix_ns = time.time_ns()
        self._users = 0
        self._started_users = 0
        self._environment: Any = None

    def on_user_start(self) -> None:
        """Called by every user of :func:`ml_user_class` when it starts (exact user count)."""
        self._started_users += 1

    def on_init(self, environment: object = None, **_: object) -> None:
        """Locust ``init`` listener: keep the environment, to count this process's users."""
        self._environment = environment

    def on_test_start(self, environment: object = None, **_: object) -> None:
        """Locust ``test_start`` listener: start the clock."""
        self._started_unix_ns = time.time_ns()
        self._started_ns = time.perf_counter_ns()

    def on_request(
        self,
        request_type: str = "",
        name: str = "",
        response_time: float = 0.0,
        response_length: int = 0,
        exception: BaseException | None = None,
        **_: object,
    ) -> None:
        """Locust ``request`` listener: ``response_time`` is in ms (exact from :meth:`timed`)."""
        latency_ns = round(response_time * 1_000_000)
        if exception is None:
            self.recorder.record_success(latency_ns)
        else:
            self.recorder.record_failure(latency_ns, error_type(exception))

    def on_rejection(self) -> None:
        """Count a call rejected by the user's own circuit breaker (not a request)."""
        self.recorder.rejections += 1

    def on_spawning_complete(self, user_count: int = 0, **_: object) -> None:
        """Locust ``spawning_complete`` listener: remember how many users this process runs
        (from its runner: ``user_count`` is the whole test's)."""
        runner = getattr(self._environment, "runner", None)
        local = getattr(runner, "user_count", None)
        self._users = max(self._users, int(local if isinstance(local, int) else user_count))

    def result(self) -> LoadTestResult:
        """This process's result so far (a closed model of its users, timed)."""
        duration_ns = max(time.perf_counter_ns() - self._started_ns, 1)
        samples = RunSamples(
            latencies_ns=pack_samples(self.recorder.latencies_ns),
            failures_by_type=_sorted_counts(self.recorder.errors),
            started_at_unix_ns=self._started_unix_ns,
            duration_ns=duration_ns,
            rejections=self.recorder.rejections,
        )
        users = self._started_users or self._users
        model = ClosedModel(workers=max(users, 1), duration_s=duration_ns / 1e9)
        return build_result(self.name, model, samples)

    def on_test_stop(self, environment: object = None, **_: object) -> None:
        """Locust ``test_stop`` listener: write this process's samples (if it made requests)."""
        if not len(self.recorder) and not self.recorder.rejections:
            return  # a master, or a worker that sent nothing
        self.directory.mkdir(parents=True, exist_ok=True)
        write_samples(self.directory / f"samples-{os.getpid()}.zip", self.result())


def record_samples(directory: str | os.PathLike[str], name: str = "locust") -> LocustSampleRecorder:
    """Attach a :class:`LocustSampleRecorder` to Locust's events (call it in a locustfile).

    Raises:
        ImportError: Locust is not installed.
    """
    events = _locust().events
    recorder = LocustSampleRecorder(directory, name)
    _RECORDERS.append(recorder)
    for event in ("init", "test_start", "request", "spawning_complete", "test_stop"):
        getattr(events, event).add_listener(getattr(recorder, f"on_{event}"))
    return recorder


def ml_user_class(
    *,
    timeout_s: float = 5.0,
    api_key_variable: str = "PGANALYTICS_ML_API_KEY",
    client_breaker: ClientBreaker = "never-opens",
) -> type:
    """Return an abstract Locust ``User`` whose ``self.ml`` is an :class:`MLClient`.

    Subclass it with tasks that call ``self.timed(name, fn)``: the call is timed with
    ``perf_counter_ns`` and reported to Locust and :func:`record_samples` (an exception as a
    failure; a rejection by the client's breaker only as a rejection: no request was made).
    Retries are off: a load test measures single attempts.

    Args:
        timeout_s: each request's timeout, in seconds.
        api_key_variable: environment variable holding the service's API key, if any.
        client_breaker: each client's circuit breaker: ``"never-opens"`` (measure the
            service) or ``"default"`` (the client's own).

    Raises:
        ImportError: Locust is not installed.
        ConfigError: an unknown ``client_breaker``.
    """
    make_client_breaker(client_breaker)  # check it now, not in every user
    locust = _locust()
    user_base = cast(type, locust.User)

    class MLServiceUser(user_base):  # type: ignore[misc,valid-type]
        abstract = True
        wait_time = locust.constant(0)

        def on_start(self) -> None:
            for recorder in _RECORDERS:
                recorder.on_user_start()
            self.ml = MLClient(
                self.host,
                timeout_s=timeout_s,
                retry=_NO_RETRIES,
                api_key=os.environ.get(api_key_variable) or None,
                breaker=make_client_breaker(client_breaker),
            )

        def on_stop(self) -> None:
            self.ml.close()

        def timed(self, name: str, call: Callable[[], object]) -> None:
            _timed(self.environment.events.request.fire, name, call)

    return MLServiceUser


def _timed(fire: Callable[..., object], name: str, call: Callable[[], object]) -> None:
    """Time ``call`` and report it to Locust's ``request`` event (``fire``), or count a
    rejection by the user's own breaker in this process's recorders (no request made)."""
    start = time.perf_counter_ns()
    exception: BaseException | None = None
    try:
        call()
    except Exception as exc:
        if is_rejection(exc):
            for recorder in _RECORDERS:
                recorder.on_rejection()
            return
        exception = exc
    elapsed_ms = (time.perf_counter_ns() - start) / 1_000_000
    fire(
        request_type="ml",
        name=name,
        response_time=elapsed_ms,
        response_length=0,
        exception=exception,
        context={},
    )


def merge_sample_files(
    paths: Iterable[str | os.PathLike[str]], *, name: str | None = None
) -> LoadTestResult:
    """Merge sample files (of Locust workers, or of ``pganalytics-load --samples``) exactly.

    Raises:
        ValueError: no files, or a file that is not a samples file.
    """
    results = [read_samples(path) for path in paths]
    if not results:
        raise ValueError("no sample files to merge")
    if all(isinstance(r.model, ClosedModel) and r.model.duration_s is not None for r in results):
        # Locust processes run for slightly different times: merge them as one timed run.
        longest = max(r.model.duration_s or 0.0 for r in results)
        results = [
            dataclasses.replace(r, model=dataclasses.replace(r.model, duration_s=longest))
            for r in results
        ]
    return merge_results(results, name=name)
