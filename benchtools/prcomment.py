"""One benchmark comment per pull request, created or updated (never a second one).

What the ``workflow_run`` workflow runs, after the pull-request check completed, in a
checkout of the default branch (never the PR's code), with the check's artifact
downloaded into ``bench-report/``::

    python3 -m benchtools pr-comment --report bench-report

Inputs: the event payload (``$GITHUB_EVENT_PATH``: the completed run, its head commit and,
for a PR from the same repository, its number), ``$GITHUB_REPOSITORY``,
``$GITHUB_API_URL`` and ``$GITHUB_TOKEN`` (needs ``pull-requests: write`` only).

The artifact was made by the PR's code, so it is data, never trusted for where to write:

* the PR's number comes from the payload when GitHub gives it, else from ``pr.json``, and
  either way GitHub is asked for that PR and its head must be the run's head commit (a
  head that moved on since: nothing is posted, a newer run will; a mismatch with
  ``pr.json``'s own head: refused);
* the comment is ours when its author is the workflow's bot (``--bot-login``) *and* it
  holds :data:`MARKER`: a marker pasted into someone else's comment is never touched; a
  marker inside the report is removed; the body is cut to GitHub's size limit.

Uses ``urllib`` from the standard library, so the comment job installs nothing beside
the checkout; the token never appears in a message (a server echoing it is scrubbed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchtools import actions

#: Finds our comment among a PR's comments (together with the author: see the docstring).
MARKER = "<!-- pganalytics-core:benchmarks -->"
#: GitHub refuses comment bodies over 65,536 characters; room left for the frame.
MAX_REPORT_CHARS = 60_000
DEFAULT_BOT = "github-actions[bot]"
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
PER_PAGE = 100
MAX_PAGES = 50


class CommentError(Exception):
    """The comment could not be made; the message never holds the token."""


@dataclass(frozen=True, slots=True)
class Comment:
    """An issue comment of a pull request."""

    id: int
    login: str
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubApi:
    """The few REST calls the comment needs, for one repository."""

    api_url: str
    repo: str
    token: str = field(repr=False)
    timeout_s: float = 30.0

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def request(self, method: str, path: str, body: Mapping[str, object] | None = None) -> object:
        """``method`` ``path`` (under ``/repos/OWNER/NAME``); the decoded JSON answer."""
        url = f"{self.api_url.rstrip('/')}/repos/{self.repo}{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            excerpt = self._scrub(exc.read(300).decode("utf-8", "replace"))
            raise CommentError(f"{method} {path}: HTTP {exc.code}: {excerpt}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CommentError(f"{method} {path}: {self._scrub(str(exc))}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise CommentError(f"{method} {path}: the answer is not JSON") from None

    def pull_head_sha(self, number: int) -> str:
        """The head commit of pull request ``number``."""
        pull = self.request("GET", f"/pulls/{number}")
        head = pull.get("head") if isinstance(pull, dict) else None
        sha = head.get("sha") if isinstance(head, dict) else None
        if not isinstance(sha, str):
            raise CommentError(f"GET /pulls/{number}: no head.sha in the answer")
        return sha

    def comments(self, number: int) -> list[Comment]:
        """Every issue comment of pull request ``number``, oldest first."""
        found: list[Comment] = []
        for page in range(1, MAX_PAGES + 1):
            items = self.request(
                "GET", f"/issues/{number}/comments?per_page={PER_PAGE}&page={page}"
            )
            if not isinstance(items, list):
                raise CommentError(f"GET /issues/{number}/comments: not a list")
            found += [_comment(item) for item in items]
            if len(items) < PER_PAGE:
                return found
        raise CommentError(f"pull request {number} has over {PER_PAGE * MAX_PAGES} comments")

    def create(self, number: int, body: str) -> int:
        """A new comment on pull request ``number``; its id."""
        return _comment(self.request("POST", f"/issues/{number}/comments", {"body": body})).id

    def update(self, comment_id: int, body: str) -> None:
        """Replace the body of comment ``comment_id``."""
        self.request("PATCH", f"/issues/comments/{comment_id}", {"body": body})


def _comment(item: object) -> Comment:
    if not isinstance(item, dict):
        raise CommentError("a comment in the answer is not an object")
    user = item.get("user")
    login = user.get("login") if isinstance(user, dict) else None
    cid, body = item.get("id"), item.get("body")
    if not isinstance(cid, int) or not isinstance(login, str) or not isinstance(body, str):
        raise CommentError("a comment in the answer lacks its id, author or body")
    return Comment(cid, login, body)


def find_ours(comments: Sequence[Comment], bot_login: str) -> Comment | None:
    """The first comment written by ``bot_login`` that holds :data:`MARKER`."""
    return next((c for c in comments if c.login == bot_login and MARKER in c.body), None)


def comment_body(report_markdown: str, run: actions.WorkflowRun) -> str:
    """The comment: the marker, the report (cut to size, markers removed), its origin."""
    report = report_markdown.replace(MARKER, "").strip()
    if len(report) > MAX_REPORT_CHARS:
        report = (
            report[:MAX_REPORT_CHARS].rstrip()
            + "\n\n*(report cut to fit a comment: the whole one is in the run's artifact)*"
        )
    return (
        f"{MARKER}\n{report}\n\n"
        f"<sub>Head `{run.head_sha[:8]}` · check {run.conclusion or 'finished'} · "
        f"[workflow run]({run.html_url}) · this comment is updated on every push</sub>\n"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFiles:
    """What the comment takes from the check's artifact."""

    markdown: str
    pr_number: int | None
    head_sha: str


def read_report(folder: Path) -> ReportFiles:
    """``report.md`` and ``pr.json`` of the artifact, checked."""
    try:
        markdown = (folder / "report.md").read_text(encoding="utf-8")
        data = json.loads((folder / "pr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommentError(f"the check's report in {folder}: {exc}") from None
    number = data.get("pr_number") if isinstance(data, dict) else None
    head = data.get("head_sha") if isinstance(data, dict) else None
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        raise CommentError("pr.json: pr_number is not an integer")
    if not isinstance(head, str):
        raise CommentError("pr.json: no head_sha")
    return ReportFiles(markdown=markdown, pr_number=number, head_sha=head)


def post(api: GitHubApi, run: actions.WorkflowRun, report: ReportFiles, bot_login: str) -> str:
    """Create or update the PR's comment; what was done, in words."""
    if report.head_sha != run.head_sha:
        raise CommentError(
            f"the report is of {report.head_sha[:12]!r}, the run of {run.head_sha[:8]}: refused"
        )
    number = run.pull_numbers[0] if run.pull_numbers else report.pr_number
    if number is None or number < 1:
        raise CommentError("no pull request: the event names none and pr.json has none")
    head = api.pull_head_sha(number)
    if head != run.head_sha:
        return f"pull request #{number} is at {head[:8]} now, not {run.head_sha[:8]}: not posted"
    body = comment_body(report.markdown, run)
    ours = find_ours(api.comments(number), bot_login)
    if ours is None:
        return f"created comment {api.create(number, body)} on pull request #{number}"
    api.update(ours.id, body)
    return f"updated comment {ours.id} on pull request #{number}"


def main(argv: Sequence[str]) -> int:
    """``pr-comment``: 0 when the comment is in place (or rightly not posted), else 2."""
    p = argparse.ArgumentParser(prog="python3 -m benchtools pr-comment")
    p.add_argument("--report", type=Path, default=Path("bench-report"), help="the artifact")
    p.add_argument("--bot-login", default=DEFAULT_BOT, help=f"our author (default {DEFAULT_BOT})")
    args = p.parse_args(argv)
    try:
        run = actions.workflow_run(actions.load_event())
        if run.event != "pull_request":
            print(f"pr-comment: the run was for a {run.event!r} event: no comment")
            return 0
        repo = os.environ.get("GITHUB_REPOSITORY", "")
        if not _REPO.fullmatch(repo):
            raise CommentError("GITHUB_REPOSITORY is not OWNER/NAME")
        token = os.environ.get("GITHUB_TOKEN", "")
        if not token:
            raise CommentError("GITHUB_TOKEN is not set")
        api = GitHubApi(
            api_url=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
            repo=repo,
            token=token,
        )
        print(f"pr-comment: {post(api, run, read_report(args.report), args.bot_login)}")
        return 0
    except (CommentError, actions.ActionsError) as exc:
        print(f"pr-comment: error: {exc}", file=sys.stderr)
        return 2
