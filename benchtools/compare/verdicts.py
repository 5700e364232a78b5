"""The verdict logic: from results per round to regression / improvement / unchanged.

Pure functions on :mod:`benchtools.compare.model` data; no asv, no I/O, so every rule is unit
tested on synthetic results (``tests/benchtools/test_asvcompare.py``). Two rules:

* wall-clock and other noisy benchmarks (:func:`classify`): paired rounds, the median
  per-round ratio beyond ``factor`` *and* its interquartile range on one side of 1;
* instruction counts (:func:`classify_instructions`, ``unit == "instructions"``):
  deterministic, one measurement per side, a change beyond a fraction (2%) either way.

Quantiles are computed here (a dozen values, linear interpolation between ranks, as
numpy's default) so that the tool needs nothing beyond the standard library and asv.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence

from benchtools.compare.model import (
    DEFAULT_FACTOR,
    DEFAULT_INSTRUCTIONS_THRESHOLD,
    DISTURBED,
    FAILED,
    IMPROVEMENT,
    INSTRUCTIONS,
    INSTRUCTIONS_FLOOR,
    MIN_UNDISTURBED,
    MISSING,
    NEW,
    NOT_RUN,
    OK,
    REGRESSION,
    SKIPPED,
    UNCHANGED,
    Band,
    Measurements,
    RoundResult,
    SideStatus,
    Verdict,
    VerdictKind,
)


def quantile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of values, linear interpolation between ranks."""
    s = sorted(values)
    if not s:
        raise ValueError("quantile of no values")
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def side_status(results: Sequence[RoundResult]) -> tuple[SideStatus, str]:
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
    """Median and range of one side's round estimates; ``None`` when none ran."""
    points = [r.point() for r in results if r.ok]
    if not points:
        return None
    return Band(quantile(points, 0.5), min(points), max(points))


def _not_comparable(
    name: str, base: Sequence[RoundResult], head: Sequence[RoundResult], unit: str
) -> Verdict | None:
    """The verdict when the sides cannot be compared (failed, missing, n/a), else None.

    A failure on either side, or n/a on head only, is ``failed``; n/a on base only is
    ``new``; n/a on both is ``not run``.
    """
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
    return None


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

    Raises:
        ValueError: ``factor`` is not above 1.
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    early = _not_comparable(name, base, head, unit)
    if early is not None:
        return early
    b_band, h_band = side_band(base), side_band(head)
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
    verdict: VerdictKind = UNCHANGED
    note = ""
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


def classify_instructions(
    name: str,
    base: Sequence[RoundResult],
    head: Sequence[RoundResult],
    *,
    threshold: float = DEFAULT_INSTRUCTIONS_THRESHOLD,
    floor: float = INSTRUCTIONS_FLOOR,
    judge: bool = True,
) -> Verdict:
    """Decide what happened to one instruction-count benchmark between base and head.

    Instruction counts are deterministic (the same code gives the same count within
    0.1%), so one measurement per side is enough and there is no noise to vote out: a
    regression when head's count is more than ``threshold`` (a fraction) and more than
    ``floor`` instructions above base's, an improvement when it is as far below;
    anything within is unchanged, identical counts without a note. The floor keeps the
    heap-layout shifts of small operations that other code moves (tens of instructions)
    from being reported as work. With several measurements per side
    (stored results of several runs) each side is its median. Failures and n/a are
    handled as by :func:`classify`; counts of zero or below have no ratio.

    Args:
        name: the benchmark's full name (with parameters).
        base: the base revision's results (usually one).
        head: the head revision's results (usually one).
        threshold: the fraction a count must change by, either way; 0 < threshold < 1.
        floor: the instructions a count must change by, either way (>= 0).
        judge: False (quick runs) never reports a regression or an improvement.

    Returns:
        The verdict; its ratio is head/base (low = center = high).

    Raises:
        ValueError: ``threshold`` is not between 0 and 1.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"instructions threshold must be a fraction in (0, 1), got {threshold}")
    early = _not_comparable(name, base, head, INSTRUCTIONS)
    if early is not None:
        return early
    b_points = [r.point() for r in base if r.ok]
    h_points = [r.point() for r in head if r.ok]
    b_count, h_count = quantile(b_points, 0.5), quantile(h_points, 0.5)
    b_band = Band(b_count, min(b_points), max(b_points))
    h_band = Band(h_count, min(h_points), max(h_points))
    measured = min(len(b_points), len(h_points))
    if b_count <= 0 or h_count <= 0:
        return Verdict(
            name, UNCHANGED, INSTRUCTIONS, b_band, h_band, None, measured, "no ratio of values <= 0"
        )
    r = h_count / b_count
    change = r - 1
    verdict: VerdictKind = UNCHANGED
    note = ""
    beyond = (
        abs(change) > threshold
        and not math.isclose(abs(change), threshold, rel_tol=1e-9)
        and abs(h_count - b_count) > floor
    )
    if beyond and not judge:
        note = "quick run: not judged"
    elif beyond:
        verdict = REGRESSION if change > 0 else IMPROVEMENT
        note = f"instruction count {change:+.1%}, beyond ±{threshold:.3g} and ±{floor:g}"
    elif h_count != b_count:
        note = (
            f"instruction count {change:+.2%} ({h_count - b_count:+g}), "
            f"within ±{threshold:.3g} or ±{floor:g}"
        )
    return Verdict(name, verdict, INSTRUCTIONS, b_band, h_band, Band(r, r, r), measured, note)


def undisturbed(
    pairs: Sequence[tuple[RoundResult, RoundResult]],
) -> Sequence[tuple[RoundResult, RoundResult]]:
    """The rounds in which neither side ran through a slow spell of the machine.

    On a shared machine a process sometimes runs entirely through a spell of
    contention (here: a busy sibling core makes everything about 1.9x slower for a
    fraction of a second to seconds). Such a round is recognised on its own side: its
    fastest sample is more than :data:`~benchtools.compare.model.DISTURBED` times the side's
    fastest round. A real change shifts all rounds of a side alike and survives this
    filter; the two sides of a round falling on different sides of a spell does not.
    With fewer than :data:`~benchtools.compare.model.MIN_UNDISTURBED` undisturbed rounds, all
    rounds count. Time benchmarks only.
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


def blocks(v: Verdict, inform_only: Sequence[str] = ()) -> bool:
    """Whether ``v`` counts in the exit code: its name matches no ``inform_only`` regex.

    The regexes are searched in ``name(params)``, as asv's ``-b`` does.
    """
    return not any(re.search(pattern, v.name) for pattern in inform_only)


def exit_code(verdicts: Iterable[Verdict], inform_only: Sequence[str] = ()) -> int:
    """2 when a benchmark failed or could not run, else 1 on a regression, else 0.

    A regression of a benchmark matching ``inform_only`` is reported but does not make
    the exit code 1 (:func:`blocks`); a failure always makes it 2.
    """
    verdicts = list(verdicts)
    if any(v.verdict == FAILED for v in verdicts):
        return 2
    if any(v.verdict == REGRESSION and blocks(v, inform_only) for v in verdicts):
        return 1
    return 0


def evidence(v: Verdict, *, paired: bool = True) -> str:
    """What the verdict rests on: a deterministic count, or paired wall-clock rounds."""
    if v.unit == INSTRUCTIONS:
        return "instruction count (deterministic)"
    if not paired:
        return "stored runs (unpaired)"
    return f"{v.rounds} paired rounds" if v.rounds else "paired rounds"


def compare_all(
    m: Measurements,
    base: str,
    head: str,
    *,
    factor: float,
    judge: bool = True,
    confirmed_after: int | None = None,
    instructions_threshold: float = DEFAULT_INSTRUCTIONS_THRESHOLD,
) -> list[Verdict]:
    """Classify every benchmark measured on either commit.

    Instruction counts (unit ``instructions``) by :func:`classify_instructions`, every
    other benchmark by :func:`classify`.

    Args:
        m: the measurements.
        base: the base commit.
        head: the head commit.
        factor: the threshold ratio.
        judge: False (quick runs) never reports a change.
        confirmed_after: the last round before the confirmation rounds. A change found
            on all rounds must then also be found on the confirmation rounds alone (an
            independent repetition), else it is reported unchanged, "not confirmed".
            Instruction counts are not repeated: they need no confirmation.
        instructions_threshold: the fraction an instruction count must change by.
    """
    out = []
    for name in m.names():
        unit = m.units.get(name, "")
        b, h = m.get(base, name), m.get(head, name)
        if unit == INSTRUCTIONS:
            out.append(
                classify_instructions(name, b, h, threshold=instructions_threshold, judge=judge)
            )
            continue
        v = classify(name, b, h, unit=unit, factor=factor, judge=judge)
        if confirmed_after is not None and v.verdict in (REGRESSION, IMPROVEMENT):
            later = [r for r in b if r.round > confirmed_after]
            again = classify(
                name, later, [r for r in h if r.round > confirmed_after], unit=unit, factor=factor
            )
            if again.verdict != v.verdict:
                seen = ratio_text(again.ratio) or "nothing"
                v = dataclasses.replace(
                    v, verdict=UNCHANGED, note=f"not confirmed: {seen} in the confirmation rounds"
                )
        out.append(v)
    return out


def ratio_text(r: Band | None) -> str:
    """``1.52x [1.41..1.60]`` (as the report shows a ratio of the paired rule)."""
    if r is None:
        return ""
    low, high = f"{r.low:.2f}", f"{r.high:.2f}"
    if low == high:
        return f"{r.center:.2f}x"
    return f"{r.center:.2f}x [{low}..{high}]"


def suspects(verdicts: Iterable[Verdict], factor: float) -> list[str]:
    """Benchmarks worth more rounds: changed, or with a median ratio beyond the factor.

    Never an instruction count: it is deterministic, another round would repeat it.
    """
    return [
        v.name
        for v in verdicts
        if v.unit != INSTRUCTIONS
        and (
            v.verdict in (REGRESSION, IMPROVEMENT)
            or (v.ratio is not None and not 1 / factor <= v.ratio.center <= factor)
        )
    ]
