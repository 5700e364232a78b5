"""The command line: ``python tools/asv_compare.py`` (or ``python -m benchtools compare``).

Exit codes, returned unchanged to the caller (CI calls this directly; ``make compare``
cannot pass 1 on: make turns every failing command into its own exit 2):
0 nothing regressed, 1 a regression beyond the threshold, 2 a benchmark failed or could
not run, or the comparison itself could not be made (the report still lists every
benchmark that did run).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from benchtools.compare import calldiff
from benchtools.compare.gitrev import dirty_paths, resolve
from benchtools.compare.model import (
    DEFAULT_CONFIRM_ROUNDS,
    DEFAULT_FACTOR,
    DEFAULT_INSTRUCTIONS_THRESHOLD,
    DEFAULT_ROUNDS,
    CompareError,
)
from benchtools.compare.report import ReportInfo, render_markdown, render_text, report_json
from benchtools.compare.verdicts import compare_all, exit_code

#: The repository this tool lives in (benchtools/compare/cli.py -> the root).
ROOT = Path(__file__).resolve().parents[2]


def _factor(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        f = math.nan
    if not (math.isfinite(f) and f > 1):
        raise argparse.ArgumentTypeError(f"expected a number > 1, got {value!r}")
    return f


def _fraction(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        f = math.nan
    if not (math.isfinite(f) and 0 < f < 1):
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {value!r}")
    return f


def _count(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = minimum - 1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value!r}")
        return n

    return parse


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The parsed command line (see :func:`build_parser` for each option's meaning)."""

    base: str
    head: str
    factor: float
    bench: list[str]
    rounds: int
    confirm_rounds: int
    instructions_threshold: float
    inform_only: list[str]
    quick: bool
    no_run: bool
    markdown: Path | None
    json: Path | None
    launch_method: str
    no_pin: bool
    repo: Path


def add_bench_option(p: argparse.ArgumentParser, what: str) -> None:
    """``-b/--bench REGEX`` (repeatable, asv's ``-b``), as every command that selects."""
    p.add_argument("-b", "--bench", action="append", default=[], metavar="REGEX", help=what)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``asv_compare.py``."""
    p = argparse.ArgumentParser(
        prog="asv_compare.py",
        description="Benchmark two revisions with asv and print a review report.",
        epilog="Exit codes: 0 nothing regressed, 1 a regression, 2 a benchmark failed or "
        "could not run (or no comparison could be made). Details: docs/reviewing.md.",
    )
    p.add_argument("--base", default="main", help="the reference revision (default: main)")
    p.add_argument("--head", default="HEAD", help="the revision under review (default: HEAD)")
    p.add_argument(
        "--factor",
        type=_factor,
        default=DEFAULT_FACTOR,
        help=f"a change must be beyond this ratio, either way (default: {DEFAULT_FACTOR})",
    )
    add_bench_option(p, "only benchmarks whose name(params) matches REGEX (as asv -b; repeatable)")
    p.add_argument(
        "--rounds",
        type=_count(1),
        default=DEFAULT_ROUNDS,
        help=f"paired rounds over every benchmark (default: {DEFAULT_ROUNDS})",
    )
    p.add_argument(
        "--confirm-rounds",
        type=_count(0),
        default=DEFAULT_CONFIRM_ROUNDS,
        help="more rounds for the benchmarks that look changed "
        f"(default: {DEFAULT_CONFIRM_ROUNDS}; 0: none)",
    )
    p.add_argument(
        "--instructions-threshold",
        type=_fraction,
        default=DEFAULT_INSTRUCTIONS_THRESHOLD,
        metavar="FRACTION",
        help="instruction-count benchmarks (unit 'instructions'): a change beyond this "
        "fraction either way is a verdict, from one measurement per side "
        f"(default: {DEFAULT_INSTRUCTIONS_THRESHOLD})",
    )
    p.add_argument(
        "--inform-only",
        action="append",
        default=[],
        metavar="REGEX",
        help="benchmarks whose name(params) matches REGEX are reported but their "
        "regressions do not make the exit code 1 (repeatable; failures still exit 2)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="every benchmark once (asv --quick): checks that everything runs; judges no timing",
    )
    p.add_argument(
        "--no-run",
        action="store_true",
        help="run nothing: compare the results already stored in .asv/results "
        "(make bench, asv run, asv continuous)",
    )
    p.add_argument(
        "--markdown", type=Path, metavar="FILE", help="also write the report as Markdown"
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write verdicts and raw data")
    p.add_argument(
        "--launch-method",
        choices=("forkserver", "spawn"),
        default="forkserver",
        help="asv's benchmark launcher: forkserver (suite imported once) or spawn "
        "(a fresh interpreter per benchmark); default: forkserver",
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin benchmark processes to one CPU per round (by default both sides "
        "of a round share a CPU, alternating between rounds)",
    )
    p.add_argument(
        "--repo",
        type=Path,
        default=ROOT,
        help="the repository (with asv.conf.json) to work in (default: this one)",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """The command line as :class:`Options` (argparse exits 2 on a bad one)."""
    ns = build_parser().parse_args(argv)
    return Options(**{f: getattr(ns, f) for f in Options.__dataclass_fields__})


def exit_on_sigterm() -> None:
    """SIGTERM ends the tool like Ctrl-C: cleanup runs (forkservers, state, locks)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison the command line asks for; return its exit code (0, 1 or 2)."""
    options = parse_args(argv)
    exit_on_sigterm()
    try:
        return run(options)
    except CompareError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2


def run(args: Options) -> int:
    """The comparison of ``args``: the report on stdout (and files); the exit code."""
    repo = args.repo.resolve()
    base, head = resolve(repo, args.base), resolve(repo, args.head)
    warnings: list[str] = []
    dirty = dirty_paths(repo)
    if dirty:
        shown = ", ".join(dirty[:4]) + (", ..." if len(dirty) > 4 else "")
        warnings.append(f"uncommitted changes are not benchmarked (asv builds commits): {shown}")
    if base == head:
        print(
            f"compare: {args.base} and {args.head} are the same commit {base[:8]}: "
            "nothing to compare"
        )
        for w in warnings:
            print(f"warning: {w}")
        return 0
    # asv is imported only now: parsing and the checks above work without it.
    from benchtools.compare import asvglue

    started = time.monotonic()
    calls: dict[str, calldiff.CallDiff] = {}
    rounds = 1 if (args.quick or args.no_run) else args.rounds
    confirm_rounds = 0
    if args.no_run:
        m = asvglue.stored_measurements(repo, [base, head], args.bench)
        warnings.append(
            "stored results are one unpaired run per side: the spread is each "
            "side's own samples, which on a busy machine understates the noise"
        )
        verdicts = compare_all(
            m, base, head, factor=args.factor, instructions_threshold=args.instructions_threshold
        )
    else:
        m, by_head, session = asvglue.compare(
            repo,
            base,
            [head],
            regexes=args.bench,
            factor=args.factor,
            rounds=rounds,
            confirm_rounds=0 if args.quick else args.confirm_rounds,
            quick=args.quick,
            launch_method=args.launch_method,
            pin=not args.no_pin,
            instructions_threshold=args.instructions_threshold,
        )
        verdicts = by_head[head]
        confirm_rounds = session.rounds_run - rounds
        if not args.quick and not session.build_errors:
            calls = calldiff.call_diffs(
                verdicts,
                session.python,
                {c: session.code_paths(c) for c in (base, head)},
                base,
                head,
            )
        version = session.asv_runner_version
        if version is not None and version >= (0, 3):
            warnings.append(
                "asv_runner >= 0.3 in asv's environment re-runs setup() before every timed "
                "call: benchmarks faster than a few microseconds are then timed one call at "
                "a time, mostly overhead; pin asv_runner (docs/reviewing.md)"
            )
        if args.quick:
            warnings.append("quick run: every benchmark ran once; timings are not judged")
    info = ReportInfo(
        base=base,
        head=head,
        base_label=args.base,
        head_label=args.head,
        factor=args.factor,
        rounds=rounds,
        confirm_rounds=confirm_rounds,
        seconds=time.monotonic() - started,
        warnings=tuple(warnings),
        paired=not args.no_run,
        instructions_threshold=args.instructions_threshold,
        inform_only=tuple(args.inform_only),
    )
    sys.stdout.write(render_text(verdicts, info, calls))
    if args.markdown:
        args.markdown.write_text(render_markdown(verdicts, info, calls))
    if args.json:
        args.json.write_text(json.dumps(report_json(verdicts, info, m, calls), indent=1) + "\n")
    return exit_code(verdicts, args.inform_only)
