"""A rehearsal of a GitHub Actions job on this machine: the YAML's own commands, run here.

:func:`run_job` reads a workflow file and runs one job's steps in a workspace (a scratch
clone), the way a runner would as far as our workflows go:

* ``run:`` steps: the block as written, through ``bash --noprofile --norc -eo pipefail``
  (Actions' default shell), with the workflow's, job's and step's ``env:`` (their
  ``${{ }}`` evaluated), the ``GITHUB_*`` variables, and the event payload, job summary
  and step outputs as files. A ``run:`` block holding ``${{`` is refused
  (:class:`InjectionError`): values reach the shell through ``env:`` only.
* ``uses:`` steps: each action our workflows use is emulated by what it does to the
  workspace (checkout moves to the ref, cache restores ``.asv/env`` from a shared
  directory, artifacts are copied to and from a folder); an action it does not know is an
  error, so a new one cannot slip past the rehearsal.
* ``if:`` conditions: ``always()``, ``success()``, ``failure()``, ``cancelled()``, their
  negations, ``==``/``!=`` against a quoted literal, joined by ``&&``. Anything else is an
  error, never a guess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")


class RehearsalError(Exception):
    """The workflow uses something the rehearsal cannot run faithfully."""


class InjectionError(RehearsalError):
    """A ``run:`` block interpolates ``${{ }}`` (it must use ``env:``)."""


def load(path: Path) -> dict[str, Any]:
    """A workflow file (YAML 1.1 reads the key ``on`` as True: it is renamed back)."""
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data  # type: ignore[no-any-return]


def run_blocks(workflow: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every ``run:`` block of a workflow, as (job id, text)."""
    return [
        (job_id, step["run"])
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if "run" in step
    ]


def injection_problems(workflow: Mapping[str, Any]) -> list[str]:
    """Where a ``run:`` block interpolates an expression (each one is a finding)."""
    return [
        f"job {job_id}: run block interpolates ${{{{ {m[1]} }}}}"
        for job_id, text in run_blocks(workflow)
        for m in _EXPR.finditer(text)
    ]


@dataclass
class Context:
    """What the job sees: the event, the workspace, the artifact store, extra variables."""

    event_name: str
    event: dict[str, Any]
    workspace: Path
    home: Path
    artifacts: Path
    repository: str = "pganalytics/pganalytics_core"
    sha: str = ""
    ref: str = "refs/heads/main"
    token: str = "ghs-rehearsal-token"
    api_url: str = "http://127.0.0.1:9"
    env_cache: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def expressions(self) -> dict[str, Any]:
        return {
            "github": {
                "event": self.event,
                "event_name": self.event_name,
                "repository": self.repository,
                "sha": self.sha,
                "ref": self.ref,
                "token": self.token,
                "workspace": str(self.workspace),
                "head_ref": self.event.get("pull_request", {}).get("head", {}).get("ref", ""),
            },
            "runner": {"os": "Linux", "arch": "X64", "temp": str(self.home / "tmp")},
        }


@dataclass
class StepResult:
    """One step: its name, whether it ran, its exit code, output, summary and outputs."""

    name: str
    ran: bool
    code: int = 0
    output: str = ""
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    """A job's steps in order, and whether it failed."""

    steps: list[StepResult]
    failed: bool
    skipped: bool = False

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    def summary(self) -> str:
        return "".join(s.summary for s in self.steps)


def evaluate(expr: str, ctx: Mapping[str, Any]) -> Any:
    """The value of one expression: a context path, a quoted literal or ``hashFiles``."""
    expr = expr.strip()
    if m := re.fullmatch(r"'((?:[^']|'')*)'", expr):
        return m[1].replace("''", "'")
    if expr.startswith("hashFiles(") and expr.endswith(")"):
        return "hash(" + expr[len("hashFiles(") : -1] + ")"
    if _PATH.fullmatch(expr):
        value: Any = ctx
        for key in expr.split("."):
            value = value.get(key, "") if isinstance(value, Mapping) else ""
        return value
    raise RehearsalError(f"the rehearsal cannot evaluate ${{{{ {expr} }}}}")


def substitute(text: str, ctx: Mapping[str, Any]) -> str:
    """``text`` with every ``${{ expr }}`` replaced by its value."""
    return _EXPR.sub(lambda m: str(evaluate(m[1], ctx)), text)


def condition(text: str | bool | None, ctx: Mapping[str, Any], failed: bool) -> bool:
    """Whether a step (or job) with this ``if:`` runs, after earlier steps (``failed``)."""
    if text is None:
        return not failed
    if isinstance(text, bool):
        return text and not failed
    m = _EXPR.fullmatch(text.strip())
    body = m[1] if m else text.strip()
    status_checked = False
    result = True
    for clause in (c.strip() for c in body.split("&&")):
        negate = clause.startswith("!") and not clause.startswith("!=")
        core = clause[1:].strip() if negate else clause
        if core in ("always()", "success()", "failure()", "cancelled()"):
            status_checked = True
            value = {
                "always()": True,
                "success()": not failed,
                "failure()": failed,
                "cancelled()": False,
            }[core]
        elif cmp := re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", core):
            left, right = evaluate(cmp[1], ctx), evaluate(cmp[3], ctx)
            value = (left == right) if cmp[2] == "==" else (left != right)
        else:
            raise RehearsalError(f"the rehearsal cannot evaluate if: {text}")
        result = result and (not value if negate else value)
    # Without a status function, Actions adds success(): the step runs only if all passed.
    return result and (status_checked or not failed)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _action(step: Mapping[str, Any], context: Context, ctx: Mapping[str, Any]) -> StepResult:
    """Emulate one ``uses:`` step on the workspace."""
    name = step.get("name", step["uses"])
    action = step["uses"].split("@")[0]
    args = {k: substitute(str(v), ctx) for k, v in step.get("with", {}).items()}
    ws = context.workspace
    if action == "actions/checkout":
        _git(ws, "fetch", "--quiet", "origin", "+refs/heads/*:refs/remotes/origin/*")
        # As actions/checkout: a branch (the event's, or a ref naming one) is checked out
        # as that local branch; anything else (a commit) detached.
        ref = args.get("ref") or (
            context.ref.removeprefix("refs/heads/")
            if context.ref.startswith("refs/heads/")
            else context.sha
        )
        branches = _git(ws, "for-each-ref", "--format=%(refname:lstrip=3)", "refs/remotes/origin")
        if ref in branches.split():
            _git(ws, "checkout", "--quiet", "--force", "-B", ref, f"refs/remotes/origin/{ref}")
        else:
            _git(ws, "checkout", "--quiet", "--force", "--detach", ref)
        return StepResult(name, True, output=f"checked out {ref}")
    if action == "actions/setup-python":
        version = tuple(int(p) for p in args["python-version"].split("."))
        return StepResult(name, True, code=0 if version >= (3, 11) else 1)
    if action == "actions/cache":
        if not args.get("key") or "hash(" not in args["key"]:
            return StepResult(name, True, code=1, output="a cache key without hashFiles")
        target = ws / args["path"]
        if context.env_cache is not None and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(context.env_cache, target_is_directory=True)
        return StepResult(name, True, output=f"restored {args['path']}")
    if action == "actions/upload-artifact":
        src = ws / args["path"]
        if not src.exists() or not any(src.iterdir()):
            return StepResult(name, True, code=1, output=f"no files at {args['path']}")
        shutil.copytree(src, context.artifacts / args["name"], dirs_exist_ok=True)
        return StepResult(name, True)
    if action == "actions/download-artifact":
        if str(args.get("run-id")) != str(context.event["workflow_run"]["id"]):
            return StepResult(name, True, code=1, output="artifact of another run")
        src = context.artifacts / args["name"]
        if not src.is_dir():
            return StepResult(name, True, code=1, output=f"no artifact {args['name']}")
        shutil.copytree(src, ws / args["path"], dirs_exist_ok=True)
        return StepResult(name, True)
    if action == "actions/upload-pages-artifact":
        ok = (ws / args["path"] / "index.html").is_file()
        return StepResult(name, True, code=0 if ok else 1)
    if action == "actions/deploy-pages":
        return StepResult(name, True)
    raise RehearsalError(f"the rehearsal does not know the action {step['uses']}")


def _run(
    step: Mapping[str, Any], env: Mapping[str, str], context: Context, index: int
) -> StepResult:
    """Run one ``run:`` step's block as Actions would; its result."""
    name = step.get("name", step["run"].splitlines()[0])
    if _EXPR.search(step["run"]):
        raise InjectionError(f"step {name!r}: run block interpolates ${{{{ }}}}")
    files = context.home / "files"
    files.mkdir(parents=True, exist_ok=True)
    script = files / f"step{index}.sh"
    script.write_text(step["run"])
    summary, output = files / f"summary{index}.md", files / f"output{index}.txt"
    summary.touch()
    output.touch()
    full_env = {
        **env,
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
    }
    cwd = context.workspace / step.get("working-directory", ".")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return StepResult(name, True, proc.returncode, proc.stdout, summary.read_text(), outputs)


def base_env(context: Context) -> dict[str, str]:
    """A runner's environment: few host variables, the ``GITHUB_*`` ones, a fresh HOME."""
    keep = ("PATH", "LANG", "PIP_FIND_LINKS", "PIP_DEFAULT_TIMEOUT", "SSL_CERT_FILE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    context.home.mkdir(parents=True, exist_ok=True)
    event_path = context.home / "event.json"
    event_path.write_text(json.dumps(context.event))
    (context.home / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(context.home),
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(context.workspace),
        GITHUB_EVENT_NAME=context.event_name,
        GITHUB_EVENT_PATH=str(event_path),
        GITHUB_REPOSITORY=context.repository,
        GITHUB_SHA=context.sha,
        GITHUB_REF=context.ref,
        GITHUB_API_URL=context.api_url,
        GITHUB_SERVER_URL="http://127.0.0.1:9",
        RUNNER_TEMP=str(context.home / "tmp"),
    )
    env.update(context.extra_env)
    return env


def run_job(workflow: Mapping[str, Any], job_id: str, context: Context) -> JobResult:
    """Run job ``job_id`` of ``workflow`` in ``context``; every step's result."""
    ctx = context.expressions()
    job = workflow["jobs"][job_id]
    if not condition(job.get("if"), ctx, failed=False):
        return JobResult([], failed=False, skipped=True)
    env = base_env(context)
    for scope in (workflow.get("env", {}), job.get("env", {})):
        env.update({k: substitute(str(v), ctx) for k, v in scope.items()})
    results: list[StepResult] = []
    failed = False
    for index, step in enumerate(job["steps"]):
        name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
        if not condition(step.get("if"), ctx, failed):
            results.append(StepResult(name, False))
            continue
        step_env = {**env, **{k: substitute(str(v), ctx) for k, v in step.get("env", {}).items()}}
        if "uses" in step:
            result = _action(step, context, ctx)
        else:
            result = _run(step, step_env, context, index)
        result.name = name
        results.append(result)
        if "id" in step:
            ctx.setdefault("steps", {})[step["id"]] = {"outputs": result.outputs}
        failed = failed or result.code != 0
    return JobResult(results, failed)
