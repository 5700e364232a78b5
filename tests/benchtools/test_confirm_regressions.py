"""The decisions of benchtools/confirm.py on synthetic published files (no asv run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchtools import confirm as cr
from benchtools.compare.model import Band, Verdict, VerdictKind

THRESHOLDS = {
    r"(?!bench_instructions\.)": 0.2,
    r"bench_load\.": 0.3,
    r"bench_instructions\.": 0.02,
}
INDEX: dict[str, Any] = {
    "revision_to_hash": {"0": "a" * 40, "1": "b" * 40, "2": "c" * 40, "3": "d" * 40},
    "params": {"machine": ["vm"], "branch": ["main"]},
    "benchmarks": {
        "bench_breaker.BreakerOps.time_reset": {"unit": "seconds", "params": []},
        "bench_breaker.GuardedCall.time_call_success": {
            "unit": "seconds",
            "params": [["'consecutive'", "'window'"]],
        },
        "bench_instructions.Ops.track_reset": {"unit": "instructions", "params": []},
    },
}
GRAPH = "graphs/machine-vm/bench_breaker.BreakerOps.time_reset.json"


def parent_of(commit: str) -> str:
    order = [INDEX["revision_to_hash"][str(r)] for r in range(4)]
    return order[order.index(commit) - 1]


def regressions(*entries: list[Any]) -> dict[str, Any]:
    return {"regressions": list(entries)}


def test_threshold_is_the_largest_matching_family_as_in_asv() -> None:
    assert cr.threshold_for("bench_breaker.BreakerOps.time_reset", THRESHOLDS) == 0.2
    assert cr.threshold_for("bench_load.ShortLoadRun.track_p99_ms", THRESHOLDS) == 0.3
    assert cr.threshold_for("bench_instructions.Ops.track_reset", THRESHOLDS) == 0.02
    assert cr.threshold_for("anything", {}) == cr.ASV_DEFAULT_THRESHOLD


def test_read_steps_resolves_commits_units_and_single_commit_steps() -> None:
    data = regressions(
        ["bench_breaker.BreakerOps.time_reset", GRAPH, {}, None, 2.0, 1.0, [[None, 2, 1.0, 2.0]]],
        [
            "bench_breaker.GuardedCall.time_call_success('window')",
            GRAPH,
            {},
            1,
            3.0,
            1.0,
            [[0, 2, 1.0, 1.5], [2, 3, 1.5, 3.0]],
        ],
    )

    steps = cr.read_steps(data, INDEX, THRESHOLDS, parent_of)

    assert [(s.name, s.before[0], s.after[0], s.entry, s.jump) for s in steps] == [
        ("bench_breaker.BreakerOps.time_reset", "b", "c", 0, 0),
        ("bench_breaker.GuardedCall.time_call_success('window')", "a", "c", 1, 0),
        ("bench_breaker.GuardedCall.time_call_success('window')", "c", "d", 1, 1),
    ]
    assert steps[0].unit == "seconds"
    assert steps[0].ratio == pytest.approx(2.0)
    assert steps[0].threshold == 0.2


def test_filtered_keeps_the_kept_jumps_and_drops_empty_entries() -> None:
    data = regressions(
        ["x.A.time_a", GRAPH, {}, None, 2.0, 1.0, [[None, 2, 1.0, 2.0]]],
        ["x.B.time_b", GRAPH, {}, None, 3.0, 1.0, [[0, 1, 1.0, 1.5], [None, 3, 1.5, 3.0]]],
    )
    steps = cr.read_steps(data, INDEX, THRESHOLDS, parent_of)

    out = cr.filtered(data, [steps[2]])

    assert out == regressions(["x.B.time_b", GRAPH, {}, None, 3.0, 1.0, [[None, 3, 1.5, 3.0]]])


def _step(
    ratio: float = 2.0, unit: str = "seconds", threshold: float = 0.2, before: float = 1.0
) -> cr.Step:
    return cr.Step(
        name="b.T.time_x",
        before="a" * 40,
        after="b" * 40,
        value_before=before,
        value_after=ratio * before,
        unit=unit,
        threshold=threshold,
        entry=0,
        jump=0,
    )


def _verdict(
    verdict: VerdictKind,
    center: float,
    low: float,
    high: float,
    *,
    base: float = 1.0,
    head: float | None = None,
    note: str = "",
) -> Verdict:
    return Verdict(
        name="b.T.time_x",
        verdict=verdict,
        unit="seconds",
        base=Band(base, base, base),
        head=Band(head or base * center, head or base * center, head or base * center),
        ratio=Band(center, low, high),
        rounds=8,
        note=note,
    )


def test_a_confirmed_regression_beyond_the_threshold_is_kept() -> None:
    d = cr.judge(_step(), _verdict("regression", 1.9, 1.85, 1.95))

    assert d.kept is True
    assert d.reason == "confirmed: 1.90x [1.85..1.95] in 8 paired rounds"


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        (_verdict("unchanged", 1.02, 0.97, 1.05), "re-measured 1.02x [0.97..1.05]: unchanged"),
        (_verdict("improvement", 0.5, 0.45, 0.55), "re-measured 0.50x [0.45..0.55]: improvement"),
        (
            _verdict("regression", 1.1, 1.05, 1.15),
            "re-measured 1.10x [1.05..1.15]: within the threshold 1.2x",
        ),
    ],
)
def test_steps_the_re_measurement_does_not_show_are_dropped(verdict: Verdict, reason: str) -> None:
    d = cr.judge(_step(), verdict)

    assert d.kept is False
    assert d.reason == reason


def test_a_step_not_re_measured_is_dropped_with_the_reason() -> None:
    d = cr.judge(_step(), None, error="the confirmation budget was spent")

    assert d.kept is False
    assert d.reason == "not re-measured: the confirmation budget was spent"


def test_counted_steps_are_judged_on_their_size_alone() -> None:
    assert cr.judge_counted(_step(1.05, "instructions", 0.02, before=10_000), 1.02).kept is True
    small = cr.judge_counted(_step(1.01, "instructions", 0.02, before=10_000), 1.02)
    assert small.kept is False
    assert (
        small.reason == "counted, deterministic: 1.010x (+100) is within 1.02x or 100 instructions"
    )
    # A heap-layout shift of a small operation: 5.8% but 53 instructions, not work.
    moved = cr.judge_counted(_step(909 / 856, "instructions", 0.02, before=856), 1.02)
    assert moved.kept is False


def test_plan_groups_by_commit_pair_largest_first() -> None:
    steps = [
        dataclass_replace(_step(1.3), name="p", after="c" * 40),
        dataclass_replace(_step(2.5), name="q", after="b" * 40),
        dataclass_replace(_step(1.4), name="r", after="c" * 40),
        dataclass_replace(_step(1.6), name="s", after="b" * 40),
    ]

    groups = cr.plan(steps)

    assert [(pair[1][0], [s.name for s in g]) for pair, g in groups] == [
        ("b", ["q", "s"]),
        ("c", ["r", "p"]),
    ]


def dataclass_replace(step: cr.Step, **changes: Any) -> cr.Step:
    import dataclasses

    return dataclasses.replace(step, **changes)


def test_separated_steps_find_a_clear_step_and_ignore_drift() -> None:
    # Identical code drifting 1.46x, then a real 2x step (the self-test's first run).
    drift = [460.0, 634.0, 553.0, 435.0]
    series = list(enumerate([*drift, 1090.0, 1074.0]))

    assert cr.separated_steps(series, 0.2, 4) == [(3, 4, 506.5, 1082.0)]
    assert cr.separated_steps(list(enumerate(drift)), 0.2, 4) == []
    # A single slow commit followed by a fast one is no step...
    assert cr.separated_steps(list(enumerate([*drift, 900.0, 450.0])), 0.2, 4) == []
    # ...the commit after a step is none either, and a step under the threshold is none.
    real = list(enumerate([430.0, 704.0, 501.0, 1034.0, 806.0]))  # the full-suite run
    assert cr.separated_steps(real, 0.2, 4) == [(2, 3, 501.0, 920.0)]
    assert cr.separated_steps(real, 0.7, 4) == []
    assert cr.separated_steps(list(enumerate([-1.0, 5.0, 5.0])), 0.2, 4) == []


def test_add_unlisted_adds_clear_steps_asv_missed_once(tmp_path: Path) -> None:
    graph = tmp_path / GRAPH
    graph.parent.mkdir(parents=True)
    graph.write_text(json.dumps([[0, 1.0], [1, 1.1], [2, 2.0], [3, 2.1]]))
    (tmp_path / "graphs" / "summary").mkdir()
    (tmp_path / "graphs" / "summary" / graph.name).write_text(graph.read_text())

    data, added = cr.add_unlisted(regressions(), tmp_path, INDEX, THRESHOLDS, parent_of, window=4)

    assert added == 1
    assert data == regressions(
        ["bench_breaker.BreakerOps.time_reset", GRAPH, {}, None, 2.1, 1.0, [[None, 2, 1.05, 2.05]]]
    )
    again, added = cr.add_unlisted(data, tmp_path, INDEX, THRESHOLDS, parent_of, window=4)
    assert added == 0
    assert again == data


class ScriptedMeasurer(cr.Measurer):
    """Verdicts from the true level of each commit (no asv): the ratio of the levels."""

    def __init__(self, levels: dict[str, float]) -> None:
        super().__init__(Path("."), {}, float("inf"), rounds=1, confirm_rounds=0)
        self.levels = levels
        self.calls: list[tuple[str, str]] = []

    def verdicts(self, before: str, after: str, thresholds: Any) -> tuple[dict[str, Verdict], str]:
        self.calls.append((before[0], after[0]))
        r = self.levels[after] / self.levels[before]
        kind: VerdictKind = "regression" if r > 1.2 else "unchanged"
        out = {
            name: _verdict(
                kind, r, r * 0.98, r * 1.02, base=self.levels[before], head=self.levels[after]
            )
            for name in thresholds
        }
        return out, ""


def test_locate_recent_moves_a_mislocated_step_to_the_commit_that_made_it() -> None:
    # Five commits a..e (revisions 0..4); the code got 2x slower at d. asv put the step
    # on b (a slow reading of identical code) and the candidate rule on e.
    window = [(r, INDEX["revision_to_hash"][str(r)]) for r in range(4)]
    window.append((4, "e" * 40))
    levels = {"a" * 40: 1.0, "b" * 40: 1.0, "c" * 40: 1.0, "d" * 40: 2.0, "e" * 40: 2.0}
    data = regressions(
        ["x.T.time_r", GRAPH, {}, None, 2.0, 1.0, [[None, 1, 1.0, 1.8], [3, 4, 1.0, 2.0]]],
        ["x.T.time_s", GRAPH, {}, None, 1.5, 1.0, [[None, 2, 1.0, 1.5]]],
    )
    index = {**INDEX, "revision_to_hash": {str(r): h for r, h in window}}
    parents = {h: window[i - 1][1] for i, (_, h) in enumerate(window) if i}
    steps = cr.read_steps(data, index, THRESHOLDS, parents.__getitem__)
    recent = {"x.T.time_r": steps[:2], "x.T.time_s": [steps[2]]}
    measurer = ScriptedMeasurer(levels)
    decisions: dict[tuple[int, int], cr.Decision] = {}

    added = cr.locate_recent(recent, window, measurer, data, decisions, parents.__getitem__)

    # time_s is in the same comparisons: a..e is a 2x regression for both benchmarks here,
    # so both are located at d; the steps asv listed on b, c and e are dropped.
    assert [(s.name, s.before[0], s.after[0]) for s in added] == [
        ("x.T.time_r", "c", "d"),
        ("x.T.time_s", "c", "d"),
    ]
    assert measurer.calls == [("a", "e"), ("a", "c"), ("c", "d")]
    assert all(decisions[s.entry, s.jump].kept for s in added)
    assert [decisions[s.entry, s.jump].kept for s in steps] == [False, False, False]
    assert decisions[steps[0].entry, steps[0].jump].reason.startswith("the step is at dddddddd")
    assert data["regressions"][0][6][-1] == [None, 3, 1.0, 2.0]


def test_locate_recent_drops_every_step_when_the_newest_commits_are_alike() -> None:
    window = [(r, INDEX["revision_to_hash"][str(r)]) for r in range(4)]
    levels = {h: 1.0 for _, h in window}
    data = regressions(["x.T.time_r", GRAPH, {}, None, 2.0, 1.0, [[None, 1, 1.0, 1.8]]])
    steps = cr.read_steps(data, INDEX, THRESHOLDS, parent_of)
    measurer = ScriptedMeasurer(levels)
    decisions: dict[tuple[int, int], cr.Decision] = {}

    added = cr.locate_recent({"x.T.time_r": steps}, window, measurer, data, decisions, parent_of)

    assert added == []
    assert measurer.calls == [("a", "d")]
    d = decisions[0, 0]
    assert d.kept is False
    assert (
        d.reason
        == "aaaaaaaa..dddddddd (the newest commits) re-measured 1.00x [0.98..1.02]: unchanged"
    )


def test_remembered_re_measurements_round_trip_and_bad_entries_are_left_out() -> None:
    seen = cr.Remembered(_verdict("regression", 1.9, 1.85, 1.95, note="x"), 1.2)
    data = json.loads(json.dumps(cr.cache_to_json({"b.T.time_x|a|b": seen})))
    data["old|a|b"] = {"name": "old", "verdict": "regression", "ratio": None}  # no factor
    data["bad|a|b"] = {**data["b.T.time_x|a|b"], "verdict": "maybe"}
    data["junk|a|b"] = 3

    assert cr.cache_from_json(data) == {"b.T.time_x|a|b": seen}
    assert cr.cache_from_json([1, 2]) == {}


def test_a_remembered_verdict_is_reused_only_for_a_threshold_it_was_judged_by(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = cr.Remembered(_verdict("unchanged", 1.1, 1.0, 1.2), 1.2)
    calls: list[tuple[str, str, list[str], float]] = []

    def compare_pair(
        repo: Path, before: str, after: str, names: list[str], **kw: Any
    ) -> tuple[dict[str, Verdict], str]:
        calls.append((before, after, names, kw["factor"]))
        return {n: _verdict("regression", 1.5, 1.4, 1.6) for n in names}, ""

    monkeypatch.setattr(cr, "compare_pair", compare_pair)
    cache = {"b.T.time_x|a|b": seen, "b.T.time_y|a|b": seen}
    m = cr.Measurer(Path("."), cache, float("inf"), rounds=1, confirm_rounds=0)

    got, error = m.verdicts("a", "b", {"b.T.time_x": 0.2, "b.T.time_y": 0.1})

    assert error == ""
    assert got["b.T.time_x"] is seen.verdict  # judged at 1.2 before: reused
    assert calls == [("a", "b", ["b.T.time_y"], 1.1)]  # 1.1 is stricter: measured again
    assert cache["b.T.time_y|a|b"] == cr.Remembered(got["b.T.time_y"], 1.1)


def test_a_failed_re_measurement_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    def compare_pair(
        repo: Path, before: str, after: str, names: list[str], **kw: Any
    ) -> tuple[dict[str, Verdict], str]:
        failed = Verdict("b.T.time_x", "failed", "seconds", None, None, None, note="boom")
        return {"b.T.time_x": failed}, ""

    monkeypatch.setattr(cr, "compare_pair", compare_pair)
    cache: dict[str, cr.Remembered] = {}
    m = cr.Measurer(Path("."), cache, float("inf"), rounds=1, confirm_rounds=0)

    got, _ = m.verdicts("a", "b", {"b.T.time_x": 0.2})

    assert got["b.T.time_x"].verdict == "failed"
    assert cache == {}
    assert cr.judge(_step(), got["b.T.time_x"]).reason == "could not re-measure: boom"
