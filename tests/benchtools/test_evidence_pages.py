"""The evidence pages of the published steps (``benchtools.evidence``), from reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchtools import evidence

AFTER = "b" * 40
PARENT = "a" * 40


def _step(**over: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": "bench_instructions.Instructions.track_breaker_reset",
        "before": PARENT,
        "after": AFTER,
        "unit": "instructions",
        "asv_ratio": 1.919,
        "origin": "asv",
        "threshold": 0.02,
        "kept": True,
        "reason": "counted, deterministic: 1.919x > 1.02x, +4467",
        "remeasured": None,
        "asv_named": [],
        "parent": PARENT,
        "calls": {
            "operation": "breaker_reset",
            "error": "",
            "changes": [
                {
                    "function": "pganalytics_core/breaker.py:CircuitBreaker.reset",
                    "kind": "changed",
                    "before": {"calls": 1.0, "bytecodes": 21.0, "own_ns": 761.4},
                    "after": {"calls": 1.0, "bytecodes": 40.0, "own_ns": 1400.0},
                },
                {
                    "function": "builtins.max",
                    "kind": "new",
                    "before": None,
                    "after": {"calls": 1.0, "bytecodes": 0.0, "own_ns": 40.0},
                },
            ],
        },
    }
    step.update(over)
    return step


def _write(html: Path, steps: list[dict[str, Any]]) -> None:
    html.mkdir(exist_ok=True)
    (html / evidence.REPORT_NAME).write_text(json.dumps({"steps": steps}))


def test_a_page_per_kept_step_and_the_listing(tmp_path: Path) -> None:
    dropped = _step(name="b.T.time_x", kept=False, reason="re-measured 1.00x: unchanged")
    _write(tmp_path, [_step(), dropped])

    pages = evidence.write_pages(tmp_path, "https://github.com/o/r/commit/")

    assert [p.name for p in pages] == ["bench_instructions.Instructions.track_breaker_reset"]
    page = (tmp_path / pages[0].page).read_text()
    assert "counted, deterministic: 1.919x &gt; 1.02x, +4467" in page
    assert "instruction count: deterministic" in page
    assert "<code>pganalytics_core/breaker.py:CircuitBreaker.reset</code>" in page
    assert "21 → 40" in page
    assert "<td>new</td>" in page
    assert f'href="https://github.com/o/r/commit/{AFTER}"' in page
    listing = json.loads((tmp_path / "evidence" / "steps.json").read_text())
    assert listing == {
        "steps": [
            {
                "name": pages[0].name,
                "commit": AFTER,
                "page": pages[0].page,
                "reason": "counted, deterministic: 1.919x > 1.02x, +4467",
            }
        ]
    }


def test_a_moved_step_names_the_commit_asv_had_named(tmp_path: Path) -> None:
    remeasured = {
        "rounds": 8,
        "ratio": {"center": 1.81, "low": 1.8, "high": 1.89},
        "base": {"center": 1e-6, "low": 1e-6, "high": 1.1e-6},
        "head": {"center": 1.8e-6, "low": 1.8e-6, "high": 1.9e-6},
    }
    step = _step(
        name="bench_breaker.BreakerOps.time_reset",
        unit="seconds",
        threshold=0.2,
        remeasured=remeasured,
        asv_named=["c" * 40],
        calls=None,
    )
    _write(tmp_path, [step])

    (page,) = evidence.write_pages(tmp_path)
    text = (tmp_path / page.page).read_text()
    assert "<code>cccccccc</code> (moved here by bisection in paired rounds)" in text
    assert "paired wall-clock rounds: 8" in text
    assert "1.81 [1.8..1.89]" in text
    assert "<th>threshold</th><td>1.2x</td>" in text
    assert "No call profile: no operation" in text
    assert "href=" not in text.split("<h1")[1].split("</table>")[0]  # no commit links


def test_hostile_names_are_escaped_and_file_names_safe(tmp_path: Path) -> None:
    name = "b.T.time_x(\"<script>alert(1)</script>\", '../../etc')"
    _write(tmp_path, [_step(name=name, reason="<img src=x onerror=alert(1)>")])

    (page,) = evidence.write_pages(tmp_path)

    path = tmp_path / page.page
    assert path.parent == tmp_path / "evidence"
    assert "/" not in path.name.removesuffix(".html").replace("..", "")
    text = path.read_text()
    assert "<script>" not in text
    assert "<img" not in text
    assert "&lt;script&gt;" in text


def test_identical_calls_and_profile_errors_say_so(tmp_path: Path) -> None:
    empty = _step(calls={"operation": "breaker_reset", "error": "", "changes": []})
    failed = _step(
        name="b.T.track_y", calls={"operation": "y", "error": "before: n/a: x", "changes": []}
    )
    _write(tmp_path, [empty, failed])

    first, second = evidence.write_pages(tmp_path)

    assert "Call counts identical" in (tmp_path / first.page).read_text()
    assert "No call profile: before: n/a: x" in (tmp_path / second.page).read_text()


def test_old_pages_go_and_no_report_means_an_empty_listing(tmp_path: Path) -> None:
    _write(tmp_path, [_step()])
    (old,) = evidence.write_pages(tmp_path)
    (tmp_path / evidence.REPORT_NAME).unlink()

    assert evidence.write_pages(tmp_path) == []
    assert not (tmp_path / old.page).exists()
    steps = json.loads((tmp_path / "evidence" / "steps.json").read_text())
    assert steps == {"steps": []}


@pytest.mark.parametrize("text", ["{", "[]", '{"steps": 3}'])
def test_a_report_that_is_not_one_is_a_typed_error(tmp_path: Path, text: str) -> None:
    (tmp_path / evidence.REPORT_NAME).write_text(text)
    with pytest.raises(evidence.EvidenceError, match="is not a confirmation report"):
        evidence.write_pages(tmp_path)
