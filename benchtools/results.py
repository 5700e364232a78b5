"""asv's results, kept in the ``benchmark-results`` branch of the repository itself.

``make bench`` calls :func:`load` before ``asv run`` and :func:`store` after it:

- :func:`load` fetches ``benchmark-results`` from every remote that has one (a failure,
  e.g. offline, is reported and skipped), merges the local branch and every remote copy
  with what is already in ``.asv/results``, and writes the union there.
- :func:`store` commits ``.asv/results`` as the new tree of the local branch, with the
  remote copies it merged as extra parents, so ``git push origin benchmark-results`` is a
  fast-forward. Git plumbing only (benchtools/git.py): the working tree, its branch,
  its index and ``git status`` are never touched. Pushing is the user's call.

A stored file asv could not read (a truncated write, an empty file, a leftover
merge-conflict marker, another asv format version: :func:`results_format.problem`)
would wedge every later run. :func:`load` sets it aside instead: it is moved, in the
tree that :func:`store` commits, to ``quarantine/<path>.<source>.quarantined`` beside a
note saying why and which results-branch commit brought it (never deleted; asv reads no
file there), and :attr:`Loaded.set_aside` names it, so ``make bench`` can benchmark that
commit again and say what the site lacks meanwhile.

The branch holds asv's results tree as is: ``benchmarks.json`` and one directory per
machine (``machine.json`` and one ``<commit>-<environment>.json`` per benchmarked commit).
Results of different machines or commits are different files, so they never collide.
When two copies hold the same file with different content (the same machine name ran
the same commit in two clones), :func:`merge_file` keeps the union of the benchmarks
of both, the local copy winning for a benchmark present in both: no result is lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchtools import git as gp
from benchtools import results_format as rf

BRANCH = "benchmark-results"
#: How long one ``git fetch`` of a remote may take before it is given up (offline, slow).
FETCH_TIMEOUT_S = 30.0
#: Where unreadable files are kept, in the results tree and so in the branch.
QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetAside:
    """A stored file asv could not read, moved to the quarantine.

    Attributes:
        path: where it was in the results tree (``machine/abcd1234-env.json``).
        reason: what is wrong with it (``is empty``, ``holds a merge-conflict marker``).
        source: the results-branch commit that last changed it, or None when it was in
            ``.asv/results`` only (a run not stored yet).
    """

    path: str
    reason: str
    source: str | None

    def describe(self) -> str:
        """One line: the file, why, and where it came from."""
        origin = (
            f"brought by results-branch commit {self.source[:12]}"
            if self.source
            else "left in .asv/results by a run (not stored yet)"
        )
        return f"{self.path} {self.reason}; {origin}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """What :func:`load` found: the commits to record as parents, and what it said."""

    merged_commits: tuple[str, ...]
    files: int
    notes: tuple[str, ...]
    set_aside: tuple[SetAside, ...] = ()


def remote_branches(repo: Path) -> list[str]:
    """The remote-tracking refs of the results branch (``refs/remotes/*/benchmark-results``)."""
    return gp.remote_copies(repo, BRANCH)


def fetch(repo: Path, *, timeout_s: float = FETCH_TIMEOUT_S) -> list[str]:
    """Fetch the results branch from every remote that has one; return notes on failures.

    Never raises for a remote that cannot be reached or has no results branch.
    """
    return gp.fetch_branch(repo, BRANCH, timeout_s=timeout_s)


def _merge_json(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any] | None:
    if "result_columns" in ours or "result_columns" in theirs:
        # A result file: per-benchmark rows under "results", other timings in "durations".
        if ours.get("result_columns") != theirs.get("result_columns"):
            return None
        merged = dict(ours)
        merged["results"] = {**theirs.get("results", {}), **ours.get("results", {})}
        merged["durations"] = {**theirs.get("durations", {}), **ours.get("durations", {})}
        return merged
    if all(isinstance(v, dict) for k, v in ours.items() if k != "version") and all(
        isinstance(v, dict) for k, v in theirs.items() if k != "version"
    ):
        # benchmarks.json: one entry per benchmark name.
        return {**theirs, **ours}
    return None


def merge_file(path: str, ours: bytes, theirs: bytes) -> bytes:
    """One file present in two copies of the results: their union, ``ours`` winning ties.

    Result files and ``benchmarks.json`` are merged benchmark by benchmark; any other
    file (``machine.json``) is taken from ``ours``.
    """
    if ours == theirs:
        return ours
    if rf.problem(path, ours) and not rf.problem(path, theirs):
        return theirs  # a readable copy beats an unreadable one, whichever side
    if not path.endswith(".json") or path.endswith("machine.json"):
        return ours
    try:
        a, b = json.loads(ours), json.loads(theirs)
    except ValueError:
        return ours
    if not isinstance(a, dict) or not isinstance(b, dict) or a.get("version") != b.get("version"):
        return ours
    merged = _merge_json(a, b)
    if merged is None:
        return ours
    return json.dumps(merged, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def merge_trees(ours: dict[str, bytes], theirs: dict[str, bytes]) -> dict[str, bytes]:
    """The union of two results trees (path to content), merging files both hold."""
    out = dict(theirs)
    for path, content in ours.items():
        out[path] = merge_file(path, content, theirs[path]) if path in theirs else content
    return out


def _read_directory(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def load(repo: Path, results_dir: Path, *, do_fetch: bool = True) -> Loaded:
    """Merge the stored results (local branch, remote copies) into ``results_dir``.

    Copies contained in another copy are skipped; of the files in ``results_dir``, those
    the local branch holds as they are (a cache of it) give way to the merged copies,
    the others (results not stored yet) are merged with them and win ties.

    Returns:
        The commits merged (to pass to :func:`store`), the number of files now in
        ``results_dir``, and notes for the user (fetch failures).
    """
    notes = fetch(repo) if do_fetch else []
    local = gp.resolve(repo, f"refs/heads/{BRANCH}")
    commits: list[str] = []
    for ref in [f"refs/heads/{BRANCH}", *remote_branches(repo)]:
        commit = gp.resolve(repo, ref)
        if commit and commit not in commits:
            commits.append(commit)
    # A copy another copy already contains adds nothing (and its stale versions of files
    # the other has merged since must not win again).
    heads = [c for c in commits if not any(o != c and gp.is_ancestor(repo, c, o) for o in commits)]
    stored: dict[str, bytes] = {}
    trees = {commit: gp.tree_files(repo, commit) for commit in heads}
    for commit in heads:  # the local branch first: it wins ties
        stored = merge_trees(stored, trees[commit])
    # Files on disk as the local branch has them are a cache of it; only the others
    # (results of a run not stored yet) are news to merge.
    base = gp.tree_files(repo, local) if local else {}
    on_disk = _read_directory(results_dir)
    news = {path: data for path, data in on_disk.items() if base.get(path) != data}
    merged = merge_trees(news, stored)
    set_aside = quarantine(repo, merged, trees)
    for item in set_aside:
        (results_dir / item.path).unlink(missing_ok=True)
    for path, content in merged.items():
        if on_disk.get(path) != content:
            target = results_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    files = len(_read_directory(results_dir))
    return Loaded(merged_commits=tuple(heads), files=files, notes=tuple(notes), set_aside=set_aside)


def quarantine(
    repo: Path, tree: dict[str, bytes], stored_trees: dict[str, dict[str, bytes]]
) -> tuple[SetAside, ...]:
    """Move every file of ``tree`` asv could not read into the quarantine, with a note.

    ``tree`` (path to content) is changed in place; ``stored_trees`` (the branch copies
    it was merged from, by commit) tell which commit brought a file.
    """
    found: list[SetAside] = []
    for path in sorted(tree):
        if path.startswith(QUARANTINE + "/"):
            continue
        reason = rf.problem(path, tree[path])
        if reason is None:
            continue
        content = tree.pop(path)
        copy = next((c for c, t in stored_trees.items() if t.get(path) == content), None)
        source = None
        if copy is not None:
            source = gp.git(repo, "log", "-1", "--format=%H", copy, "--", path).decode().strip()
        item = SetAside(path=path, reason=reason, source=source or None)
        stem = f"{QUARANTINE}/{path}.{(item.source or 'local')[:12]}"
        tree[f"{stem}.quarantined"] = content
        tree[f"{stem}.why.txt"] = (
            f"{item.describe()}.\n"
            "make bench set it aside: asv could not read it, and it would have stopped\n"
            "every later run. Its commit is benchmarked again by the machine that made it\n"
            "(make bench with that machine name); this copy is kept for inspection and\n"
            "can be deleted from the branch once it is no longer needed.\n"
        ).encode()
        found.append(item)
    return tuple(found)


def missing_after(results_dir: Path, set_aside: tuple[SetAside, ...]) -> list[SetAside]:
    """The set-aside files whose results ``results_dir`` still lacks (none replaced them).

    A result file is replaced by any readable result of the same machine and commit; any
    other file by a readable file at its path.
    """
    lacking = []
    for item in set_aside:
        prefix = rf.result_commit_prefix(item.path)
        if prefix is not None:
            machine = item.path.split("/")[0]
            if any(c.startswith(prefix) for c in benchmarked_commits(results_dir, machine)):
                continue
        else:
            path = results_dir / item.path
            if path.is_file() and rf.problem(item.path, path.read_bytes()) is None:
                continue
        lacking.append(item)
    return lacking


def store(
    repo: Path, results_dir: Path, *, merged_commits: tuple[str, ...], message: str
) -> str | None:
    """Commit ``results_dir`` to the results branch; the new commit, or None if unchanged."""
    if not results_dir.is_dir():
        return None
    return gp.commit_directory(
        repo,
        branch=BRANCH,
        directory=results_dir,
        message=message,
        merge_parents=merged_commits,
    )


def benchmarked_commits(results_dir: Path, machine: str) -> set[str]:
    """The commits with at least one result file for ``machine`` in ``results_dir``."""
    done: set[str] = set()
    machine_dir = results_dir / machine
    if not machine_dir.is_dir():
        return done
    for path in machine_dir.glob("*.json"):
        if path.name == "machine.json":
            continue
        raw = path.read_bytes()
        if rf.problem(f"{machine}/{path.name}", raw) is not None:
            continue
        data = json.loads(raw)
        commit = data.get("commit_hash")
        if isinstance(commit, str):
            done.add(commit)
    return done
