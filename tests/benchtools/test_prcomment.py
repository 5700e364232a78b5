"""benchtools.prcomment against a local fake of GitHub's REST API (loopback HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_github import FakeGitHub, serve

from benchtools import actions, prcomment
from benchtools.prcomment import MARKER

HEAD = "a" * 40
OTHER = "b" * 40
TOKEN = "ghs-secret-token-123"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    state = FakeGitHub(repo="o/r", token=TOKEN, heads={7: HEAD})
    with serve(state):
        yield state


def api(github: FakeGitHub, token: str = TOKEN) -> prcomment.GitHubApi:
    return prcomment.GitHubApi(api_url=github.url, repo=github.repo, token=token, timeout_s=5)


def run(pull_numbers: tuple[int, ...] = (), head: str = HEAD) -> actions.WorkflowRun:
    return actions.WorkflowRun(
        id=1,
        event="pull_request",
        head_sha=head,
        conclusion="success",
        html_url="http://127.0.0.1:9/run/1",
        pull_numbers=pull_numbers,
    )


def report(
    number: int | None = 7, head: str = HEAD, md: str = "### Benchmarks: ok\n"
) -> prcomment.ReportFiles:
    return prcomment.ReportFiles(markdown=md, pr_number=number, head_sha=head)


def test_first_post_creates_then_updates_the_same_comment(github: FakeGitHub) -> None:
    first = prcomment.post(api(github), run(), report(md="### one\n"), github.bot)
    second = prcomment.post(api(github), run(), report(md="### two\n"), github.bot)

    assert first.startswith("created comment")
    assert second.startswith("updated comment")
    assert len(github.comments[7]) == 1
    body = github.comments[7][0]["body"]
    assert isinstance(body, str)
    assert body.startswith(MARKER + "\n### two")
    assert "Head `aaaaaaaa`" in body


def test_someone_elses_marked_comment_is_never_touched(github: FakeGitHub) -> None:
    github.add_comment(7, "mallory", f"{MARKER} mine")

    prcomment.post(api(github), run(), report(), github.bot)
    prcomment.post(api(github), run(), report(), github.bot)

    assert github.comments[7][0]["body"] == f"{MARKER} mine"
    assert [c["user"]["login"] for c in github.comments[7]] == ["mallory", github.bot]
    assert [m for m, _ in github.writes()] == ["POST", "PATCH"]


def test_comments_are_found_across_pages(github: FakeGitHub) -> None:
    for i in range(prcomment.PER_PAGE + 5):
        github.add_comment(7, "someone", f"comment {i}")
    github.add_comment(7, github.bot, f"{MARKER} old")

    said = prcomment.post(api(github), run(), report(), github.bot)

    assert said.startswith("updated comment")
    assert len(github.comments[7]) == prcomment.PER_PAGE + 6


def test_a_pr_whose_head_moved_on_gets_nothing(github: FakeGitHub) -> None:
    github.heads[7] = OTHER

    said = prcomment.post(api(github), run(), report(), github.bot)

    assert "not posted" in said
    assert github.writes() == []


def test_an_artifact_naming_another_pr_or_head_is_refused(github: FakeGitHub) -> None:
    github.heads[9] = OTHER  # the artifact says 9: GitHub says its head is not ours
    assert "not posted" in prcomment.post(api(github), run(), report(9), github.bot)
    with pytest.raises(prcomment.CommentError, match="refused"):
        prcomment.post(api(github), run(), report(head=OTHER), github.bot)
    with pytest.raises(prcomment.CommentError, match="no pull request"):
        prcomment.post(api(github), run(), report(None), github.bot)
    assert github.writes() == []


def test_the_events_pr_number_wins_over_the_artifacts(github: FakeGitHub) -> None:
    github.heads[9] = HEAD

    prcomment.post(api(github), run(pull_numbers=(7,)), report(9), github.bot)

    assert 7 in github.comments
    assert 9 not in github.comments


def test_the_body_drops_planted_markers_and_is_cut_to_size() -> None:
    huge = f"### x\n{MARKER}\n" + "y" * (prcomment.MAX_REPORT_CHARS + 10)

    body = prcomment.comment_body(huge, run())

    assert body.count(MARKER) == 1
    assert len(body) < 65_536
    assert "report cut to fit a comment" in body


def test_a_bad_token_is_an_error_that_never_shows_the_token(github: FakeGitHub) -> None:
    wrong = "ghs-wrong-" + TOKEN
    with pytest.raises(prcomment.CommentError) as exc:
        prcomment.post(api(github, wrong), run(), report(), github.bot)

    assert "HTTP 401" in str(exc.value)
    assert wrong not in str(exc.value)
    assert wrong not in repr(api(github, wrong))


def test_main_reads_the_event_and_environment(
    github: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "bench-report"
    folder.mkdir()
    (folder / "report.md").write_text("### Benchmarks: no regression\n")
    (folder / "pr.json").write_text(json.dumps({"pr_number": 7, "head_sha": HEAD}))
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "workflow_run": {
                    "id": 5,
                    "event": "pull_request",
                    "head_sha": HEAD,
                    "conclusion": "success",
                    "html_url": "http://127.0.0.1:9/run/5",
                    "pull_requests": [],
                }
            }
        )
    )
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_REPOSITORY", github.repo)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)

    assert prcomment.main(["--report", str(folder)]) == 0
    assert "created comment" in capsys.readouterr().out

    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r; rm -rf /")
    assert prcomment.main(["--report", str(folder)]) == 2
    assert "GITHUB_REPOSITORY is not OWNER/NAME" in capsys.readouterr().err
    (folder / "pr.json").write_text("{truncated")
    monkeypatch.setenv("GITHUB_REPOSITORY", github.repo)
    assert prcomment.main(["--report", str(folder)]) == 2
    assert "the check's report in" in capsys.readouterr().err
