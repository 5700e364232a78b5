"""Read and write a side branch of a repository without touching its working tree.

``make bench`` keeps asv's results in the ``benchmark-results`` branch and the published
site in ``gh-pages``. Both are written with git's plumbing only: blobs go into the object
store, a tree is built in a *temporary* index (``GIT_INDEX_FILE``), and the commit is
made with ``git commit-tree`` and moved into place with ``git update-ref`` (compare and
swap on the old value). Nothing is checked out, so the branch the user works on, its
index and ``git status`` stay exactly as they were.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Used for commits when the repository has no ``user.name``/``user.email`` (a fresh CI
#: machine): the results and the site are data, their author is the job.
FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "pganalytics bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "pganalytics bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}

#: The committer date of the data commits (the author date is the real one). asv numbers
#: the commits of the graphs' x axis by ``git rev-list --all --date-order``, every branch
#: included: data commits dated like code commits would sit between them and leave gaps
#: in every graph after each run. Dated at the epoch they sort before all code.
DATA_COMMITTER_DATE = "1970-01-01T00:00:01+0000"


class GitError(RuntimeError):
    """A git command failed; the message carries the command and git's own words."""


def git(
    repo: Path,
    *args: str,
    input_bytes: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> bytes:
    """Run ``git ARGS`` in ``repo`` and return its standard output.

    Raises:
        GitError: git exited non-zero (or did not finish within ``timeout_s``).
    """
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=repo,
            input=input_bytes,
            capture_output=True,
            env=full_env,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)}: no answer within {timeout_s} s") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args)} failed ({proc.returncode}): {detail}")
    return proc.stdout


def resolve(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when there is no such ref."""
    try:
        out = git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        return out.decode().strip()
    except GitError:
        return None


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    """Whether commit ``ancestor`` is reachable from ``descendant`` (or equal to it)."""
    proc = subprocess.run(
        ["git", "merge-base", "--is-ancestor", ancestor, descendant],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def remote_copies(repo: Path, branch: str) -> list[str]:
    """The remote-tracking refs of ``branch`` (``refs/remotes/<remote>/<branch>``)."""
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/remotes/").decode().split()
    return sorted(r for r in refs if r.endswith(f"/{branch}") and r.count("/") == 3)


def fetch_branch(repo: Path, branch: str, *, timeout_s: float) -> list[str]:
    """Fetch ``branch`` from every remote that has one; notes on the remotes that failed.

    Never raises for a remote that cannot be reached (offline) or has no such branch.
    """
    notes: list[str] = []
    for remote in git(repo, "remote").decode().split():
        try:
            listed = git(repo, "ls-remote", "--heads", remote, branch, timeout_s=timeout_s)
            if not listed.strip():
                continue
            git(
                repo,
                "fetch",
                "--quiet",
                "--no-tags",
                remote,
                f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}",
                timeout_s=timeout_s,
            )
        except GitError as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else "failed"
            notes.append(f"could not fetch {branch} from {remote} (skipped): {first_line}")
    return notes


def tree_files(repo: Path, commit: str) -> dict[str, bytes]:
    """Every file of ``commit``'s tree: path (``/``-separated) to content."""
    listing = git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).split(b"\0")
    entries: list[tuple[str, str]] = []
    for line in listing:
        if not line:
            continue
        meta, raw_path = line.split(b"\t", 1)
        _mode, kind, sha = meta.split()
        if kind == b"blob":
            entries.append((raw_path.decode(), sha.decode()))
    if not entries:
        return {}
    out = git(
        repo, "cat-file", "--batch", input_bytes="".join(f"{s}\n" for _, s in entries).encode()
    )
    files: dict[str, bytes] = {}
    pos = 0
    for name, _sha in entries:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        start = header_end + 1
        files[name] = out[start : start + size]
        pos = start + size + 1  # the content is followed by a newline
    return files


def _identity_env(repo: Path) -> dict[str, str]:
    try:
        git(repo, "var", "GIT_COMMITTER_IDENT")
        git(repo, "var", "GIT_AUTHOR_IDENT")
    except GitError:
        return dict(FALLBACK_IDENTITY)
    return {}


def _write_tree(repo: Path, directory: Path) -> str:
    """Store every file under ``directory`` as blobs and return the tree of them."""
    paths = sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())
    with tempfile.TemporaryDirectory(prefix="pga-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", "--empty", env=env)
        if paths:
            shas = (
                git(
                    repo,
                    "hash-object",
                    "-w",
                    "--no-filters",
                    "--stdin-paths",
                    input_bytes="".join(f"{p}\n" for p in paths).encode(),
                )
                .decode()
                .split()
            )
            info = b"".join(
                b"100644 %s\t%s\0" % (sha.encode(), p.relative_to(directory).as_posix().encode())
                for p, sha in zip(paths, shas, strict=True)
            )
            git(repo, "update-index", "--add", "-z", "--index-info", input_bytes=info, env=env)
        return git(repo, "write-tree", env=env).decode().strip()


def commit_directory(
    repo: Path,
    *,
    branch: str,
    directory: Path,
    message: str,
    merge_parents: Iterable[str] = (),
) -> str | None:
    """Commit the files under ``directory`` as the whole tree of ``branch``.

    The branch's current commit is the first parent; each of ``merge_parents`` that it
    does not already contain becomes a further parent (so pushing the branch fast-forwards
    the remote branches those commits came from). The branch is created (without history)
    when it does not exist.

    Returns:
        The branch's new commit (a merge parent itself when the branch only
        fast-forwards to it), or None when the branch is unchanged.

    Raises:
        GitError: ``branch`` is the branch checked out in ``repo`` (committing to it would
            change ``git status``), or a git command failed.
    """
    ref = f"refs/heads/{branch}"
    try:
        head_ref = git(repo, "symbolic-ref", "--quiet", "HEAD").decode().strip()
    except GitError:
        head_ref = ""
    if head_ref == ref:
        raise GitError(f"{branch!r} is checked out in {repo}; switch to another branch first")
    tree = _write_tree(repo, directory)
    current = resolve(repo, ref)
    candidates: list[str] = []
    for commit in [current, *merge_parents]:
        if commit and commit not in candidates:
            candidates.append(commit)
    # A commit another candidate already contains is no parent of its own (a local branch
    # behind its remote copy fast-forwards instead of growing a merge).
    parents = [
        c for c in candidates if not any(o != c and is_ancestor(repo, c, o) for o in candidates)
    ]
    if (
        len(parents) == 1
        and git(repo, "rev-parse", f"{parents[0]}^{{tree}}").decode().strip() == tree
    ):
        if parents[0] == current:
            return None
        git(repo, "update-ref", "-m", message, ref, parents[0], current or "")
        return parents[0]
    args = ["commit-tree", tree, "-m", message]
    for parent in parents:
        args += ["-p", parent]
    env = {**_identity_env(repo), "GIT_COMMITTER_DATE": DATA_COMMITTER_DATE}
    new = git(repo, *args, env=env).decode().strip()
    git(repo, "update-ref", "-m", message, ref, new, current or "")
    return new
