"""Why a verdict moved: the call-count diff of the operation behind it, base -> head.

An instruction count says *that* an operation runs more code; its call-count profile
says *which* code. For every flagged instruction-count verdict (and every flagged
wall-clock verdict whose benchmark an operation of ``benchmarks/instructions_operations.py``
``mirrors``), :mod:`benchtools.callprofile` profiles the operation on both commits, in
asv's environment with each commit's package, and :func:`diff` lists what changed per
call of the operation: calls and bytecodes of every function (both exact, so identical
code gives no diff at all); first the functions whose own code ran differently (bytecodes
per call changed: where the edit is; the largest change per call first), then those only
called more or less; functions that are new or gone too.

What it cannot see: work in C that calls no Python function and runs no bytecode of
ours (a slower builtin, a bigger dict), allocation and cache effects. Then the diff is
empty while the count moved, and the report says so (docs/reviewing.md: what to do then).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from benchtools.compare.model import IMPROVEMENT, REGRESSION, Verdict

#: The profiler, run by path in asv's environment.
PROFILER = Path(__file__).resolve().parent.parent / "callprofile.py"
#: The instruction-count benchmarks: ``PREFIX + operation``.
INSTRUCTIONS_PREFIX = "bench_instructions.Instructions.track_"
#: Rows shown per benchmark in the reports (the JSON has them all).
SHOWN = 8
#: Seconds one profiler run may take (every operation of one commit).
TIMEOUT_S = 120.0


class ProfileError(Exception):
    """The profiler could not run, or said something that is not a profile."""


@dataclass(frozen=True, slots=True)
class Cost:
    """One function's cost per call of the operation: calls and bytecodes are exact."""

    calls: float
    bytecodes: float
    own_ns: float


#: function -> its cost, for one operation on one commit.
Profile = Mapping[str, Cost]


@dataclass(frozen=True, slots=True)
class Change:
    """One function whose calls or bytecodes per operation differ between the commits."""

    function: str
    before: Cost | None
    after: Cost | None

    @property
    def kind(self) -> str:
        """``new``, ``gone`` or ``changed``."""
        return "new" if self.before is None else "gone" if self.after is None else "changed"

    @property
    def own_code_changed(self) -> bool:
        """True when each call of the function runs a different number of bytecodes: its
        own code (or its path through it) changed, not only how often it is called."""
        b, a = self.before, self.after
        if b is None or a is None or not b.calls or not a.calls:
            return False
        # Per operation, counts are count / n: compare per call up to float rounding.
        return not math.isclose(b.bytecodes / b.calls, a.bytecodes / a.calls, rel_tol=1e-9)

    @property
    def order(self) -> tuple[int, float, float, float, str]:
        """Where it goes in the diff: functions whose own code ran differently first, the
        largest change of bytecodes *per call* first (an edit: "each call of reset() runs
        19 more"); then those called more or less, the largest change of bytecodes per
        operation first; then calls."""
        b = self.before or Cost(0, 0, 0)
        a = self.after or Cost(0, 0, 0)
        per_call = (
            abs(a.bytecodes / a.calls - b.bytecodes / b.calls) if self.own_code_changed else 0.0
        )
        return (
            0 if self.own_code_changed else 1,
            -per_call,
            -abs(a.bytecodes - b.bytecodes),
            -abs(a.calls - b.calls),
            self.function,
        )


@dataclass(frozen=True, slots=True)
class CallDiff:
    """The evidence for one benchmark: its operation and what changed inside it."""

    benchmark: str
    operation: str
    changes: tuple[Change, ...] = ()
    error: str = ""


def diff(before: Profile, after: Profile) -> tuple[Change, ...]:
    """Every function whose calls or bytecodes per operation differ, in :attr:`Change.order`."""
    out = []
    for name in {*before, *after}:
        b, a = before.get(name), after.get(name)
        if b is not None and a is not None and (b.calls, b.bytecodes) == (a.calls, a.bytecodes):
            continue
        out.append(Change(name, b, a))
    return tuple(sorted(out, key=lambda c: c.order))


def operation_of(name: str, mirrors: Mapping[str, Sequence[str]]) -> str | None:
    """The operation behind benchmark ``name``: its own, or the one that mirrors it."""
    if name.startswith(INSTRUCTIONS_PREFIX):
        return name.removeprefix(INSTRUCTIONS_PREFIX)
    plain = name.split("(", 1)[0]
    return next((op for op, names in sorted(mirrors.items()) if plain in names), None)


def flagged(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """The verdicts that need evidence: the changes (regressions and improvements)."""
    return [v for v in verdicts if v.verdict in (REGRESSION, IMPROVEMENT)]


# --------------------------------------------------------------------------- running


def _run(python: str, request: Mapping[str, object]) -> object:
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run(
            [python, str(PROFILER), json.dumps(request)],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProfileError(f"the profiler did not run: {exc}") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        said = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProfileError(f"the profiler exited {proc.returncode}: {said}")
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise ProfileError(f"the profiler printed no JSON: {lines[-1][:200]}") from None


def read_mirrors(python: str, paths: Sequence[Path]) -> dict[str, list[str]]:
    """The wall-clock benchmarks each operation mirrors (the suite's ``mirrors``)."""
    data = _run(python, {"paths": [str(p) for p in paths], "mirrors": True})
    if not isinstance(data, dict):
        raise ProfileError("the profiler's mirrors are not a mapping")
    return {str(op): [str(n) for n in names] for op, names in data.items()}


def read_profiles(
    python: str, paths: Sequence[Path], operations: Sequence[str]
) -> dict[str, Profile | str]:
    """Each operation's profile on the code ``paths`` lead to, or why there is none."""
    data = _run(python, {"paths": [str(p) for p in paths], "operations": list(operations)})
    if not isinstance(data, dict):
        raise ProfileError("the profiler's answer is not a mapping")
    out: dict[str, Profile | str] = {}
    for op in operations:
        entry = data.get(op)
        if not isinstance(entry, dict) or "functions" not in entry:
            out[op] = str(entry.get("error") if isinstance(entry, dict) else "not profiled")
            continue
        out[op] = {
            str(name): Cost(float(c[0]), float(c[1]), float(c[2]))
            for name, c in entry["functions"].items()
        }
    return out


def explain(
    names: Sequence[str], python: str, before: Sequence[Path], after: Sequence[Path]
) -> dict[str, CallDiff]:
    """The call diff, ``before`` -> ``after``, of the operation behind each benchmark named.

    Args:
        names: benchmark names (with parameters, as asv shows them).
        python: asv's environment's interpreter.
        before: the ``sys.path`` entries of the older commit's package and the suite.
        after: those of the newer commit.

    Returns:
        Benchmark name -> its call diff, for the benchmarks with an operation behind them.
    """
    timed = [n for n in names if not n.startswith(INSTRUCTIONS_PREFIX)]
    try:
        mirrors = read_mirrors(python, after) if timed else {}
    except ProfileError:
        mirrors = {}
    ops = {name: op for name in names if (op := operation_of(name, mirrors)) is not None}
    if not ops:
        return {}
    todo = sorted(set(ops.values()))
    try:
        old = read_profiles(python, before, todo)
        new = read_profiles(python, after, todo)
    except ProfileError as exc:
        return {name: CallDiff(name, op, error=str(exc)) for name, op in ops.items()}
    out = {}
    for name, op in ops.items():
        b, a = old[op], new[op]
        if isinstance(b, str) or isinstance(a, str):
            why = f"before: {b}" if isinstance(b, str) else f"after: {a}"
            out[name] = CallDiff(name, op, error=why)
        else:
            out[name] = CallDiff(name, op, diff(b, a))
    return out


def call_diffs(
    verdicts: Sequence[Verdict],
    python: str,
    paths_of: Mapping[str, Sequence[Path]],
    base: str,
    head: str,
) -> dict[str, CallDiff]:
    """The evidence of a comparison: :func:`explain` for every flagged verdict.

    Args:
        verdicts: the comparison's verdicts.
        python: asv's environment's interpreter.
        paths_of: commit -> the ``sys.path`` entries of its package and of the suite.
        base: the base commit.
        head: the head commit.

    Returns:
        Benchmark name -> its call diff; nothing when nothing is flagged.
    """
    names = [v.name for v in flagged(verdicts)]
    return explain(names, python, paths_of[base], paths_of[head]) if names else {}


# --------------------------------------------------------------------------- showing


def _num(x: float) -> str:
    return f"{x:g}" if x == int(x) else f"{x:.3g}"


def change_text(c: Change) -> str:
    """``calls 1 -> 2, bytecodes 21 -> 42`` (``new``/``gone`` said so)."""
    b = c.before or Cost(0, 0, 0)
    a = c.after or Cost(0, 0, 0)
    parts = [f"calls {_num(b.calls)} -> {_num(a.calls)}"]
    if a.bytecodes or b.bytecodes:
        parts.append(f"bytecodes {_num(b.bytecodes)} -> {_num(a.bytecodes)}")
    text = ", ".join(parts)
    return f"{text} (new)" if c.kind == "new" else f"{text} (gone)" if c.kind == "gone" else text


def summary(d: CallDiff) -> str:
    """One line: the top change, or why there is none."""
    if d.error:
        return f"no call profile: {d.error}"
    if not d.changes:
        return (
            "call counts identical: the change is in C code that calls no Python function, "
            "or in allocation or cache effects"
        )
    top = d.changes[0]
    more = f"; {len(d.changes) - 1} more changed" if len(d.changes) > 1 else ""
    return f"{top.function}: {change_text(top)}{more}"


def text_lines(diffs: Mapping[str, CallDiff]) -> list[str]:
    """The text report's evidence section."""
    if not diffs:
        return []
    lines = ["", "what ran more, per operation (calls and bytecodes per call are exact):"]
    for name in sorted(diffs):
        d = diffs[name]
        lines.append(f"  {name} (operation {d.operation}):")
        if d.error or not d.changes:
            lines.append(f"    {summary(d)}")
            continue
        width = max(len(c.function) for c in d.changes[:SHOWN])
        lines += [f"    {c.function:<{width}}  {change_text(c)}" for c in d.changes[:SHOWN]]
        if len(d.changes) > SHOWN:
            lines.append(f"    ... and {len(d.changes) - SHOWN} more (see the JSON report)")
    return lines


def markdown_lines(diffs: Mapping[str, CallDiff]) -> list[str]:
    """The Markdown report's evidence section (one folded table per benchmark)."""
    if not diffs:
        return []
    out = ["", "#### What ran more", ""]
    out.append(
        "The operation behind each flagged benchmark, profiled on both commits: calls and "
        "bytecodes per call of the operation are exact. First the functions whose own code "
        "ran differently (bytecodes per call changed), then those called more or less."
    )
    for name in sorted(diffs):
        d = diffs[name]
        out += ["", f"<details><summary><code>{name}</code>: {_md(summary(d))}</summary>", ""]
        if d.changes:
            out += [
                "| Function | Calls base → head | Bytecodes base → head | |",
                "|---|--:|--:|---|",
            ]
            for c in d.changes[:SHOWN]:
                b = c.before or Cost(0, 0, 0)
                a = c.after or Cost(0, 0, 0)
                out.append(
                    f"| `{c.function}` | {_num(b.calls)} → {_num(a.calls)} | "
                    f"{_num(b.bytecodes)} → {_num(a.bytecodes)} | "
                    f"{'' if c.kind == 'changed' else c.kind} |"
                )
            if len(d.changes) > SHOWN:
                out.append(f"| … {len(d.changes) - SHOWN} more (JSON report) | | | |")
        out += ["", "</details>"]
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


class CostJson(TypedDict):
    """A :class:`Cost` in JSON."""

    calls: float
    bytecodes: float
    own_ns: float


class ChangeJson(TypedDict):
    """A :class:`Change` in JSON."""

    function: str
    kind: str
    before: CostJson | None
    after: CostJson | None


class CallDiffJson(TypedDict):
    """A :class:`CallDiff` in JSON."""

    operation: str
    error: str
    changes: list[ChangeJson]


def _cost_json(c: Cost | None) -> CostJson | None:
    return None if c is None else {"calls": c.calls, "bytecodes": c.bytecodes, "own_ns": c.own_ns}


def diff_to_json(d: CallDiff) -> CallDiffJson:
    """One diff in full."""
    return {
        "operation": d.operation,
        "error": d.error,
        "changes": [
            {
                "function": c.function,
                "kind": c.kind,
                "before": _cost_json(c.before),
                "after": _cost_json(c.after),
            }
            for c in d.changes
        ],
    }


def to_json(diffs: Mapping[str, CallDiff]) -> dict[str, CallDiffJson]:
    """Every diff in full, by benchmark name."""
    return {name: diff_to_json(d) for name, d in sorted(diffs.items())}
