"""The evidence pages of the published history: why each step was published.

``make bench``'s confirmation pass (:mod:`benchtools.confirm`) decides every step asv
lists and writes why to ``html/regressions-confirmation.json``. This turns the kept steps
into static pages of the site (``html/evidence/*.html``, offline like the rest), one per
step:

* why it was published: the paired re-measurement (ratio, its spread, the rounds, both
  sides) or the deterministic count (its ratio, the instructions added, the threshold);
* where: the commit the step is on, its parent, and the commit(s) asv had named when
  the bisection moved it;
* what ran more: the call-count diff of the commit against its parent
  (:mod:`benchtools.compare.calldiff`), changed code first.

``html/evidence/steps.json`` lists them for the Regressions page, where
``site_assets/pga-step-evidence.js`` adds each row's one-line reason and a link to its
page. Plain HTML written with :mod:`html` escaping: no template engine for five tables.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from benchtools.compare.calldiff import CallDiffJson, CostJson

#: What the confirmation pass writes, and where the pages go (both inside ``html/``).
REPORT_NAME = "regressions-confirmation.json"
PAGES_DIR = "evidence"
STEPS_NAME = "steps.json"
#: Rows of a call diff shown on a page (the report has them all).
SHOWN = 25

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class EvidenceError(Exception):
    """The confirmation report could not be read as one."""


@dataclass(frozen=True, slots=True)
class StepPage:
    """One kept step and its page."""

    name: str
    commit: str
    page: str  # relative to html/
    reason: str


def page_name(name: str, commit: str) -> str:
    """The page's file name: the commit, then the benchmark, made safe for any file system."""
    return f"{commit[:12]}-{_UNSAFE.sub('_', name)[:150]}.html"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(x: float) -> str:
    return f"{x:g}" if x == int(x) else f"{x:.4g}"


def _commit(commit: str | None, commit_url: str) -> str:
    if not commit:
        return "unknown"
    short = _e(commit[:8])
    if commit_url:
        return f'<a href="{_e(commit_url + commit)}"><code>{short}</code></a>'
    return f"<code>{short}</code>"


def _band(band: object) -> str:
    if not isinstance(band, dict):
        return "none"
    return f"{band['center']:.3g} [{band['low']:.3g}..{band['high']:.3g}]"


def measurement_rows(step: Mapping[str, object]) -> list[tuple[str, str]]:
    """The table of how the step was measured: (what, value) pairs, escaped HTML."""
    rows = [("asv's step", f"{float(cast(float, step['asv_ratio'])):.3f}x")]
    remeasured = step.get("remeasured")
    if step.get("unit") == "instructions":
        rows.append(("evidence", "instruction count: deterministic, counted once per commit"))
        rows.append(("threshold", f"{float(cast(float, step['threshold'])):g} (a fraction)"))
    elif isinstance(remeasured, dict):
        ratio = remeasured.get("ratio")
        rows.append(("evidence", f"paired wall-clock rounds: {_e(remeasured.get('rounds'))}"))
        rows.append(("ratio after/before [q1..q3]", _e(_band(ratio))))
        rows.append(("before (median [min..max])", _e(_band(remeasured.get("base")))))
        rows.append(("after (median [min..max])", _e(_band(remeasured.get("head")))))
        rows.append(("threshold", f"{1 + float(cast(float, step['threshold'])):g}x"))
    return rows


def calls_table(calls: CallDiffJson | None) -> str:
    """The call-count diff as HTML (or why there is none)."""
    if calls is None:
        return (
            "<p>No call profile: no operation of <code>benchmarks/instructions_operations"
            ".py</code> runs this benchmark's code.</p>"
        )
    if calls["error"]:
        return f"<p>No call profile: {_e(calls['error'])}</p>"
    changes = calls["changes"]
    intro = (
        f"<p>Operation <code>{_e(calls['operation'])}</code>, per call, the commit against "
        "its parent. Calls and bytecodes are exact; the functions whose own code ran "
        "differently come first.</p>"
    )
    if not changes:
        return intro + (
            "<p>Call counts identical: the change is in C code that calls no Python "
            "function, or in allocation or cache effects (docs/reviewing.md).</p>"
        )

    def calls_of(c: CostJson | None) -> float:
        return float(c["calls"]) if c is not None else 0.0

    def bytecodes_of(c: CostJson | None) -> float:
        return float(c["bytecodes"]) if c is not None else 0.0

    rows = "".join(
        "<tr>"
        f"<td><code>{_e(c['function'])}</code></td>"
        f"<td>{_num(calls_of(c['before']))} → {_num(calls_of(c['after']))}</td>"
        f"<td>{_num(bytecodes_of(c['before']))} → {_num(bytecodes_of(c['after']))}</td>"
        f"<td>{'' if c['kind'] == 'changed' else _e(c['kind'])}</td>"
        "</tr>"
        for c in changes[:SHOWN]
    )
    more = (
        f"<p>… and {len(changes) - SHOWN} more (<code>{REPORT_NAME}</code>).</p>"
        if len(changes) > SHOWN
        else ""
    )
    return (
        intro + '<table class="table table-condensed"><thead><tr><th>Function</th>'
        "<th>Calls</th><th>Bytecodes</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{more}"
    )


def render_page(step: Mapping[str, object], commit_url: str) -> str:
    """One step's page."""
    name, after = str(step["name"]), str(step["after"])
    parent = step.get("parent")
    named = [str(c) for c in cast(Sequence[str], step.get("asv_named") or [])]
    moved = [c for c in named if c != after]
    where = [
        ("the step is at", _commit(after, commit_url)),
        ("its parent", _commit(str(parent) if parent else None, commit_url)),
    ]
    if moved:
        where.append(
            (
                "asv had named",
                ", ".join(_commit(c, commit_url) for c in moved)
                + " (moved here by bisection in paired rounds)",
            )
        )
    table = "".join(
        f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in [*where, *measurement_rows(step)]
    )
    graph = f"../index.html#{_e(name.split('(', 1)[0])}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Why {_e(name)} stepped at {_e(after[:8])}</title>
<link rel="stylesheet" href="../vendor/bootstrap/css/bootstrap.min.css">
</head>
<body>
<div class="container">
<p><a href="../index.html#regressions">Regressions</a> · <a href="{graph}">graph</a></p>
<h1 id="benchmark">{_e(name)}</h1>
<h2>Why it was published</h2>
<p id="reason">{_e(step["reason"])}</p>
<table class="table table-condensed" id="measurement">{table}</table>
<h2>What ran more</h2>
<div id="calls">{calls_table(cast(CallDiffJson | None, step.get("calls")))}</div>
</div>
</body>
</html>
"""


def read_report(html_dir: Path) -> list[dict[str, object]] | None:
    """The confirmation report's steps; None when there is no report.

    Raises:
        EvidenceError: the report is not JSON with a list of steps.
    """
    path = html_dir / REPORT_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        steps = data["steps"]
        if not isinstance(steps, list):
            raise TypeError("steps is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(f"{path} is not a confirmation report: {exc}") from None
    return [s for s in steps if isinstance(s, dict)]


def write_pages(html_dir: Path, commit_url: str = "") -> list[StepPage]:
    """A page for every kept step of the confirmation report, and ``steps.json``.

    Earlier pages are removed first (a step dropped since has no page). Without a report
    (a site published without confirmation) the listing is empty.
    """
    steps = read_report(html_dir) or []
    out_dir = html_dir / PAGES_DIR
    if out_dir.is_dir():
        for old in out_dir.iterdir():
            if old.is_file():
                old.unlink()
    out_dir.mkdir(exist_ok=True)
    pages = []
    for step in steps:
        if not step.get("kept"):
            continue
        name, after = str(step["name"]), str(step["after"])
        filename = page_name(name, after)
        (out_dir / filename).write_text(render_page(step, commit_url))
        pages.append(StepPage(name, after, f"{PAGES_DIR}/{filename}", str(step["reason"])))
    listing = {
        "steps": [
            {"name": p.name, "commit": p.commit, "page": p.page, "reason": p.reason} for p in pages
        ]
    }
    (out_dir / STEPS_NAME).write_text(json.dumps(listing, indent=1) + "\n")
    return pages
