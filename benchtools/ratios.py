"""Same-run ratios of paired benchmark bodies, timed in one process (``ratios``).

asv times each benchmark in its own process, seconds apart; a ratio of two of its
numbers mixes two machine states. This times the bodies of asv benchmarks round-robin in
one process, so each ratio compares numbers taken under the same load::

    flock /tmp/pga-timing.lock .venv/bin/python -m benchtools ratios breaker [ROUNDS]
    flock /tmp/pga-timing.lock .venv/bin/python -m benchtools ratios client [ROUNDS]

* ``breaker``: every path of ``bench_breaker.VersusLockFloor`` (and ``metrics()``)
  against the lock floor, and against the floors of ``VersusWrappedFloor`` (the floor
  reached through ``call(fn, *args, **kwargs)``, the cheapest gate object); medians of
  per-round means, in ns.
* ``client``: the clients against raw httpx over loopback (``bench_client``'s async pair
  with raw httpx's default pool and with the same 50 connections, and the sync 10-thread
  pair); throughput ours/raw, the median and quartiles of the paired per-round ratios.

The numbers are for a reader (docs/performance.md); no verdict is made here.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

#: (label, numerator, denominator, target): the ratios issue 11 set targets for.
BREAKER_TARGETS = [
    ("with/call", "time_with_block", "time_call_success", 1.5),
    ("guard/call", "time_guard_block", "time_call_success", 1.5),
    ("failure/floor", "time_call_failure", "time_floor_failure", 1.1),
    ("rejection/floor", "time_rejection_open", "time_floor_rejection", 1.1),
]
#: The same paths against the wrapped floors (``VersusWrappedFloor``; no targets).
BREAKER_WRAPPED = [
    ("failure/wrapped floor", "time_call_failure", "time_wrapped_floor_failure"),
    ("rejection/wrapped floor", "time_rejection_open", "time_wrapped_floor_rejection"),
    ("success/wrapped floor", "time_call_success", "time_wrapped_floor_success"),
    ("guard/gate floor", "time_guard_block", "time_floor_gate_block"),
    ("gate floor/call", "time_floor_gate_block", "time_call_success"),
]


def suite_module(name: str) -> ModuleType:
    """``benchmarks.NAME`` of this checkout (asv's suite: untyped, so not imported statically)."""
    return importlib.import_module(f"benchmarks.{name}")


def bodies(bench: Any, keep: Callable[[str], bool] = lambda name: True) -> dict[str, Any]:
    """The ``time_`` bodies of a set-up benchmark instance, by name."""
    return {
        name: getattr(bench, name)
        for name in vars(type(bench))
        if name.startswith("time_") and keep(name)
    }


def round_robin_ns(
    fns: dict[str, Callable[[], object]], rounds: int, number: int
) -> dict[str, float]:
    """Each body's median over ``rounds`` of its mean time per call, in ns, round-robin."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(timeit.timeit(fn, number=number) / number * 1e9)
    return {name: statistics.median(values) for name, values in samples.items()}


def breaker(rounds: int, number: int = 5000) -> list[str]:
    """The breaker's report, as lines."""
    suite = suite_module("bench_breaker")
    ours, ops, wrapped = suite.VersusLockFloor(), suite.BreakerOps(), suite.VersusWrappedFloor()
    for bench in (ours, ops, wrapped):
        bench.setup()
    fns = bodies(ours)
    fns["time_metrics"] = ops.time_metrics
    fns.update(bodies(wrapped, lambda name: "floor" in name))
    median = round_robin_ns(fns, rounds, number)
    lines = [f"{name:30s} {value:8.0f} ns" for name, value in median.items()]
    lines += [
        f"{label:16s} {median[a] / median[b]:5.2f}  (target <= {target})"
        for label, a, b, target in BREAKER_TARGETS
    ]
    lines.append(f"metrics() {median['time_metrics']:.0f} ns  (a cold path: no target)")
    lines += [f"{label:30s} {median[a] / median[b]:5.2f}" for label, a, b in BREAKER_WRAPPED]
    return lines


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_throughput(
    label: str, ours: Callable[[], object], raw: Callable[[], object], rounds: int
) -> str:
    """One line: both sides' median times and the paired throughput ratio ours/raw."""
    for _ in range(3):  # warm up: connections, caches
        ours()
        raw()
    ours_s, raw_s, ratios = [], [], []
    for _ in range(rounds):
        ours_s.append(_timed(ours))
        raw_s.append(_timed(raw))
        ratios.append(raw_s[-1] / ours_s[-1])
    low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return (
        f"{label}: ours {statistics.median(ours_s) * 1e3:.1f} ms, raw httpx "
        f"{statistics.median(raw_s) * 1e3:.1f} ms; throughput ours/raw, paired: median "
        f"{statistics.median(ratios):.3f} [{low:.3f}..{high:.3f}]  (target >= 0.95)"
    )


def client(rounds: int) -> list[str]:
    """The client's report, as lines."""
    suite = suite_module("bench_client")

    pairs: list[tuple[str, Any, str, str]] = [
        (
            "async, 50 concurrent (raw httpx's default pool)",
            suite.LoopbackAsync(),
            "time_async_predictions_50_concurrent",
            "time_raw_httpx_async_50_concurrent",
        ),
        (
            "async, 50 concurrent, 50 connections each",
            suite.LoopbackAsyncSameLimits(),
            "time_async_predictions_50_concurrent",
            "time_raw_httpx_async_50_concurrent",
        ),
        (
            "sync, 10 threads",
            suite.LoopbackConcurrent(),
            "time_concurrent_predictions_10_threads",
            "time_raw_httpx_concurrent_10_threads",
        ),
    ]
    lines = []
    for label, bench, ours, raw in pairs:
        bench.setup()
        try:
            lines.append(
                paired_throughput(label, getattr(bench, ours), getattr(bench, raw), rounds)
            )
        finally:
            bench.teardown()
    return lines


def main(argv: Sequence[str]) -> int:
    """``ratios breaker|client [ROUNDS]``: print the report; 2 on a usage error."""
    reports = {"breaker": (breaker, 25), "client": (client, 40)}
    if (
        not argv
        or argv[0] not in reports
        or len(argv) > 2
        or (len(argv) == 2 and not argv[1].isdigit())
    ):
        print("usage: python -m benchtools ratios {breaker,client} [ROUNDS]", file=sys.stderr)
        return 2
    report, default_rounds = reports[argv[0]]
    rounds = int(argv[1]) if len(argv) == 2 else default_rounds
    for line in report(max(rounds, 1)):
        print(line, flush=True)
    return 0
