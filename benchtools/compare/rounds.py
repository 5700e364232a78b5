"""The order of a comparison: paired rounds, then confirmation rounds for suspects.

Pure orchestration over anything that runs rounds (:class:`RoundRunner`; asv's in
:class:`benchtools.compare.asvglue.AsvSession`), so the flow is unit tested with a fake runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from benchtools.compare.model import DEFAULT_INSTRUCTIONS_THRESHOLD, Measurements, Verdict
from benchtools.compare.verdicts import compare_all, suspects


class RoundRunner(Protocol):
    """Runs paired rounds of every commit of a comparison into :class:`Measurements`."""

    rounds_run: int
    log: Callable[[str], None]

    def run_rounds(
        self, rounds: int, into: Measurements, only: Iterable[str] | None = None
    ) -> None:
        """``rounds`` paired rounds over the selection, or over the names in ``only``.

        A benchmark already :meth:`~benchtools.compare.model.Measurements.done` on a commit is
        not run again there (instruction counts: once per commit).
        """
        ...


def measure(
    runner: RoundRunner,
    base: str,
    heads: Sequence[str],
    *,
    factor: float,
    rounds: int,
    confirm_rounds: int,
    quick: bool = False,
    instructions_threshold: float = DEFAULT_INSTRUCTIONS_THRESHOLD,
) -> tuple[Measurements, dict[str, list[Verdict]]]:
    """Measure ``base`` and every head in the same paired rounds, then judge each head.

    Suspects of any head (:func:`~benchtools.compare.verdicts.suspects`; never an instruction
    count) get ``confirm_rounds`` more rounds, for all commits, before the final
    verdicts. A change seen on all rounds but not by the confirmation rounds alone is
    undecided (a slow spell during the confirmation can hide a real change): one more
    batch, then all confirmation rounds together decide.

    Args:
        runner: what runs the rounds.
        base: the base commit.
        heads: the commits judged against base.
        factor: the paired rule's threshold ratio.
        rounds: paired rounds over every benchmark (1 when ``quick``).
        confirm_rounds: more rounds for suspects (none when ``quick``).
        quick: every benchmark once, nothing judged.
        instructions_threshold: the instruction-count rule's threshold (a fraction).

    Returns:
        The measurements and the verdicts per head.
    """
    m = Measurements()
    runner.run_rounds(1 if quick else rounds, m)
    confirmed_after = None
    if not quick and confirm_rounds:
        first = {
            h: compare_all(m, base, h, factor=factor, instructions_threshold=instructions_threshold)
            for h in heads
        }
        todo = sorted({n for h in heads for n in suspects(first[h], factor)})
        if todo:
            runner.log(
                f"confirming {len(todo)} suspect(s): {', '.join(todo[:4])}"
                + (", ..." if len(todo) > 4 else "")
            )
            confirmed_after = runner.rounds_run
            runner.run_rounds(confirm_rounds, m, only=todo)
            undecided = sorted(
                {
                    v.name
                    for h in heads
                    for v in compare_all(
                        m,
                        base,
                        h,
                        factor=factor,
                        confirmed_after=confirmed_after,
                        instructions_threshold=instructions_threshold,
                    )
                    if v.note.startswith("not confirmed")
                }
            )
            if undecided:
                runner.log(f"undecided after confirmation, once more: {', '.join(undecided)}")
                runner.run_rounds(confirm_rounds, m, only=undecided)
    verdicts = {
        h: compare_all(
            m,
            base,
            h,
            factor=factor,
            judge=not quick,
            confirmed_after=confirmed_after,
            instructions_threshold=instructions_threshold,
        )
        for h in heads
    }
    return m, verdicts
