"""``python -m benchtools confirm`` in this process, on a published fixture history.

With no budget for re-measuring, every timed step asv lists is dropped ("not
re-measured"), never published unconfirmed; the feed and the list are rewritten by asv's
own writers, the report says why for each step, and the evidence listing is empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import site_fixture as sf

from benchtools import confirm, evidence
from benchtools import site as bench_site


def _published(root: Path) -> Path:
    history = sf.make_history(root / "repo")
    sf.write_results(history.repo / ".asv" / "results", history)
    sf.asv_publish(history.repo)
    return history.repo


def test_confirm_without_budget_drops_every_timed_step_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _published(tmp_path)
    html = repo / "html"
    listed = json.loads((html / "regressions.json").read_text())["regressions"]
    assert [entry[0] for entry in listed] == ["bench_demo.Breaker.time_call"]

    code = confirm.main(["--repo", str(repo), "--budget-min", "0", "--window", "0"])

    assert code == 0
    out = capsys.readouterr().out
    assert "confirm: asv listed 1 step(s)" in out
    assert "dropped bench_demo.Breaker.time_call" in out
    assert json.loads((html / "regressions.json").read_text())["regressions"] == []
    assert "<entry>" not in (html / "regressions.xml").read_text()
    report = json.loads((html / evidence.REPORT_NAME).read_text())
    (step,) = report["steps"]
    assert step["kept"] is False
    assert step["reason"] == "not re-measured: the confirmation budget was spent"
    assert step["calls"] is None
    assert step["remeasured"] is None
    assert (repo / ".asv" / confirm.CACHE_NAME).is_file()

    links = bench_site.site_links(repo, env={})
    bench_site.finish(html, links)
    listing = json.loads((html / "evidence" / "steps.json").read_text())
    assert listing == {"steps": []}


def test_confirm_names_a_history_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _published(tmp_path)
    (repo / "html" / "regressions.json").write_text("{")

    assert confirm.main(["--repo", str(repo), "--budget-min", "0"]) == 2
    assert "cannot read the published history" in capsys.readouterr().err
