"""The git questions a comparison asks: which commit a revision is, what is uncommitted."""

from __future__ import annotations

from pathlib import Path

from benchtools import git as gp
from benchtools.compare.model import CompareError


def resolve(repo: Path, rev: str) -> str:
    """The full hash of a revision, or :class:`~benchtools.compare.model.CompareError`."""
    commit = gp.resolve(repo, rev)
    if commit is None:
        raise CompareError(f"unknown revision {rev!r} in {repo}")
    return commit


def dirty_paths(repo: Path) -> list[str]:
    """Uncommitted changes that asv does not build (benchmarks/ is used as it is)."""
    out = gp.git(repo, "status", "--porcelain", "--untracked-files=all").decode()
    paths = [line[3:] for line in out.splitlines() if line.strip()]
    return [p for p in paths if not p.startswith(("benchmarks/", ".asv/", "html/"))]
