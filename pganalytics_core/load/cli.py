"""The ``pganalytics-load`` command (also ``python -m pganalytics_core.load``).

::

    pganalytics-load --list-scenarios
    pganalytics-load --scenario constant-rate --rate 500 --duration 10 --threshold 'p99_ms<50'
    pganalytics-load --model open --rate 1000 --duration 5 --workers 16 --json run.json
    pganalytics-load --scenario high-contention --url http://127.0.0.1:8081 --plot run.svg
    pganalytics-load --scenario sustained-load --error-rate 0.05 --latency-ms 20

Without ``--url`` the embedded fake service is started, in a child process so that it does
not share the load generator's interpreter lock (``--fake-in-process`` keeps it in). A
real service's API key is read from ``PGANALYTICS_ML_API_KEY``, never from the command
line. Exit status: 0 every threshold passed, 1 a threshold failed, 2 the run itself failed
(bad arguments included: a one-line message, no traceback).

An open-model run also checks ``dropped_requests==0`` and ``saturated==0`` (a run that
dropped requests or could not hold its schedule fails) unless ``--no-default-thresholds``
is given or a ``--threshold`` on the same metric replaces them. Options the chosen run
would ignore (``--rate`` for a closed model, ``--iterations`` for an open one, ``--url`` or
faults for the in-process breaker scenario, ...) are refused.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Final, TextIO, TypeVar

import httpx

from pganalytics_core.errors import PgAnalyticsError
from pganalytics_core.load.model import ClosedModel, OpenModel
from pganalytics_core.load.report import (
    build_report,
    format_progress,
    format_summary,
    redact_url,
    write_report,
    write_samples,
    write_svg,
)
from pganalytics_core.load.result import LoadTestResult
from pganalytics_core.load.runner import Progress
from pganalytics_core.load.scenarios import (
    CLIENT_BREAKERS,
    SCENARIOS,
    Scenario,
    get_scenario,
    run_scenario,
    scale_model,
)
from pganalytics_core.load.stats import PERCENTILE_METHODS
from pganalytics_core.load.thresholds import (
    OPEN_MODEL_THRESHOLDS,
    evaluate_thresholds,
    parse_thresholds,
)
from pganalytics_core.testing.fake_service import (
    ENDPOINT_NAMES,
    FAULT_MODES,
    FakeMLService,
    FakeServiceProcess,
    Faults,
)

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_THRESHOLDS", "build_parser", "main"]

#: Every threshold passed.
EXIT_OK: Final = 0
#: The run completed but a threshold failed.
EXIT_THRESHOLDS: Final = 1
#: The run itself failed (bad arguments, the service unreachable at start, a crash).
EXIT_FAILED: Final = 2

API_KEY_VARIABLE: Final = "PGANALYTICS_ML_API_KEY"
_THRESHOLD: Final = re.compile(r"^\s*([A-Za-z0-9_]+)\s*([<>=!].*)$")
_N = TypeVar("_N", int, float)


def _read(text: str, kind: type[_N]) -> _N:
    try:
        return kind(text)
    except ValueError:
        noun = "a number" if kind is float else "a whole number"
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None


def _number(kind: str, *, allow_zero: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _read(text, float)
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise argparse.ArgumentTypeError(f"{kind} must be finite and {bound}, got {text!r}")
        return value

    return parse


def _count(text: str) -> int:
    if (value := _read(text, int)) < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _fraction(text: str) -> float:
    if not 0.0 <= (value := _read(text, float)) <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1], got {text!r}")
    return value


def _url(text: str) -> str:
    if not re.match(r"^https?://[^/\s]+", text):
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {redact_url(text)!r}")
    return text.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``pganalytics-load``."""
    parser = argparse.ArgumentParser(
        prog="pganalytics-load",
        description="Load-test the pganalytics ML service (or its embedded fake) with "
        "honest percentiles, and check thresholds.",
        epilog="Exit status: 0 all thresholds passed, 1 a threshold failed, 2 the run failed. "
        f"A real service's API key is read from ${API_KEY_VARIABLE}.",
    )
    add = parser.add_argument_group("what to run").add_argument
    add(
        "--scenario",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"a preset: {', '.join(SCENARIOS)} (default: sustained-predictions)",
    )
    add(
        "--model",
        choices=("closed", "open"),
        help="a custom prediction run instead of a preset: closed (workers x iterations or "
        "duration) or open (a constant --rate for --duration)",
    )
    add("--list-scenarios", action="store_true", help="list the presets and exit")
    add = parser.add_argument_group("size (overrides the scenario's)").add_argument
    add("--workers", type=_count, help="worker threads")
    add("--iterations", type=_count, help="closed model: requests per worker")
    add(
        "--duration",
        type=_number("duration"),
        metavar="SECONDS",
        help="closed model: seconds per worker; open model: seconds of arrivals",
    )
    add("--rate", type=_number("rate"), metavar="PER_S", help="open model: requests per second")
    add("--max-in-flight", type=_count, help="open model: outstanding requests before dropping")
    # Removed: one process here; scale out with Locust (README "Load tests"). Still
    # parsed, so that scripts passing it get the replacement, not "unrecognized".
    add("--processes", type=_count, default=1, help=argparse.SUPPRESS)
    add = parser.add_argument_group("target").add_argument
    add("--url", type=_url, help="the ML service's base URL (default: start the fake service)")
    add(
        "--timeout", type=_number("timeout"), default=5.0, metavar="SECONDS", help="per request (5)"
    )
    add(
        "--client-breaker",
        choices=CLIENT_BREAKERS,
        help="the load clients' circuit breaker: never-opens (default: measure the "
        "service) or default (the client's own; its rejections are counted apart)",
    )
    add(
        "--fake-in-process",
        action="store_true",
        help="run the fake service in this process (default: a child process)",
    )
    add = parser.add_argument_group("faults (embedded fake service only)").add_argument
    add("--latency-ms", type=_number("latency", allow_zero=True), default=0.0)
    add("--jitter-ms", type=_number("jitter", allow_zero=True), default=0.0)
    add("--error-rate", type=_fraction, default=0.0, help="fraction 0..1")
    add("--error-status", type=int, default=500, help="status of errors (500)")
    add("--fault-mode", choices=sorted(FAULT_MODES), help="spoil answers")
    add(
        "--fault-endpoints",
        metavar="NAMES",
        help=f"comma-separated endpoints the faults apply to (default all): "
        f"{', '.join(sorted(ENDPOINT_NAMES))}",
    )
    add = parser.add_argument_group("thresholds and output").add_argument
    add(
        "--threshold",
        action="append",
        default=[],
        metavar="METRIC<OP>VALUE",
        help="a k6-style threshold such as 'p95_ms<200' or 'error_rate<0.01' (repeatable; "
        "replaces the scenario's threshold on the same metric)",
    )
    add(
        "--no-default-thresholds",
        action="store_true",
        help="ignore the scenario's own thresholds, and for open-model runs the implicit "
        "dropped_requests==0 and saturated==0",
    )
    add(
        "--percentile-method",
        choices=PERCENTILE_METHODS,
        default="nearest-rank",
        help="how percentiles are computed (nearest-rank)",
    )
    add("--json", metavar="FILE", help="write the versioned JSON report here")
    add("--plot", metavar="FILE.svg", help="write a latency-by-percentile plot (SVG)")
    add("--samples", metavar="FILE.zip", help="save the raw samples (to merge runs later)")
    add("--quiet", action="store_true", help="no live progress line (none off a terminal)")
    return parser


def _scenario(args: argparse.Namespace) -> Scenario:
    """The run asked for: a preset with the size options applied, or a custom model."""
    sizes = {
        "workers": args.workers,
        "iterations": args.iterations,
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "max_in_flight": args.max_in_flight,
    }
    if args.model is None:
        preset = get_scenario(args.scenario or "sustained-predictions")
        return dataclasses.replace(preset, model=scale_model(preset.model, **sizes))
    if args.scenario is not None:
        raise ValueError("give --scenario or --model, not both")
    if args.model == "closed" and (args.rate is not None or args.max_in_flight is not None):
        raise ValueError("--rate and --max-in-flight apply to --model open only")
    if args.iterations is not None and args.duration is not None:
        raise ValueError("give --iterations or --duration, not both")
    if args.model == "open" and args.rate is None:
        raise ValueError("--model open needs --rate")
    if args.model == "open" and args.iterations is not None:
        raise ValueError("--iterations applies to --model closed only; give --duration")
    # A custom run's defaults, sized by the options given (checked as a preset's are).
    model: ClosedModel | OpenModel = ClosedModel(workers=10, iterations=100)
    if args.model == "open":
        model = OpenModel(rate_per_s=args.rate, duration_s=5.0, workers=10, max_in_flight=1000)
    return Scenario(
        name=f"custom-{args.model}",
        description=f"predictions, {args.model} model",
        model=scale_model(model, **sizes),
        workload="predict",
    )


def _faults(args: argparse.Namespace) -> Faults | None:
    endpoints = None
    if args.fault_endpoints:
        endpoints = frozenset(name.strip() for name in args.fault_endpoints.split(",") if name)
    faults = Faults(
        latency_s=args.latency_ms / 1000.0,
        jitter_s=args.jitter_ms / 1000.0,
        error_rate=args.error_rate,
        error_status=args.error_status,
        mode=args.fault_mode,
        endpoints=endpoints,
    )
    return None if faults == Faults() else faults


def _thresholds(args: argparse.Namespace, scenario: Scenario) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    if not args.no_default_thresholds:
        chosen = {metric: [condition] for metric, condition in scenario.thresholds.items()}
        if isinstance(scenario.model, OpenModel):
            # An open run that dropped requests or fell behind its schedule must not pass
            # silently: these show in the report and fail the run unless replaced.
            for metric, condition in OPEN_MODEL_THRESHOLDS.items():
                chosen.setdefault(metric, [condition])
    given: dict[str, list[str]] = {}
    for text in args.threshold:
        match = _THRESHOLD.match(text)
        if match is None:
            raise ValueError(
                f"cannot read threshold {text!r}: write METRIC<OP>VALUE, e.g. 'p95_ms<200'"
            )
        given.setdefault(match.group(1), []).append(match.group(2))
    chosen.update(given)
    parse_thresholds(chosen)  # validate before the run, not after it
    return chosen


def _check_applicable(args: argparse.Namespace, scenario: Scenario, faults: Faults | None) -> None:
    """Refuse options the chosen run would silently ignore, and sizes that do not fit."""
    if args.url is not None and args.fake_in_process:
        raise ValueError("--fake-in-process starts the fake service: drop --url")
    if scenario.workload == "breaker" and (
        args.url is not None or faults is not None or args.client_breaker is not None
    ):
        raise ValueError(
            f"{scenario.name} measures an in-process circuit breaker and calls no "
            "service: --url, --client-breaker and fault options do not apply"
        )
    if args.processes > 1:
        raise ValueError(
            "--processes was removed: this command runs in one process; scale out with "
            "Locust (locust --processes N, or --master/--worker across machines) and merge "
            "the samples exactly with pganalytics_core.load.locust_support (README 'Load tests')"
        )


class _ProgressLine:
    """Rewrites one status line (on a terminal: see :func:`main`)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._width = 0

    def __call__(self, progress: Progress) -> None:
        line = format_progress(progress)
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


class RunFailedError(Exception):
    """The run could not be made (the service cannot be reached, ...)."""


def _preflight(url: str, timeout_s: float) -> None:
    """Fail early, with one line, when nothing answers at ``url`` (any HTTP answer will do)."""
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            client.get(f"{url}/health")
    except httpx.TransportError as exc:
        raise RunFailedError(
            f"cannot reach {redact_url(url)}: {type(exc).__name__}; is the service running?"
        ) from None


def _run(
    args: argparse.Namespace, scenario: Scenario, faults: Faults | None, line: _ProgressLine
) -> tuple[LoadTestResult, str]:
    live = not args.quiet and sys.stderr.isatty()  # no progress line off a terminal
    with contextlib.ExitStack() as stack:
        url = args.url
        if scenario.workload == "breaker":  # in process: no service is called
            target = "in-process circuit breaker (no service)"
        elif url is not None:
            target = redact_url(url)
            _preflight(url, args.timeout)
        elif args.fake_in_process:
            url = stack.enter_context(FakeMLService(seed=0, faults=faults or Faults())).url
            target = f"embedded fake service, in process ({url})"
        else:
            url = stack.enter_context(FakeServiceProcess(faults)).url
            target = f"embedded fake service, child process ({url})"
        result = run_scenario(
            scenario,
            url=url,
            timeout_s=args.timeout,
            api_key=os.environ.get(API_KEY_VARIABLE) or None,
            client_breaker=args.client_breaker,
            method=args.percentile_method,
            progress=line if live else None,
        )
        return result, target


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status (0 pass, 1 threshold failed, 2 run failed).

    Args:
        argv: the arguments without the program name; ``None`` reads ``sys.argv``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_scenarios:
        width = max(len(name) for name in SCENARIOS)
        for name, preset in SCENARIOS.items():
            print(f"{name.ljust(width)}  {preset.description}")
        return EXIT_OK
    try:
        scenario = _scenario(args)
        faults = _faults(args)
        if faults is not None and args.url is not None:
            raise ValueError("fault injection needs the embedded fake service (drop --url)")
        thresholds = _thresholds(args, scenario)
        if args.plot and not args.plot.lower().endswith(".svg"):
            raise ValueError("--plot writes SVG: give a file name ending in .svg")
        _check_applicable(args, scenario, faults)
    except Exception as exc:  # nothing started yet: status 2 and one line, never a traceback
        known = isinstance(exc, ValueError | PgAnalyticsError)
        parser.error(str(exc) if known else f"{type(exc).__name__}: {exc}")

    line = _ProgressLine(sys.stderr)
    failure = None
    try:
        result, target = _run(args, scenario, faults, line)
    except (ValueError, PgAnalyticsError, RunFailedError) as exc:
        failure = f"error: {exc}"
    except KeyboardInterrupt:
        failure = "interrupted"
    except Exception as exc:  # the run failed: say why in one line, no traceback
        failure = f"error: the run failed: {type(exc).__name__}: {exc}"
    finally:
        line.clear()
    if failure is not None:
        print(f"{parser.prog}: {failure}", file=sys.stderr)
        return EXIT_FAILED

    verdicts = evaluate_thresholds(result, thresholds)
    print(format_summary(result, verdicts, target=target))
    try:
        if args.json:
            config = _config(args, scenario, faults, target)
            write_report(args.json, build_report(result, verdicts, config=config))
        if args.plot:
            write_svg(args.plot, result)
        if args.samples:
            write_samples(args.samples, result)
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: cannot write the output: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if result.total_requests == 0:
        print(f"{parser.prog}: error: no request finished", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if all(v.passed for v in verdicts) else EXIT_THRESHOLDS


def _config(
    args: argparse.Namespace, scenario: Scenario, faults: Faults | None, target: str
) -> dict[str, object]:
    """The ``config`` part of the JSON report: how the run was made (no secret)."""
    in_process = scenario.workload == "breaker"
    fake: dict[str, object] | None = None
    if args.url is None and not in_process:
        fake = {"in_process": bool(args.fake_in_process), "faults": None}
        if faults is not None:
            reported = ("latency_s", "jitter_s", "error_rate", "error_status", "mode")
            endpoints = None if faults.endpoints is None else sorted(faults.endpoints)
            fake["faults"] = {n: getattr(faults, n) for n in reported} | {"endpoints": endpoints}
    return {
        "scenario": scenario.name,
        "workload": scenario.workload,
        "target": target,
        "fake_service": fake,
        "processes": 1,
        "client_breaker": None if in_process else args.client_breaker or scenario.client_breaker,
        "percentile_method": args.percentile_method,
        "timeout_s": args.timeout,
    }
