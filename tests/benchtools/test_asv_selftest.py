"""benchtools/selftest_compare.py at reduced size: asv_compare's verdicts on this machine.

A few breaker benchmarks, fewer rounds: identical code must give no change, a 1.5x
slowdown planted in ``CircuitBreaker.call`` must be found on the benchmarks whose body
it slows by >= 1.35x and on no benchmark it leaves alone. Real asv builds and runs in a
temporary clone (about 1.5 min; 1 more the first time, to create asv's environment).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import benchtools.compare as ac
from benchtools import selftest_compare as asv_selftest

ROOT = Path(__file__).resolve().parents[2]

BREAKER_SOURCE = """
class CircuitBreaker:
    def call(self, fn, /, *args, **kwargs):
        token = self._closed_token
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._on_exception(token, exc)
            raise
        return result
"""

SELECTION = [
    r"GuardedCall\.time_call_success",
    r"Peers\.time_guarded_call_success",
    r"BreakerOps\.time_(state|allow_request)$",
    r"Floor\.time_empty_call",
]


def test_plant_goes_after_the_try_of_call_only() -> None:
    planted = asv_selftest.plant(BREAKER_SOURCE, 7)

    lines = planted.splitlines()
    assert lines[9:12] == [
        "        _planted = 7  # asv selftest: planted slowdown (a busy loop)",
        "        while _planted:",
        "            _planted -= 1",
    ]
    assert lines[12] == "        return result"
    namespace: dict[str, object] = {}
    exec(compile(planted, "breaker.py", "exec"), namespace)  # still valid Python


def test_plant_refuses_a_call_without_try() -> None:
    with pytest.raises(asv_selftest.SelftestError, match="no try statement"):
        asv_selftest.plant("class CircuitBreaker:\n    def call(self):\n        pass\n", 3)


RESET_SOURCE = '''
class CircuitBreaker:
    def reset(self) -> None:
        """Close the circuit."""
        with self._lock:
            self._state = 0
'''


def test_plant_at_start_goes_after_the_docstring() -> None:
    planted = asv_selftest.plant_at_start(RESET_SOURCE, "CircuitBreaker", "reset", 40)

    lines = planted.splitlines()
    assert lines[4:7] == [
        "        _planted = 40  # asv selftest: planted instructions (a busy loop)",
        "        while _planted:",
        "            _planted -= 1",
    ]
    assert lines[7] == "        with self._lock:"
    exec(compile(planted, "breaker.py", "exec"), {})  # still valid Python


def test_plant_at_start_refuses_a_missing_method() -> None:
    with pytest.raises(asv_selftest.SelftestError, match=r"no method CircuitBreaker\.call"):
        asv_selftest.plant_at_start(RESET_SOURCE, "CircuitBreaker", "call", 3)


def test_iterations_for_a_planted_instruction_change_are_linear() -> None:
    # 100 iterations added 2.5%: 5% needs 200.
    assert asv_selftest.iterations_for(0.05, 100, 1.025) == 200
    with pytest.raises(asv_selftest.SelftestError, match="did not add instructions"):
        asv_selftest.iterations_for(0.05, 100, 1.0)


def test_instruction_benchmarks_are_left_out_of_the_timing_selftest() -> None:
    regex = asv_selftest.NOT_INSTRUCTIONS

    assert re.search(regex, "bench_breaker.GuardedCall.time_call_success('window')")
    assert not re.search(regex, "bench_instructions.Instructions.track_reset")
    assert re.search(
        asv_selftest.INSTRUCTIONS_TARGET, "bench_instructions.Instructions.track_reset"
    )


def _instr(name: str, base: float, head: float) -> ac.Verdict:
    return ac.classify_instructions(
        name, [ac.RoundResult(1, base)], [ac.RoundResult(1, head)], threshold=0.02
    )


def test_judge_instructions_wants_the_target_and_nothing_else() -> None:
    target = r"\.track_reset$"
    same = [
        _instr("b.Instructions.track_reset", 5_000, 5_000),
        _instr("b.Instructions.track_x", 9_000, 9_000),
    ]
    good = [
        _instr("b.Instructions.track_reset", 5_000, 5_250),
        _instr("b.Instructions.track_x", 9_000, 9_000),
    ]
    timed = ac.classify("b.T.time_x", [ac.RoundResult(1, 1.0)], [ac.RoundResult(1, 3.0)])

    outcome = asv_selftest.judge_instructions(same, [*good, timed], target)
    assert outcome.passed
    assert outcome.detected == ["b.Instructions.track_reset"]
    assert outcome.benchmarks == 2  # the time benchmark is not judged here

    extra = [good[0], _instr("b.Instructions.track_x", 9_000, 9_500)]
    outcome = asv_selftest.judge_instructions(same, extra, target)
    assert not outcome.passed
    assert outcome.over_flagged == ["b.Instructions.track_x: regression 1.056x (+5.6%)"]

    missed = [_instr("b.Instructions.track_reset", 5_000, 5_050), good[1]]
    assert asv_selftest.judge_instructions(same, missed, target).missed == [
        "b.Instructions.track_reset: unchanged 1.010x (+1.0%)"
    ]
    assert not asv_selftest.judge_instructions(good, good, target).passed  # false positive
    assert not asv_selftest.judge_instructions(same, same, r"no-such").passed


def _run_selftest(
    out: Path, capfd: pytest.CaptureFixture[str]
) -> tuple[int, str, dict[str, object]]:
    """``python -m benchtools selftest compare`` at reduced size, in this process (the
    test's timeout ends it like Ctrl-C: its clone and forkservers are cleaned up)."""
    argv = ["--json", str(out)]
    for regex in SELECTION:
        argv += ["-b", regex]
    returncode = asv_selftest.main(argv)
    captured = capfd.readouterr()
    result = json.loads(out.read_text()) if out.exists() else {}
    return returncode, captured.out + captured.err, result


@pytest.mark.slow
@pytest.mark.timeout(760)
def test_selftest_reduced_finds_no_false_positive_and_the_planted_slowdown(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A false positive or an over-flag fails at once. A *missed* detection alone gets one
    # more attempt: a slow spell of the shared machine during the confirmation rounds can
    # hide a real change (the verdict then says "not confirmed"), and at reduced size
    # there are few rounds to outvote it. So does a calibration that missed its 1.5x by
    # more than 0.1 (timed in one process while the machine's load changed: seen once at
    # 1.39). Two in a row fail.
    for attempt in (1, 2):
        out = tmp_path / f"selftest-{attempt}.json"
        returncode, text, result = _run_selftest(out, capfd)
        assert result, text[-4000:]
        assert result["false_positives"] == [], text[-4000:]
        assert result["over_flagged"] == [], text[-4000:]
        assert result["failed"] == [], text[-4000:]
        calibrated = 1.4 <= float(result["planted_ratio"]) <= 1.6  # type: ignore[arg-type]
        if (result["passed"] is True and calibrated) or attempt == 2:
            break
    assert returncode == 0, text[-4000:]
    assert result["passed"] is True
    assert result["benchmarks"] == 8
    assert sorted(result["must_detect"]) == [  # type: ignore[arg-type]
        "bench_breaker.GuardedCall.time_call_success('consecutive')",
        "bench_breaker.Peers.time_guarded_call_success('pganalytics_core')",
    ]
    assert sorted(result["detected"]) == sorted(result["must_detect"])  # type: ignore[arg-type]
    assert result["missed"] == []
    assert 1.4 <= result["planted_ratio"] <= 1.6  # type: ignore[operator]
    # The evidence: the detected call() benchmark's diff names the planted function first
    # (its own bytecodes per call grew); identical code profiles identically.
    assert result["misexplained"] == [], text[-4000:]
    assert result["identical_diff"] == [], text[-4000:]
    explained = result["explained"]
    assert isinstance(explained, list)
    assert [line for line in explained if line.startswith("bench_breaker.GuardedCall.")] == [
        "bench_breaker.GuardedCall.time_call_success('consecutive'): "
        "pganalytics_core/breaker.py:CircuitBreaker.call: " + line.split(".call: ", 1)[1]
        for line in explained
        if line.startswith("bench_breaker.GuardedCall.")
    ], explained
    assert any(line.startswith("bench_breaker.GuardedCall.") for line in explained), explained


def test_parse_plant() -> None:
    assert asv_selftest.parse_plant("pganalytics_core/breaker.py:CircuitBreaker.reset") == (
        "pganalytics_core/breaker.py",
        "CircuitBreaker",
        "reset",
    )
    with pytest.raises(asv_selftest.SelftestError, match=r"expected FILE:Class\.method"):
        asv_selftest.parse_plant("CircuitBreaker.reset")


# A stand-in for benchmarks/bench_instructions.py that needs no valgrind: Python opcodes
# counted with sys.settrace, as deterministic as instruction counts. It proves the
# comparison's instruction rule end to end through asv (one measurement per side).
OPCOUNT_BENCHMARKS = """
import sys

from pganalytics_core import CircuitBreaker


def _count(fn, n=50):
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        for _ in range(n):
            fn()
    finally:
        sys.settrace(None)
    return count


class Instructions:
    unit = "instructions"

    def setup(self):
        self.breaker = CircuitBreaker()

    def track_reset(self):
        return _count(self.breaker.reset)

    def track_allow_request(self):
        return _count(self.breaker.allow_request)

    def track_call_success(self):
        return _count(lambda: self.breaker.call(int))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_selftest_instructions_reports_the_planted_operation_only(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for rel in filter(None, files.split("\0")):
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    (source / "benchmarks" / "bench_zz_opcount.py").write_text(OPCOUNT_BENCHMARKS)
    asv_selftest.git(source, "init", "--quiet", "--initial-branch=main")
    asv_selftest.git(source, "add", "--all")
    asv_selftest.git(source, "commit", "--quiet", "--message", "snapshot")
    out = tmp_path / "instructions.json"
    argv = [
        "--source",
        str(source),
        "--env-cache",
        str(ROOT / ".asv" / "selftest" / "env"),
        "--instructions",
        "-b",
        r"^bench_zz_opcount\.",
        "--instructions-target",
        r"^bench_zz_opcount\.Instructions\.track_reset$",
        "--json",
        str(out),
    ]
    returncode = asv_selftest.main(argv)  # in this process, like the reduced self-test
    text = "".join(capfd.readouterr())

    assert out.exists(), text[-4000:]
    result = json.loads(out.read_text())
    assert result["false_positives"] == [], text[-4000:]
    assert result["over_flagged"] == [], text[-4000:]
    assert result["detected"] == ["bench_zz_opcount.Instructions.track_reset"]
    assert result["benchmarks"] == 3
    assert result["passed"] is True
    assert returncode == 0
    planted = {v["name"]: v for v in result["verdicts"]["planted"]}
    assert all(v["rounds"] == 1 for v in planted.values())  # one measurement per side
    assert planted["bench_zz_opcount.Instructions.track_allow_request"]["ratio"]["center"] == 1.0
