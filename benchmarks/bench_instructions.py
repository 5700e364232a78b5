"""Instruction counts: how many instructions CPython executes for one operation.

Deterministic where wall-clock time is not: the same commit measured twice gives the same
counts, so a change of a few percent shows (docs/performance.md, "Instruction counts",
also for what else moves a count).
Measured under valgrind's cachegrind by ``instructions_harness.py``, once per commit and
environment (``setup_cache``, one valgrind process per core); each ``track_`` method
reports its operation's count. Without valgrind every benchmark here is n/a.

One ``track_<operation>`` per entry of ``instructions_operations.OPERATIONS``; the methods
are generated from that table but are real methods of the class, so asv discovers them.
Names are history: never rename one, add new operations at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from . import instructions_harness as harness
from .instructions_operations import OPERATIONS


def _track(name: str) -> Callable[[Instructions, harness.Counts], float]:
    def track(self: Instructions, counts: harness.Counts) -> float:
        return counts.instructions[name]

    def setup(counts: harness.Counts) -> None:
        """Skip (n/a) or fail this operation alone."""
        if name in counts.unavailable:
            raise NotImplementedError(counts.unavailable[name])
        if name in counts.failed:
            raise RuntimeError(f"{name}: {counts.failed[name]}")

    track.__name__ = track.__qualname__ = f"track_{name}"
    track.__doc__ = OPERATIONS[name].doc
    track.setup = setup  # type: ignore[attr-defined]  # asv runs it after the class setup
    track.unit = "instructions"  # type: ignore[attr-defined]
    track.version = f"{harness.METHOD_VERSION}"  # type: ignore[attr-defined]
    return track


class Instructions:
    """Instructions per operation (loop and body call included: see ``floor_empty_call``)."""

    unit = "instructions"
    timeout = 600

    def setup_cache(self) -> harness.Counts | str:
        """Measure every operation once; a string says why none can be (no valgrind)."""
        try:
            return harness.count_instructions()
        except NotImplementedError as exc:
            return str(exc)

    setup_cache.timeout = 600  # type: ignore[attr-defined]

    def setup(self, counts: harness.Counts | str) -> None:
        if isinstance(counts, str):
            raise NotImplementedError(counts)


for _name in OPERATIONS:
    setattr(Instructions, f"track_{_name}", _track(_name))
del _name
