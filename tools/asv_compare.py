"""Benchmark two revisions with asv and print a review report (``make compare``).

Usage::

    make compare                                    # main against HEAD, factor 1.2
    make compare BASE=v0.1 HEAD=my-branch FACTOR=1.1 COMPARE_ARGS="--markdown review.md"
    python tools/asv_compare.py --base main --head HEAD -b GuardedCall --rounds 8
    python tools/asv_compare.py --base main --head HEAD --no-run   # stored results only

Exit codes: 0 nothing regressed, 1 a regression beyond the threshold, 2 a benchmark
failed or could not run, or the comparison itself could not be made (the report still
lists every benchmark that did run).

How it works (the reasoning, and the measurements behind it, are in docs/reviewing.md):

1. BASE and HEAD are resolved to commit hashes. asv builds commits, so uncommitted
   changes to the package are not measured (the report warns); ``benchmarks/`` is
   taken from the working tree, for both sides alike.
2. asv's own machinery, through its Python API: the virtualenv environment of
   ``asv.conf.json`` (created on first use), one wheel per commit built by asv's
   ``build_command`` (cached), benchmark discovery, and asv's benchmark runner
   (``asv/benchmark.py``), one fresh process per benchmark and side.
3. Paired rounds: in every round each benchmark runs for base and for head back to
   back (well under a second apart, the order alternating), so both sides of a pair
   see the same load on a shared machine. ``asv run`` rounds are whole-suite passes,
   tens of seconds apart, which on a busy 2-core box is enough for the machine's speed
   to change by 2x between base and head.
4. The verdict per benchmark (:func:`classify`): from every round the ratio head/base
   of the fastest sample of each side's process (rounds that ran through a slow spell
   of the machine set aside); a change counts when the median ratio is beyond
   ``--factor`` *and* the ratio's spread over the rounds (its interquartile range) lies
   entirely on the same side of 1, i.e. the two sides' spreads, once the load both
   sides of a round shared is divided out, do not overlap.
5. Benchmarks that look changed get ``--confirm-rounds`` more rounds; a change must
   hold on all rounds together and on the confirmation rounds alone. When only the
   latter fails, the benchmark gets one more batch before it is called unchanged.

Nothing is written to ``.asv/results`` (the history ``make bench`` publishes is never
mixed with review runs). Per-commit package builds are cached in ``.asv/compare/``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ASV = [sys.executable, "-m", "asv"]

#: A ratio must be beyond this factor (either way) to count as a change.
DEFAULT_FACTOR = 1.2
#: Paired rounds over every selected benchmark.
DEFAULT_ROUNDS = 4
#: Extra paired rounds for the benchmarks that look changed after the first rounds.
DEFAULT_CONFIRM_ROUNDS = 8

#: A round whose fastest sample is beyond this multiple of its side's fastest round ran
#: through a slow spell of the machine (see :func:`undisturbed`).
DISTURBED = 1.25
#: The undisturbed rounds a ratio needs; with fewer, every round counts.
MIN_UNDISTURBED = 3

# Verdicts, in report order.
REGRESSION = "regression"
IMPROVEMENT = "improvement"
FAILED = "failed"
NEW = "new"
UNCHANGED = "unchanged"
NOT_RUN = "not run"
VERDICT_ORDER = (REGRESSION, IMPROVEMENT, FAILED, NEW, UNCHANGED, NOT_RUN)
SECTION_TITLES = {
    REGRESSION: "Regressions",
    IMPROVEMENT: "Improvements",
    FAILED: "Failed or could not run",
    NEW: "New (n/a on base)",
    UNCHANGED: "Unchanged",
    NOT_RUN: "n/a on both sides",
}

# The status of one side of one benchmark.
OK = "ok"
SKIPPED = "skipped"  # NotImplementedError in setup: asv shows n/a
MISSING = "missing"  # no result at all


class CompareError(Exception):
    """The comparison could not be made (bad revision, no results, asv unusable)."""


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One benchmark's result for one commit in one round.

    Attributes:
        round: the round it was measured in (pairs are results of the same round).
        value: asv's result (time benchmarks: the median sample, in seconds); ``None``
            when the benchmark failed, NaN when it was skipped (n/a).
        samples: the raw samples of a time benchmark.
        error: the last line of the output of a failed benchmark.
    """

    round: int
    value: float | None
    samples: tuple[float, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None and not math.isnan(self.value)

    def point(self) -> float:
        """The round's estimate: the fastest sample (interference only adds time)."""
        if self.value is None:
            raise ValueError("no point estimate of a failed result")
        return min(self.samples) if self.samples else self.value


@dataclass(slots=True)
class Measurements:
    """Results of several commits: commit -> benchmark name -> one result per round."""

    kinds: dict[str, str] = field(default_factory=dict)  # name -> time/track/mem/peakmem
    units: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, list[RoundResult]]] = field(default_factory=dict)

    def add(self, commit: str, name: str, result: RoundResult) -> None:
        self.results.setdefault(commit, {}).setdefault(name, []).append(result)

    def get(self, commit: str, name: str) -> list[RoundResult]:
        return self.results.get(commit, {}).get(name, [])

    def names(self) -> list[str]:
        return sorted(self.kinds)

    def settled(self, commit: str, name: str) -> bool:
        """True once a benchmark failed or was skipped on a commit (no point re-running)."""
        return any(not r.ok for r in self.get(commit, name))


@dataclass(frozen=True, slots=True)
class Band:
    """An estimate and its spread: ``center`` within [``low``, ``high``]."""

    center: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one benchmark.

    Attributes:
        name: the benchmark, with its parameters.
        verdict: one of :data:`VERDICT_ORDER`.
        unit: the unit of the side bands.
        base: the base side: median and range over the rounds the ratio comes from.
        head: the head side, likewise.
        ratio: head/base: the median of the per-round ratios and their interquartile
            range; ``None`` when there is nothing to divide.
        rounds: the number of paired rounds the ratio comes from (undisturbed ones).
        note: why, when it is not obvious.
    """

    name: str
    verdict: str
    unit: str
    base: Band | None
    head: Band | None
    ratio: Band | None
    rounds: int = 0
    note: str = ""


# --------------------------------------------------------------------------- decisions


def quantile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of values, linear interpolation between ranks."""
    s = sorted(values)
    if not s:
        raise ValueError("quantile of no values")
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def side_status(results: Sequence[RoundResult]) -> tuple[str, str]:
    """(status, error) of one side: failed in any round is failed; n/a is skipped."""
    if not results:
        return MISSING, ""
    failed = [r for r in results if r.value is None]
    if failed:
        return FAILED, next((r.error for r in failed if r.error), "")
    if not any(r.ok for r in results):
        return SKIPPED, ""
    return OK, ""


def side_band(results: Sequence[RoundResult]) -> Band | None:
    points = [r.point() for r in results if r.ok]
    if not points:
        return None
    return Band(quantile(points, 0.5), min(points), max(points))


def classify(
    name: str,
    base: Sequence[RoundResult],
    head: Sequence[RoundResult],
    *,
    unit: str = "seconds",
    factor: float = DEFAULT_FACTOR,
    judge: bool = True,
) -> Verdict:
    """Decide what happened to one benchmark between base and head.

    Every round in which both sides ran gives a ratio head/base of the two sides'
    round estimates (:meth:`RoundResult.point`); rounds that ran through a slow spell of
    the machine are set aside (:func:`undisturbed`). The ratio is the median of these;
    its spread is their interquartile range [q1, q3]. A regression when the ratio is above
    ``factor`` and q1 > 1 (the spread is entirely above 1: base and head apart beyond
    the noise of the rounds); an improvement when the ratio is below ``1 / factor``
    and q3 < 1. Lower is better for every asv benchmark type (``track_`` benchmarks
    here are lower-is-better by convention). With a single round (``--no-run`` on
    stored results) the spread is each side's own: head's fastest sample must be
    beyond base's lower-quartile sample (or the reverse for an improvement).

    A failure on either side, or n/a on head only, is ``failed``; n/a on base only is
    ``new``; n/a on both is ``not run``. Values of zero or below have no ratio and are
    never a change.

    Args:
        name: the benchmark's full name (with parameters).
        base: the base revision's results, one per round.
        head: the head revision's results, one per round.
        unit: the unit of the values (for the report).
        factor: the threshold ratio, > 1.
        judge: False (quick runs) never reports a regression or an improvement.

    Returns:
        The verdict, with both sides' bands and the ratio when both sides ran.
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    (b_status, b_error), (h_status, h_error) = side_status(base), side_status(head)
    b_band, h_band = side_band(base), side_band(head)
    if FAILED in (b_status, h_status) or MISSING in (b_status, h_status):
        notes = [
            f"{label} {status}" + (f": {error}" if error else "")
            for label, status, error in (("base", b_status, b_error), ("head", h_status, h_error))
            if status in (FAILED, MISSING)
        ]
        return Verdict(name, FAILED, unit, b_band, h_band, None, note="; ".join(notes))
    if (b_status, h_status) == (SKIPPED, SKIPPED):
        return Verdict(name, NOT_RUN, unit, None, None, None, note="n/a on both sides")
    if b_status == SKIPPED:
        return Verdict(name, NEW, unit, None, h_band, None, note="n/a on base")
    if h_status == SKIPPED:
        return Verdict(
            name,
            FAILED,
            unit,
            b_band,
            None,
            None,
            note="n/a on head: NotImplementedError, the API it needs is gone",
        )
    by_round = {r.round: r for r in base if r.ok}
    pairs: Sequence[tuple[RoundResult, RoundResult]] = [
        (by_round[h.round], h) for h in head if h.ok and h.round in by_round
    ]
    if not pairs or any(b.point() <= 0 or h.point() <= 0 for b, h in pairs):
        note = "no ratio of values <= 0" if pairs else "no round with both sides"
        return Verdict(name, UNCHANGED, unit, b_band, h_band, None, note=note)
    if len(pairs) == 1:
        b, h = pairs[0]
        ratio = Band(h.point() / b.point(), *_single_round_spread(b, h))
    else:
        pairs = undisturbed(pairs)
        ratios = [h.point() / b.point() for b, h in pairs]
        ratio = Band(quantile(ratios, 0.5), quantile(ratios, 0.25), quantile(ratios, 0.75))
        # Show the sides over the rounds the ratio comes from, so that they agree with it.
        b_band = side_band([b for b, _ in pairs])
        h_band = side_band([h for _, h in pairs])
    verdict, note = UNCHANGED, ""
    if ratio.center > factor or ratio.center < 1 / factor:
        if not judge:
            note = "quick run: not judged"
        elif ratio.center > factor and ratio.low > 1:
            verdict = REGRESSION
        elif ratio.center < 1 / factor and ratio.high < 1:
            verdict = IMPROVEMENT
        else:
            note = "within noise: the spread of the rounds crosses 1"
    return Verdict(name, verdict, unit, b_band, h_band, ratio, len(pairs), note)


def undisturbed(
    pairs: Sequence[tuple[RoundResult, RoundResult]],
) -> Sequence[tuple[RoundResult, RoundResult]]:
    """The rounds in which neither side ran through a slow spell of the machine.

    On a shared machine a process sometimes runs entirely through a spell of
    contention (here: a busy sibling core makes everything about 1.9x slower for a
    fraction of a second to seconds). Such a round is recognised on its own side: its
    fastest sample is more than :data:`DISTURBED` times the side's fastest round. A real
    change shifts all rounds of a side alike and survives this filter; the two sides of
    a round falling on different sides of a spell does not. With fewer than
    :data:`MIN_UNDISTURBED` undisturbed rounds, all rounds count. Time benchmarks only.
    """
    if not all(b.samples and h.samples for b, h in pairs):
        return pairs
    fastest_b = min(b.point() for b, _ in pairs)
    fastest_h = min(h.point() for _, h in pairs)
    kept = [
        (b, h)
        for b, h in pairs
        if b.point() <= DISTURBED * fastest_b and h.point() <= DISTURBED * fastest_h
    ]
    return kept if len(kept) >= MIN_UNDISTURBED else pairs


def _single_round_spread(base: RoundResult, head: RoundResult) -> tuple[float, float]:
    """The ratio's range from two single processes: fastest against lower-quartile."""
    if not (base.samples and head.samples):
        r = head.point() / base.point()
        return r, r
    b_lo, b_q1 = min(base.samples), quantile(base.samples, 0.25)
    h_lo, h_q1 = min(head.samples), quantile(head.samples, 0.25)
    return h_lo / b_q1, h_q1 / b_lo


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """2 when a benchmark failed or could not run, else 1 on a regression, else 0."""
    kinds = {v.verdict for v in verdicts}
    if FAILED in kinds:
        return 2
    if REGRESSION in kinds:
        return 1
    return 0


def compare_all(
    m: Measurements,
    base: str,
    head: str,
    *,
    factor: float,
    judge: bool = True,
    confirmed_after: int | None = None,
) -> list[Verdict]:
    """Classify every benchmark measured on either commit.

    Args:
        m: the measurements.
        base: the base commit.
        head: the head commit.
        factor: the threshold ratio.
        judge: False (quick runs) never reports a change.
        confirmed_after: the last round before the confirmation rounds. A change found
            on all rounds must then also be found on the confirmation rounds alone (an
            independent repetition), else it is reported unchanged, "not confirmed".
    """
    out = []
    for name in m.names():
        unit = m.units.get(name, "")
        b, h = m.get(base, name), m.get(head, name)
        v = classify(name, b, h, unit=unit, factor=factor, judge=judge)
        if confirmed_after is not None and v.verdict in (REGRESSION, IMPROVEMENT):
            later = [r for r in b if r.round > confirmed_after]
            again = classify(
                name, later, [r for r in h if r.round > confirmed_after], unit=unit, factor=factor
            )
            if again.verdict != v.verdict:
                seen = format_ratio(again) or "nothing"
                v = dataclasses.replace(
                    v, verdict=UNCHANGED, note=f"not confirmed: {seen} in the confirmation rounds"
                )
        out.append(v)
    return out


def suspects(verdicts: Iterable[Verdict], factor: float) -> list[str]:
    """Benchmarks worth more rounds: changed, or with a median ratio beyond the factor."""
    return [
        v.name
        for v in verdicts
        if v.verdict in (REGRESSION, IMPROVEMENT)
        or (v.ratio is not None and not 1 / factor <= v.ratio.center <= factor)
    ]


# --------------------------------------------------------------------------- rendering

_TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("μs", 1e-6), ("ns", 1e-9))
_BYTE_UNITS = (("G", 1e9), ("M", 1e6), ("k", 1e3))


def human(value: float, unit: str) -> str:
    """Format a value in its unit: ``1.23μs``, ``31.8M`` (bytes), ``2.5 percent``."""
    if unit == "seconds":
        for suffix, scale in _TIME_UNITS:
            if abs(value) >= scale:
                return f"{value / scale:.3g}{suffix}"
        return f"{value / 1e-9:.3g}ns"
    if unit == "bytes":
        for suffix, scale in _BYTE_UNITS:
            if abs(value) >= scale:
                return f"{value / scale:.3g}{suffix}"
        return f"{value:.3g}"
    text = f"{value:.3g}"
    return f"{text} {unit}" if unit and unit != "unit" else text


def format_band(b: Band | None, unit: str) -> str:
    """``1.20μs [1.19..1.25]``: the estimate, then the range over the rounds."""
    if b is None:
        return "n/a"
    low, high = human(b.low, unit), human(b.high, unit)
    if low == high:
        return human(b.center, unit)
    return f"{human(b.center, unit)} [{low}..{high}]"


def format_ratio(v: Verdict) -> str:
    """``1.52x [1.41..1.60]``: the median ratio and its interquartile range."""
    r = v.ratio
    if r is None:
        return ""
    low, high = f"{r.low:.2f}", f"{r.high:.2f}"
    if low == high:
        return f"{r.center:.2f}x"
    return f"{r.center:.2f}x [{low}..{high}]"


def grouped(verdicts: Iterable[Verdict]) -> dict[str, list[Verdict]]:
    """Verdicts by kind, in report order; the biggest changes first."""
    groups: dict[str, list[Verdict]] = {k: [] for k in VERDICT_ORDER}
    for v in verdicts:
        groups[v.verdict].append(v)
    for k in (REGRESSION, IMPROVEMENT):
        groups[k].sort(key=lambda v: -abs(math.log(v.ratio.center)) if v.ratio else 0.0)
    return groups


def summary_line(verdicts: Sequence[Verdict]) -> str:
    groups = grouped(verdicts)
    parts = [
        f"{len(groups[REGRESSION])} regression(s)",
        f"{len(groups[IMPROVEMENT])} improvement(s)",
        f"{len(groups[FAILED])} failed",
        f"{len(groups[NEW])} new",
        f"{len(groups[UNCHANGED])} unchanged",
    ]
    if groups[NOT_RUN]:
        parts.append(f"{len(groups[NOT_RUN])} n/a on both sides")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ReportInfo:
    """How the report was made."""

    base: str
    head: str
    base_label: str
    head_label: str
    factor: float
    rounds: int = 0
    confirm_rounds: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    paired: bool = True


def _method(info: ReportInfo) -> str:
    if not info.paired:
        return "stored results: one unpaired run per side"
    how = f"{info.rounds} paired round(s)"
    if info.confirm_rounds:
        how += f" + {info.confirm_rounds} confirmation round(s) for suspects"
    if info.seconds:
        how += f", {info.seconds / 60:.1f} min"
    return how


def render_text(verdicts: Sequence[Verdict], info: ReportInfo) -> str:
    """The console report: regressions, improvements, failures, new, unchanged."""
    lines = [
        f"asv compare: base {info.base[:8]} ({info.base_label}) -> "
        f"head {info.head[:8]} ({info.head_label}); {_method(info)}",
        f"a change: median ratio head/base beyond {info.factor:g}x and its spread "
        "[q1..q3] over the rounds entirely on one side of 1",
    ]
    lines += [f"warning: {w}" for w in info.warnings]
    groups = grouped(verdicts)
    for key in VERDICT_ORDER:
        group = groups[key]
        if not group:
            continue
        lines += ["", f"{SECTION_TITLES[key]} ({len(group)}):"]
        rows = [
            (v.name, format_band(v.base, v.unit), format_band(v.head, v.unit), format_ratio(v))
            for v in group
        ]
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        for v, r in zip(group, rows, strict=True):
            line = f"  {r[0]:<{w[0]}}  {r[1]:>{w[1]}} -> {r[2]:>{w[2]}}  {r[3]:<{w[3]}}"
            lines.append((line + (f"  {v.note}" if v.note else "")).rstrip())
    lines += ["", f"summary: {summary_line(verdicts)}; exit {exit_code(verdicts)}"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(verdicts: Sequence[Verdict], info: ReportInfo) -> str:
    """The report as Markdown, ready to paste into a pull request."""
    title = {0: "no regression", 1: "regression", 2: "benchmark failure"}[exit_code(verdicts)]
    out = [
        f"### Benchmarks: {title}",
        "",
        f"`{info.base[:8]}` ({_md(info.base_label)}) → `{info.head[:8]}` "
        f"({_md(info.head_label)}): {summary_line(verdicts)}.",
        "",
        f"A change: the median ratio head/base is beyond {info.factor:g}x and its spread "
        f"[q1..q3] over the rounds lies entirely on one side of 1; {_method(info)}"
        + (", base and head back to back in every round" if info.paired else "")
        + ". Sides: median [min..max] over the rounds.",
    ]
    if info.warnings:
        out += ["", *[f"> **Warning:** {_md(w)}" for w in info.warnings]]
    groups = grouped(verdicts)
    for key in VERDICT_ORDER:
        group = groups[key]
        if not group:
            continue
        table = [
            "| Benchmark | Base | Head | Ratio | Note |",
            "|---|--:|--:|--:|---|",
            *(
                f"| `{_md(v.name)}` | {_md(format_band(v.base, v.unit))} | "
                f"{_md(format_band(v.head, v.unit))} | {_md(format_ratio(v))} | {_md(v.note)} |"
                for v in group
            ),
        ]
        heading = f"{SECTION_TITLES[key]} ({len(group)})"
        if key in (UNCHANGED, NOT_RUN):
            out += ["", "<details>", f"<summary>{heading}</summary>", "", *table, "", "</details>"]
        else:
            out += ["", f"#### {heading}", "", *table]
    return "\n".join(out) + "\n"


def report_json(verdicts: Sequence[Verdict], info: ReportInfo, m: Measurements) -> dict[str, Any]:
    """Everything: how, the verdicts, and every round's raw results."""
    return {
        "info": dataclasses.asdict(info),
        "exit_code": exit_code(verdicts),
        "summary": summary_line(verdicts),
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        "measurements": measurements_to_json(m),
    }


def measurements_to_json(m: Measurements) -> dict[str, Any]:
    return {
        "kinds": m.kinds,
        "units": m.units,
        "results": {
            commit: {name: [dataclasses.asdict(r) for r in rs] for name, rs in per.items()}
            for commit, per in m.results.items()
        },
    }


def measurements_from_json(data: Mapping[str, Any]) -> Measurements:
    m = Measurements(kinds=dict(data["kinds"]), units=dict(data["units"]))
    for commit, per in data["results"].items():
        for name, rs in per.items():
            for r in rs:
                m.add(
                    commit,
                    name,
                    RoundResult(r["round"], r["value"], tuple(r["samples"]), r["error"]),
                )
    return m


# --------------------------------------------------------------------------- git


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def resolve(repo: Path, rev: str) -> str:
    """The full hash of a revision, or :class:`CompareError`."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise CompareError(f"unknown revision {rev!r} in {repo}") from None


def dirty_paths(repo: Path) -> list[str]:
    """Uncommitted changes that asv does not build (benchmarks/ is used as it is)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    paths = [line[3:] for line in out.splitlines() if line.strip()]
    return [p for p in paths if not p.startswith(("benchmarks/", ".asv/", "html/"))]


# --------------------------------------------------------------------------- asv


def _result_name(key: str, combo: Sequence[str]) -> str:
    return f"{key}({', '.join(combo)})" if combo else key


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("asv: ")] or lines
    return useful[-1][:200] if useful else ""


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    """asv resolves the paths of asv.conf.json against the working directory."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def exclusive(state: Path) -> Iterator[None]:
    """One comparison at a time per checkout: they share asv's environment."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CompareError(f"another comparison is running in {state}") from None
        yield


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the forkserver ends when this tool does, even when it is killed."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _benchmark_env(env: Any, python: str, overlay: Path) -> dict[str, str]:
    """The environment of a benchmark process: the commit's package first on sys.path.

    asv's benchmark runner honours ``ASV_PYTHONPATH`` (and drops ``PYTHONPATH``).
    """
    variables = dict(os.environ)
    variables.update(env.env_vars)
    variables.pop("PYTHONPATH", None)
    variables["ASV_PYTHONPATH"] = str(overlay)
    variables["PATH"] = os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])
    return variables


def _spawner_classes() -> tuple[type, type]:
    from asv import runner, util

    class OverlaySpawner(runner.Spawner):  # type: ignore[misc]
        """asv's one-process-per-benchmark launcher, running one commit's package."""

        def __init__(self, env: Any, benchmark_dir: str, python: str, overlay: Path) -> None:
            super().__init__(env, benchmark_dir)
            self.python = python
            self.overlay = overlay

        def _call(self, args: list[str], timeout: float | None, cwd: str | None) -> tuple[str, int]:
            try:
                proc = subprocess.run(
                    [self.python, runner.BENCHMARK_RUN_SCRIPT, *args],
                    env=_benchmark_env(self.env, self.python, self.overlay),
                    cwd=cwd,
                    timeout=timeout,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired as exc:
                out = exc.output if isinstance(exc.output, str) else ""
                return out, util.TIMEOUT_RETCODE
            return proc.stdout, proc.returncode

        def create_setup_cache(
            self, benchmark_id: str, timeout: float, params_str: str
        ) -> tuple[str | None, str | None]:
            cache_dir = tempfile.mkdtemp()
            args = ["setup_cache", self.benchmark_dir, benchmark_id, params_str]
            out, code = self._call(args, timeout, cache_dir)
            if code == 0:
                return cache_dir, None
            shutil.rmtree(cache_dir, ignore_errors=True)
            return None, f"{out}\nasv: setup_cache failed (exit status {code})".strip()

        def run(
            self,
            name: str,
            params_str: str,
            profile_path: str,
            result_file_name: str,
            timeout: float,
            cwd: str,
        ) -> tuple[str, int]:
            args = ["run", self.benchmark_dir, name, params_str, profile_path, result_file_name]
            return self._call(args, timeout, cwd)

    class OverlayForkServer(runner.ForkServer):  # type: ignore[misc]
        """asv's forkserver (suite imported once, a fork per benchmark), one commit's package."""

        def __init__(self, env: Any, benchmark_dir: str, python: str, overlay: Path) -> None:
            runner.Spawner.__init__(self, env, benchmark_dir)
            self.python = python
            self.overlay = overlay
            self.tmp_dir = tempfile.mkdtemp(prefix="asv-forkserver-")
            self.socket_name = os.path.join(self.tmp_dir, "socket")
            self.server_proc = subprocess.Popen(
                [
                    python,
                    runner.BENCHMARK_RUN_SCRIPT,
                    "run_server",
                    self.benchmark_dir,
                    self.socket_name,
                ],
                env=_benchmark_env(env, python, overlay),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            self._server_output = None
            self.stdout_reader_thread = threading.Thread(target=self._stdout_reader, daemon=True)
            self.stdout_reader_thread.start()
            deadline = time.monotonic() + 60
            while not os.path.exists(self.socket_name):
                if self.server_proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise CompareError("asv's forkserver did not start")
                time.sleep(0.02)

        def close(self) -> None:
            if self.server_proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.server_proc.pid, signal.SIGKILL)
            self.server_proc.wait()
            self.stdout_reader_thread.join()
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    return OverlaySpawner, OverlayForkServer


def asv_environment(conf: Any, log: Any) -> Any:
    """asv's (first) environment of asv.conf.json, created when missing.

    Call with the repository as working directory.
    """
    from asv import environment, util

    envs = list(environment.get_environments(conf, None, verbose=False))
    if not envs:
        raise CompareError("asv.conf.json defines no environment")
    env = envs[0]
    if len(envs) > 1:
        log(f"{len(envs)} environments in asv.conf.json; using {env.name}")
    if not env.check_presence():
        log(f"creating asv's environment {env.name} (first run only, about a minute)")
    try:
        env.create()
    except util.ProcessError as exc:
        raise CompareError(f"could not create asv's environment: {exc}") from None
    return env


def environment_python(repo: Path, install: str | None = None, log: Any = None) -> str:
    """The python of asv's environment for ``repo`` (created when missing).

    Args:
        repo: the repository.
        install: a commit to build and install into it (with its dependencies).
        log: where progress messages go.
    """
    from asv import util
    from asv.config import Config
    from asv.repo import get_repo

    with chdir(repo):
        conf = Config.load("asv.conf.json")
        env = asv_environment(conf, log or _log)
        if install is not None:
            try:
                env.install_project(conf, get_repo(conf), install)
            except util.ProcessError as exc:
                raise CompareError(f"asv could not build {install[:8]}: {exc}") from None
        return str(Path(env._path) / "bin" / "python")


def _log(msg: str) -> None:
    print(f"compare: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Selected:
    """One benchmark (one parameter combination) to run."""

    name: str  # "key(params)" as asv shows it
    key: str  # asv's benchmark name
    index: int | None  # parameter combination index, None without params


class AsvSession:
    """asv's environment, builds, discovery and runner, for paired rounds of commits.

    Use as a context manager; everything runs with the repository as working directory.
    """

    def __init__(
        self,
        repo: Path,
        commits: Sequence[str],
        regexes: Sequence[str],
        *,
        launch_method: str = "forkserver",
        quick: bool = False,
        attributes: Mapping[str, Any] | None = None,
        pin: bool = True,
        log: Any = None,
    ) -> None:
        self.repo = repo
        self.commits = list(commits)
        self.regexes = list(regexes)
        self.launch_method = launch_method
        self.quick = quick
        self.attributes = dict(attributes or {})
        self.pin = pin and hasattr(os, "sched_getaffinity")
        self.log = log or _log
        self.state = repo / ".asv" / "compare"
        self.build_errors: dict[str, str] = {}
        self.spawners: dict[str, Any] = {}
        self.selection: list[Selected] = []
        self.benchmarks: Any = None
        self.rounds_run = 0
        self.seconds = 0.0
        self.asv_runner_version: tuple[int, ...] | None = None
        self._caches: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self._stack = contextlib.ExitStack()

    # -- setup

    def __enter__(self) -> AsvSession:
        try:
            self._stack.enter_context(exclusive(self.state))
            self._stack.enter_context(chdir(self.repo))
            self._setup()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._drop_caches()
        for spawner in self.spawners.values():
            with contextlib.suppress(Exception):
                spawner.close()
        self._stack.close()

    def _setup(self) -> None:
        from asv import util
        from asv.benchmarks import Benchmarks
        from asv.config import Config
        from asv.repo import get_repo

        self.conf = Config.load("asv.conf.json")
        self.repo_obj = get_repo(self.conf)
        self.env = asv_environment(self.conf, self.log)
        # Environment._path, not dir_name: asv 0.6 computes the path before it moves pinned
        # base requirements (asv_runner) out of the requirements that dir_name hashes.
        self.env_path = Path(self.env._path)
        self.python = str(self.env_path / "bin" / "python")
        overlays = {c: self._overlay(c) for c in self.commits}
        self._prune_overlays()
        ok = [c for c in self.commits if c not in self.build_errors]
        if not ok:
            raise CompareError("no commit could be built: " + "; ".join(self.build_errors.values()))
        try:
            self.benchmarks = Benchmarks.discover(
                self.conf, self.repo_obj, [self.env], [ok[-1]], regex=self.regexes or None
            )
        except util.UserError as exc:
            raise CompareError(f"asv could not discover the benchmarks: {exc}") from None
        for key, bench in sorted(self.benchmarks.items()):
            idx = self.benchmarks.benchmark_selection.get(key)
            if idx is None:
                self.selection.append(Selected(key, key, None))
                continue
            combos = list(itertools.product(*bench["params"]))
            self.selection += [Selected(_result_name(key, combos[i]), key, i) for i in idx]
        if not self.selection:
            raise CompareError(f"no benchmark matches {self.regexes}")
        spawner_cls, forkserver_cls = _spawner_classes()
        cls = forkserver_cls if self.launch_method == "forkserver" else spawner_cls
        for commit in ok:
            spawner = cls(self.env, self.conf.benchmark_dir, self.python, overlays[commit])
            self.spawners[commit] = spawner
            imported, output = spawner.preimport()  # the forkserver imports the suite once
            if not imported:
                self.log(f"importing the suite for {commit[:8]} failed: {_last_line(output)}")
        self.asv_runner_version = self._runner_version()

    def _overlay(self, commit: str) -> Path:
        """The commit's package, installed alone in a directory (cached per commit)."""
        from asv import util

        target = self.state / "overlays" / commit
        if (target / ".complete").exists():
            return target
        self.log(f"building {commit[:8]} with asv")
        try:
            self.env.install_project(self.conf, self.repo_obj, commit)
        except util.ProcessError as exc:
            output = (exc.stdout or "") + (exc.stderr or "")
            self.build_errors[commit] = f"build failed: {_last_line(output) or exc}"
            return target
        cache = self.env_path / "asv-build-cache" / commit
        wheels = sorted(cache.glob("*.whl"))
        if not wheels:
            raise CompareError(f"asv's build_command left no wheel in {cache}")
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [
                self.python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-index",
                "--disable-pip-version-check",
                "--target",
                str(target),
                str(wheels[-1]),
            ],
            check=True,
        )
        (target / ".complete").touch()
        return target

    def _prune_overlays(self) -> None:
        root = self.state / "overlays"
        for old in root.iterdir() if root.is_dir() else ():
            if old.name not in self.commits:
                shutil.rmtree(old, ignore_errors=True)

    def _runner_version(self) -> tuple[int, ...] | None:
        for info in (self.env_path / "lib").glob("python*/site-packages/asv_runner-*.dist-info"):
            match = re.match(r"asv_runner-(\d+)\.(\d+)", info.name)
            if match:
                return int(match[1]), int(match[2])
        return None

    # -- rounds

    def kinds(self, into: Measurements) -> None:
        for s in self.selection:
            bench = self.benchmarks[s.key]
            into.kinds[s.name] = bench["type"]
            into.units[s.name] = bench.get("unit") or ""

    def run_rounds(
        self, rounds: int, into: Measurements, only: Iterable[str] | None = None
    ) -> None:
        """``rounds`` paired rounds over the selection (or the names in ``only``)."""
        from asv import runner

        wanted = set(only) if only is not None else None
        todo = [s for s in self.selection if wanted is None or s.name in wanted]
        self.kinds(into)
        for commit, error in self.build_errors.items():
            for s in todo:
                if not into.get(commit, s.name):
                    into.add(commit, s.name, RoundResult(0, None, error=error))
        for _ in range(rounds):
            started = time.monotonic()
            n = self.rounds_run
            self.rounds_run += 1
            # Both sides of a pair on the same CPU: the two CPUs of a shared machine are
            # slowed by different neighbours at different times. Rounds alternate CPUs.
            cpus = sorted(os.sched_getaffinity(0)) if self.pin else []
            affinity = {"cpu_affinity": [cpus[n % len(cpus)]]} if cpus else {}
            for i, s in enumerate(todo):
                order = self._order(n + i)
                for commit in order:
                    if into.settled(commit, s.name):
                        continue
                    bench = dict(self.benchmarks[s.key])
                    bench["timeout"] = bench.get("timeout") or self.conf.default_benchmark_timeout
                    extra: dict[str, Any] = {**affinity, **self.attributes}
                    if self.quick:
                        extra = {"number": 1, "repeat": 1, "warmup_time": 0, "rounds": 1}
                    res = self._run_one(runner, bench, commit, s, extra)
                    into.add(commit, s.name, res)
            self._drop_caches()
            took = time.monotonic() - started
            self.seconds += took
            self.log(
                f"round {self.rounds_run}: {len(todo)} benchmark(s) x {len(self.spawners)} "
                f"commit(s) in {took:.0f} s"
            )

    def _order(self, j: int) -> list[str]:
        """The commits' order for the j-th run: every commit in every position equally
        often (rotations, then reversed rotations); for two commits A B, B A, B A, A B."""
        commits = list(self.spawners)
        k = len(commits)
        order = commits[j % k :] + commits[: j % k]
        return order[::-1] if (j // k) % 2 else order

    def _drop_caches(self) -> None:
        for cache_dir, _ in self._caches.values():
            if cache_dir is not None:
                shutil.rmtree(cache_dir, ignore_errors=True)
        self._caches.clear()

    def _run_one(
        self, runner: Any, bench: dict[str, Any], commit: str, s: Selected, extra: dict[str, Any]
    ) -> RoundResult:
        spawner = self.spawners[commit]
        cache_dir = None
        key = bench.get("setup_cache_key")
        if key is not None:
            # Like asv run: one setup_cache per commit (here: per round), shared by the
            # benchmarks that use it; created when the first of them runs.
            if (commit, key) not in self._caches:
                timeout = bench.get("setup_cache_timeout") or bench["timeout"]
                self._caches[commit, key] = spawner.create_setup_cache(
                    s.key, timeout, json.dumps({"cpu_affinity": extra.get("cpu_affinity")})
                )
            cache_dir, error = self._caches[commit, key]
            if cache_dir is None:
                return RoundResult(self.rounds_run, None, error=_last_line(error))
        selected = {s.index} if s.index is not None else None
        res = runner.run_benchmark(
            bench,
            spawner,
            profile=False,
            selected_idx=selected,
            extra_params=extra,
            cwd=cache_dir,
        )
        i = s.index or 0
        value = res.result[i] if res.result else None
        samples = res.samples[i] if res.samples else None
        if value is None:
            return RoundResult(self.rounds_run, None, error=_last_line(res.stderr))
        return RoundResult(self.rounds_run, float(value), tuple(float(x) for x in samples or ()))


def stored_measurements(repo: Path, commits: Sequence[str], regexes: Sequence[str]) -> Measurements:
    """What ``.asv/results`` already holds for ``commits`` (one round each)."""
    from asv.benchmarks import Benchmarks
    from asv.config import Config
    from asv.results import iter_results_for_machine_and_hash

    m = Measurements()
    with chdir(repo):
        conf = Config.load("asv.conf.json")
        subprocess.run([*ASV, "machine", "--yes"], check=True, stdout=subprocess.DEVNULL)
        machine = _machine_name()
        meta = Benchmarks.load(conf)
        for commit in commits:
            found = False
            for res in iter_results_for_machine_and_hash(conf.results_dir, machine, commit):
                found = True
                for key in res.get_result_keys(meta):
                    params = res.get_result_params(key)
                    values = res.get_result_value(key, params)
                    samples = res.get_result_samples(key, params) or [None] * len(values)
                    combos = list(itertools.product(*params)) if params else [()]
                    for combo, value, sample in zip(combos, values, samples, strict=False):
                        name = _result_name(key, combo)
                        if regexes and not any(re.search(r, name) for r in regexes):
                            continue
                        m.kinds[name] = meta[key]["type"]
                        m.units[name] = meta[key].get("unit") or ""
                        v = None if value is None else float(value)
                        error = _last_line(res.stderr.get(key)) if v is None else ""
                        m.add(commit, name, RoundResult(0, v, tuple(sample or ()), error))
            if not found:
                raise CompareError(
                    f"no stored results for {commit[:8]} on machine {machine!r} "
                    "(run `make bench`, `asv run`, or drop --no-run)"
                )
    return m


def _machine_name() -> str:
    """The machine name asv uses here (what `asv machine --yes` stored)."""
    import platform

    node = platform.node()
    try:
        known = [
            k
            for k in json.loads(Path("~/.asv-machine.json").expanduser().read_text())
            if k != "version"
        ]
    except (OSError, ValueError):
        return node
    return node if node in known or len(known) != 1 else known[0]


# --------------------------------------------------------------------------- the comparison


def compare(
    repo: Path,
    base: str,
    heads: Sequence[str],
    *,
    regexes: Sequence[str] = (),
    factor: float = DEFAULT_FACTOR,
    rounds: int = DEFAULT_ROUNDS,
    confirm_rounds: int = DEFAULT_CONFIRM_ROUNDS,
    quick: bool = False,
    launch_method: str = "forkserver",
    attributes: Mapping[str, Any] | None = None,
    pin: bool = True,
) -> tuple[Measurements, dict[str, list[Verdict]], AsvSession]:
    """Measure ``base`` and every head in the same paired rounds, then judge each head.

    Suspects of any head (see :func:`suspects`) get ``confirm_rounds`` more rounds,
    for all commits, before the final verdicts.

    Returns:
        The measurements, the verdicts per head, and the (closed) session for its facts.
    """
    m = Measurements()
    commits = [base, *heads]
    with AsvSession(
        repo,
        commits,
        regexes,
        launch_method=launch_method,
        quick=quick,
        attributes=attributes,
        pin=pin,
    ) as s:
        s.run_rounds(1 if quick else rounds, m)
        confirmed_after = None
        if not quick and confirm_rounds:
            first = {h: compare_all(m, base, h, factor=factor) for h in heads}
            todo = sorted({n for h in heads for n in suspects(first[h], factor)})
            if todo:
                s.log(
                    f"confirming {len(todo)} suspect(s): {', '.join(todo[:4])}"
                    + (", ..." if len(todo) > 4 else "")
                )
                confirmed_after = s.rounds_run
                s.run_rounds(confirm_rounds, m, only=todo)
                # A change seen on all rounds but not by the confirmation rounds alone is
                # undecided (a slow spell during the confirmation can hide a real change):
                # one more batch, then all confirmation rounds together decide.
                undecided = sorted(
                    {
                        v.name
                        for h in heads
                        for v in compare_all(
                            m, base, h, factor=factor, confirmed_after=confirmed_after
                        )
                        if v.note.startswith("not confirmed")
                    }
                )
                if undecided:
                    s.log(f"undecided after confirmation, once more: {', '.join(undecided)}")
                    s.run_rounds(confirm_rounds, m, only=undecided)
    verdicts = {
        h: compare_all(m, base, h, factor=factor, judge=not quick, confirmed_after=confirmed_after)
        for h in heads
    }
    return m, verdicts, s


# --------------------------------------------------------------------------- CLI


def _factor(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        f = math.nan
    if not (math.isfinite(f) and f > 1):
        raise argparse.ArgumentTypeError(f"expected a number > 1, got {value!r}")
    return f


def _count(minimum: int) -> Any:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = minimum - 1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value!r}")
        return n

    return parse


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument(
        "-b",
        "--bench",
        action="append",
        default=[],
        metavar="REGEX",
        help="only benchmarks whose name(params) matches REGEX (as asv -b; repeatable)",
    )
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


def exit_on_sigterm() -> None:
    """SIGTERM ends the tool like Ctrl-C: cleanup runs (forkservers, state, locks)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_on_sigterm()
    try:
        return run(args)
    except CompareError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    repo: Path = args.repo.resolve()
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
    started = time.monotonic()
    rounds = 1 if (args.quick or args.no_run) else args.rounds
    confirm_rounds = 0
    if args.no_run:
        m = stored_measurements(repo, [base, head], args.bench)
        warnings.append(
            "stored results are one unpaired run per side: the spread is each "
            "side's own samples, which on a busy machine understates the noise"
        )
        verdicts = compare_all(m, base, head, factor=args.factor)
    else:
        m, by_head, session = compare(
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
        )
        verdicts = by_head[head]
        confirm_rounds = session.rounds_run - rounds
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
    )
    sys.stdout.write(render_text(verdicts, info))
    if args.markdown:
        args.markdown.write_text(render_markdown(verdicts, info))
    if args.json:
        args.json.write_text(json.dumps(report_json(verdicts, info, m), indent=1) + "\n")
    return exit_code(verdicts)


if __name__ == "__main__":
    sys.exit(main())
