"""The call-count evidence: the profiler (``benchtools/callprofile.py``, run by path as
``make compare`` runs it) and the diff and reports built on it (``compare.calldiff``)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from benchtools import callprofile, plant
from benchtools.compare import Band, ReportInfo, Verdict, render_markdown, render_text
from benchtools.compare.calldiff import (
    CallDiff,
    Change,
    Cost,
    ProfileError,
    call_diffs,
    diff,
    operation_of,
    read_mirrors,
    read_profiles,
    summary,
    to_json,
)
from benchtools.compare.model import Measurements
from benchtools.compare.report import report_json

ROOT = Path(__file__).resolve().parents[2]
OPS = ["breaker_reset", "breaker_call_success", "floor_empty_call"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package whose ``CircuitBreaker.reset()`` does its work twice."""
    root = tmp_path_factory.mktemp("planted")
    shutil.copytree(
        ROOT / "pganalytics_core",
        root / "pganalytics_core",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    breaker = root / "pganalytics_core" / "breaker.py"
    breaker.write_text(plant.plant_reset(breaker.read_text()))
    return root


@pytest.mark.parametrize(
    ("description", "name"),
    [
        ("<built-in method time.monotonic>", "time.monotonic"),
        ("<built-in method builtins.max>", "builtins.max"),
        ("<method 'acquire' of '_thread.lock' objects>", "_thread.lock.acquire"),
        (
            "<built-in method acquire of _thread.lock object at 0x7f3a2c1b9e40>",
            "_thread.lock.acquire",
        ),
        ("<built-in function len>", "len"),
    ],
)
def test_builtins_are_named_without_addresses(description: str, name: str) -> None:
    assert callprofile.builtin_name(description) == name


def test_code_is_named_relative_to_the_path_entry_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    roots = callprofile.Roots([str(tmp_path), str(tmp_path / "pkg"), "/no/such/dir"])
    assert roots.file(str(tmp_path / "pkg" / "mod.py")) == "mod.py"  # the longest entry
    assert roots.file(str(tmp_path / "other.py")) == "other.py"
    assert roots.file("<frozen importlib>") == "<frozen importlib>"


def test_the_profile_counts_calls_and_bytecodes_per_operation_exactly() -> None:
    def helper() -> None:
        pass

    def body() -> None:
        for _ in range(3):
            helper()
        len("x")

    roots = callprofile.Roots([str(Path(__file__).parent)])
    table = callprofile.costs(body, 50, 50, roots)
    here = "test_calldiff.py:test_the_profile_counts_calls_and_bytecodes_per_operation_exactly"
    assert table[f"{here}.<locals>.helper"][:2] == (3.0, 6.0)  # 2 bytecodes per call
    assert table[f"{here}.<locals>.body"][0] == 1.0
    assert table["builtins.len"][:2] == (1.0, 0.0)
    assert not any(name.startswith("_lsprof") for name in table)  # the profiler cancels


def test_the_same_code_twice_gives_the_same_counts() -> None:
    first = read_profiles(sys.executable, [ROOT], OPS)
    second = read_profiles(sys.executable, [ROOT], OPS)
    for op in OPS:
        a, b = first[op], second[op]
        assert not isinstance(a, str)
        assert not isinstance(b, str)
        assert {k: (c.calls, c.bytecodes) for k, c in a.items()} == {
            k: (c.calls, c.bytecodes) for k, c in b.items()
        }
        assert diff(a, b) == ()


def test_a_planted_change_is_named_at_the_top_of_the_diff(planted: Path) -> None:
    base = read_profiles(sys.executable, [ROOT], ["breaker_reset", "breaker_call_success"])
    head = read_profiles(sys.executable, [planted, ROOT], ["breaker_reset", "breaker_call_success"])
    reset_base, reset_head = base["breaker_reset"], head["breaker_reset"]
    assert not isinstance(reset_base, str)
    assert not isinstance(reset_head, str)
    changes = diff(reset_base, reset_head)
    assert changes[0].function == "pganalytics_core/breaker.py:CircuitBreaker.reset"
    assert changes[0].after is not None
    assert changes[0].before is not None
    assert changes[0].after.bytecodes > changes[0].before.bytecodes
    # call() never runs reset(): no diff there
    call_base, call_head = base["breaker_call_success"], head["breaker_call_success"]
    assert not isinstance(call_base, str)
    assert not isinstance(call_head, str)
    assert diff(call_base, call_head) == ()


def test_an_operation_the_commit_lacks_is_said_so() -> None:
    got = read_profiles(sys.executable, [ROOT], ["no_such_operation"])
    assert got == {"no_such_operation": "no such operation at this commit"}


def test_a_profiler_that_cannot_run_raises_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="exited 1"):
        read_profiles(sys.executable, [tmp_path / "nothing"], ["breaker_reset"])
    with pytest.raises(ProfileError, match="did not run"):
        read_profiles(str(tmp_path / "no-python"), [ROOT], ["breaker_reset"])


def test_the_profiler_refuses_a_bad_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert callprofile.main(["not json"]) == 2
    assert callprofile.main([json.dumps({"operations": []})]) == 2
    assert "usage" in capsys.readouterr().err


def test_wall_clock_benchmarks_find_the_operation_that_mirrors_them() -> None:
    mirrors = read_mirrors(sys.executable, [ROOT])
    assert "bench_breaker.BreakerOps.time_reset" in mirrors["breaker_reset"]
    assert operation_of("bench_breaker.EdgeCases.time_many_resets", mirrors) == "breaker_reset"
    assert (
        operation_of("bench_breaker.GuardedCall.time_call_success('window')", mirrors)
        == "breaker_call_success"
    )
    assert operation_of("bench_instructions.Instructions.track_breaker_state", {}) == (
        "breaker_state"
    )
    assert operation_of("bench_client.LoopbackSync.time_predict_loopback", mirrors) is None


def test_the_diff_names_changed_code_before_what_it_calls_more() -> None:
    before = {
        "edited": Cost(1, 10, 0),
        "called_twice": Cost(1, 30, 0),
        "gone": Cost(2, 0, 0),
        "same": Cost(1, 3, 9),
        "slower": Cost(1, 5, 0),
    }
    after = {
        "edited": Cost(1, 12, 0),
        "called_twice": Cost(2, 60, 0),
        "new": Cost(1, 0, 0),
        "same": Cost(1, 3, 1),  # own time is not a change: it is not exact
        "slower": Cost(1, 25, 0),
    }
    changes = diff(before, after)
    assert [c.function for c in changes] == ["slower", "edited", "called_twice", "gone", "new"]
    assert [c.kind for c in changes] == ["changed", "changed", "changed", "gone", "new"]
    assert [c.own_code_changed for c in changes] == [True, True, False, False, False]


def _verdict(name: str, unit: str = "instructions") -> Verdict:
    return Verdict(name, "regression", unit, Band(1, 1, 1), Band(2, 2, 2), Band(2, 2, 2), 1)


def test_nothing_flagged_means_no_profile_at_all() -> None:
    unchanged = Verdict("x", "unchanged", "seconds", None, None, Band(1, 1, 1), 4)
    # The interpreter does not exist: any attempt to profile would fail loudly.
    assert call_diffs([unchanged], "/no/python", {}, "a", "b") == {}


def test_compare_attaches_the_diff_to_the_flagged_verdicts(planted: Path) -> None:
    verdicts = [
        _verdict("bench_instructions.Instructions.track_breaker_reset"),
        _verdict("bench_breaker.BreakerOps.time_reset", "seconds"),
        _verdict("bench_client.LoopbackSync.time_predict_loopback", "seconds"),
    ]
    paths = {"base": [ROOT], "head": [planted, ROOT]}
    got = call_diffs(verdicts, sys.executable, paths, "base", "head")
    assert set(got) == {verdicts[0].name, verdicts[1].name}  # the client has no operation
    for d in got.values():
        assert d.operation == "breaker_reset"
        assert d.changes[0].function == "pganalytics_core/breaker.py:CircuitBreaker.reset"
    info = ReportInfo(
        base="a" * 40, head="b" * 40, base_label="main", head_label="HEAD", factor=1.2
    )
    text = render_text(verdicts, info, got)
    assert "what ran more, per operation" in text
    assert re.search(
        r"^    pganalytics_core/breaker.py:CircuitBreaker.reset +calls 1 -> 1, bytecodes 2",
        text,
        re.M,
    )
    markdown = render_markdown(verdicts, info, got)
    assert "#### What ran more" in markdown
    assert "| `pganalytics_core/breaker.py:CircuitBreaker.reset` | 1 → 1 |" in markdown
    data = json.loads(json.dumps(report_json(verdicts, info, Measurements(), got)))
    first = data["calls"][verdicts[0].name]["changes"][0]
    assert first["function"] == "pganalytics_core/breaker.py:CircuitBreaker.reset"
    assert first["kind"] == "changed"


def test_an_empty_diff_says_what_the_profile_cannot_see() -> None:
    d = CallDiff("bench_instructions.Instructions.track_x", "x")
    assert summary(d).startswith("call counts identical: the change is in C code")
    assert summary(CallDiff("b", "x", error="base: n/a: missing")) == (
        "no call profile: base: n/a: missing"
    )
    many = CallDiff("b", "x", tuple(Change(f"f{i}", None, Cost(1, 1, 0)) for i in range(10)))
    assert summary(many) == "f0: calls 0 -> 1, bytecodes 0 -> 1 (new); 9 more changed"
    assert to_json({"b": d}) == {"b": {"operation": "x", "error": "", "changes": []}}


def test_every_mirrored_benchmark_exists() -> None:
    import importlib

    mirrors = read_mirrors(sys.executable, [ROOT])
    named = [name for names in mirrors.values() for name in names]
    assert len(named) >= 30
    assert len(set(named)) == len(named)  # one operation per wall-clock benchmark
    for name in named:
        module, cls, method = name.split(".")
        suite = importlib.import_module(f"benchmarks.{module}")
        assert method.startswith("time_"), name
        assert callable(getattr(getattr(suite, cls), method)), name


def test_a_function_called_more_often_is_not_an_edit_when_counts_are_fractions() -> None:
    # 13 calls in 150 operations, 32 bytecodes each, then 26: called twice as often, same
    # code (seen in track_breaker_call_failure_window with the planted reset()).
    called_more = Change("f", Cost(13 / 150, 416 / 150, 0), Cost(26 / 150, 832 / 150, 0))
    edited = Change("g", Cost(13 / 150, 273 / 150, 0), Cost(13 / 150, 520 / 150, 0))
    assert not called_more.own_code_changed
    assert edited.own_code_changed
    before = {"f": Cost(13 / 150, 416 / 150, 0), "g": Cost(13 / 150, 273 / 150, 0)}
    after = {"f": Cost(26 / 150, 832 / 150, 0), "g": Cost(13 / 150, 520 / 150, 0)}
    assert [c.function for c in diff(before, after)] == ["g", "f"]  # the edit first
