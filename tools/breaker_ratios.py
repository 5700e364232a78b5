"""Same-run ratios of the breaker's paths to the lock floor's (issue 11's targets).

Times every benchmark of ``bench_breaker.VersusLockFloor`` (and ``BreakerOps.time_metrics``)
with timeit in one process, round-robin, so each ratio compares numbers taken under the
same load. Hold the machine-wide timing lock::

    flock /tmp/pga-timing.lock .venv/bin/python tools/breaker_ratios.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_breaker import (  # noqa: E402
    BreakerOps,
    VersusLockFloor,
    VersusWrappedFloor,
)

TARGETS = [
    ("with/call", "time_with_block", "time_call_success", 1.5),
    ("guard/call", "time_guard_block", "time_call_success", 1.5),
    ("failure/floor", "time_call_failure", "time_floor_failure", 1.1),
    ("rejection/floor", "time_rejection_open", "time_floor_rejection", 1.1),
]
#: The same paths against the floor reached through ``call(fn, *args, **kwargs)`` and the
#: cheapest possible gate object (class ``VersusWrappedFloor``; no target of their own).
WRAPPED = [
    ("failure/wrapped floor", "time_call_failure", "time_wrapped_floor_failure"),
    ("rejection/wrapped floor", "time_rejection_open", "time_wrapped_floor_rejection"),
    ("success/wrapped floor", "time_call_success", "time_wrapped_floor_success"),
    ("guard/gate floor", "time_guard_block", "time_floor_gate_block"),
    ("gate floor/call", "time_floor_gate_block", "time_call_success"),
]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    ours = VersusLockFloor()
    ours.setup()
    ops = BreakerOps()
    ops.setup()
    wrapped = VersusWrappedFloor()
    wrapped.setup()
    fns = {n: getattr(ours, n) for n in vars(VersusLockFloor) if n.startswith("time_")}
    fns["time_metrics"] = ops.time_metrics
    extra = {
        n: getattr(wrapped, n)
        for n in vars(VersusWrappedFloor)
        if n.startswith("time_") and "floor" in n
    }
    fns.update(extra)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    number = 5000
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(timeit.timeit(fn, number=number) / number * 1e9)
    median = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in median.items():
        print(f"{name:24s} {value:8.0f} ns")
    for label, a, b, target in TARGETS:
        print(f"{label:16s} {median[a] / median[b]:5.2f}  (target <= {target})")
    print(f"metrics() {median['time_metrics']:.0f} ns  (target <= 2000)")
    for label, a, b in WRAPPED:
        print(f"{label:24s} {median[a] / median[b]:5.2f}")


if __name__ == "__main__":
    main()
