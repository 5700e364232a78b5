"""The GitHub workflows, linted and rehearsed: their own commands, run here.

The rehearsal reads ``.github/workflows/*.yml`` (never a copy of their commands) and runs
their jobs (tests/benchtools/workflow_runner.py) in a scratch clone of this working tree,
pushed to a bare ``origin``: the history job on a push to main, the pull-request job on a
PR with a planted slowdown of ``CircuitBreaker.reset()`` (from a branch named
``$(touch${IFS}pwned)``) and on one changing only docs, then the comment job twice
against a local fake of GitHub's REST API. A few benchmarks (``-b``) keep it to ~3 min.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import workflow_runner as wr
from fake_github import FakeGitHub, serve

from benchtools import git as git_plumbing
from benchtools import selftest_compare as asv_selftest
from benchtools import selftest_history as history_selftest
from benchtools.prcomment import MARKER

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
HISTORY, PR, COMMENT = "benchmark-history.yml", "benchmark-pr.yml", "benchmark-comment.yml"

HOSTILE_BRANCH = "$(touch${IFS}pwned)"
IDENTITY = {
    "GIT_AUTHOR_NAME": "rehearsal",
    "GIT_AUTHOR_EMAIL": "rehearsal@invalid",
    "GIT_COMMITTER_NAME": "rehearsal",
    "GIT_COMMITTER_EMAIL": "rehearsal@invalid",
}
PR_BENCHMARKS = (
    "-b 'BreakerOps\\.time_reset$' -b 'Instructions\\.track_breaker_reset$' "
    "--rounds 3 --confirm-rounds 2"
)
REPORT_FILES = {"report.md", "report.json", "report.txt", "pr.json"}


def workflow(name: str) -> dict[str, Any]:
    return wr.load(WORKFLOWS / name)


def git(cwd: Path, *args: str) -> str:
    import os

    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
    ).stdout.strip()


# --------------------------------------------------------------------------- static checks


def test_there_are_the_three_workflows_with_their_triggers() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == sorted([HISTORY, PR, COMMENT])
    history, pr, comment = workflow(HISTORY), workflow(PR), workflow(COMMENT)

    assert history["on"]["push"] == {"branches": ["main"]}
    assert "workflow_dispatch" in history["on"]
    assert history["on"]["schedule"]
    assert history["concurrency"] == {"group": "benchmark-history", "cancel-in-progress": False}
    assert history["jobs"]["bench"]["env"]["ASV_MACHINE"]
    assert list(pr["on"]) == ["pull_request"]
    assert comment["on"] == {"workflow_run": {"workflows": [pr["name"]], "types": ["completed"]}}


def test_permissions_are_the_least_each_job_needs() -> None:
    history, pr, comment = workflow(HISTORY), workflow(PR), workflow(COMMENT)

    assert history["permissions"] == {"contents": "read"}
    assert history["jobs"]["bench"]["permissions"] == {"contents": "write"}
    assert pr["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in pr["jobs"].values())
    assert "secrets." not in (WORKFLOWS / PR).read_text()
    assert comment["permissions"] == {}
    assert comment["jobs"]["comment"]["permissions"] == {
        "contents": "read",
        "actions": "read",
        "pull-requests": "write",
    }


def test_the_comment_job_never_checks_out_the_pull_requests_code() -> None:
    steps = workflow(COMMENT)["jobs"]["comment"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))

    assert checkout["with"]["ref"] == "${{ github.event.repository.default_branch }}"
    text = (WORKFLOWS / COMMENT).read_text()
    assert "head_sha }}" not in text
    assert "head.sha" not in text
    assert "head_ref" not in text


def test_no_run_block_interpolates_an_expression() -> None:
    for name in (HISTORY, PR, COMMENT):
        assert wr.injection_problems(workflow(name)) == [], name


def test_the_injection_rule_finds_an_interpolated_branch_name() -> None:
    hostile = {
        "jobs": {
            "j": {
                "steps": [
                    {"run": "echo ${{ github.head_ref }}"},
                    {"run": 'echo "${{ github.event.pull_request.title }}"'},
                    {"run": "echo fine", "env": {"T": "${{ github.head_ref }}"}},
                ]
            }
        }
    }

    assert wr.injection_problems(hostile) == [
        "job j: run block interpolates ${{ github.head_ref }}",
        "job j: run block interpolates ${{ github.event.pull_request.title }}",
    ]


def test_actionlint_is_clean_here_and_flags_a_broken_workflow(tmp_path: Path) -> None:
    actionlint = Path(sys.executable).parent / "actionlint"
    clean = subprocess.run([str(actionlint)], cwd=ROOT, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(
        "on: pull_request\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    subprocess.run(["git", "init", "--quiet"], cwd=tmp_path, check=True)
    bad = subprocess.run([str(actionlint)], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "potentially untrusted" in bad.stdout


def test_the_readme_ci_section_names_what_the_workflows_run() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## CI\n") :]
    section = section[: section.index("\n## ", 5)]
    for name in (HISTORY, PR, COMMENT):
        assert f".github/workflows/{name}" in section, name
        for _, block in wr.run_blocks(workflow(name)):
            assert block.strip() in section, block
    machine = workflow(HISTORY)["jobs"]["bench"]["env"]["ASV_MACHINE"]
    assert machine in section


# --------------------------------------------------------------------------- the rehearsal


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A bare origin with main (this working tree) and two PR branches; asv's env cache."""
    tmp = tmp_path_factory.mktemp("rehearsal")
    snapshot = tmp / "snapshot"
    asv_selftest.make_clone(ROOT, snapshot, worktree=True)
    git(tmp, "clone", "--quiet", "--bare", str(snapshot), str(tmp / "origin.git"))
    main = git(snapshot, "rev-parse", "HEAD")

    breaker = snapshot / "pganalytics_core" / "breaker.py"
    git(snapshot, "checkout", "--quiet", "-b", HOSTILE_BRANCH)
    breaker.write_text(history_selftest.plant(breaker.read_text()))
    git(snapshot, "commit", "--quiet", "-am", "reset() does its work twice (planted)")
    planted = git(snapshot, "rev-parse", "HEAD")
    git(snapshot, "checkout", "--quiet", "-b", "docs-only", main)
    with (snapshot / "docs" / "reviewing.md").open("a") as fh:
        fh.write("\n<!-- a docs-only change -->\n")
    git(snapshot, "commit", "--quiet", "-am", "docs: a typo")
    docs = git(snapshot, "rev-parse", "HEAD")
    git(snapshot, "push", "--quiet", str(tmp / "origin.git"), HOSTILE_BRANCH, "docs-only")
    # The stored history holds a truncated result of main for the runner's machine (an
    # interrupted write): the history job must set it aside and benchmark main again.
    machine = workflow(HISTORY)["jobs"]["bench"]["env"]["ASV_MACHINE"]
    truncated = f"{machine}/{main[:8]}-virtualenv-py3.11.json"
    stored = tmp / "stored"
    (stored / machine).mkdir(parents=True)
    (stored / truncated).write_text('{"version": 2, "commit_hash": "' + main[:10])
    git_plumbing.commit_directory(
        snapshot,
        branch="benchmark-results",
        directory=stored,
        message="an interrupted write",
        merge_parents=(),
    )
    git(snapshot, "push", "--quiet", str(tmp / "origin.git"), "benchmark-results")

    workspace = tmp / "workspace"
    git(tmp, "clone", "--quiet", str(tmp / "origin.git"), str(workspace))
    cache = ROOT / ".asv" / "selftest" / "env"
    with asv_selftest.locked(cache):
        yield {
            "tmp": tmp,
            "origin": tmp / "origin.git",
            "workspace": workspace,
            "artifacts": tmp / "artifacts",
            "cache": cache,
            "main": main,
            "planted": planted,
            "docs": docs,
            "truncated": truncated,
        }


def pr_event(number: int, head: str, base: str, branch: str) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "title": "$(touch pwned) and `touch pwned`",
            "body": "'; touch pwned; echo '",
            "head": {"sha": head, "ref": branch},
            "base": {"sha": base, "ref": "main"},
        },
        "repository": {"default_branch": "main"},
    }


def run_pr(
    stage: dict[str, Any], number: int, head: str, branch: str, name: str = PR
) -> tuple[wr.JobResult, Path]:
    artifacts = stage["artifacts"] / f"pr{number}"
    context = wr.Context(
        event_name="pull_request",
        event=pr_event(number, head, stage["main"], branch),
        workspace=stage["workspace"],
        home=stage["tmp"] / f"home-pr{number}-{name}",
        artifacts=artifacts,
        sha=head,
        ref=f"refs/pull/{number}/merge",
        env_cache=stage["cache"],
        extra_env={"COMPARE_ARGS": PR_BENCHMARKS},
    )
    wf = wr.load(WORKFLOWS / PR) if name == PR else wr.load(Path(name))
    return wr.run_job(wf, "compare", context), artifacts / "benchmark-report"


def last_line(step: wr.StepResult) -> str:
    return step.output.strip().splitlines()[-1]


def assert_docs_only_passes(job: wr.JobResult, report: Path, head: str) -> None:
    check = job.step("Compare the merge base and the head")
    assert check.code == 0, check.output[-3000:]
    assert last_line(check).startswith("benchmarks: no regression: only documentation"), (
        check.output[-2000:]
    )
    assert "only documentation" in job.summary()
    assert check.outputs == {"verdict": "no regression", "exit-code": "0"}
    result = json.loads((report / "pr.json").read_text())
    assert (result["pr_number"], result["head_sha"], result["docs_only"]) == (8, head, True)
    assert not job.failed


def assert_no_pwned(stage: dict[str, Any]) -> None:
    hits = [p for p in stage["tmp"].rglob("pwned*")] + list(ROOT.glob("pwned*"))
    assert hits == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rehearsal_of_the_three_workflows(stage: dict[str, Any]) -> None:
    # 1. History: a push to main benchmarks it, pushes results and site, uploads the site.
    history = wr.Context(
        event_name="push",
        event={"ref": "refs/heads/main", "after": stage["main"]},
        workspace=stage["workspace"],
        home=stage["tmp"] / "home-history",
        artifacts=stage["artifacts"] / "history",
        sha=stage["main"],
        env_cache=stage["cache"],
        extra_env={
            "COMMITS": "1",
            "ASV_ARGS": "-b BreakerOps.time_state$",
        },
    )
    job = wr.run_job(workflow(HISTORY), "bench", history)
    bench = job.step("Benchmark new commits, store and publish")
    assert not job.failed, bench.output[-4000:]
    assert "1 to run" in bench.output
    assert bench.output.count(f"SET ASIDE {stage['truncated']} does not parse as JSON") == 1
    assert "pushed benchmark-results, gh-pages to origin" in bench.output
    machine = workflow(HISTORY)["jobs"]["bench"]["env"]["ASV_MACHINE"]
    stored = git(stage["origin"], "ls-tree", "--name-only", "benchmark-results")
    assert machine in stored.split()
    quarantined = git(stage["origin"], "ls-tree", "-r", "--name-only", "benchmark-results")
    assert f"quarantine/{stage['truncated']}." in quarantined
    assert "index.html" in git(stage["origin"], "ls-tree", "--name-only", "gh-pages").split()
    assert job.step("actions/upload-pages-artifact@v4").code == 0

    # 2. The PR with the planted slowdown: exit 1, the last line says regression.
    job, report = run_pr(stage, 7, stage["planted"], HOSTILE_BRANCH)
    check = job.step("Compare the merge base and the head")
    assert check.code == 1, check.output[-4000:]
    assert last_line(check).startswith("benchmarks: REGRESSION"), check.output[-2000:]
    assert job.failed
    assert job.step("Keep the reports").code == 0  # uploaded although the check failed
    assert {p.name for p in report.iterdir()} >= REPORT_FILES
    summary = job.summary()
    assert summary.startswith("### Benchmarks: regression")
    row = next(line for line in summary.splitlines() if "track_breaker_reset" in line)
    assert "instruction count (deterministic)" in row
    assert "BreakerOps.time_reset" in summary
    assert check.outputs == {"verdict": "regression", "exit-code": "1"}
    result = json.loads((report / "pr.json").read_text())
    assert (result["pr_number"], result["head_sha"], result["exit_code"]) == (
        7,
        stage["planted"],
        1,
    )
    assert result["merge_base"] == stage["main"]
    data = json.loads((report / "report.json").read_text())
    verdicts = {v["name"]: v["verdict"] for v in data["verdicts"]}
    assert verdicts["bench_instructions.Instructions.track_breaker_reset"] == "regression"
    assert_no_pwned(stage)

    # 3. The docs-only PR: nothing benchmarked, the check passes.
    job, docs_report = run_pr(stage, 8, stage["docs"], "docs-only")
    assert_docs_only_passes(job, docs_report, stage["docs"])
    assert not (docs_report / "report.json").exists()

    # 4. The comment: created on the first run, updated on the second; a marked comment
    #    of someone else's is never touched; the PR's number is checked with GitHub.
    github = FakeGitHub(repo="pganalytics/pganalytics_core", token="ghs-comment-token")
    github.heads = {7: stage["planted"], 8: stage["docs"]}
    foreign = github.add_comment(7, "mallory", f"{MARKER}\nnot yours")
    with serve(github):
        bodies = []
        for attempt in (1, 2):
            comment = run_comment(stage, github, report, run_id=4242 + attempt, attempt=attempt)
            step = comment.step("Create or update the comment")
            assert step.code == 0, step.output
            ours = [c for c in github.comments[7] if c["user"]["login"] == github.bot]
            assert len(ours) == 1
            bodies.append(ours[0]["body"])
        assert step.output.strip().startswith("pr-comment: updated comment")
    assert [m for m, _ in github.writes()] == ["POST", "PATCH"]
    assert github.comments[7][0] == {
        "id": foreign,
        "user": {"login": "mallory"},
        "body": f"{MARKER}\nnot yours",
    }
    body = bodies[-1]
    assert body.count(MARKER) == 1
    assert "### Benchmarks: regression" in body
    assert "track_breaker_reset" in body
    assert f"`{stage['planted'][:8]}`" in body
    assert_no_pwned(stage)


def run_comment(
    stage: dict[str, Any], github: FakeGitHub, report: Path, *, run_id: int, attempt: int
) -> wr.JobResult:
    workspace = stage["tmp"] / f"comment-ws{attempt}"
    git(stage["tmp"], "clone", "--quiet", str(stage["origin"]), str(workspace))
    artifacts = stage["tmp"] / f"comment-artifacts{attempt}"
    (artifacts / "benchmark-report").mkdir(parents=True)
    for f in report.iterdir():
        (artifacts / "benchmark-report" / f.name).write_bytes(f.read_bytes())
    context = wr.Context(
        event_name="workflow_run",
        event={
            "workflow_run": {
                "id": run_id,
                "event": "pull_request",
                "head_sha": stage["planted"],
                "conclusion": "failure",
                "html_url": f"http://127.0.0.1:9/runs/{run_id}",
                "pull_requests": [],  # as for a PR from a fork: the number is checked
            },
            "repository": {"default_branch": "main"},
        },
        workspace=workspace,
        home=stage["tmp"] / f"home-comment{attempt}",
        artifacts=artifacts,
        sha=stage["main"],
        repository=github.repo,
        token=github.token,
        api_url=github.url,
    )
    return wr.run_job(workflow(COMMENT), "comment", context)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_rehearsal_fails_when_a_workflow_calls_a_missing_command(
    stage: dict[str, Any], tmp_path: Path
) -> None:
    text = (WORKFLOWS / PR).read_text()
    assert "benchtools pr-check" in text
    broken = tmp_path / PR
    broken.write_text(text.replace("benchtools pr-check", "benchtools pr-chekc"))

    job, report = run_pr(stage, 8, stage["docs"], "docs-only", name=str(broken))

    check = job.step("Compare the merge base and the head")
    assert check.code == 2
    assert "unknown command 'pr-chekc'" in check.output
    with pytest.raises(AssertionError):
        assert_docs_only_passes(job, report, stage["docs"])


def test_a_comment_run_for_a_push_is_skipped() -> None:
    wf = workflow(COMMENT)
    ctx = {"github": {"event": {"workflow_run": {"event": "push", "conclusion": "success"}}}}

    assert not wr.condition(wf["jobs"]["comment"]["if"], ctx, failed=False)
    ctx["github"]["event"]["workflow_run"]["event"] = "pull_request"
    assert wr.condition(wf["jobs"]["comment"]["if"], ctx, failed=False)
    ctx["github"]["event"]["workflow_run"]["conclusion"] = "cancelled"
    assert not wr.condition(wf["jobs"]["comment"]["if"], ctx, failed=False)


def test_the_runner_refuses_what_it_cannot_evaluate() -> None:
    with pytest.raises(wr.RehearsalError, match="cannot evaluate"):
        wr.condition("contains(github.event.x, 'y')", {}, failed=False)
    with pytest.raises(wr.RehearsalError, match="cannot evaluate"):
        wr.substitute("${{ format('{0}', github.sha) }}", {})
    assert re.fullmatch(r"hash\(.*\)", wr.substitute("${{ hashFiles('a') }}", {}))
