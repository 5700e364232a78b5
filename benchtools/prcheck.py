"""The pull-request check: benchmark the merge base against the PR's head, report, judge.

What the ``pull_request`` workflow runs (and what any other CI runs the same way)::

    .venv/bin/python -m benchtools pr-check --out bench-report          # in GitHub Actions
    .venv/bin/python -m benchtools pr-check --base origin/main --head HEAD --out bench-report

1. The revisions: in Actions, the event payload's ``pull_request.base.sha`` and
   ``pull_request.head.sha`` (never the branch name or title); elsewhere ``--base`` and
   ``--head``. The base benchmarked is the **merge base** of the two, so commits that
   landed on main after the branch was cut are not counted against the PR.
2. A PR that changes only documentation (:data:`DOC_PATTERNS`) is not benchmarked: the
   report says so and the check passes.
3. Otherwise ``tools/asv_compare.py`` (paired rounds; docs/reviewing.md) with the
   Markdown, JSON and text reports written into ``--out``, extra options from
   ``$COMPARE_ARGS`` (e.g. ``-b GuardedCall --rounds 8``), and the benchmarks of
   :data:`INFORM_ONLY` passed as ``--inform-only``: their verdicts are reported but do not
   fail the check (see the module constant for why).
4. ``--out`` also gets ``pr.json`` (:class:`CheckResult`: the PR's number and head, for
   the comment workflow, which checks both against GitHub before it trusts them); the
   Markdown report goes to the job summary, the verdict to step outputs (``verdict``,
   ``exit-code``).
5. The exit code is the comparison's: 0 no regression, 1 a regression, 2 a benchmark
   failed or could not run; the last line printed says which.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchtools import actions
from benchtools import git as gp

ROOT = Path(__file__).resolve().parent.parent
COMPARE = ROOT / "tools" / "asv_compare.py"

#: Paths whose change cannot change a benchmark: a PR touching nothing else is not run.
DOC_PATTERNS = ("*.md", "docs/*", "LICENSE*", "CHANGELOG*")

#: Benchmarks whose verdicts inform but never fail the check. Each measures the machine
#: as much as the code: real sockets, threads and sleeps on loopback, whose wall-clock
#: time on a shared runner moves with the scheduler (the async loopback pair runs in two
#: regimes, 60 ms or 250-400 ms a round, on the same code: docs/performance.md). Their
#: instruction-count twins and every CPU-bound benchmark still block.
INFORM_ONLY = (
    r"bench_client\.Loopback",
    r"bench_fake_service\.",
    r"bench_load\.(ShortLoadRun|OpenModelTiming)\.",
)

#: The exit codes and what the last line calls them.
VERDICTS = {0: "no regression", 1: "regression", 2: "benchmark failed"}

SCHEMA = 1

#: What ``--out`` receives (``report.json`` and ``report.txt`` only when benchmarked).
REPORT_FILES = ("report.md", "report.json", "report.txt", "pr.json")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """What ``pr.json`` holds: the PR, what was compared, the verdict."""

    schema: int
    pr_number: int | None
    head_sha: str
    merge_base: str
    exit_code: int
    verdict: str
    docs_only: bool


class CheckError(Exception):
    """The check could not be made (an unknown revision, a bad payload)."""


def git(*args: str) -> str:
    """``git ARGS`` in the repository; its output, stripped; :class:`CheckError` on failure."""
    try:
        return gp.git(ROOT, *args).decode().strip()
    except gp.GitError as exc:
        raise CheckError(str(exc)) from None


def commit(rev: str) -> str:
    """The commit hash ``rev`` names; :class:`CheckError` when it names none."""
    found = gp.resolve(ROOT, rev)
    if found is None:
        raise CheckError(f"unknown revision {rev!r}")
    return found


def is_docs_only(paths: Sequence[str]) -> bool:
    """True when every path matches :data:`DOC_PATTERNS` (and there is at least one)."""
    return bool(paths) and all(
        any(fnmatch.fnmatch(p, pattern) for pattern in DOC_PATTERNS) for p in paths
    )


def compare_command(base: str, head: str, out: Path, extra: Sequence[str]) -> list[str]:
    """The comparison's command line (reports into ``out``)."""
    cmd = [sys.executable, str(COMPARE), "--repo", str(ROOT), "--base", base, "--head", head]
    cmd += ["--markdown", str(out / "report.md"), "--json", str(out / "report.json")]
    for regex in INFORM_ONLY:
        cmd += ["--inform-only", regex]
    return [*cmd, *extra]


def run_compare(cmd: Sequence[str], out: Path) -> int:
    """Run the comparison, its output shown live and kept in ``out/report.txt``."""
    with open(out / "report.txt", "w", encoding="utf-8") as text:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            text.write(line)
        sys.stdout.flush()
        return proc.wait()


def last_line(result: CheckResult) -> str:
    """The verdict, as the check's last line."""
    if result.docs_only:
        return "benchmarks: no regression: only documentation changed, nothing to benchmark"
    what = {
        0: "no regression",
        1: "REGRESSION: a benchmark that blocks is slower beyond the threshold (exit 1)",
        2: "BENCHMARK FAILED: a benchmark failed or could not run (exit 2)",
    }.get(result.exit_code, f"the comparison failed (exit {result.exit_code})")
    return f"benchmarks: {what}; report in the job summary"


def check(base: str, head: str, pr_number: int | None, out: Path, extra: Sequence[str]) -> int:
    """The whole check (steps 1-5 of the module docstring); its exit code."""
    out.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:  # a report of an earlier run must not pass for this one's
        (out / name).unlink(missing_ok=True)
    head_sha, base_sha = commit(head), commit(base)
    merge_base = git("merge-base", base_sha, head_sha)
    changed = git("diff", "--name-only", merge_base, head_sha).splitlines()
    print(f"pr-check: merge base {merge_base[:8]}, head {head_sha[:8]}, {len(changed)} file(s)")
    docs_only = is_docs_only(changed)
    if docs_only:
        code = 0
        (out / "report.md").write_text(
            "### Benchmarks: no regression\n\n"
            f"`{merge_base[:8]}` → `{head_sha[:8]}` changes only documentation "
            f"({len(changed)} file(s)): nothing to benchmark.\n",
            encoding="utf-8",
        )
    else:
        code = run_compare(compare_command(merge_base, head_sha, out, extra), out)
    result = CheckResult(
        schema=SCHEMA,
        pr_number=pr_number,
        head_sha=head_sha,
        merge_base=merge_base,
        exit_code=code,
        verdict=VERDICTS.get(code, "benchmark failed"),
        docs_only=docs_only,
    )
    (out / "pr.json").write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")
    report = out / "report.md"
    summary = report.read_text(encoding="utf-8") if report.exists() else ""
    actions.append_summary(summary + "\n" + last_line(result) + "\n")
    actions.set_outputs({"verdict": result.verdict, "exit-code": str(code)})
    print(last_line(result), flush=True)
    return code


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchtools pr-check",
        description="Benchmark a pull request against its merge base; 0/1/2 as asv_compare.py.",
        epilog="Without --base/--head the revisions come from $GITHUB_EVENT_PATH "
        "(a pull_request event). Extra compare options: $COMPARE_ARGS.",
    )
    p.add_argument("--base", help="the branch the PR goes into (default: from the event)")
    p.add_argument("--head", help="the PR's head (default: from the event)")
    p.add_argument("--out", type=Path, default=Path("bench-report"), help="the report folder")
    return p


def main(argv: Sequence[str]) -> int:
    """``pr-check``: the exit code of the check (2 when it could not be made)."""
    args = build_parser().parse_args(argv)
    extra = shlex.split(os.environ.get("COMPARE_ARGS", ""))
    try:
        if args.base and args.head:
            base, head, number = args.base, args.head, None
        elif args.base or args.head:
            raise CheckError("give both --base and --head, or neither (from the event)")
        else:
            pr = actions.pull_request(actions.load_event())
            base, head, number = pr.base_sha, pr.head_sha, pr.number
        return check(base, head, number, args.out.resolve(), extra)
    except (CheckError, actions.ActionsError) as exc:
        print(f"pr-check: error: {exc}", file=sys.stderr)
        print("benchmarks: BENCHMARK FAILED: the check could not be made (exit 2)")
        return 2
