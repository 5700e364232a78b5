"""Prove the verdicts of tools/asv_compare.py on this machine, with this suite.

Usage::

    python -m benchtools selftest compare                      # the whole suite (about 11 min)
    python -m benchtools selftest compare -b GuardedCall.time_call_success -b Floor --rounds 6
    python -m benchtools selftest compare --json selftest.json --keep

In a temporary clone of the repository (its HEAD; its working tree with ``--worktree``,
or when it has no commit yet) the self-test makes two commits on top of HEAD (P):

(a) A: identical code (an empty commit). Comparing P with A must report no regression
    and no improvement: every change reported is a false positive.
(b) S: a slowdown planted in ``CircuitBreaker.call``'s success path (a busy loop right
    after the guarded function returns), calibrated so that the body of
    ``GuardedCall.time_call_success('consecutive')`` takes ``--slowdown`` (1.5) times as
    long: both bodies are timed in one process, alternately, before S is committed.

P, A and S are measured in the same paired rounds by asv_compare's machinery. What S
should do to each benchmark is found in one process with the clone's code (see
:mod:`benchtools.probe`): a benchmark whose measured code never completes a ``call()`` (or that
measures memory) cannot change; a ``time_`` benchmark's body is timed with and without
the loop, alternately. Slowed by at least ``--must-ratio``: it must be reported as a
regression. Slowed by at most 5%, or not at all: it must not be reported as changed.
In between (the loop diluted by other work), and ``track_`` benchmarks that go through
``call()``: either verdict is accepted (and shown).

Requires asv_runner < 0.3 in asv's environment (docs/reviewing.md): with 0.3 the suite
cannot see the planted slowdown, and the self-test stops at once (exit 2).

Instruction-count benchmarks (class ``Instructions``, unit ``instructions``) are left out
of this (the default selection excludes them) and proven by ``--instructions``: P, A and
S where S adds a busy loop at the start of one operation (``--instructions-plant``,
default ``CircuitBreaker.reset``) sized from a first probe plant (counts are linear in
the loop's iterations) to add ``--instructions-change`` (5%) to that operation's
benchmark (``--instructions-target``). One measurement per side: A must report nothing,
S a regression on the target and nothing on any other instruction benchmark::

    python -m benchtools selftest compare --instructions                # needs valgrind

Exit codes: 0 all verdicts right; 1 a false positive, a missed or an extra detection;
2 the self-test could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypedDict

# Only the compare package's pure modules (asvglue, which imports asv, where it is used).
import benchtools.compare as ac
from benchtools.compare import calldiff
from benchtools.compare.cli import add_bench_option, exit_on_sigterm
from benchtools.plant import SelftestError as SelftestError
from benchtools.plant import plant as plant
from benchtools.plant import plant_at_start

if TYPE_CHECKING:
    from benchtools.compare.asvglue import AsvSession

ROOT = Path(__file__).resolve().parent.parent
#: Where the planted busy loop is, as the call-count evidence names functions.
PLANTED_FUNCTION = "pganalytics_core/breaker.py:CircuitBreaker.call"
#: The operation that runs it (profiled on identical code: no diff allowed).
PLANTED_OPERATION = "breaker_call_success"
CALIBRATE_ON = "bench_breaker.GuardedCall.time_call_success('consecutive')"
#: A benchmark S slows by at most this much must not be reported as changed.
UNRELATED_RATIO = 1.05
DEFAULT_MUST_RATIO = 1.35
#: Instruction-count benchmarks (benchmarks/bench_instructions.py, class Instructions):
#: left out of the timing self-test (they are proven by ``--instructions``).
NOT_INSTRUCTIONS = r"^(?!.*\.Instructions\.)"
INSTRUCTIONS_SELECTION = r"\.Instructions\."
#: The operation ``--instructions`` plants its change in, and that operation's benchmark.
INSTRUCTIONS_PLANT = "pganalytics_core/breaker.py:CircuitBreaker.reset"
INSTRUCTIONS_TARGET = r"\.Instructions\.track_\w*reset\w*$"
#: Loop iterations of the first plant, which measures what one iteration costs.
PROBE_ITERATIONS = 100
#: The probe, run by path in asv's environment (:mod:`benchtools.probe`).
PROBE = Path(__file__).resolve().with_name("probe.py")
#: Fixed commit dates: the same inputs give the same commit hashes (and cached builds).
COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "asv selftest",
    "GIT_AUTHOR_EMAIL": "selftest@invalid",
    "GIT_COMMITTER_NAME": "asv selftest",
    "GIT_COMMITTER_EMAIL": "selftest@invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}


def log(msg: str) -> None:
    print(f"selftest: {msg}", file=sys.stderr, flush=True)


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **COMMIT_ENV},
    )
    if proc.returncode != 0:
        raise SelftestError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


# --------------------------------------------------------------------------- the clone


def make_clone(source: Path, dest: Path, *, worktree: bool) -> str:
    """Clone ``source`` (its HEAD, or its working tree) into ``dest``; return a label."""
    has_head = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
            cwd=source,
            capture_output=True,
        ).returncode
        == 0
    )
    if has_head and not worktree:
        git(source.parent, "clone", "--quiet", "--no-hardlinks", str(source), str(dest))
        git(dest, "checkout", "--quiet", "-B", "main")
        # No remote: the source's benchmark-results and gh-pages branches (origin/*)
        # would be merged by the main job as stored results of the clone's commits.
        git(dest, "remote", "remove", "origin")
        return f"HEAD {git(dest, 'rev-parse', '--short', 'HEAD')} of {source}"
    files = git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    dest.mkdir(parents=True)
    for rel in filter(None, files.split("\0")):
        src = source / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "--message", f"selftest: snapshot of {source}")
    why = "as asked" if worktree else "it has no commit yet"
    return f"working tree of {source} ({why})"


def use_env_cache(repo: Path, cache: Path) -> None:
    """Point the clone's asv environment at a persistent directory (saves a minute)."""
    from benchtools.compare.asvglue import load_conf_json

    path = repo / "asv.conf.json"
    conf = load_conf_json(path)
    conf["env_dir"] = str(cache)
    path.write_text(json.dumps(conf, indent=4) + "\n")


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as fh:
        if _would_block(fh):
            log(f"waiting for another self-test using {directory}")
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _would_block(fh: IO[str]) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    fcntl.flock(fh, fcntl.LOCK_UN)
    return False


# --------------------------------------------------------------------------- the plant


class ProbeResult(TypedDict):
    """What :mod:`benchtools.probe` prints: the loop, its calibration, each benchmark's slowdown.

    ``calibration``: loop iterations -> the calibration benchmark's ratio; ``expected``:
    benchmark name -> how much slower the plant makes it (None: unknown).
    """

    iterations: int
    calibration: dict[str, float]
    expected: dict[str, float | None]


def probe(
    python: str,
    repo: Path,
    *,
    iterations: int | None,
    target: float,
    calibrate_on: str,
    regexes: Sequence[str],
) -> ProbeResult:
    """Run :mod:`benchtools.probe` in asv's environment (the interpreter asv benchmarks with)."""
    arg = {
        "root": str(repo),
        "iterations": iterations,
        "target": target,
        "calibrate_on": calibrate_on,
        "regexes": list(regexes),
    }
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [python, str(PROBE), json.dumps(arg)], cwd=cwd, capture_output=True, text=True
        )
    if proc.returncode != 0:
        raise SelftestError(f"calibration failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "iterations": int(data["iterations"]),
        "calibration": {str(k): float(v) for k, v in data["calibration"].items()},
        "expected": {str(k): None if v is None else float(v) for k, v in data["expected"].items()},
    }


def env_runner_version(python: str) -> tuple[int, ...]:
    """The version of asv_runner (which times the benchmarks) in asv's environment."""
    code = "import importlib.metadata as m; print(m.version('asv_runner'))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return tuple(int(x) for x in re.findall(r"\d+", out.stdout)[:3])


# --------------------------------------------------------------------------- judging


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the self-test found."""

    benchmarks: int
    false_positives: list[str]
    must_detect: list[str]
    detected: list[str]
    missed: list[str]
    over_flagged: list[str]
    unrelated: int
    may: dict[str, str]
    failed: list[str]
    #: The call-count evidence: detected benchmarks whose diff does not name the planted
    #: function first, and the diffs found on identical code (both must be empty).
    misexplained: list[str] = dataclasses.field(default_factory=list)
    identical_diff: list[str] = dataclasses.field(default_factory=list)
    explained: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            not (self.false_positives or self.missed or self.over_flagged)
            and not (self.misexplained or self.identical_diff)
            and bool(self.must_detect)
        )


def judge(
    identical: Sequence[ac.Verdict],
    slowed: Sequence[ac.Verdict],
    expected: dict[str, float | None],
    must_ratio: float,
) -> Outcome:
    """Compare the verdicts with what the identical and the planted commit should give.

    Args:
        identical: the verdicts P -> A (identical code).
        slowed: the verdicts P -> S (planted slowdown).
        expected: how much slower S makes each benchmark (see :mod:`benchtools.probe`); None or
            absent: it goes through the plant by an unknown amount.
        must_ratio: from this expected ratio on, S must be reported as a regression.
    """
    changed = (ac.REGRESSION, ac.IMPROVEMENT)
    fps = [f"{v.name}: {v.verdict} {ac.format_ratio(v)}" for v in identical if v.verdict in changed]
    must, detected, missed, over = [], [], [], []
    unrelated = 0
    may: dict[str, str] = {}
    for v in slowed:
        e = expected.get(v.name)
        got = f"{v.verdict} {ac.format_ratio(v)}".strip()
        if e is not None and e >= must_ratio:
            must.append(v.name)
            if v.verdict == ac.REGRESSION:
                detected.append(v.name)
            else:
                missed.append(f"{v.name}: {got} (expected {e:.2f}x)")
        elif e is None or e > UNRELATED_RATIO:
            if e is not None or v.verdict in changed:
                may[v.name] = got + (f" (expected {e:.2f}x)" if e is not None else "")
        else:
            unrelated += 1
            if v.verdict in changed:
                over.append(f"{v.name}: {got} (expected {e:.2f}x)")
    failed = sorted({v.name for v in [*identical, *slowed] if v.verdict == ac.FAILED})
    return Outcome(len(slowed), fps, must, detected, missed, over, unrelated, may, failed)


class Commits(TypedDict):
    """The self-test's three commits."""

    base: str
    identical: str
    slowed: str


class Facts(TypedDict):
    """How the self-test ran (reported, and written to ``--json``)."""

    source: str
    rounds: int
    confirm_rounds: int
    factor: float
    target: float
    iterations: int
    planted_ratio: float
    calibrate_on: str
    must_ratio: float
    commits: Commits
    asv_runner: str
    seconds: float


def explain(
    outcome: Outcome,
    slowed_verdicts: Sequence[ac.Verdict],
    session: AsvSession,
    base: str,
    identical: str,
    slowed: str,
) -> Outcome:
    """``outcome`` with the call-count evidence judged (:mod:`benchtools.compare.calldiff`).

    Every detected benchmark that has an operation behind it must name the planted
    function first; the planted operation profiled on the identical commit must show no
    diff at all.
    """
    paths = {c: session.code_paths(c) for c in (base, identical, slowed)}
    detected = [v for v in slowed_verdicts if v.name in outcome.detected]
    diffs = calldiff.call_diffs(detected, session.python, paths, base, slowed)
    explained: list[str] = []
    wrong: list[str] = []
    for name, d in sorted(diffs.items()):
        top = d.changes[0].function if d.changes else "(no change)"
        line = f"{name}: {calldiff.summary(d)}"
        (explained if top == PLANTED_FUNCTION else wrong).append(line)
    ops = sorted({d.operation for d in diffs.values()}) or [PLANTED_OPERATION]
    before = calldiff.read_profiles(session.python, paths[base], ops)
    after = calldiff.read_profiles(session.python, paths[identical], ops)
    same_code = []
    for op in ops:
        b, a = before[op], after[op]
        if isinstance(b, str) or isinstance(a, str):
            same_code.append(f"{op}: not profiled ({b if isinstance(b, str) else a})")
        elif changes := calldiff.diff(b, a):
            same_code.append(f"{op}: {len(changes)} function(s) differ")
    return dataclasses.replace(
        outcome, explained=explained, misexplained=wrong, identical_diff=same_code
    )


def render(outcome: Outcome, facts: Facts) -> str:
    lines = [
        f"asv selftest: {facts['source']}; {outcome.benchmarks} benchmark(s), "
        f"{facts['rounds']} paired round(s) + {facts['confirm_rounds']} confirmation "
        f"round(s) for suspects, factor {facts['factor']:g}, {facts['seconds'] / 60:.1f} min",
        f"planted: {facts['iterations']}-iteration busy loop in CircuitBreaker.call's success "
        f"path = {facts['planted_ratio']:.2f}x of {facts['calibrate_on']}'s body (target "
        f"{facts['target']:g}x)",
        "",
        f"(a) identical code: {len(outcome.false_positives)} false positive(s)"
        f" among {outcome.benchmarks}",
        *[f"    {x}" for x in outcome.false_positives],
        f"(b) planted slowdown: detected {len(outcome.detected)}/{len(outcome.must_detect)} "
        f"benchmark(s) it slows by >= {facts['must_ratio']:g}x; "
        f"{len(outcome.over_flagged)} of {outcome.unrelated} unrelated benchmark(s) flagged "
        f"(slowed by <= {UNRELATED_RATIO:g}x or not at all)",
        *[f"    detected {x}" for x in outcome.detected],
        *[f"    MISSED {x}" for x in outcome.missed],
        *[f"    OVER-FLAGGED {x}" for x in outcome.over_flagged],
        *[f"    (either way) {k}: {v}" for k, v in sorted(outcome.may.items())],
        f"(c) evidence: {len(outcome.explained)} detected benchmark(s) name {PLANTED_FUNCTION} "
        f"first in their call diff; identical code: "
        + ("no diff" if not outcome.identical_diff else "A DIFF"),
        *[f"    explained {x}" for x in outcome.explained],
        *[f"    MISEXPLAINED {x}" for x in outcome.misexplained],
        *[f"    IDENTICAL CODE DIFFERS {x}" for x in outcome.identical_diff],
    ]
    if outcome.failed:
        lines += ["", "failed benchmarks (reported by asv_compare, not judged here):"]
        lines += [f"    {x}" for x in outcome.failed]
    lines += ["", "PASS" if outcome.passed else "FAIL"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True, slots=True)
class InstructionOutcome:
    """What the instruction-count self-test found (instruction benchmarks only)."""

    benchmarks: int
    false_positives: list[str]
    target: list[str]
    detected: list[str]
    missed: list[str]
    over_flagged: list[str]
    failed: list[str]

    @property
    def passed(self) -> bool:
        """Nothing on identical code; the target reported, and nothing else."""
        return (
            bool(self.target)
            and not (self.false_positives or self.missed or self.over_flagged)
            and sorted(self.detected) == sorted(self.target)
        )


def judge_instructions(
    identical: Sequence[ac.Verdict], planted: Sequence[ac.Verdict], target: str
) -> InstructionOutcome:
    """Compare the instruction-count verdicts with what the two commits should give.

    Args:
        identical: the verdicts P -> A (identical code): no change allowed.
        planted: the verdicts P -> S (more instructions in one operation): a regression
            on the benchmarks matching ``target``, no change on any other.
        target: a regex naming the planted operation's instruction benchmark(s).
    """
    changed = (ac.REGRESSION, ac.IMPROVEMENT)
    counted_a = [v for v in identical if v.unit == ac.INSTRUCTIONS]
    counted_s = [v for v in planted if v.unit == ac.INSTRUCTIONS]
    fps = [f"{v.name}: {v.verdict} {ac.format_ratio(v)}" for v in counted_a if v.verdict in changed]
    targets = [v for v in counted_s if re.search(target, v.name)]
    detected = [v.name for v in targets if v.verdict == ac.REGRESSION]
    missed = [
        f"{v.name}: {v.verdict} {ac.format_ratio(v)}".strip()
        for v in targets
        if v.verdict != ac.REGRESSION
    ]
    over = [
        f"{v.name}: {v.verdict} {ac.format_ratio(v)}"
        for v in counted_s
        if v not in targets and v.verdict in changed
    ]
    failed = sorted({v.name for v in [*counted_a, *counted_s] if v.verdict == ac.FAILED})
    return InstructionOutcome(
        len(counted_s), fps, [v.name for v in targets], detected, missed, over, failed
    )


def parse_plant(spec: str) -> tuple[str, str, str]:
    """``FILE:Class.method`` -> (file, class, method)."""
    match = re.fullmatch(r"([^:]+):(\w+)\.(\w+)", spec)
    if match is None:
        raise SelftestError(f"expected FILE:Class.method, got {spec!r}")
    return match[1], match[2], match[3]


def iterations_for(change: float, probe_iterations: int, probe_ratio: float) -> int:
    """Loop iterations that add ``change`` (a fraction) to the target's count.

    Instruction counts are linear in the loop's iterations: a probe plant of
    ``probe_iterations`` gave ``probe_ratio``; each iteration adds
    ``(probe_ratio - 1) / probe_iterations`` of the base count.
    """
    per_iteration = (probe_ratio - 1) / probe_iterations
    if not per_iteration > 0:
        raise SelftestError(
            f"the probe plant ({probe_iterations} iterations) did not add instructions to "
            f"the target benchmark (ratio {probe_ratio:.4f}): does it run the planted method?"
        )
    return max(1, round(change / per_iteration))


def render_instructions(outcome: InstructionOutcome, facts: dict[str, object]) -> str:
    """The instruction-count self-test's report."""
    lines = [
        f"asv selftest --instructions: {facts['source']}; {outcome.benchmarks} instruction "
        f"benchmark(s), one measurement per side, threshold {facts['threshold']}",
        f"planted: {facts['iterations']}-iteration busy loop at the start of "
        f"{facts['plant']} = {facts['planted_change']} instructions on its benchmark "
        f"(target {facts['target_change']})",
        "",
        f"(a) identical code: {len(outcome.false_positives)} false positive(s)",
        *[f"    {x}" for x in outcome.false_positives],
        f"(b) planted change: detected {len(outcome.detected)}/{len(outcome.target)} on "
        f"the operation's benchmark; {len(outcome.over_flagged)} other benchmark(s) flagged",
        *[f"    detected {x}" for x in outcome.detected],
        *[f"    MISSED {x}" for x in outcome.missed],
        *[f"    OVER-FLAGGED {x}" for x in outcome.over_flagged],
    ]
    if outcome.failed:
        lines += ["", "failed benchmarks (reported by asv_compare, not judged here):"]
        lines += [f"    {x}" for x in outcome.failed]
    if facts.get("coarse"):
        lines += [
            "",
            "note: one loop iteration is a large part of this operation's count, so the "
            "planted change is far from its target; plant in a costlier operation for a "
            "finer one (--instructions-plant, --instructions-target)",
        ]
    lines += ["", "PASS" if outcome.passed else "FAIL"]
    return "\n".join(lines) + "\n"


def _instructions_selftest(args: argparse.Namespace, repo: Path, label: str, started: float) -> int:
    """P, A (identical) and S (more instructions in one operation), instruction counts."""
    from benchtools.compare import asvglue

    regexes = args.bench or [INSTRUCTIONS_SELECTION]
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "--quiet", "--allow-empty", "--message", "selftest: identical code")
    identical = git(repo, "rev-parse", "HEAD")
    path, cls_name, method = parse_plant(args.instructions_plant)
    target_file = repo / path
    if not target_file.is_file():
        raise SelftestError(f"no file {path} to plant a change in")
    original = target_file.read_text()

    def planted_commit(k: int) -> str:
        git(repo, "checkout", "--quiet", "--detach", base)
        target_file.write_text(plant_at_start(original, cls_name, method, k))
        git(
            repo,
            "commit",
            "--quiet",
            "--message",
            f"selftest: {k}-iteration loop planted in {cls_name}.{method}",
            "--",
            str(target_file.relative_to(repo)),
        )
        commit = git(repo, "rev-parse", "HEAD")
        git(repo, "checkout", "--quiet", "--detach", base)
        return commit

    def counts(heads: list[str]) -> dict[str, list[ac.Verdict]]:
        _, verdicts, _ = asvglue.compare(
            repo,
            base,
            heads,
            regexes=regexes,
            rounds=1,
            confirm_rounds=0,
            launch_method=args.launch_method,
            instructions_threshold=args.instructions_threshold,
        )
        return verdicts

    log(f"probe plant: {PROBE_ITERATIONS} iterations in {cls_name}.{method}")
    probe_commit = planted_commit(PROBE_ITERATIONS)
    probed = [
        v
        for v in counts([probe_commit])[probe_commit]
        if v.unit == ac.INSTRUCTIONS and re.search(args.instructions_target, v.name)
    ]
    if not probed:
        raise SelftestError(
            f"no instruction benchmark matches {args.instructions_target!r} in the selection "
            "(benchmarks/bench_instructions.py, class Instructions, unit 'instructions')"
        )
    if any(v.ratio is None for v in probed):
        shown = "; ".join(f"{v.name}: {v.verdict} {v.note}" for v in probed)
        raise SelftestError(f"the target's instruction count was not measured: {shown}")
    probe_ratio = max(v.ratio.center for v in probed if v.ratio is not None)
    k = iterations_for(args.instructions_change, PROBE_ITERATIONS, probe_ratio)
    log(f"{PROBE_ITERATIONS} iterations gave {probe_ratio:.4f}x; planting {k}")
    planted = planted_commit(k)
    verdicts = counts([identical, planted])
    outcome = judge_instructions(verdicts[identical], verdicts[planted], args.instructions_target)
    changes = [
        v.ratio.center - 1
        for v in verdicts[planted]
        if v.name in outcome.target and v.ratio is not None
    ]
    facts: dict[str, object] = {
        "source": label,
        "threshold": args.instructions_threshold,
        "plant": f"{cls_name}.{method}",
        "iterations": k,
        "probe_iterations": PROBE_ITERATIONS,
        "probe_ratio": probe_ratio,
        "target_change": f"{args.instructions_change:+.1%}",
        "planted_change": ", ".join(f"{c:+.2%}" for c in changes) or "n/a",
        "coarse": any(abs(c / args.instructions_change - 1) > 0.5 for c in changes),
        "commits": {"base": base, "identical": identical, "planted": planted},
        "seconds": time.monotonic() - started,
    }
    sys.stdout.write(render_instructions(outcome, facts))
    if args.json:
        data = {
            **facts,
            **dataclasses.asdict(outcome),
            "passed": outcome.passed,
            "verdicts": {
                "identical": [dataclasses.asdict(v) for v in verdicts[identical]],
                "planted": [dataclasses.asdict(v) for v in verdicts[planted]],
            },
        }
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0 if outcome.passed else 1


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchtools selftest compare",
        description="Prove asv_compare's verdicts: no false alarm on identical code, a "
        "planted slowdown found where it should be and nowhere else.",
    )
    add_bench_option(p, "only benchmarks matching REGEX (repeatable; default: all)")
    p.add_argument(
        "--rounds",
        type=int,
        default=ac.DEFAULT_ROUNDS,
        help=f"paired rounds (default {ac.DEFAULT_ROUNDS})",
    )
    p.add_argument(
        "--confirm-rounds",
        type=int,
        default=ac.DEFAULT_CONFIRM_ROUNDS,
        help=f"rounds for suspects (default {ac.DEFAULT_CONFIRM_ROUNDS})",
    )
    p.add_argument(
        "--factor",
        type=float,
        default=ac.DEFAULT_FACTOR,
        help=f"asv_compare's factor (default {ac.DEFAULT_FACTOR})",
    )
    p.add_argument(
        "--slowdown",
        type=float,
        default=1.5,
        help="the planted slowdown of the calibration benchmark (default 1.5)",
    )
    p.add_argument(
        "--calibrate-on",
        default=CALIBRATE_ON,
        metavar="BENCHMARK",
        help=f"the benchmark the slowdown is calibrated on (default {CALIBRATE_ON})",
    )
    p.add_argument(
        "--must-ratio",
        type=float,
        default=DEFAULT_MUST_RATIO,
        help=f"a benchmark slowed this much must be detected (default {DEFAULT_MUST_RATIO})",
    )
    add_clone_options(p)
    p.add_argument("--launch-method", choices=("forkserver", "spawn"), default="forkserver")
    p.add_argument(
        "--any-asv-runner",
        action="store_true",
        help="run even with asv_runner >= 0.3 (which cannot pass; see docs)",
    )
    p.add_argument(
        "--instructions",
        action="store_true",
        help="prove the instruction-count rule instead: identical code reports nothing, "
        "a change planted in one operation (--instructions-plant) is reported on its "
        "instruction benchmark (--instructions-target) and no other; needs valgrind",
    )
    p.add_argument(
        "--instructions-plant",
        default=INSTRUCTIONS_PLANT,
        metavar="FILE:CLASS.METHOD",
        help=f"where the busy loop goes (default {INSTRUCTIONS_PLANT})",
    )
    p.add_argument(
        "--instructions-change",
        type=float,
        default=0.05,
        metavar="FRACTION",
        help="the planted change of the target's instruction count (default 0.05)",
    )
    p.add_argument(
        "--instructions-target",
        default=INSTRUCTIONS_TARGET,
        metavar="REGEX",
        help=f"the planted operation's instruction benchmark (default {INSTRUCTIONS_TARGET})",
    )
    p.add_argument(
        "--instructions-threshold",
        type=float,
        default=ac.DEFAULT_INSTRUCTIONS_THRESHOLD,
        metavar="FRACTION",
        help="asv_compare's instruction-count threshold "
        f"(default {ac.DEFAULT_INSTRUCTIONS_THRESHOLD})",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the outcome as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_on_sigterm()
    try:
        return run(args)
    except (SelftestError, ac.CompareError) as exc:
        print(f"selftest: error: {exc}", file=sys.stderr)
        return 2


def add_clone_options(p: argparse.ArgumentParser) -> None:
    """``--source``, ``--worktree``, ``--env-cache``, ``--keep``: :func:`scratch_clone`'s."""
    p.add_argument(
        "--source", type=Path, default=ROOT, help="the repository to clone (default: this one)"
    )
    p.add_argument(
        "--worktree",
        action="store_true",
        help="clone the working tree (uncommitted changes too), not HEAD",
    )
    p.add_argument(
        "--env-cache",
        default=None,
        metavar="DIR",
        help="keep asv's environment here between runs (default: "
        "SOURCE/.asv/selftest/env; 'none': a fresh one in the clone)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary clone")


@contextlib.contextmanager
def scratch_clone(
    args: argparse.Namespace, prefix: str, say: Callable[[str], None]
) -> Iterator[tuple[Path, str]]:
    """A temporary clone of ``args.source`` with asv's environment cache, while it lasts.

    Yields (the clone, a label saying what was cloned). The environment cache
    (``args.env_cache``; ``"none"``: no cache) is locked for the duration; the clone is
    removed afterwards unless ``args.keep``.
    """
    source = args.source.resolve()
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        repo = tmp / "repo"
        label = make_clone(source, repo, worktree=args.worktree)
        say(f"clone of the {label} in {repo}")
        cache = None
        if args.env_cache != "none":
            cache = Path(args.env_cache or source / ".asv" / "selftest" / "env").resolve()
            use_env_cache(repo, cache)
        with locked(cache) if cache else contextlib.nullcontext():
            yield repo, label
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with scratch_clone(args, "asv-selftest-", log) as (repo, label):
        if args.instructions:
            return _instructions_selftest(args, repo, label, started)
        return _selftest(args, repo, label, started)


def _selftest(args: argparse.Namespace, repo: Path, label: str, started: float) -> int:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "--quiet", "--allow-empty", "--message", "selftest: identical code")
    identical = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "--detach", base)

    from benchtools.compare import asvglue

    python = asvglue.environment_python(repo, install=base)  # with the package's dependencies
    runner_version = env_runner_version(python)
    if runner_version >= (0, 3) and not args.any_asv_runner:
        raise SelftestError(
            f"asv_runner {'.'.join(map(str, runner_version))} in asv's environment re-runs "
            "setup() before every timed call, so the suite's sub-microsecond benchmarks are "
            "timed one call at a time (mostly overhead): a 1.5x slowdown of the call path "
            "shows as ~1.15x and cannot be detected. Pin it in asv.conf.json "
            '(matrix "req": "pip+asv_runner": ["0.2.5"]; docs/reviewing.md) or pass '
            "--any-asv-runner to run anyway"
        )
    # Instruction counts are proven by --instructions (their own rule, valgrind's cost).
    selection = args.bench or [NOT_INSTRUCTIONS]
    log(f"calibrating the planted slowdown on {args.calibrate_on}")
    cal = probe(
        python,
        repo,
        iterations=None,
        target=args.slowdown,
        calibrate_on=args.calibrate_on,
        regexes=selection,
    )
    k = int(cal["iterations"])
    expected: dict[str, float | None] = cal["expected"]
    planted_ratio = expected[args.calibrate_on] or float("nan")
    log(f"planted loop of {k} iterations: {planted_ratio:.2f}x of {args.calibrate_on}")

    target = repo / "pganalytics_core" / "breaker.py"
    target.write_text(plant(target.read_text(), k))
    git(
        repo,
        "commit",
        "--quiet",
        "--message",
        f"selftest: {args.slowdown:g}x slowdown planted in CircuitBreaker.call",
        "--",
        str(target.relative_to(repo)),
    )
    slowed = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "--detach", base)

    m, verdicts, session = asvglue.compare(
        repo,
        base,
        [identical, slowed],
        regexes=selection,
        factor=args.factor,
        rounds=args.rounds,
        confirm_rounds=args.confirm_rounds,
        launch_method=args.launch_method,
    )
    outcome = judge(verdicts[identical], verdicts[slowed], expected, args.must_ratio)
    outcome = explain(outcome, verdicts[slowed], session, base, identical, slowed)
    facts: Facts = {
        "source": label,
        "rounds": args.rounds,
        "confirm_rounds": session.rounds_run - args.rounds,
        "factor": args.factor,
        "target": args.slowdown,
        "iterations": k,
        "planted_ratio": planted_ratio,
        "calibrate_on": args.calibrate_on,
        "must_ratio": args.must_ratio,
        "commits": {"base": base, "identical": identical, "slowed": slowed},
        "asv_runner": ".".join(map(str, session.asv_runner_version or ())),
        "seconds": time.monotonic() - started,
    }
    sys.stdout.write(render(outcome, facts))
    if session.asv_runner_version and session.asv_runner_version >= (0, 3):
        print(
            "note: asv_runner >= 0.3 times sub-microsecond benchmarks one call at a time; "
            "see docs/reviewing.md"
        )
    if args.json:
        data = {
            **facts,
            **dataclasses.asdict(outcome),
            "passed": outcome.passed,
            "expected": expected,
            "calibration": cal["calibration"],
            "verdicts": {
                "identical": [dataclasses.asdict(v) for v in verdicts[identical]],
                "slowed": [dataclasses.asdict(v) for v in verdicts[slowed]],
            },
            "measurements": ac.measurements_to_json(m),
        }
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    if not outcome.must_detect:
        raise SelftestError(
            "no selected benchmark is slowed enough by the plant to judge "
            "detection; select one with -b"
        )
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
