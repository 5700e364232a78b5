"""Shared, seeded, append-only fixtures for the asv suites.

Append new helpers at the end; never change what an existing helper returns (that would
shift the history of every benchmark using it).

Every suite must also run against older commits of main, whose package may lack an API:
use :func:`require` in ``setup`` so that asv records "n/a" (NotImplementedError) instead
of a failure.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

SEED = 20261126


def require(module: str, *names: str) -> Any:
    """Import ``module`` and return it (or the named attributes as a tuple).

    Raises:
        NotImplementedError: the module or one of the names does not exist in the commit
            being benchmarked; asv then skips the benchmark for that commit.
    """
    try:
        mod: ModuleType = importlib.import_module(module)
    except ImportError as exc:
        raise NotImplementedError(f"{module} is not available: {exc}") from None
    if not names:
        return mod
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise NotImplementedError(f"{module} lacks {', '.join(missing)}")
    values = tuple(getattr(mod, n) for n in names)
    return values[0] if len(values) == 1 else values


def run_in_threads(n_threads: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``n_threads`` threads released together; wait for all."""
    barrier = threading.Barrier(n_threads)

    def body(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def noop() -> None:
    """The cheapest guarded function: the floor of a guarded call."""


async def async_noop() -> None:
    """The cheapest awaitable function."""


class Failure(Exception):
    """The exception the failure-path benchmarks raise."""


def fail() -> None:
    raise Failure
