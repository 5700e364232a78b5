"""The git questions a comparison asks: which commit a revision is, what is uncommitted."""

from __future__ import annotations

import subprocess
from pathlib import Path

from asvcompare.model import CompareError


def git(repo: Path, *args: str) -> str:
    """``git args`` in ``repo``: its stripped standard output (CalledProcessError on failure)."""
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def resolve(repo: Path, rev: str) -> str:
    """The full hash of a revision, or :class:`~asvcompare.model.CompareError`."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise CompareError(f"unknown revision {rev!r} in {repo}") from None


def dirty_paths(repo: Path) -> list[str]:
    """Uncommitted changes that asv does not build (benchmarks/ is used as it is)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    paths = [line[3:] for line in out.splitlines() if line.strip()]
    return [p for p in paths if not p.startswith(("benchmarks/", ".asv/", "html/"))]
