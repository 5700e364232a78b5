"""Same-run throughput of the clients against raw httpx over loopback (issue 11's target).

Runs ``bench_client.LoopbackAsync`` and ``LoopbackAsyncSameLimits`` (50 concurrent
predictions, async client vs raw ``httpx.AsyncClient``) and ``LoopbackConcurrent`` (10
threads, sync client vs raw ``httpx.Client``) in one process, alternating ours and raw
each round, so every ratio compares two timings taken back to back. asv times each
benchmark in a process of its own, minutes apart on a shared machine; this pairs them.
Hold the timing lock::

    flock /tmp/pga-timing.lock .venv/bin/python tools/client_ratios.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_client import (  # noqa: E402
    LoopbackAsync,
    LoopbackAsyncSameLimits,
    LoopbackConcurrent,
)


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pair(label: str, ours: Callable[[], None], raw: Callable[[], None], rounds: int) -> None:
    for _ in range(3):  # warm up: connections, caches
        ours()
        raw()
    ratios = []
    ours_s, raw_s = [], []
    for _ in range(rounds):
        ours_s.append(_timed(ours))
        raw_s.append(_timed(raw))
        ratios.append(raw_s[-1] / ours_s[-1])
    quartiles = statistics.quantiles(ratios, n=4)
    print(
        f"{label}: ours {statistics.median(ours_s) * 1e3:.1f} ms, raw httpx "
        f"{statistics.median(raw_s) * 1e3:.1f} ms; throughput ours/raw, paired: median "
        f"{statistics.median(ratios):.3f} [{quartiles[0]:.3f}..{quartiles[2]:.3f}]"
        "  (target >= 0.95)"
    )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    for label, bench_async in [
        ("async, 50 concurrent (raw httpx's default pool)", LoopbackAsync()),
        ("async, 50 concurrent, 50 connections each", LoopbackAsyncSameLimits()),
    ]:
        bench_async.setup()
        try:
            _pair(
                label,
                bench_async.time_async_predictions_50_concurrent,
                bench_async.time_raw_httpx_async_50_concurrent,
                rounds,
            )
        finally:
            bench_async.teardown()
    bench_sync = LoopbackConcurrent()
    bench_sync.setup()
    try:
        _pair(
            "sync, 10 threads",
            bench_sync.time_concurrent_predictions_10_threads,
            bench_sync.time_raw_httpx_concurrent_10_threads,
            rounds,
        )
    finally:
        bench_sync.teardown()


if __name__ == "__main__":
    main()
