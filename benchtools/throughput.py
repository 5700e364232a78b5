"""The fake ML service's throughput on loopback, two revisions in one run (``fake-throughput``).

::

    flock /tmp/pga-timing.lock .venv/bin/python -m benchtools fake-throughput \\
        [--baseline main] [--candidate REV] [--rounds 5] [--seconds 2] [--threads 4]

The baseline's ``pganalytics_core`` is extracted with ``git archive`` into a temporary
directory; so is the candidate's when ``--candidate`` names a revision, else the
candidate is this checkout's working tree (do not edit it during a run). Each measurement
is :mod:`benchtools.fake_load` run by path in a fresh interpreter that imports one of the
two, and the two alternate (which side goes first flips each round) so that both see the
same machine load.

Prints requests per second per run, the medians, the process's CPU time per request
(less sensitive to other load on the machine than wall-clock rates), and candidate /
baseline ratios (the median of the per-round ratios). Exit status 0 (2 on bad options or
an unknown revision); the numbers are for a reader to judge.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from benchtools.git import GitError, git

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("fake_load.py")
SIDES = ("baseline", "candidate")


@dataclass(frozen=True)
class Measurement:
    """One run of the driver: requests per second, CPU µs of the process per request."""

    rate: float
    cpu_us: float


def extract(ref: str, into: Path) -> Path:
    """``pganalytics_core`` of ``ref``, extracted under ``into`` (created)."""
    archive = git(ROOT, "archive", "--format=tar", ref, "pganalytics_core")
    into.mkdir()
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(root: Path, load: str, seconds: float, threads: int) -> Measurement:
    """One run of :mod:`benchtools.fake_load` on the code under ``root``."""
    out = subprocess.run(
        [sys.executable, str(DRIVER), str(root), load, str(seconds), str(threads)],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds * 10 + 60,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    module = Path(result["module"]).resolve()
    if not module.is_relative_to(root.resolve()):
        raise RuntimeError(f"measured {module}, not the code under {root}")
    return Measurement(rate=float(result["rate"]), cpu_us=float(result["cpu_us"]))


def report(load: str, runs: dict[str, list[Measurement]], rounds: int, seconds: float) -> list[str]:
    """The lines for one load: each side's runs and medians, then the paired ratios."""
    lines = [f"load {load!r} ({rounds} rounds x {seconds:g} s):"]
    for side, measured in runs.items():
        rates = " ".join(f"{m.rate:,.0f}" for m in measured)
        lines.append(
            f"  {side:9} median {statistics.median(m.rate for m in measured):8,.0f} req/s, "
            f"{statistics.median(m.cpu_us for m in measured):6.1f} CPU us/request   [{rates}]"
        )
    for name, field in (("req/s", "rate"), ("CPU us/request", "cpu_us")):
        ratios = [
            getattr(c, field) / getattr(b, field)
            for b, c in zip(runs["baseline"], runs["candidate"], strict=True)
        ]
        lines.append(
            f"  candidate / baseline, {name}: median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
        )
    return lines


def main(argv: Sequence[str]) -> int:
    """Run the comparison and print it; 0, or 2 on bad options or an unknown revision."""
    parser = argparse.ArgumentParser(
        prog="python -m benchtools fake-throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument(
        "--candidate", default=None, help="git revision to measure (default: the working tree)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per run (2)")
    parser.add_argument("--threads", type=int, default=4, help="httpx client threads (4)")
    parser.add_argument(
        "--load", choices=("httpx", "pipelined", "both"), default="both", help="(both)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.threads < 1:
        parser.error("--rounds and --threads must be at least 1, --seconds above 0")
    loads = ["httpx", "pipelined"] if args.load == "both" else [args.load]
    with tempfile.TemporaryDirectory(prefix="fake-throughput-") as tmp:
        try:
            roots = {
                "baseline": extract(args.baseline, Path(tmp, "baseline")),
                "candidate": ROOT
                if args.candidate is None
                else extract(args.candidate, Path(tmp, "candidate")),
            }
        except GitError as exc:
            print(f"fake-throughput: {exc}", file=sys.stderr)
            return 2
        for load in loads:
            runs: dict[str, list[Measurement]] = {side: [] for side in SIDES}
            for round_ in range(args.rounds):
                # Alternate which side goes first, so neither always runs on a warmer box.
                for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
                    runs[side].append(measure(roots[side], load, args.seconds, args.threads))
            for line in report(load, runs, args.rounds, args.seconds):
                print(line, flush=True)
    return 0
