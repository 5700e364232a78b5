"""Measure the load generator itself on this machine: ``python -m pganalytics_core.load.calibrate``.

Before trusting a load test's numbers, check that the generator is not the bottleneck:

0. **Recording cost**: the runner's hot loop (time, call, append) around a no-op, per
   request, against a bare loop of the same calls.
1. **Runner overhead**: the same HTTP request (``POST /api/predict/query-execution`` with
   raw httpx, one client per thread) in a bare loop of N threads and through
   :func:`~pganalytics_core.load.runner.run_closed`, in paired rounds of the same run;
   the overhead is the median of the paired time-per-request ratios, in %.
2. **Open-model accuracy**: :func:`~pganalytics_core.load.runner.run_open` at a target rate
   (1,000 req/s by default): achieved rate and scheduler lag p50/p99.
3. **Percentiles of 10^6 samples**: :func:`~pganalytics_core.load.stats.summarize` against
   a full ``sorted`` of the same samples.

The fake service runs in a child process so that it does not share this process's
interpreter lock (it still shares the CPUs: on a 2-core machine the server and the
generator compete, so read the numbers as ratios). Exit status 0; this tool measures, it
does not judge.
"""

from __future__ import annotations

import argparse
import array
import json
import random
import ssl
import statistics
import threading
import time
from collections.abc import Callable, Sequence

import httpx

from pganalytics_core.load.processes import FakeServiceProcess
from pganalytics_core.load.runner import run_closed, run_open
from pganalytics_core.load.stats import summarize

__all__ = [
    "main",
    "measure_open_model",
    "measure_overhead",
    "measure_percentiles",
    "measure_recording",
]

_BODY = b'{"query_hash": 4001, "parameters": {}, "scenario": "current"}'
_HEADERS = {"Content-Type": "application/json"}


def _clients(count: int) -> list[httpx.Client]:
    context = ssl.create_default_context()
    return [
        httpx.Client(
            transport=httpx.HTTPTransport(verify=context, limits=httpx.Limits(max_connections=1)),
            trust_env=False,
        )
        for _ in range(count)
    ]


def _raw_loop(clients: Sequence[httpx.Client], url: str, per_thread: int) -> float:
    """Seconds per request of a bare loop: every thread posts ``per_thread`` times."""
    gate = threading.Barrier(len(clients) + 1)

    def work(client: httpx.Client) -> None:
        post = client.post
        gate.wait()
        for _ in range(per_thread):
            post(url, content=_BODY, headers=_HEADERS)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - started) / (len(clients) * per_thread)


def _runner_loop(clients: Sequence[httpx.Client], url: str, per_thread: int) -> float:
    """Seconds per request of the same load through ``run_closed``."""

    def factory(index: int) -> Callable[[], object]:
        post = clients[index].post
        return lambda: post(url, content=_BODY, headers=_HEADERS)

    result = run_closed(
        operation_factory=factory, workers=len(clients), iterations=per_thread, keep_samples=False
    )
    return result.duration_s / result.total_requests


def measure_overhead(
    url: str, *, threads: int = 10, per_thread: int = 300, rounds: int = 5
) -> dict[str, object]:
    """Compare a bare httpx loop with the runner on the same requests, in paired rounds.

    Each round runs the bare loop, then the runner; the overhead is the median over rounds
    of ``runner / bare - 1`` (pairs adjacent in time see the same machine load).

    Returns:
        ``raw_rps`` and ``runner_rps`` (medians), ``overhead_percent`` (median of the
        paired ratios) and every round's rates.
    """
    clients = _clients(threads)
    try:
        _raw_loop(clients, url, 20)  # warm the connections up
        raw: list[float] = []
        runner: list[float] = []
        for _ in range(rounds):
            raw.append(_raw_loop(clients, url, per_thread))
            runner.append(_runner_loop(clients, url, per_thread))
    finally:
        for client in clients:
            client.close()
    ratios = [r / b for r, b in zip(runner, raw, strict=True)]
    return {
        "raw_rps": round(1 / statistics.median(raw), 1),
        "runner_rps": round(1 / statistics.median(runner), 1),
        "overhead_percent": round((statistics.median(ratios) - 1) * 100, 2),
        "raw_rps_rounds": [round(1 / x, 1) for x in raw],
        "runner_rps_rounds": [round(1 / x, 1) for x in runner],
    }


def measure_open_model(
    url: str, *, rate_per_s: float = 1000.0, duration_s: float = 5.0, workers: int = 16
) -> dict[str, object]:
    """Run the open model against ``url`` and report how well it held the rate."""
    clients = _clients(workers)
    try:

        def factory(index: int) -> Callable[[], object]:
            post = clients[index].post
            return lambda: post(url, content=_BODY, headers=_HEADERS)

        result = run_open(
            operation_factory=factory,
            rate_per_s=rate_per_s,
            duration_s=duration_s,
            workers=workers,
            keep_samples=False,
        )
    finally:
        for client in clients:
            client.close()
    stats = result.open_model
    assert stats is not None
    return {
        "target_rate_per_s": stats.target_rate_per_s,
        "achieved_rate_per_s": round(stats.achieved_rate_per_s, 2),
        "achieved_percent": round(stats.achieved_rate_per_s / stats.target_rate_per_s * 100, 2),
        "scheduler_lag_p50_ms": stats.scheduler_lag.p50_ms,
        "scheduler_lag_p99_ms": stats.scheduler_lag.p99_ms,
        "latency_p99_ms": result.p99_ms,
        "service_p99_ms": stats.service_time.p99_ms,
        "dropped": stats.dropped_requests,
        "failed": result.failed_requests,
        "saturated": stats.saturated,
        "saturation_reasons": list(stats.saturation_reasons),
    }


def measure_percentiles(samples: int = 1_000_000, rounds: int = 3) -> dict[str, float]:
    """Time :func:`summarize` and a full ``sorted`` over the same lognormal samples."""
    rng = random.Random(1)
    data = array.array("q", (int(rng.lognormvariate(13.5, 0.6)) for _ in range(samples)))
    best_summary = best_sort = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        summarize(data)
        best_summary = min(best_summary, time.perf_counter() - started)
        started = time.perf_counter()
        sorted(data)
        best_sort = min(best_sort, time.perf_counter() - started)
    return {
        "samples": samples,
        "summarize_ms": round(best_summary * 1000, 1),
        "sorted_ms": round(best_sort * 1000, 1),
        "speedup": round(best_sort / best_summary, 2),
    }


def measure_recording(iterations: int = 200_000, rounds: int = 3) -> dict[str, float]:
    """Cost of the runner's hot loop per request: ``run_closed`` of a no-op vs a bare loop.

    Returns:
        ``bare_ns`` (a plain loop calling the no-op), ``runner_ns`` (the same calls timed
        and recorded by one worker of ``run_closed``) and ``recording_ns``, the difference.
    """

    def no_op() -> None:
        return None

    best_bare = best_runner = float("inf")
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for _ in range(iterations):
            no_op()
        best_bare = min(best_bare, (time.perf_counter_ns() - started) / iterations)
        result = run_closed(no_op, workers=1, iterations=iterations, keep_samples=False)
        best_runner = min(best_runner, result.duration_s * 1e9 / iterations)
    return {
        "bare_ns": round(best_bare, 1),
        "runner_ns": round(best_runner, 1),
        "recording_ns": round(best_runner - best_bare, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print them as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m pganalytics_core.load.calibrate",
        description="Measure the load generator on this machine (see the module docstring).",
    )
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--per-thread", type=int, default=300)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--open-workers", type=int, default=16)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument(
        "--only",
        choices=("recording", "overhead", "open", "percentiles"),
        help="run one measurement",
    )
    args = parser.parse_args(argv)
    report: dict[str, object] = {}
    if args.only in (None, "recording"):
        report["recording"] = measure_recording()
    if args.only in (None, "percentiles"):
        report["percentiles"] = measure_percentiles(args.samples)
    if args.only in (None, "overhead", "open"):
        with FakeServiceProcess() as service:
            url = f"{service.url}/api/predict/query-execution"
            if args.only in (None, "overhead"):
                report["overhead"] = measure_overhead(
                    url, threads=args.threads, per_thread=args.per_thread
                )
            if args.only in (None, "open"):
                report["open_model"] = measure_open_model(
                    url, rate_per_s=args.rate, duration_s=args.duration, workers=args.open_workers
                )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
