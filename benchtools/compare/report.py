"""The review report: console text, Markdown for a pull request, JSON with the raw data.

Pure functions of the verdicts (:mod:`benchtools.compare.verdicts`) and how they were made
(:class:`ReportInfo`); no asv. The JSON shapes are spelled out as TypedDicts: another
tool (the history's confirmation pass) reads ``--json`` output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypedDict, cast

from benchtools.compare.calldiff import CallDiff, CallDiffJson
from benchtools.compare.calldiff import markdown_lines as evidence_markdown
from benchtools.compare.calldiff import text_lines as evidence_text
from benchtools.compare.calldiff import to_json as evidence_json
from benchtools.compare.model import (
    DEFAULT_INSTRUCTIONS_THRESHOLD,
    FAILED,
    IMPROVEMENT,
    INSTRUCTIONS,
    INSTRUCTIONS_FLOOR,
    NEW,
    NOT_RUN,
    REGRESSION,
    SECTION_TITLES,
    UNCHANGED,
    VERDICT_ORDER,
    Band,
    Measurements,
    RoundResult,
    Verdict,
    VerdictKind,
)
from benchtools.compare.verdicts import blocks, evidence, exit_code, ratio_text

_TIME_UNITS: Final = (("s", 1.0), ("ms", 1e-3), ("μs", 1e-6), ("ns", 1e-9))
_BYTE_UNITS: Final = (("G", 1e9), ("M", 1e6), ("k", 1e3))


def human(value: float, unit: str) -> str:
    """Format a value in its unit: ``1.23μs``, ``31.8M`` (bytes), ``2.5 percent``.

    Instruction counts get four significant digits (``1.235M instructions``): their
    changes that matter are a few percent.
    """
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
    if unit == INSTRUCTIONS:
        for suffix, scale in _BYTE_UNITS:
            if abs(value) >= scale:
                return f"{value / scale:.4g}{suffix} instructions"
        return f"{value:.4g} instructions"
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
    """``1.52x [1.41..1.60]``: the median ratio and its interquartile range.

    Instruction counts: ``1.024x (+2.4%)`` (one measurement per side, no spread).
    """
    if v.unit == INSTRUCTIONS and v.ratio is not None:
        return f"{v.ratio.center:.3f}x ({v.ratio.center - 1:+.1%})"
    return ratio_text(v.ratio)


def grouped(verdicts: Iterable[Verdict]) -> dict[VerdictKind, list[Verdict]]:
    """Verdicts by kind, in report order; the biggest changes first."""
    groups: dict[VerdictKind, list[Verdict]] = {k: [] for k in VERDICT_ORDER}
    for v in verdicts:
        groups[v.verdict].append(v)
    for k in (REGRESSION, IMPROVEMENT):
        groups[k].sort(key=lambda v: -abs(math.log(v.ratio.center)) if v.ratio else 0.0)
    return groups


def summary_line(verdicts: Sequence[Verdict]) -> str:
    """``1 regression(s), 0 improvement(s), ...``: the counts per verdict."""
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
    """How the report was made.

    Attributes:
        base: the base commit's hash.
        head: the head commit's hash.
        base_label: the base as the user named it (``main``).
        head_label: the head as the user named it.
        factor: the paired rule's threshold ratio.
        rounds: paired rounds over every benchmark.
        confirm_rounds: confirmation rounds run for suspects.
        seconds: how long the comparison took.
        warnings: what the reader must know (shown first).
        paired: False for stored results (one unpaired run per side).
        instructions_threshold: the instruction-count rule's threshold (a fraction).
        inform_only: regexes of benchmarks whose regressions are shown but do not make
            the exit code 1 (``--inform-only``).
    """

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
    instructions_threshold: float = DEFAULT_INSTRUCTIONS_THRESHOLD
    inform_only: tuple[str, ...] = ()


def _blocking_rule(info: ReportInfo) -> str:
    if not info.inform_only:
        return ""
    return (
        "every verdict blocks (exit 1 on a regression) except those of benchmarks "
        f"matching {', '.join(info.inform_only)}, which only inform"
    )


def _note(v: Verdict, info: ReportInfo) -> str:
    if v.verdict == REGRESSION and not blocks(v, info.inform_only):
        return "; ".join(filter(None, ["informs only, does not block", v.note]))
    return v.note


def _method(info: ReportInfo) -> str:
    if not info.paired:
        return "stored results: one unpaired run per side"
    how = f"{info.rounds} paired round(s)"
    if info.confirm_rounds:
        how += f" + {info.confirm_rounds} confirmation round(s) for suspects"
    if info.seconds:
        how += f", {info.seconds / 60:.1f} min"
    return how


def _instruction_rule(verdicts: Sequence[Verdict], info: ReportInfo) -> str:
    if not any(v.unit == INSTRUCTIONS for v in verdicts):
        return ""
    return (
        f"instruction counts: a change beyond ±{info.instructions_threshold:.3g} "
        f"(a fraction of base's count) and ±{INSTRUCTIONS_FLOOR} instructions, "
        "one measurement per side"
    )


def render_text(
    verdicts: Sequence[Verdict], info: ReportInfo, calls: Mapping[str, CallDiff] | None = None
) -> str:
    """The console report: regressions, improvements, failures, new, unchanged, and the
    call-count evidence of the changes (``calls``, by benchmark)."""
    lines = [
        f"asv compare: base {info.base[:8]} ({info.base_label}) -> "
        f"head {info.head[:8]} ({info.head_label}); {_method(info)}",
        f"a change: median ratio head/base beyond {info.factor:g}x and its spread "
        "[q1..q3] over the rounds entirely on one side of 1",
    ]
    rule = _instruction_rule(verdicts, info)
    if rule:
        lines.append(rule)
    if info.inform_only:
        lines.append(_blocking_rule(info))
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
            note = _note(v, info)
            lines.append((line + (f"  {note}" if note else "")).rstrip())
    lines += evidence_text(calls or {})
    code = exit_code(verdicts, info.inform_only)
    lines += ["", f"summary: {summary_line(verdicts)}; exit {code}"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(
    verdicts: Sequence[Verdict], info: ReportInfo, calls: Mapping[str, CallDiff] | None = None
) -> str:
    """The report as Markdown, ready to paste into a pull request (``calls``: as in
    :func:`render_text`)."""
    code = exit_code(verdicts, info.inform_only)
    title = {0: "no regression", 1: "regression", 2: "benchmark failure"}[code]
    rule = _instruction_rule(verdicts, info)
    out = [
        f"### Benchmarks: {title}",
        "",
        f"`{info.base[:8]}` ({_md(info.base_label)}) → `{info.head[:8]}` "
        f"({_md(info.head_label)}): {summary_line(verdicts)}.",
        "",
        f"A change: the median ratio head/base is beyond {info.factor:g}x and its spread "
        f"[q1..q3] over the rounds lies entirely on one side of 1; {_method(info)}"
        + (", base and head back to back in every round" if info.paired else "")
        + ". Sides: median [min..max] over the rounds."
        + (f" For {rule}." if rule else "")
        + " Evidence: an instruction count is deterministic (the same code gives the same "
        "count on any machine); paired rounds are wall-clock times measured base and head "
        "back to back." + (f" Here {_blocking_rule(info)}." if info.inform_only else ""),
    ]
    if info.warnings:
        out += ["", *[f"> **Warning:** {_md(w)}" for w in info.warnings]]
    groups = grouped(verdicts)
    for key in VERDICT_ORDER:
        group = groups[key]
        if not group:
            continue
        table = [
            "| Benchmark | Base | Head | Ratio | Evidence | Note |",
            "|---|--:|--:|--:|---|---|",
            *(
                f"| `{_md(v.name)}` | {_md(format_band(v.base, v.unit))} | "
                f"{_md(format_band(v.head, v.unit))} | {_md(format_ratio(v))} | "
                f"{evidence(v, paired=info.paired)} | {_md(_note(v, info))} |"
                for v in group
            ),
        ]
        heading = f"{SECTION_TITLES[key]} ({len(group)})"
        if key in (UNCHANGED, NOT_RUN):
            out += ["", "<details>", f"<summary>{heading}</summary>", "", *table, "", "</details>"]
        else:
            out += ["", f"#### {heading}", "", *table]
    out += evidence_markdown(calls or {})
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- JSON


class BandJson(TypedDict):
    """A :class:`~benchtools.compare.model.Band` in JSON."""

    center: float
    low: float
    high: float


class VerdictJson(TypedDict):
    """A :class:`~benchtools.compare.model.Verdict` in JSON."""

    name: str
    verdict: VerdictKind
    unit: str
    base: BandJson | None
    head: BandJson | None
    ratio: BandJson | None
    rounds: int
    note: str


class RoundResultJson(TypedDict):
    """A :class:`~benchtools.compare.model.RoundResult` in JSON (value: null failed, NaN n/a)."""

    round: int
    value: float | None
    samples: list[float]
    error: str


class MeasurementsJson(TypedDict):
    """:class:`~benchtools.compare.model.Measurements` in JSON."""

    kinds: dict[str, str]
    units: dict[str, str]
    results: dict[str, dict[str, list[RoundResultJson]]]


class ReportInfoJson(TypedDict):
    """:class:`ReportInfo` in JSON."""

    base: str
    head: str
    base_label: str
    head_label: str
    factor: float
    rounds: int
    confirm_rounds: int
    seconds: float
    warnings: list[str]
    paired: bool
    instructions_threshold: float
    inform_only: list[str]


class ReportJson(TypedDict):
    """What ``--json`` writes: how, the exit code, the verdicts, every round's results."""

    info: ReportInfoJson
    exit_code: int
    summary: str
    verdicts: list[VerdictJson]
    calls: dict[str, CallDiffJson]
    measurements: MeasurementsJson


def _band_json(b: Band | None) -> BandJson | None:
    return None if b is None else {"center": b.center, "low": b.low, "high": b.high}


def verdict_to_json(v: Verdict) -> VerdictJson:
    """One verdict as JSON (the keys of its dataclass fields)."""
    return {
        "name": v.name,
        "verdict": v.verdict,
        "unit": v.unit,
        "base": _band_json(v.base),
        "head": _band_json(v.head),
        "ratio": _band_json(v.ratio),
        "rounds": v.rounds,
        "note": v.note,
    }


def _band_from_json(data: object) -> Band | None:
    if data is None:
        return None
    band = cast(BandJson, data)
    return Band(float(band["center"]), float(band["low"]), float(band["high"]))


def verdict_from_json(data: Mapping[str, object]) -> Verdict:
    """The verdict :func:`verdict_to_json` wrote (after a JSON round trip).

    Raises:
        ValueError: ``data`` does not have the shape of :class:`VerdictJson`.
    """
    try:
        typed = cast(VerdictJson, data)
        kind = typed["verdict"]
        if kind not in VERDICT_ORDER:
            raise ValueError(f"unknown verdict {kind!r}")
        return Verdict(
            name=str(typed["name"]),
            verdict=kind,
            unit=str(typed["unit"]),
            base=_band_from_json(typed["base"]),
            head=_band_from_json(typed["head"]),
            ratio=_band_from_json(typed["ratio"]),
            rounds=int(typed["rounds"]),
            note=str(typed["note"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a verdict: {exc!r}") from None


def info_to_json(info: ReportInfo) -> ReportInfoJson:
    """How the report was made, as JSON."""
    return {
        "base": info.base,
        "head": info.head,
        "base_label": info.base_label,
        "head_label": info.head_label,
        "factor": info.factor,
        "rounds": info.rounds,
        "confirm_rounds": info.confirm_rounds,
        "seconds": info.seconds,
        "warnings": list(info.warnings),
        "paired": info.paired,
        "instructions_threshold": info.instructions_threshold,
        "inform_only": list(info.inform_only),
    }


def report_json(
    verdicts: Sequence[Verdict],
    info: ReportInfo,
    m: Measurements,
    calls: Mapping[str, CallDiff] | None = None,
) -> ReportJson:
    """Everything: how, the verdicts, the call-count evidence, every round's raw results."""
    return {
        "info": info_to_json(info),
        "exit_code": exit_code(verdicts, info.inform_only),
        "summary": summary_line(verdicts),
        "verdicts": [verdict_to_json(v) for v in verdicts],
        "calls": evidence_json(calls or {}),
        "measurements": measurements_to_json(m),
    }


def _round_json(r: RoundResult) -> RoundResultJson:
    return {"round": r.round, "value": r.value, "samples": list(r.samples), "error": r.error}


def measurements_to_json(m: Measurements) -> MeasurementsJson:
    """Every round's results as JSON (read back by :func:`measurements_from_json`)."""
    return {
        "kinds": dict(m.kinds),
        "units": dict(m.units),
        "results": {
            commit: {name: [_round_json(r) for r in rs] for name, rs in per.items()}
            for commit, per in m.results.items()
        },
    }


def measurements_from_json(data: Mapping[str, object]) -> Measurements:
    """The measurements :func:`measurements_to_json` wrote (after a JSON round trip).

    Raises:
        ValueError: ``data`` does not have the shape of :class:`MeasurementsJson`.
    """
    try:
        typed = cast(MeasurementsJson, data)
        m = Measurements(kinds=dict(typed["kinds"]), units=dict(typed["units"]))
        for commit, per in typed["results"].items():
            for name, rs in per.items():
                for r in rs:
                    value = r["value"]
                    m.add(
                        commit,
                        name,
                        RoundResult(
                            int(r["round"]),
                            None if value is None else float(value),
                            tuple(float(x) for x in r["samples"]),
                            str(r["error"]),
                        ),
                    )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not measurements as asv_compare writes them: {exc!r}") from None
    return m
