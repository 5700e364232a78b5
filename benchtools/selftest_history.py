"""Prove the published Regressions list on this machine: real steps only, and all of them.

Usage::

    python -m benchtools selftest history                  # the whole suite (~25 min)
    python -m benchtools selftest history -b 'BreakerOps\\.time_(reset|state)$' \\
        -b 'EdgeCases\\.time_many_resets' -b 'Floor\\.time_empty_call' --json out.json

In a temporary clone of the repository (its HEAD; its working tree with ``--worktree``)
the self-test grows a history on ``main`` and runs the main job on it twice, as ``make
bench`` does when commits land (``benchtools/history.py``: ``asv run`` of the commits
not measured yet, ``asv publish``, then ``benchtools/confirm.py``):

(b) ``--docs-commits`` (3) commits that touch only ``docs/``, on top of HEAD (P). The
    main job measures P and them: the published Regressions list must be empty.
(a) Then S: ``CircuitBreaker.reset()`` does its work twice (its body, docstring aside,
    repeated: :func:`plant`), and one more docs-only commit after it. The main job
    measures the two new commits: the Regressions list must name S, and nothing but S,
    for the benchmarks that time or count ``reset()`` (``--must``:
    ``BreakerOps.time_reset``, ``EdgeCases.time_many_resets``, and, with valgrind,
    ``Instructions.track_breaker_reset``), and list nothing else. Benchmarks that call
    ``reset()`` now and then (``--may``: ``GuardedCall.time_call_failure`` and the count
    ``Instructions.track_breaker_call_failure_window``, one reset per window of failed
    calls) may be listed at S or not.

Before confirmation, what asv itself listed is recorded too (the "before" numbers of
docs/reviewing.md). The main job's output is shown on stderr.

Exit codes: 0 both lists right; 1 a step listed that the code did not cause, or a planted
step missing; 2 the self-test could not run.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchtools import confirm as cr
from benchtools import evidence
from benchtools.compare.cli import add_bench_option
from benchtools.plant import SelftestError
from benchtools.plant import plant_reset as plant
from benchtools.selftest_compare import add_clone_options, git, scratch_clone

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MUST = (r"BreakerOps\.time_reset$", r"EdgeCases\.time_many_resets$")
#: Must be listed too where instructions are counted (the whole suite, valgrind installed).
DEFAULT_MUST_COUNTED = (r"Instructions\.track_breaker_reset$",)
DEFAULT_MAY = (
    r"GuardedCall\.time_call_failure",
    r"Instructions\.track_breaker_call_failure_window$",
)


def log(msg: str) -> None:
    print(f"history-selftest: {msg}", file=sys.stderr, flush=True)


def docs_commit(repo: Path, i: int) -> str:
    """A commit that touches only docs/."""
    path = repo / "docs" / "reviewing.md"
    with path.open("a") as fh:
        fh.write(f"\n<!-- history selftest: docs-only change {i} -->\n")
    git(repo, "commit", "--quiet", "--message", f"docs: selftest change {i}", "--", "docs")
    return git(repo, "rev-parse", "HEAD")


def main_job(repo: Path, commits: int, regexes: Sequence[str], confirm_args: str) -> None:
    """``make bench`` on the clone: its ``python -m benchtools bench`` (output to stderr)."""
    cmd = [sys.executable, "-m", "benchtools", "bench", "--commits", str(commits)]
    cmd += ["--asv-args", " ".join(f"-b {r}" for r in regexes)]
    if confirm_args:
        cmd += ["--confirm-args", confirm_args]
    log("main job: " + " ".join(cmd[2:]))
    proc = subprocess.run(cmd, cwd=repo, stdout=sys.stderr, stderr=sys.stderr)
    if proc.returncode not in (0, 1):
        raise SelftestError(f"the main job failed (exit {proc.returncode})")
    if not (repo / "html" / cr.REPORT_NAME).exists():
        raise SelftestError("the main job published no confirmation report")


@dataclass(frozen=True, slots=True)
class Listed:
    """A step on the Regressions page: benchmark, the commit after it, asv's ratio."""

    name: str
    after: str
    ratio: float


def published(repo: Path) -> tuple[list[Listed], list[Listed]]:
    """(steps asv itself listed, steps published after the confirmation).

    Raises:
        SelftestError: the Atom feed does not hold one entry per published step.
    """
    html = repo / "html"
    report = json.loads((html / cr.REPORT_NAME).read_text())
    before = [
        Listed(s["name"], s["after"], s["asv_ratio"])
        for s in report["steps"]
        if s.get("origin", "asv") == "asv"
    ]
    index = json.loads((html / "index.json").read_text())
    regressions = json.loads((html / "regressions.json").read_text())
    steps = cr.read_steps(regressions, index, {}, lambda c: git(repo, "rev-parse", f"{c}^"))
    after = [Listed(s.name, s.after, round(s.ratio, 4)) for s in steps]
    feed = ElementTree.parse(html / "regressions.xml").getroot()
    entries = feed.findall("{http://www.w3.org/2005/Atom}entry")
    titles = sorted(e.findtext("{http://www.w3.org/2005/Atom}title") or "" for e in entries)
    if len(titles) != len(after) or any(
        not any(t.endswith(" " + s.name) for t in titles) for s in after
    ):
        raise SelftestError(
            f"regressions.xml ({len(titles)} entries) disagrees with regressions.json "
            f"({len(after)} steps): {titles}"
        )
    return before, after


def _any(patterns: Sequence[str], name: str) -> bool:
    return any(re.search(p, name) for p in patterns)


def judge(
    after: Sequence[Listed],
    plant_commit: str | None,
    measured: Sequence[str],
    must: Sequence[str],
    may: Sequence[str],
) -> dict[str, Any]:
    """What the published list got right and wrong.

    Args:
        after: the published steps.
        plant_commit: S, or None for the docs-only history.
        measured: every benchmark the main job measured (names with parameters).
        must: regexes of the benchmarks S must be listed for.
        may: regexes of benchmarks S may or may not be listed for.
    """
    false = [
        f"{s.name} at {s.after[:8]} ({s.ratio:.2f}x)"
        for s in after
        if s.after != plant_commit or not _any([*must, *may], s.name)
    ]
    expected = sorted(n for n in measured if plant_commit and _any(must, n))
    found = {s.name for s in after if s.after == plant_commit}
    return {
        "false_steps": false,
        "must_detect": expected,
        "detected": [n for n in expected if n in found],
        "missed": [n for n in expected if n not in found],
        "either_way": sorted(n for n in found if _any(may, n) and not _any(must, n)),
    }


#: Where the plant is, as the call-count evidence names functions.
PLANTED_FUNCTION = "pganalytics_core/breaker.py:CircuitBreaker.reset"


def judge_evidence(repo: Path, plant_commit: str, must: Sequence[str]) -> dict[str, Any]:
    """Whether the published steps of the ``must`` benchmarks at S explain themselves.

    Each must have an evidence page listed for the Regressions page, and those with a
    call-count diff (an operation behind them) must name :data:`PLANTED_FUNCTION` first.
    """
    html = repo / "html"
    report = json.loads((html / cr.REPORT_NAME).read_text())
    listing = json.loads((html / evidence.PAGES_DIR / evidence.STEPS_NAME).read_text())
    pages = {(p["name"], p["commit"]): p["page"] for p in listing["steps"]}
    explained: list[str] = []
    wrong: list[str] = []
    for step in report["steps"]:
        if not step["kept"] or step["after"] != plant_commit or not _any(must, step["name"]):
            continue
        page = pages.get((step["name"], step["after"]))
        if page is None or not (html / page).is_file():
            wrong.append(f"{step['name']}: no evidence page")
            continue
        calls = step.get("calls")
        if calls is None:
            continue
        top = calls["changes"][0]["function"] if calls["changes"] else calls["error"] or "none"
        line = f"{step['name']}: {top} first ({page})"
        (explained if top == PLANTED_FUNCTION else wrong).append(line)
    return {"explained": explained, "misexplained": wrong}


def measured_names(repo: Path) -> list[str]:
    """Every benchmark (with parameters) in the clone's published index."""
    index = json.loads((repo / "html" / "index.json").read_text())
    names = []
    for name, b in index["benchmarks"].items():
        params = b.get("params") or []
        if not params:
            names.append(name)
            continue
        combos: list[list[str]] = [[]]
        for values in params:
            combos = [[*c, v] for c in combos for v in values]
        names += [f"{name}({', '.join(c)})" for c in combos]
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchtools selftest history",
        description="Prove that the published Regressions list holds the steps the code "
        "caused and nothing else.",
    )
    add_bench_option(p, "only benchmarks matching REGEX (asv run -b; repeatable; no spaces)")
    p.add_argument("--docs-commits", type=int, default=3, help="docs-only commits before S")
    p.add_argument(
        "--must",
        action="append",
        metavar="REGEX",
        help=f"benchmarks S must be listed for (default {' '.join(DEFAULT_MUST)})",
    )
    p.add_argument(
        "--may",
        action="append",
        metavar="REGEX",
        help=f"benchmarks S may be listed for (default {' '.join(DEFAULT_MAY)})",
    )
    p.add_argument("--confirm-args", default="", help="extra arguments for confirm")
    add_clone_options(p)
    p.add_argument("--json", type=Path, metavar="FILE", help="write the outcome as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if any(" " in r for r in args.bench):
        print("history-selftest: error: -b REGEX must not contain spaces", file=sys.stderr)
        return 2
    try:
        return run(args)
    except SelftestError as exc:
        print(f"history-selftest: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with scratch_clone(args, "history-selftest-", log) as (repo, label):
        return _selftest(args, repo, label, started)


def _selftest(args: argparse.Namespace, repo: Path, label: str, started: float) -> int:
    # The counts run only in a whole-suite run (no -b) and with valgrind (else n/a).
    counted = DEFAULT_MUST_COUNTED if shutil.which("valgrind") and not args.bench else ()
    must = args.must or [*DEFAULT_MUST, *counted]
    may = args.may or list(DEFAULT_MAY)
    k = args.docs_commits
    for i in range(1, k + 1):
        docs_commit(repo, i)
    log(f"(b) {k} docs-only commit(s) on top of HEAD")
    t0 = time.monotonic()
    main_job(repo, k + 1, args.bench, args.confirm_args)
    b_before, b_after = published(repo)
    b_minutes = (time.monotonic() - t0) / 60
    b = judge(b_after, None, [], must, may)

    target = repo / "pganalytics_core" / "breaker.py"
    target.write_text(plant(target.read_text()))
    git(
        repo,
        "commit",
        "--quiet",
        "--message",
        "selftest: reset() does its work twice",
        "--",
        "pganalytics_core/breaker.py",
    )
    slowed = git(repo, "rev-parse", "HEAD")
    docs_commit(repo, k + 1)
    log(f"(a) S = {slowed[:8]}: reset() does its work twice; one docs-only commit after it")
    t0 = time.monotonic()
    main_job(repo, k + 3, args.bench, args.confirm_args)
    a_before, a_after = published(repo)
    a_minutes = (time.monotonic() - t0) / 60
    a = judge(a_after, slowed, measured_names(repo), must, may)
    a.update(judge_evidence(repo, slowed, must))

    passed = not b["false_steps"] and not a["false_steps"] and not a["missed"]
    passed = passed and bool(a["must_detect"])
    passed = passed and bool(a["explained"]) and not a["misexplained"]
    outcome = {
        "source": label,
        "passed": passed,
        "plant": slowed,
        "docs_only": {
            "listed_by_asv": [asdict(s) for s in b_before],
            "published": [asdict(s) for s in b_after],
            "minutes": round(b_minutes, 2),
            **b,
        },
        "planted": {
            "listed_by_asv": [asdict(s) for s in a_before],
            "published": [asdict(s) for s in a_after],
            "minutes": round(a_minutes, 2),
            **a,
        },
        "minutes": round((time.monotonic() - started) / 60, 2),
    }
    sys.stdout.write(render(outcome))
    if args.json:
        args.json.write_text(json.dumps(outcome, indent=1) + "\n")
    if not a["must_detect"]:
        raise SelftestError("no selected benchmark times reset(); select one with -b")
    return 0 if passed else 1


def render(o: dict[str, Any]) -> str:
    b, a = o["docs_only"], o["planted"]

    def steps(items: Sequence[dict[str, Any]]) -> list[str]:
        return [f"      {s['name']} at {s['after'][:8]} ({s['ratio']:.2f}x)" for s in items]

    lines = [
        f"history selftest: {o['source']}; {o['minutes']:.1f} min",
        f"(b) docs-only history: asv listed {len(b['listed_by_asv'])} step(s), "
        f"{len(b['published'])} published ({b['minutes']:.1f} min)",
        *steps(b["published"]),
        f"(a) S {o['plant'][:8]} (reset() twice) + 1 docs-only commit: asv listed "
        f"{len(a['listed_by_asv'])} step(s), {len(a['published'])} published "
        f"({a['minutes']:.1f} min); detected {len(a['detected'])}/{len(a['must_detect'])}",
        *steps(a["published"]),
        *[f"    MISSED {n}" for n in a["missed"]],
        *[f"    FALSE STEP {x}" for x in [*b["false_steps"], *a["false_steps"]]],
        f"(c) evidence: {len(a['explained'])} published step(s) name the plant first",
        *[f"      {x}" for x in a["explained"]],
        *[f"    MISEXPLAINED {x}" for x in a["misexplained"]],
        "PASS" if o["passed"] else "FAIL",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
