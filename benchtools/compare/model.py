"""The comparison's data: one benchmark's results per round, verdicts, their vocabulary.

Pure data (no asv, no I/O): what the asv glue (:mod:`benchtools.compare.asvglue`) fills in and
what the verdict logic (:mod:`benchtools.compare.verdicts`) and the report
(:mod:`benchtools.compare.report`) read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

#: A ratio must be beyond this factor (either way) to count as a change.
DEFAULT_FACTOR: Final = 1.2
#: Paired rounds over every selected benchmark.
DEFAULT_ROUNDS: Final = 4
#: Extra paired rounds for the benchmarks that look changed after the first rounds.
DEFAULT_CONFIRM_ROUNDS: Final = 8
#: An instruction count must change by more than this fraction (either way) to count.
DEFAULT_INSTRUCTIONS_THRESHOLD: Final = 0.02
#: ... and by more than this many instructions. A change elsewhere in the package moves
#: the heap an operation runs on, and with it CPython's method cache: measured shifts of
#: untouched operations beyond 2% were at most 69 instructions (docs/performance.md,
#: "Instruction counts"), so a 5% change is seen on every operation above 2,000.
INSTRUCTIONS_FLOOR: Final = 100

#: The unit of instruction-count benchmarks (``track_`` with ``unit = "instructions"``):
#: deterministic, so judged by their own rule (one measurement per side).
INSTRUCTIONS: Final = "instructions"

#: A round whose fastest sample is beyond this multiple of its side's fastest round ran
#: through a slow spell of the machine (see :func:`benchtools.compare.verdicts.undisturbed`).
DISTURBED: Final = 1.25
#: The undisturbed rounds a ratio needs; with fewer, every round counts.
MIN_UNDISTURBED: Final = 3

VerdictKind = Literal["regression", "improvement", "failed", "new", "unchanged", "not run"]

# Verdicts, in report order.
REGRESSION: Final = "regression"
IMPROVEMENT: Final = "improvement"
FAILED: Final = "failed"
NEW: Final = "new"
UNCHANGED: Final = "unchanged"
NOT_RUN: Final = "not run"
VERDICT_ORDER: Final[tuple[VerdictKind, ...]] = (
    REGRESSION,
    IMPROVEMENT,
    FAILED,
    NEW,
    UNCHANGED,
    NOT_RUN,
)
SECTION_TITLES: Final[dict[VerdictKind, str]] = {
    REGRESSION: "Regressions",
    IMPROVEMENT: "Improvements",
    FAILED: "Failed or could not run",
    NEW: "New (n/a on base)",
    UNCHANGED: "Unchanged",
    NOT_RUN: "n/a on both sides",
}

SideStatus = Literal["ok", "skipped", "missing", "failed"]

# The status of one side of one benchmark (and FAILED).
OK: Final = "ok"
SKIPPED: Final = "skipped"  # NotImplementedError in setup: asv shows n/a
MISSING: Final = "missing"  # no result at all


class CompareError(Exception):
    """The comparison could not be made (bad revision, no results, asv unusable)."""


class BudgetSpent(CompareError):
    """The comparison's deadline passed before every benchmark ran (nothing is judged)."""


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One benchmark's result for one commit in one round.

    Attributes:
        round: the round it was measured in (pairs are results of the same round).
        value: asv's result (time benchmarks: the median sample, in seconds); ``None``
            when the benchmark failed, NaN when it was skipped (n/a).
        samples: the raw samples of a time benchmark.
        error: the last line of the output of a failed benchmark.
    """

    round: int
    value: float | None
    samples: tuple[float, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the benchmark ran and gave a value (neither failed nor n/a)."""
        return self.value is not None and not math.isnan(self.value)

    def point(self) -> float:
        """The round's estimate: the fastest sample (interference only adds time)."""
        if self.value is None:
            raise ValueError("no point estimate of a failed result")
        return min(self.samples) if self.samples else self.value


@dataclass(slots=True)
class Measurements:
    """Results of several commits: commit -> benchmark name -> one result per round.

    Attributes:
        kinds: benchmark name -> asv's type (time, track, mem, peakmem).
        units: benchmark name -> its unit (``seconds``, ``bytes``, ``instructions``, ...).
        results: commit -> benchmark name -> its results, one per round it ran in.
    """

    kinds: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, list[RoundResult]]] = field(default_factory=dict)

    def add(self, commit: str, name: str, result: RoundResult) -> None:
        """Record one round's result of ``name`` on ``commit``."""
        self.results.setdefault(commit, {}).setdefault(name, []).append(result)

    def get(self, commit: str, name: str) -> list[RoundResult]:
        """The results of ``name`` on ``commit``, in the order they were added."""
        return self.results.get(commit, {}).get(name, [])

    def names(self) -> list[str]:
        """Every benchmark measured, sorted."""
        return sorted(self.kinds)

    def settled(self, commit: str, name: str) -> bool:
        """True once a benchmark failed or was skipped on a commit (no point re-running)."""
        return any(not r.ok for r in self.get(commit, name))

    def done(self, commit: str, name: str) -> bool:
        """True when another round of ``name`` on ``commit`` can tell nothing new.

        Settled (failed or n/a), or an instruction count already measured: counts are
        deterministic, one measurement per side is enough.
        """
        results = self.get(commit, name)
        return self.settled(commit, name) or (
            bool(results) and self.units.get(name) == INSTRUCTIONS
        )


@dataclass(frozen=True, slots=True)
class Band:
    """An estimate and its spread: ``center`` within [``low``, ``high``]."""

    center: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one benchmark.

    Attributes:
        name: the benchmark, with its parameters.
        verdict: one of :data:`VERDICT_ORDER`.
        unit: the unit of the side bands.
        base: the base side: median and range over the rounds the ratio comes from.
        head: the head side, likewise.
        ratio: head/base: the median of the per-round ratios and their interquartile
            range; ``None`` when there is nothing to divide.
        rounds: the number of paired rounds the ratio comes from (undisturbed ones).
        note: why, when it is not obvious.
    """

    name: str
    verdict: VerdictKind
    unit: str
    base: Band | None
    head: Band | None
    ratio: Band | None
    rounds: int = 0
    note: str = ""
