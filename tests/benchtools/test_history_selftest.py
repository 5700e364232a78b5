"""``python -m benchtools selftest history`` at reduced size: the published Regressions list.

Six breaker benchmarks, a history of docs-only commits and one commit making
``CircuitBreaker.reset()`` do its work twice, measured by the main job
(``python -m benchtools bench``) twice in a temporary clone: the docs-only history must publish
no step; with the plant, exactly the benchmarks timing ``reset()`` at that commit. Real
asv builds, runs and paired re-measurements (about 2 min; 1 more the first time, to
create asv's environment).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchtools import selftest_history as history_selftest
from benchtools.plant import SelftestError

ROOT = Path(__file__).resolve().parents[2]

BREAKER_SOURCE = '''
class CircuitBreaker:
    def reset(self) -> None:
        """Close the circuit."""
        with self._lock:
            self._enter_closed_locked()
        self._deliver()

    def force_open(self) -> None:
        pass
'''

SELECTION = [
    r"BreakerOps\.time_(reset|state)$",
    r"EdgeCases\.time_many_resets",
    r"GuardedCall\.time_call_success",
    r"Floor\.time_empty_call",
]


def test_plant_repeats_the_body_of_reset_only() -> None:
    planted = history_selftest.plant(BREAKER_SOURCE)

    lines = planted.splitlines()
    assert lines[4:11] == [
        "        with self._lock:",
        "            self._enter_closed_locked()",
        "        self._deliver()",
        "        # history selftest: planted slowdown, reset() does its work twice",
        "        with self._lock:",
        "            self._enter_closed_locked()",
        "        self._deliver()",
    ]
    assert lines[12:14] == ["    def force_open(self) -> None:", "        pass"]
    compile(planted, "breaker.py", "exec")  # still valid Python


def test_plant_refuses_a_breaker_without_reset() -> None:
    with pytest.raises(SelftestError, match="no reset"):
        history_selftest.plant("class CircuitBreaker:\n    pass\n")


def test_judge_names_false_steps_and_misses() -> None:
    s = "s" * 40
    listed = [
        history_selftest.Listed("b.BreakerOps.time_reset", s, 2.0),
        history_selftest.Listed("b.BreakerOps.time_state", s, 1.3),
        history_selftest.Listed("b.GuardedCall.time_call_failure('window')", s, 1.1),
        history_selftest.Listed("b.EdgeCases.time_many_resets", "d" * 40, 1.5),
    ]
    measured = ["b.BreakerOps.time_reset", "b.EdgeCases.time_many_resets", "b.X.time_y"]

    out = history_selftest.judge(
        listed, s, measured, history_selftest.DEFAULT_MUST, history_selftest.DEFAULT_MAY
    )

    assert out == {
        "false_steps": [
            "b.BreakerOps.time_state at ssssssss (1.30x)",
            "b.EdgeCases.time_many_resets at dddddddd (1.50x)",
        ],
        "must_detect": ["b.BreakerOps.time_reset", "b.EdgeCases.time_many_resets"],
        "detected": ["b.BreakerOps.time_reset"],
        "missed": ["b.EdgeCases.time_many_resets"],
        "either_way": ["b.GuardedCall.time_call_failure('window')"],
    }


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_selftest_reduced_publishes_the_planted_step_and_nothing_else(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # In this process (its main job, ``benchtools bench`` in the clone, is the clone's own
    # program); the test's timeout ends it like Ctrl-C, and the clone is removed.
    out = tmp_path / "history.json"
    argv = ["--json", str(out)]
    for regex in SELECTION:
        argv += ["-b", regex]
    returncode = history_selftest.main(argv)
    text = "".join(capfd.readouterr())
    result = json.loads(out.read_text()) if out.exists() else {}
    assert result, text[-4000:]

    docs, planted = result["docs_only"], result["planted"]
    assert docs["published"] == [], text[-4000:]
    assert planted["false_steps"] == [], text[-4000:]
    assert planted["must_detect"] == [
        "bench_breaker.BreakerOps.time_reset",
        "bench_breaker.EdgeCases.time_many_resets",
    ]
    assert planted["missed"] == [], text[-4000:]
    assert sorted(s["name"] for s in planted["published"]) == planted["must_detect"]
    assert {s["after"] for s in planted["published"]} == {result["plant"]}
    # The evidence: each reset() step has its page, and its call diff names the plant.
    assert planted["misexplained"] == [], text[-4000:]
    assert sorted(line.split(":", 1)[0] for line in planted["explained"]) == planted["must_detect"]
    assert all(
        ": pganalytics_core/breaker.py:CircuitBreaker.reset first (evidence/" in line
        for line in planted["explained"]
    ), planted["explained"]
    assert result["passed"] is True
    assert returncode == 0, text[-4000:]
