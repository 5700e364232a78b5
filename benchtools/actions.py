"""GitHub Actions' runtime files, read and written as typed values.

A workflow step gets its facts from files and variables, never from ``${{ }}`` spliced into
a shell (where a branch name such as ``$(touch pwned)`` would run): the event payload at
``$GITHUB_EVENT_PATH``, the repository in ``$GITHUB_REPOSITORY``; and writes its results to
the job summary (``$GITHUB_STEP_SUMMARY``) and step outputs (``$GITHUB_OUTPUT``). Outside
Actions those variables are unset: the summary and outputs are then skipped, and the
event is given by options instead (see :mod:`benchtools.prcheck`).

Payload values are checked on the way in (a commit is 40 hex digits, a number is a
positive integer): a malformed payload is an :class:`ActionsError`, never a wrong answer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_SHA = re.compile(r"[0-9a-f]{40}")
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class ActionsError(Exception):
    """A runtime file or variable of GitHub Actions is missing or malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PullRequest:
    """The pull request of a ``pull_request`` event."""

    number: int
    base_sha: str
    head_sha: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRun:
    """The run of a ``workflow_run`` event (the pull-request check that just completed)."""

    id: int
    event: str
    head_sha: str
    conclusion: str
    html_url: str
    pull_numbers: tuple[int, ...]


def load_event(path: Path | None = None) -> Mapping[str, object]:
    """The event payload (default: the file ``$GITHUB_EVENT_PATH`` names)."""
    if path is None:
        name = os.environ.get("GITHUB_EVENT_PATH", "")
        if not name:
            raise ActionsError("GITHUB_EVENT_PATH is not set (not in GitHub Actions?)")
        path = Path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ActionsError(f"event payload {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ActionsError(f"event payload {path}: not a JSON object")
    return data


def _get(data: Mapping[str, object], dotted: str) -> object:
    value: object = data
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise ActionsError(f"event payload: no {dotted}")
        value = value[key]
    return value


def _sha(data: Mapping[str, object], dotted: str) -> str:
    value = _get(data, dotted)
    if not isinstance(value, str) or not _SHA.fullmatch(value):
        raise ActionsError(f"event payload: {dotted} is not a commit hash")
    return value


def _number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ActionsError(f"{what} is not a positive integer")
    return value


def _text(data: Mapping[str, object], dotted: str) -> str:
    value = _get(data, dotted)
    if not isinstance(value, str):
        raise ActionsError(f"event payload: {dotted} is not a string")
    return value


def pull_request(event: Mapping[str, object]) -> PullRequest:
    """The pull request of a ``pull_request`` event payload."""
    return PullRequest(
        number=_number(_get(event, "pull_request.number"), "pull_request.number"),
        base_sha=_sha(event, "pull_request.base.sha"),
        head_sha=_sha(event, "pull_request.head.sha"),
    )


def workflow_run(event: Mapping[str, object]) -> WorkflowRun:
    """The completed run of a ``workflow_run`` event payload."""
    prs = _get(event, "workflow_run.pull_requests")
    if not isinstance(prs, list):
        raise ActionsError("event payload: workflow_run.pull_requests is not a list")
    numbers = tuple(
        _number(pr.get("number") if isinstance(pr, dict) else None, "a pull request's number")
        for pr in prs
    )
    conclusion = _get(event, "workflow_run.conclusion")
    return WorkflowRun(
        id=_number(_get(event, "workflow_run.id"), "workflow_run.id"),
        event=_text(event, "workflow_run.event"),
        head_sha=_sha(event, "workflow_run.head_sha"),
        conclusion=conclusion if isinstance(conclusion, str) else "",
        html_url=_text(event, "workflow_run.html_url"),
        pull_numbers=numbers,
    )


def append_summary(markdown: str) -> bool:
    """Append to the job summary; False when not in Actions (no ``$GITHUB_STEP_SUMMARY``)."""
    name = os.environ.get("GITHUB_STEP_SUMMARY", "")
    if not name:
        return False
    with open(name, "a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return True


def set_outputs(outputs: Mapping[str, str]) -> bool:
    """Write step outputs; False when not in Actions (no ``$GITHUB_OUTPUT``).

    Raises:
        ActionsError: a name that is not an identifier, or a value with a line break
            (which would let a value forge another output).
    """
    for key, value in outputs.items():
        if not _OUTPUT_NAME.fullmatch(key) or "\n" in value or "\r" in value:
            raise ActionsError(f"step output {key!r}: a name, and a value on one line")
    name = os.environ.get("GITHUB_OUTPUT", "")
    if not name:
        return False
    with open(name, "a", encoding="utf-8") as fh:
        fh.writelines(f"{key}={value}\n" for key, value in outputs.items())
    return True
