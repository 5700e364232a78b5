"""benchtools.prcheck and benchtools.actions: what the pull-request job decides and writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchtools import actions, prcheck

SHA_A, SHA_B = "a" * 40, "b" * 40


@pytest.mark.parametrize(
    ("paths", "docs_only"),
    [
        (["README.md", "docs/reviewing.md", "docs/img/x.svg"], True),
        (["CHANGELOG.md"], True),
        (["docs/reviewing.md", "pganalytics_core/breaker.py"], False),
        (["benchmarks/bench_breaker.py"], False),
        (["asv.conf.json"], False),
        ([], False),  # nothing changed (an empty merge): benchmark, do not guess
    ],
)
def test_only_documentation_is_not_benchmarked(paths: list[str], docs_only: bool) -> None:
    assert prcheck.is_docs_only(paths) is docs_only


def test_the_compare_command_reports_into_the_folder_and_informs_only_on_loopback(
    tmp_path: Path,
) -> None:
    cmd = prcheck.compare_command(SHA_A, SHA_B, tmp_path, ["-b", "Guarded"])

    assert cmd[1:8] == [
        str(prcheck.COMPARE),
        "--repo",
        str(prcheck.ROOT),
        "--base",
        SHA_A,
        "--head",
        SHA_B,
    ]
    assert ["--markdown", str(tmp_path / "report.md")] == cmd[8:10]
    informs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--inform-only"]
    assert informs == list(prcheck.INFORM_ONLY)
    assert cmd[-2:] == ["-b", "Guarded"]


@pytest.mark.parametrize(
    ("code", "start"),
    [
        (0, "benchmarks: no regression;"),
        (1, "benchmarks: REGRESSION"),
        (2, "benchmarks: BENCHMARK FAILED"),
    ],
)
def test_the_last_line_names_the_verdict(code: int, start: str) -> None:
    result = prcheck.CheckResult(
        schema=1,
        pr_number=3,
        head_sha=SHA_B,
        merge_base=SHA_A,
        exit_code=code,
        verdict=prcheck.VERDICTS[code],
        docs_only=False,
    )
    assert prcheck.last_line(result).startswith(start)


def test_an_event_without_a_pull_request_is_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main"}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))

    assert prcheck.main(["--out", str(tmp_path / "out")]) == 2
    out = capsys.readouterr()
    assert "event payload: no pull_request.number" in out.err
    assert out.out.strip().splitlines()[-1].startswith("benchmarks: BENCHMARK FAILED")


def test_an_unknown_revision_is_a_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prcheck.main(["--base", "no-such-rev", "--head", "HEAD", "--out", str(tmp_path)]) == 2
    assert "unknown revision 'no-such-rev'" in capsys.readouterr().err
    assert prcheck.main(["--base=--output=x", "--head", "HEAD", "--out", str(tmp_path)]) == 2
    assert "unknown revision '--output=x'" in capsys.readouterr().err
    assert prcheck.main(["--base", "main", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            {"pull_request": {"number": "7", "base": {"sha": SHA_A}, "head": {"sha": SHA_B}}},
            "pull_request.number is not a positive integer",
        ),
        (
            {"pull_request": {"number": 7, "base": {"sha": "main"}, "head": {"sha": SHA_B}}},
            "pull_request.base.sha is not a commit hash",
        ),
        (
            {"pull_request": {"number": 7, "base": {"sha": SHA_A}, "head": {"sha": "$(x)"}}},
            "pull_request.head.sha is not a commit hash",
        ),
    ],
)
def test_a_malformed_pull_request_payload_is_refused(
    payload: dict[str, object], error: str
) -> None:
    with pytest.raises(actions.ActionsError, match=error.replace("(", r"\(")):
        actions.pull_request(payload)


def test_the_payload_file_is_read_and_checked(tmp_path: Path) -> None:
    good = {"pull_request": {"number": 7, "base": {"sha": SHA_A}, "head": {"sha": SHA_B}}}
    path = tmp_path / "e.json"
    path.write_text(json.dumps(good))
    assert actions.pull_request(actions.load_event(path)) == actions.PullRequest(
        number=7, base_sha=SHA_A, head_sha=SHA_B
    )
    path.write_text("[1, 2]")
    with pytest.raises(actions.ActionsError, match="not a JSON object"):
        actions.load_event(path)
    path.write_text("{trunc")
    with pytest.raises(actions.ActionsError, match="event payload"):
        actions.load_event(path)


def test_summary_and_outputs_go_to_their_files_and_outputs_cannot_be_forged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert actions.append_summary("x") is False
    assert actions.set_outputs({"a": "1"}) is False

    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert actions.append_summary("### one")
    assert actions.append_summary("two\n")
    assert actions.set_outputs({"verdict": "regression", "exit-code": "1"})
    assert summary.read_text() == "### one\ntwo\n"
    assert output.read_text() == "verdict=regression\nexit-code=1\n"
    with pytest.raises(actions.ActionsError, match="one line"):
        actions.set_outputs({"verdict": "ok\nexit-code=0"})
    assert output.read_text() == "verdict=regression\nexit-code=1\n"
