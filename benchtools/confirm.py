"""Publish only the regressions the code caused: re-measure each step asv lists, in pairs.

Usage (``make bench`` runs it right after ``asv publish``)::

    python -m benchtools confirm                 # this repository's html/
    python -m benchtools confirm --repo DIR --budget-min 4 --rounds 4

``asv publish`` finds steps in the history of each benchmark (``asv.step_detect``) and
lists them in ``html/regressions.json`` and its Atom feed ``html/regressions.xml`` (the
Regressions page of the site). Each commit of ``asv run`` is measured minutes apart from
its neighbours; on a shared machine the speed of identical code drifts by up to 1.6x over
such spans (docs/reviewing.md), so asv lists steps no commit caused. This tool takes each
listed step (a benchmark, the measured commit before the step and the one after) and
decides:

- ``unit == "instructions"`` (counted, deterministic): a step beyond
  ``--instructions-step`` (1.02) is real; kept without re-measuring.
- a step among the newest ``--window`` + 1 (5) measured commits: the oldest and the
  newest of them are re-measured in paired rounds by ``make compare``'s machinery
  (:func:`benchtools.compare.asvglue.compare`, in process, ``--factor`` = 1 + the benchmark's
  ``regressions_thresholds`` entry of asv.conf.json). No *regression* (the median ratio
  beyond the threshold, the spread of the rounds entirely above 1, confirmed by
  independent rounds): the benchmark's steps there are dropped. A regression: the commit
  that made it is found by bisection (paired comparisons again) and the step is
  published there, whichever neighbour asv had put it on (:func:`locate_recent`).
- an older step (asv lists the whole history): the commit before and the one after are
  re-measured the same way; kept only on a regression.

Every comparison is remembered and all of them share ``--budget-min``: a step left
undecided when it is spent is dropped ("not re-measured"), not published unconfirmed,
and the next run takes it up again.

``regressions.json`` and ``regressions.xml`` are then rewritten with the kept steps only,
by asv's own writers (``asv.plugins.regressions.Regressions``), so the site reads them as
before. ``html/regressions-confirmation.json`` says, for every step asv listed, whether it
was kept and why, with the re-measured ratio. Re-measurements are remembered per
(benchmark, commit before, commit after) in ``.asv/regressions-confirmed.json``: the next
``make bench`` re-measures only new steps.

asv's step detection also misses steps: on a history of identical code drifting 1.6x it
fitted one level through a real 2x step of the newest commits. So clear steps asv did not
list (:func:`separated_steps`) are confirmed the same way and, when confirmed, published
as asv would have listed them.

Exit codes: 0 done (whatever was kept or dropped); 2 the published files could not be
read or written.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchtools import evidence
from benchtools.compare.calldiff import CallDiff, diff_to_json, explain
from benchtools.compare.model import (
    FAILED,
    INSTRUCTIONS_FLOOR,
    REGRESSION,
    BudgetSpent,
    CompareError,
    Verdict,
)
from benchtools.compare.report import verdict_from_json, verdict_to_json
from benchtools.git import git

ROOT = Path(__file__).resolve().parent.parent
#: asv's threshold for a benchmark no ``regressions_thresholds`` entry matches.
ASV_DEFAULT_THRESHOLD = 0.05
INSTRUCTIONS_UNIT = "instructions"
DEFAULT_INSTRUCTIONS_STEP = 1.02
DEFAULT_ROUNDS = 4
DEFAULT_CONFIRM_ROUNDS = 4
DEFAULT_BUDGET_MIN = 3.0
#: Values on each side of a commit that must all be apart for an unlisted step.
DEFAULT_WINDOW = 4
REPORT_NAME = evidence.REPORT_NAME
CACHE_NAME = "regressions-confirmed.json"


class ConfirmError(Exception):
    """The published regressions could not be read or rewritten."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One step of one benchmark as asv lists it.

    Attributes:
        name: the benchmark with its parameters, as in regressions.json.
        before: the last measured commit before the step.
        after: the first measured commit after it.
        value_before: asv's value before the step.
        value_after: asv's best value after it.
        unit: the benchmark's unit ("seconds", "instructions", ...).
        threshold: its ``regressions_thresholds`` (a fraction: 0.2 is 20%).
        entry: index of the benchmark's entry in regressions.json.
        jump: index of the step in that entry's list of jumps.
    """

    name: str
    before: str
    after: str
    value_before: float
    value_after: float
    unit: str
    threshold: float
    entry: int
    jump: int

    @property
    def ratio(self) -> float:
        """after/before as asv saw it (inf when before is 0)."""
        return self.value_after / self.value_before if self.value_before else float("inf")


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Whether a step is published, and why.

    Attributes:
        step: the step asv listed.
        kept: True: it stays in the Regressions list.
        reason: why, in words.
        remeasured: the paired re-measurement (``make compare``'s verdict), when there
            was one.
        asv_named: the commits asv had put this benchmark's steps on, when the step was
            located by bisection (it may be another).
    """

    step: Step
    kept: bool
    reason: str
    remeasured: Verdict | None = None
    asv_named: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Remembered:
    """A re-measurement kept for later runs: the verdict and the factor it was judged by."""

    verdict: Verdict
    factor: float


def cache_from_json(data: object) -> dict[str, Remembered]:
    """The remembered re-measurements of ``.asv/regressions-confirmed.json``.

    Keys are "name|before|after"; an entry that does not read as a verdict (a file from
    an older version, a bad edit) is left out: that step is re-measured.
    """
    if not isinstance(data, dict):
        return {}
    out = {}
    for key, entry in data.items():
        if not isinstance(entry, dict):
            continue
        with contextlib.suppress(ValueError, TypeError, KeyError):
            out[str(key)] = Remembered(verdict_from_json(entry), float(entry["factor"]))
    return out


def cache_to_json(cache: Mapping[str, Remembered]) -> dict[str, dict[str, object]]:
    """What :func:`cache_from_json` reads: each verdict's JSON with its ``factor``."""
    return {
        key: {**verdict_to_json(seen.verdict), "factor": seen.factor} for key, seen in cache.items()
    }


# --------------------------------------------------------------------------- reading


def threshold_for(name: str, thresholds: Mapping[str, Any]) -> float:
    """The regression threshold asv applies to a benchmark (asv's own rule).

    The largest value among the ``regressions_thresholds`` entries whose regex matches
    the start of the name (``re.match``), else asv's default 0.05.
    """
    matched = [float(t) for regex, t in thresholds.items() if re.match(regex, name)]
    return max(matched) if matched else ASV_DEFAULT_THRESHOLD


def read_steps(
    regressions: Mapping[str, Any],
    index: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    parent_of: Callable[[str], str],
) -> list[Step]:
    """Every step of html/regressions.json, with commits and units resolved.

    Args:
        regressions: the content of regressions.json (``{"regressions": [...]}``); each
            entry is ``[name, graph_path, graph_params, param_index, last_value,
            best_value, jumps]``, each jump ``[revision_before or None, revision_after,
            value_before, value_after]`` (None: the step is a single commit).
        index: the content of html/index.json (``revision_to_hash``, ``benchmarks``).
        thresholds: asv.conf.json's ``regressions_thresholds``.
        parent_of: commit -> its parent commit (for single-commit steps).
    """
    rev_to_hash = {int(r): h for r, h in index["revision_to_hash"].items()}
    benchmarks = index["benchmarks"]
    steps = []
    for i, entry in enumerate(regressions.get("regressions", [])):
        name, jumps = entry[0], entry[6]
        bench = benchmarks.get(name.split("(", 1)[0], {})
        for j, (rev_a, rev_b, v1, v2) in enumerate(jumps):
            after = rev_to_hash[int(rev_b)]
            before = rev_to_hash[int(rev_a)] if rev_a is not None else parent_of(after)
            steps.append(
                Step(
                    name=name,
                    before=before,
                    after=after,
                    value_before=float(v1),
                    value_after=float(v2),
                    unit=bench.get("unit") or "",
                    threshold=threshold_for(name, thresholds),
                    entry=i,
                    jump=j,
                )
            )
    return steps


def _series(points: Sequence[Any], j: int | None) -> list[tuple[int, float]]:
    """(revision, value) of one parameter combination of a graph, missing values out."""
    out = []
    for rev, value in points:
        v = value if j is None else (value[j] if isinstance(value, list) else None)
        if isinstance(v, int | float) and v == v:  # not None, not NaN
            out.append((int(rev), float(v)))
    return sorted(out)


def separated_steps(
    series: Sequence[tuple[int, float]], threshold: float, window: int
) -> list[tuple[int, int, float, float]]:
    """Upward steps that stand out of the noise around them: candidates to confirm.

    A step at point i when its value is beyond (1 + threshold) times the value before it,
    and each of the ``window`` values from i on is beyond (1 + threshold) times the
    median of the ``window`` values before i: a change of the code shifts all later
    values, whereas the drift of a shared machine moves single commits. Loose on purpose
    (on a 2x step after identical code that drifted 1.6x, asv's fit saw one level): every
    candidate is re-measured before it is published. Series with values <= 0 have no
    ratios and give none. Returns (revision before, revision after, median before, median
    after) per step.
    """
    if any(v <= 0 for _, v in series):
        return []
    out = []
    limit = 1 + threshold
    for i in range(1, len(series)):
        before = [v for _, v in series[max(0, i - window) : i]]
        after = [v for _, v in series[i : i + window]]
        level = statistics.median(before)
        if series[i][1] > limit * before[-1] and min(after) > limit * level:
            out.append((series[i - 1][0], series[i][0], level, statistics.median(after)))
    return out


def _key_value(part: str) -> tuple[str, str]:
    """A graph path's ``key-value`` part (asv's parameter directories)."""
    key, _, value = part.partition("-")
    return key, value


def add_unlisted(
    regressions: Mapping[str, Any],
    html: Path,
    index: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    parent_of: Callable[[str], str],
    *,
    window: int,
) -> tuple[dict[str, Any], int]:
    """regressions.json plus the steps asv's fit missed (see :func:`separated_steps`).

    asv fits one level per stretch of the history; on a shared machine the drift of
    identical code between commits (up to 1.6x) can make it fit a real 2x step of the
    newest commits as noise. Such steps are added, as asv would have listed them, to be
    confirmed like the others. Returns the new content and how many steps were added.
    """
    rev_to_hash = {int(r): h for r, h in index["revision_to_hash"].items()}
    entries = [list(e) for e in regressions.get("regressions", [])]
    by_key = {(e[0], e[1]): e for e in entries}
    listed = {(e[0], rev_to_hash[int(jump[1])]) for e in entries for jump in e[6]}
    all_params = index.get("params", {})
    added = 0
    for path in sorted(html.glob("graphs/**/*.json")):
        rel = path.relative_to(html).as_posix()
        name = path.name[: -len(".json")]
        bench = index["benchmarks"].get(name)
        if rel.startswith("graphs/summary/") or bench is None:
            continue
        params = dict(_key_value(p) for p in rel.split("/")[1:-1])
        graph_params = {k: v for k, v in params.items() if len(all_params.get(k, ())) > 1}
        points = json.loads(path.read_text())
        combos = list(itertools.product(*bench["params"])) if bench.get("params") else [None]
        for j, combo in enumerate(combos):
            entry_name = name if combo is None else f"{name}({', '.join(combo)})"
            series = _series(points, None if combo is None else j)
            threshold = threshold_for(entry_name, thresholds)
            for rev_a, rev_b, v1, v2 in separated_steps(series, threshold, window):
                after = rev_to_hash[rev_b]
                if (entry_name, after) in listed:
                    continue
                single = parent_of(after) == rev_to_hash[rev_a]
                jump = [None if single else rev_a, rev_b, v1, v2]
                key = (entry_name, rel)
                if key not in by_key:
                    values = [v for _, v in series]
                    by_key[key] = [
                        entry_name,
                        rel,
                        graph_params,
                        None if combo is None else j,
                        values[-1],
                        min(values),
                        [],
                    ]
                    entries.append(by_key[key])
                by_key[key][6].append(jump)
                listed.add((entry_name, after))
                added += 1
    return {**regressions, "regressions": entries}, added


def filtered(regressions: Mapping[str, Any], kept: Sequence[Step]) -> dict[str, Any]:
    """regressions.json with only the kept steps (an entry with none left goes)."""
    keep = {(s.entry, s.jump) for s in kept}
    out = []
    for i, entry in enumerate(regressions.get("regressions", [])):
        jumps = [jump for j, jump in enumerate(entry[6]) if (i, j) in keep]
        if jumps:
            out.append([*entry[:6], jumps])
    return {**regressions, "regressions": out}


# --------------------------------------------------------------------------- deciding


def judge(step: Step, verdict: Verdict | None, *, error: str = "") -> Decision:
    """Keep a step only when the paired re-measurement shows it.

    Args:
        step: the step asv listed.
        verdict: ``make compare``'s verdict for the step's benchmark, or None when it was
            not re-measured.
        error: why there is no verdict.
    """
    if verdict is None:
        return Decision(step=step, kept=False, reason=f"not re-measured: {error}")
    ratio = verdict.ratio
    seen = f"{ratio.center:.2f}x [{ratio.low:.2f}..{ratio.high:.2f}]" if ratio else "no ratio"
    limit = 1 + step.threshold
    if verdict.verdict == REGRESSION and ratio and ratio.center > limit:
        reason = f"confirmed: {seen} in {verdict.rounds} paired rounds"
        return Decision(step=step, kept=True, reason=reason, remeasured=verdict)
    if verdict.verdict == REGRESSION:
        why = f"re-measured {seen}: within the threshold {limit:g}x"
    elif verdict.verdict == FAILED:
        why = f"could not re-measure: {verdict.note or 'failed'}"
    else:
        note = f" ({verdict.note})" if verdict.note else ""
        why = f"re-measured {seen}: {verdict.verdict}{note}"
    return Decision(step=step, kept=False, reason=why, remeasured=verdict)


def judge_counted(step: Step, min_ratio: float, floor: float = INSTRUCTIONS_FLOOR) -> Decision:
    """A step of a deterministic (instruction-count) benchmark: real when large enough.

    Large enough: beyond ``min_ratio`` and by more than ``floor`` instructions.
    """
    added = step.value_after - step.value_before
    if step.ratio > min_ratio and added > floor:
        reason = f"counted, deterministic: {step.ratio:.3f}x > {min_ratio:g}x, {added:+.0f}"
        return Decision(step=step, kept=True, reason=reason)
    reason = (
        f"counted, deterministic: {step.ratio:.3f}x ({added:+.0f}) is within "
        f"{min_ratio:g}x or {floor:g} instructions"
    )
    return Decision(step=step, kept=False, reason=reason)


def plan(steps: Sequence[Step]) -> list[tuple[tuple[str, str], list[Step]]]:
    """Steps grouped by commit pair, largest step first, pairs by their largest step."""
    groups: dict[tuple[str, str], list[Step]] = {}
    for s in sorted(steps, key=lambda s: -s.ratio):
        groups.setdefault((s.before, s.after), []).append(s)
    return list(groups.items())


def compare_pair(
    repo: Path,
    before: str,
    after: str,
    names: Sequence[str],
    *,
    factor: float,
    rounds: int,
    confirm_rounds: int,
    deadline: float,
) -> tuple[dict[str, Verdict], str]:
    """Re-measure ``names`` on two commits with ``make compare``'s machinery, in process.

    Returns:
        The verdicts by benchmark name, and an error ("" when the comparison ran).
    """
    from benchtools.compare import asvglue

    try:
        _, by_head, _ = asvglue.compare(
            repo.resolve(),
            before,
            [after],
            regexes=[f"^{re.escape(name)}$" for name in names],
            factor=factor,
            rounds=rounds,
            confirm_rounds=confirm_rounds,
            deadline=deadline,
        )
    except BudgetSpent:
        return {}, "the confirmation budget ran out during the re-measurement"
    except CompareError as exc:
        return {}, f"the comparison could not be made: {exc}"
    return {v.name: v for v in by_head[after]}, ""


class Measurer:
    """Paired re-measurements of commit pairs (``make compare``'s), remembered, within a budget.

    Args:
        repo: the repository.
        cache: earlier verdicts by "name|before|after" (updated in place).
        deadline: time.monotonic() after which nothing more is measured.
        rounds: paired rounds per comparison.
        confirm_rounds: the comparison's further rounds for suspects.
    """

    def __init__(
        self,
        repo: Path,
        cache: dict[str, Remembered],
        deadline: float,
        *,
        rounds: int,
        confirm_rounds: int,
    ) -> None:
        self.repo = repo
        self.cache = cache
        self.deadline = deadline
        self.rounds = rounds
        self.confirm_rounds = confirm_rounds

    def verdicts(
        self, before: str, after: str, thresholds: Mapping[str, float]
    ) -> tuple[dict[str, Verdict], str]:
        """Verdicts after/before for the benchmarks named (name -> threshold).

        Returns:
            The verdicts by name (remembered ones too), and why some are missing.
        """
        out: dict[str, Verdict] = {}
        todo = []
        for name, t in thresholds.items():
            seen = self.cache.get(f"{name}|{before}|{after}")
            if seen and seen.factor <= 1 + t + 1e-9:
                out[name] = seen.verdict
            else:
                todo.append(name)
        if not todo:
            return out, ""
        left = self.deadline - time.monotonic()
        if left <= 5:
            return out, "the confirmation budget was spent"
        factor = 1 + min(thresholds[n] for n in todo)
        print(
            f"confirm: re-measuring {before[:8]}..{after[:8]} in paired rounds: "
            + ", ".join(todo[:3])
            + (f" and {len(todo) - 3} more" if len(todo) > 3 else ""),
            flush=True,
        )
        got, error = compare_pair(
            self.repo,
            before,
            after,
            sorted(todo),
            factor=factor,
            rounds=self.rounds,
            confirm_rounds=self.confirm_rounds,
            deadline=self.deadline,
        )
        for name, v in got.items():
            if v.verdict != FAILED:  # a failure may not recur
                self.cache[f"{name}|{before}|{after}"] = Remembered(v, factor)
        out.update(got)
        return out, error


def locate_recent(
    recent: Mapping[str, Sequence[Step]],
    window: Sequence[tuple[int, str]],
    measurer: Measurer,
    regressions: Mapping[str, Any],
    decisions: dict[tuple[int, int], Decision],
    parent_of: Callable[[str], str],
) -> list[Step]:
    """Decide the steps among the newest commits: is there one, and at which commit?

    On a shared machine a real step can read smaller than the drift of identical code
    next to it, so asv (and :func:`separated_steps`) may put it on a neighbour. For each
    benchmark with steps after the oldest commit of ``window`` (revision, hash), the
    oldest and the newest commit are compared in paired rounds. No regression: each of
    these steps is dropped. A regression: it is located by bisection over the window
    (each probe a paired comparison with the last commit known to come before the step)
    and published there; the benchmark's other steps in the window are dropped. When the
    budget ends the bisection, it is published as a step somewhere in the range still
    open (asv's "in commits a...b").

    Mutates ``regressions`` (new jumps) and ``decisions``; returns the steps added.
    """
    if not recent:
        return []
    (_, first), (_, last) = window[0], window[-1]
    thresholds = {name: steps[0].threshold for name, steps in recent.items()}
    overall, error = measurer.verdicts(first, last, thresholds)
    bounds: dict[str, tuple[int, int]] = {}
    found: dict[str, Decision] = {}
    for name, steps in recent.items():
        span = dataclasses.replace(steps[0], before=first, after=last)
        d = judge(span, overall.get(name), error=error or "the comparison did not run it")
        if d.kept:
            found[name] = d
            bounds[name] = (0, len(window) - 1)
            continue
        for s in steps:
            why = f"{first[:8]}..{last[:8]} (the newest commits) {d.reason}"
            decisions[s.entry, s.jump] = Decision(
                step=s, kept=False, reason=why, remeasured=d.remeasured
            )
    stopped: set[str] = set()
    while True:
        probes: dict[tuple[int, int], dict[str, float]] = {}
        for name, (lo, hi) in bounds.items():
            if hi - lo > 1 and name not in stopped:
                probes.setdefault((lo, (lo + hi) // 2), {})[name] = thresholds[name]
        if not probes:
            break
        for (lo, mid), names in probes.items():
            got, _ = measurer.verdicts(window[lo][1], window[mid][1], names)
            for name in names:
                if name not in got:
                    stopped.add(name)
                    continue
                span = dataclasses.replace(
                    recent[name][0], before=window[lo][1], after=window[mid][1]
                )
                hi = bounds[name][1]
                bounds[name] = (lo, mid) if judge(span, got[name]).kept else (mid, hi)

    added = []
    for name, (lo, hi) in bounds.items():
        (rev_a, before), (rev_b, after) = window[lo], window[hi]
        d = found[name]
        how = "located by bisection" if hi - lo == 1 else "not located further within the budget"
        reason = f"{d.reason} between {first[:8]} and {last[:8]}; {how}"
        match = [s for s in recent[name] if (s.before, s.after) == (before, after)]
        for s in recent[name]:
            if not match or s is not match[0]:
                decisions[s.entry, s.jump] = Decision(
                    step=s, kept=False, reason=f"the step is at {after[:8]}: {reason}"
                )
        named = tuple(s.after for s in recent[name])
        if match:
            decisions[match[0].entry, match[0].jump] = dataclasses.replace(
                d, step=match[0], reason=reason, asv_named=named
            )
            continue
        measured = d.remeasured
        template = recent[name][0]
        v1 = measured.base.center if measured and measured.base else template.value_before
        v2 = measured.head.center if measured and measured.head else template.value_after
        jumps = regressions["regressions"][template.entry][6]
        jumps.append([None if parent_of(after) == before else rev_a, rev_b, v1, v2])
        step = dataclasses.replace(
            template,
            before=before,
            after=after,
            value_before=v1,
            value_after=v2,
            jump=len(jumps) - 1,
        )
        decisions[step.entry, step.jump] = dataclasses.replace(
            d, step=step, reason=reason, asv_named=named
        )
        added.append(step)
    return added


# --------------------------------------------------------------------------- evidence


def step_calls(
    repo: Path, steps: Sequence[Step], parent_of: Callable[[str], str]
) -> tuple[dict[tuple[str, str], CallDiff], str]:
    """The call diff of each step's commit against its parent (for the evidence pages).

    Only steps with an operation behind them (an instruction count, or a wall-clock
    benchmark an operation mirrors) get one. Evidence never stops the publication: when
    the commits cannot be built or profiled, the reason is returned instead.

    Returns:
        (benchmark name, commit) -> its call diff; and "" or why there are none.
    """
    pairs: dict[tuple[str, str], list[str]] = {}
    for s in steps:
        pairs.setdefault((parent_of(s.after), s.after), []).append(s.name)
    if not pairs:
        return {}, ""
    from benchtools.compare import asvglue

    commits = sorted({c for pair in pairs for c in pair})
    try:
        python, paths = asvglue.code_of_commits(repo, commits)
    except Exception as exc:  # asv's own errors are untyped; evidence is never fatal
        return {}, f"could not build the commits to profile: {type(exc).__name__}: {exc}"
    out: dict[tuple[str, str], CallDiff] = {}
    for (parent, commit), names in pairs.items():
        if parent not in paths or commit not in paths:
            continue
        for name, d in explain(names, python, paths[parent], paths[commit]).items():
            out[name, commit] = d
    return out, ""


# --------------------------------------------------------------------------- writing


def write_published(
    repo: Path, conf: Any, data: Mapping[str, Any], index: Mapping[str, Any]
) -> None:
    """regressions.json and regressions.xml, written by asv's own publisher."""
    from benchtools.compare import asvglue

    rev_to_hash = {int(r): h for r, h in index["revision_to_hash"].items()}
    revisions = {h: r for r, h in rev_to_hash.items()}
    asvglue.save_regressions(repo, conf, data, index["benchmarks"], revisions, rev_to_hash)


def summary(decisions: Sequence[Decision], by_asv: int, seconds: float) -> str:
    """One line for the job's output."""
    kept = sum(d.kept for d in decisions)
    dropped = len(decisions) - kept
    return (
        f"confirm: asv listed {by_asv} step(s), {len(decisions) - by_asv} more candidate(s) "
        f"its fit missed; {kept} confirmed and published, {dropped} dropped "
        f"({seconds / 60:.1f} min)"
    )


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="confirm_regressions.py",
        description="Keep only confirmed steps in html/regressions.json and .xml.",
    )
    p.add_argument("--repo", type=Path, default=ROOT, help="the repository (default: this one)")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the asv configuration asv publish used (default: the repository's "
        "asv.conf.json); its project and commit links go into the rewritten feed",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"paired rounds per commit pair (default {DEFAULT_ROUNDS})",
    )
    p.add_argument(
        "--confirm-rounds",
        type=int,
        default=DEFAULT_CONFIRM_ROUNDS,
        help=f"the comparison's further rounds for suspects (default {DEFAULT_CONFIRM_ROUNDS})",
    )
    p.add_argument(
        "--budget-min",
        type=float,
        default=DEFAULT_BUDGET_MIN,
        help="stop re-measuring after this many minutes; steps left are dropped "
        f"(default {DEFAULT_BUDGET_MIN:g})",
    )
    p.add_argument(
        "--instructions-step",
        type=float,
        default=DEFAULT_INSTRUCTIONS_STEP,
        help="a counted (unit 'instructions') step beyond this ratio is real "
        f"(default {DEFAULT_INSTRUCTIONS_STEP:g})",
    )
    p.add_argument(
        "--window",
        type=int,
        default=DEFAULT_WINDOW,
        help="the newest WINDOW + 1 commits are checked oldest to newest and a step there "
        "located by bisection; WINDOW values each side also name steps asv's fit missed "
        f"(default {DEFAULT_WINDOW}; 0: only asv's steps, each at its own commits)",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="re-measure steps decided by earlier runs too"
    )
    p.add_argument(
        "--no-evidence",
        dest="evidence",
        action="store_false",
        help="do not profile the kept steps' commits (the call-count diffs of the evidence pages)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ConfirmError as exc:
        print(f"confirm: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from benchtools.compare import asvglue

    started = time.monotonic()
    repo: Path = args.repo.resolve()
    conf = asvglue.load_config(repo, args.config)
    html = repo / conf.html_dir
    cache_path = (repo / conf.results_dir).parent / CACHE_NAME
    try:
        regressions = json.loads((html / "regressions.json").read_text())
        index = json.loads((html / "index.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfirmError(f"cannot read the published history in {html}: {exc}") from None

    @functools.cache  # asked for the same commits again and again (one git process each)
    def parent_of(commit: str) -> str:
        return git(repo, "rev-parse", f"{commit}^").decode().strip()

    by_asv = {
        (s.name, s.after)
        for s in read_steps(regressions, index, conf.regressions_thresholds, parent_of)
    }
    if args.window:
        regressions, _ = add_unlisted(
            regressions, html, index, conf.regressions_thresholds, parent_of, window=args.window
        )
    steps = read_steps(regressions, index, conf.regressions_thresholds, parent_of)
    cache: dict[str, Remembered] = {}
    if cache_path.exists() and not args.no_cache:
        with contextlib.suppress(OSError, ValueError):
            cache = cache_from_json(json.loads(cache_path.read_text()))

    measurer = Measurer(
        repo,
        {} if args.no_cache else cache,
        started + 60 * args.budget_min,
        rounds=args.rounds,
        confirm_rounds=args.confirm_rounds,
    )
    revisions = sorted(int(r) for r in index["revision_to_hash"])
    window = [(r, index["revision_to_hash"][str(r)]) for r in revisions[-(args.window + 1) :]]
    newest = {h for _, h in window[1:]}
    decisions: dict[tuple[int, int], Decision] = {}
    recent: dict[str, list[Step]] = {}
    timed: list[Step] = []
    for s in steps:
        if s.unit == INSTRUCTIONS_UNIT:
            decisions[s.entry, s.jump] = judge_counted(s, args.instructions_step)
        elif args.window and s.after in newest:
            recent.setdefault(s.name, []).append(s)
        else:
            timed.append(s)

    added = locate_recent(recent, window, measurer, regressions, decisions, parent_of)
    for (before, after), group in plan(timed):
        verdicts, error = measurer.verdicts(before, after, {s.name: s.threshold for s in group})
        for s in group:
            decisions[s.entry, s.jump] = judge(
                s, verdicts.get(s.name), error=error or "the comparison did not run it"
            )
    ordered = [decisions[s.entry, s.jump] for s in [*steps, *added]]
    cache = measurer.cache

    kept = [d.step for d in ordered if d.kept]
    write_published(repo, conf, filtered(regressions, kept), index)
    calls, calls_error = step_calls(repo, kept, parent_of) if args.evidence else ({}, "")
    if calls_error:
        print(f"confirm: no call-count evidence: {calls_error}", flush=True)
    seconds = time.monotonic() - started
    report = {
        "listed": len(ordered),
        "listed_by_asv": len(by_asv),
        "kept": len(kept),
        "dropped": len(ordered) - len(kept),
        "seconds": round(seconds, 1),
        "rounds": args.rounds,
        "confirm_rounds": args.confirm_rounds,
        "budget_min": args.budget_min,
        "steps": [
            {
                "name": d.step.name,
                "before": d.step.before,
                "after": d.step.after,
                "unit": d.step.unit,
                "asv_ratio": round(d.step.ratio, 4),
                "origin": "asv" if (d.step.name, d.step.after) in by_asv else "missed by asv",
                "threshold": d.step.threshold,
                "kept": d.kept,
                "reason": d.reason,
                "remeasured": None if d.remeasured is None else verdict_to_json(d.remeasured),
                "asv_named": list(d.asv_named),
                "parent": parent_of(d.step.after) if d.kept else None,
                "calls": (
                    diff_to_json(calls[d.step.name, d.step.after])
                    if (d.step.name, d.step.after) in calls
                    else None
                ),
            }
            for d in ordered
        ],
    }
    (html / REPORT_NAME).write_text(json.dumps(report, indent=1) + "\n")
    with contextlib.suppress(OSError):
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache_to_json(cache), indent=1) + "\n")
    print(summary(ordered, len(by_asv), seconds))
    for d in ordered:
        mark = "kept   " if d.kept else "dropped"
        print(
            f"confirm: {mark} {d.step.name} {d.step.after[:8]} (asv {d.step.ratio:.2f}x): "
            f"{d.reason}"
        )
    print(f"confirm: report in {html / REPORT_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
