"""The verdict logic and reports of the review tool (benchtools/compare), on synthetic
results: no asv, no run."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

import benchtools.compare as ac

NS = 1e-9


def timed(*points_ns: float, spread: float = 0.02, first_round: int = 1) -> list[ac.RoundResult]:
    """Time results, one per round: the fastest sample is the given point."""
    return [
        ac.RoundResult(
            first_round + i,
            p * NS * (1 + spread / 2),
            tuple(p * NS * (1 + spread * k / 4) for k in range(5)),
        )
        for i, p in enumerate(points_ns)
    ]


def tracked(*values: float) -> list[ac.RoundResult]:
    """track_ results (one value per round, no samples)."""
    return [ac.RoundResult(i + 1, v) for i, v in enumerate(values)]


def failed(error: str = "ZeroDivisionError: division by zero") -> list[ac.RoundResult]:
    return [ac.RoundResult(1, None, error=error)]


def skipped() -> list[ac.RoundResult]:
    return [ac.RoundResult(1, math.nan)]


BASE = (100, 101, 99, 100, 102, 100)


def test_identical_sides_are_unchanged_with_ratio_one() -> None:
    v = ac.classify("b.T.time_x", timed(*BASE), timed(*BASE))

    assert v.verdict == ac.UNCHANGED
    assert v.ratio is not None
    assert v.ratio.center == pytest.approx(1.0)
    assert v.rounds == 6
    assert ac.exit_code([v]) == 0


def test_slowdown_beyond_factor_and_noise_is_a_regression() -> None:
    v = ac.classify("b.T.time_x", timed(*BASE), timed(*(1.5 * p for p in BASE)))

    assert v.verdict == ac.REGRESSION
    assert v.ratio is not None
    assert v.ratio.center == pytest.approx(1.5)
    assert v.ratio.low > 1
    assert ac.exit_code([v]) == 1


def test_speedup_beyond_factor_and_noise_is_an_improvement() -> None:
    v = ac.classify("b.T.time_x", timed(*BASE), timed(*(0.6 * p for p in BASE)))

    assert v.verdict == ac.IMPROVEMENT
    assert v.ratio is not None
    assert v.ratio.center == pytest.approx(0.6)
    assert ac.exit_code([v]) == 0


def test_ratio_must_be_strictly_beyond_the_factor() -> None:
    v = ac.classify("b.T.time_x", timed(*BASE), timed(*(1.2 * p for p in BASE)), factor=1.2)
    assert v.verdict == ac.UNCHANGED

    v = ac.classify("b.T.time_x", timed(*BASE), timed(*(1.3 * p for p in BASE)), factor=1.25)
    assert v.verdict == ac.REGRESSION


def test_median_beyond_factor_with_spread_crossing_one_is_noise() -> None:
    # Per-round ratios 0.8 0.9 1.3 1.4 1.5 1.6: median 1.35, but q1 = 1.0.
    v = ac.classify("b.T.track_x", tracked(*[10.0] * 6), tracked(8, 9, 13, 14, 15, 16))

    assert v.verdict == ac.UNCHANGED
    assert v.ratio is not None
    assert v.ratio.center == pytest.approx(1.35)
    assert v.ratio.low == pytest.approx(1.0)
    assert "within noise" in v.note


def test_rounds_of_one_side_in_a_slow_spell_are_set_aside() -> None:
    # Base ran through a 1.9x slow spell in rounds 2 and 5; head is truly 1.5x slower.
    base = timed(100, 190, 101, 99, 188, 100)
    head = timed(150, 151, 149, 150, 152, 151)

    v = ac.classify("b.T.time_x", base, head)

    assert v.verdict == ac.REGRESSION
    assert v.ratio is not None
    assert v.ratio.center == pytest.approx(1.5, rel=0.02)


def test_a_spell_on_the_head_side_does_not_make_a_regression() -> None:
    base = timed(*BASE)
    head = timed(100, 190, 190, 101, 99, 190)

    v = ac.classify("b.T.time_x", base, head)

    assert v.verdict == ac.UNCHANGED
    assert v.ratio is not None
    assert v.ratio.center == pytest.approx(1.0, abs=0.02)


def test_undisturbed_needs_three_rounds_else_keeps_all() -> None:
    pairs = list(zip(timed(100, 190, 190), timed(100, 190, 190), strict=True))
    assert len(ac.undisturbed(pairs)) == 3

    pairs = list(zip(timed(100, 100, 100, 190), timed(100, 100, 100, 100), strict=True))
    assert [b.round for b, _ in ac.undisturbed(pairs)] == [1, 2, 3]


def test_failure_on_either_side_fails_with_the_error() -> None:
    v = ac.classify("b.T.time_x", failed("KeyError: 'x'"), timed(*BASE))

    assert v.verdict == ac.FAILED
    assert v.note == "base failed: KeyError: 'x'"
    assert v.head is not None  # what did run is still shown
    assert ac.exit_code([v]) == 2

    v = ac.classify("b.T.time_x", timed(*BASE), failed())
    assert v.verdict == ac.FAILED
    assert v.note == "head failed: ZeroDivisionError: division by zero"


def test_a_failure_in_any_round_fails_the_side() -> None:
    head = [*timed(*BASE[:5]), ac.RoundResult(6, None, error="RuntimeError: flaky")]

    v = ac.classify("b.T.time_x", timed(*BASE), head)

    assert v.verdict == ac.FAILED
    assert "flaky" in v.note


def test_missing_side_fails() -> None:
    v = ac.classify("b.T.time_x", timed(*BASE), [])

    assert v.verdict == ac.FAILED
    assert v.note == "head missing"


def test_not_implemented_on_base_is_new_not_a_failure() -> None:
    v = ac.classify("b.T.time_x", skipped(), timed(*BASE))

    assert v.verdict == ac.NEW
    assert v.base is None
    assert v.head is not None
    assert ac.exit_code([v]) == 0


def test_not_implemented_on_head_only_could_not_run() -> None:
    v = ac.classify("b.T.time_x", timed(*BASE), skipped())

    assert v.verdict == ac.FAILED
    assert "n/a on head" in v.note
    assert ac.exit_code([v]) == 2


def test_not_implemented_on_both_sides_is_not_run() -> None:
    v = ac.classify("b.T.time_x", skipped(), skipped())

    assert v.verdict == ac.NOT_RUN
    assert ac.exit_code([v]) == 0


def test_values_of_zero_or_below_have_no_ratio() -> None:
    v = ac.classify("b.T.track_pct", tracked(-0.4, 0.2, 1.0), tracked(30.0, 12.0, 25.0))

    assert v.verdict == ac.UNCHANGED
    assert v.ratio is None
    assert v.note == "no ratio of values <= 0"


def test_single_round_uses_each_sides_own_samples_as_spread() -> None:
    def one(*samples_ns: float) -> list[ac.RoundResult]:
        return [ac.RoundResult(0, samples_ns[0] * NS, tuple(x * NS for x in samples_ns))]

    tight_base = one(100, 101, 102, 103, 200)
    loose_base = one(100, 125, 130, 135, 140)  # lower quartile 125
    head = one(121, 122, 123, 124, 125)

    assert ac.classify("b.T.time_x", tight_base, head).verdict == ac.REGRESSION
    v = ac.classify("b.T.time_x", loose_base, head)
    assert v.ratio is not None
    assert v.ratio.center == pytest.approx(1.21)
    assert v.ratio.low == pytest.approx(121 / 125)
    assert v.verdict == ac.UNCHANGED


def test_quick_runs_are_not_judged() -> None:
    v = ac.classify("b.T.time_x", timed(100), timed(300), judge=False)

    assert v.verdict == ac.UNCHANGED
    assert v.note == "quick run: not judged"


def test_factor_must_be_above_one() -> None:
    with pytest.raises(ValueError, match="factor must be > 1"):
        ac.classify("b.T.time_x", timed(100), timed(100), factor=1.0)


def test_exit_code_failure_wins_over_regression() -> None:
    regression = ac.classify("b.a", timed(*BASE), timed(*(2 * p for p in BASE)))
    failure = ac.classify("b.b", failed(), timed(*BASE))
    unchanged = ac.classify("b.c", timed(*BASE), timed(*BASE))

    assert ac.exit_code([unchanged]) == 0
    assert ac.exit_code([unchanged, regression]) == 1
    assert ac.exit_code([regression, failure, unchanged]) == 2
    assert ac.exit_code([]) == 0


def _measurements(base: list[ac.RoundResult], head: list[ac.RoundResult]) -> ac.Measurements:
    m = ac.Measurements()
    m.kinds["b.T.x"] = "track"
    m.units["b.T.x"] = "unit"
    for r in base:
        m.add("B", "b.T.x", r)
    for r in head:
        m.add("H", "b.T.x", r)
    return m


def test_a_change_must_be_confirmed_by_the_confirmation_rounds_alone() -> None:
    # Rounds 1-6 at 1.5x; the 6 confirmation rounds alone are within noise (q1 = 1.0),
    # though all 12 together would pass (median 1.4, q1 1.3).
    base = tracked(*[10.0] * 12)
    head = tracked(*[15.0] * 6, 13, 9, 13, 9, 13, 13)
    m = _measurements(base, head)

    assert ac.compare_all(m, "B", "H", factor=1.2)[0].verdict == ac.REGRESSION
    (v,) = ac.compare_all(m, "B", "H", factor=1.2, confirmed_after=6)
    assert v.verdict == ac.UNCHANGED
    assert v.note == "not confirmed: 1.30x [1.00..1.30] in the confirmation rounds"


def test_a_confirmed_change_stays() -> None:
    m = _measurements(tracked(*[10.0] * 12), tracked(*[15.0] * 12))

    (v,) = ac.compare_all(m, "B", "H", factor=1.2, confirmed_after=6)

    assert v.verdict == ac.REGRESSION
    assert v.rounds == 12


def test_suspects_include_changes_and_ratios_beyond_factor_within_noise() -> None:
    changed = ac.classify("b.a", timed(*BASE), timed(*(2 * p for p in BASE)))
    noisy = ac.classify("b.b", tracked(*[10.0] * 6), tracked(8, 9, 13, 14, 15, 16))
    same = ac.classify("b.c", timed(*BASE), timed(*BASE))

    assert ac.suspects([changed, noisy, same], 1.2) == ["b.a", "b.b"]


def _report() -> tuple[list[ac.Verdict], ac.ReportInfo]:
    verdicts = [
        ac.classify("b.Ops.time_same", timed(*BASE), timed(*BASE)),
        ac.classify("b.Ops.time_faster", timed(*BASE), timed(*(0.5 * p for p in BASE))),
        ac.classify("b.Ops.time_slower(a|b)", timed(*BASE), timed(*(1.6 * p for p in BASE))),
        ac.classify("b.Ops.time_broken", timed(*BASE), failed()),
        ac.classify("b.Ops.time_added", skipped(), timed(*BASE)),
    ]
    info = ac.ReportInfo(
        base="a" * 40,
        head="b" * 40,
        base_label="main",
        head_label="HEAD",
        factor=1.2,
        rounds=6,
        confirm_rounds=6,
        warnings=("uncommitted changes are not benchmarked",),
    )
    return verdicts, info


def test_text_report_lists_regressions_first_then_improvements_then_the_rest() -> None:
    verdicts, info = _report()

    text = ac.render_text(verdicts, info)

    sections = [
        text.index("Regressions (1):"),
        text.index("Improvements (1):"),
        text.index("Failed or could not run (1):"),
        text.index("New (n/a on base) (1):"),
        text.index("Unchanged (1):"),
    ]
    assert sections == sorted(sections)
    slower = next(line for line in text.splitlines() if "time_slower" in line)
    assert slower.split() == [
        "b.Ops.time_slower(a|b)",
        "100ns",
        "[99ns..102ns]",
        "->",
        "160ns",
        "[158ns..163ns]",
        "1.60x",
    ]
    assert "warning: uncommitted changes are not benchmarked" in text
    assert text.rstrip().endswith(
        "summary: 1 regression(s), 1 improvement(s), 1 failed, 1 new, 1 unchanged; exit 2"
    )


def test_markdown_report_is_a_pasteable_summary_with_tables() -> None:
    verdicts, info = _report()

    md = ac.render_markdown(verdicts, info)

    assert md.startswith("### Benchmarks: benchmark failure\n")
    assert "`aaaaaaaa` (main) → `bbbbbbbb` (HEAD)" in md
    assert "#### Regressions (1)\n\n| Benchmark | Base | Head | Ratio | Evidence | Note |" in md
    assert "`b.Ops.time_slower(a\\|b)`" in md  # a pipe would break the table
    assert "| 1.60x |" in md
    assert "<details>\n<summary>Unchanged (1)</summary>" in md
    assert "> **Warning:** uncommitted changes are not benchmarked" in md
    assert md.index("#### Regressions") < md.index("#### Improvements") < md.index("Unchanged")


def test_markdown_title_follows_the_exit_code() -> None:
    verdicts, info = _report()
    ok = [v for v in verdicts if v.verdict in (ac.UNCHANGED, ac.IMPROVEMENT, ac.NEW)]
    regressed = [v for v in verdicts if v.verdict != ac.FAILED]

    assert ac.render_markdown(ok, info).startswith("### Benchmarks: no regression\n")
    assert ac.render_markdown(regressed, info).startswith("### Benchmarks: regression\n")


def test_human_units() -> None:
    assert ac.human(1.234e-6, "seconds") == "1.23μs"
    assert ac.human(0.5e-9, "seconds") == "0.5ns"
    assert ac.human(31.8e6, "bytes") == "31.8M"
    assert ac.human(449, "bytes") == "449"
    assert ac.human(2.5, "percent") == "2.5 percent"


def test_measurements_survive_json() -> None:
    m = _measurements(timed(100, 101), [*timed(150), ac.RoundResult(2, None, error="boom")])

    again = ac.measurements_from_json(json.loads(json.dumps(ac.measurements_to_json(m))))

    assert again == m


def test_quantile_interpolates() -> None:
    assert ac.quantile([4, 1, 3, 2], 0.5) == 2.5
    assert ac.quantile([1, 2, 3, 4, 5], 0.25) == 2
    with pytest.raises(ValueError, match="no values"):
        ac.quantile([], 0.5)


MAIN_TO_HEAD = ac.ReportInfo(
    base="a" * 40, head="b" * 40, base_label="main", head_label="HEAD", factor=1.2, rounds=4
)


def test_an_inform_only_regression_is_reported_but_does_not_exit_1() -> None:
    loopback = ac.classify(
        "bench_client.LoopbackAsync.time_x", timed(*BASE), timed(*(2 * p for p in BASE))
    )
    cpu = ac.classify("bench_breaker.Ops.time_call", timed(*BASE), timed(*(2 * p for p in BASE)))
    failure = ac.classify("bench_client.LoopbackSync.time_y", failed(), timed(*BASE))
    inform = (r"bench_client\.Loopback",)

    assert loopback.verdict == cpu.verdict == ac.REGRESSION
    assert ac.blocks(cpu, inform)
    assert not ac.blocks(loopback, inform)
    assert ac.exit_code([loopback], inform) == 0
    assert ac.exit_code([loopback, cpu], inform) == 1
    assert ac.exit_code([loopback, failure], inform) == 2  # a failure always blocks
    info = dataclasses.replace(MAIN_TO_HEAD, inform_only=inform)
    text = ac.render_text([loopback], info)
    assert "informs only, does not block" in text
    assert text.rstrip().endswith("; exit 0")
    md = ac.render_markdown([loopback], info)
    assert md.startswith("### Benchmarks: no regression\n")
    assert "which only inform" in md


def test_each_markdown_row_says_what_its_verdict_rests_on() -> None:
    wall = ac.classify("b.Ops.time_x", timed(*BASE), timed(*(2 * p for p in BASE)))
    count = ac.classify_instructions("b.I.track_x", tracked(10_000), tracked(11_000))
    info = MAIN_TO_HEAD

    md = ac.render_markdown([wall, count], info)

    assert f"| {wall.rounds} paired rounds |" in md
    assert wall.rounds >= 1
    assert "| instruction count (deterministic) |" in md
    assert ac.evidence(wall, paired=False) == "stored runs (unpaired)"
