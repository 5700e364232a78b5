"""The fake service in a process of its own, so that it does not share the interpreter
lock of the code that loads it (the load runner's default for ``pganalytics-load``).

Scaling the *load* out beyond one process is Locust's job: see
:mod:`pganalytics_core.load.locust_support`, which merges every Locust process's samples
exactly into one :class:`~pganalytics_core.load.result.LoadTestResult`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
from typing import Final

from pganalytics_core.testing.fake_service.faults import Faults
from pganalytics_core.testing.fake_service.service import FakeMLService

__all__ = ["FakeServiceProcess"]

_START_TIMEOUT_S: Final = 120.0


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
    """The embedded fake ML service in a child process (spawned), on 127.0.0.1: a context
    manager, :attr:`url` valid inside. Its faults are fixed for the process's lifetime (an
    in-process :class:`FakeMLService` can change them mid-run).

    Args:
        faults: the faults to inject.
        seed: the service's random seed.
        training_step_s: seconds a training job stays queued, then training.
    """

    def __init__(
        self, faults: Faults | None = None, *, seed: int = 0, training_step_s: float = 0.05
    ) -> None:
        self._args = (faults if faults is not None else Faults(), seed, training_step_s)
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
            args=(*self._args, child),
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

    def __exit__(self, *exc_info: object) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = self._url = None
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
