"""Results kept in git (benchtools/results.py, benchtools/git.py), on real repositories.

Two clones of one origin each add results and merge through the origin's
``benchmark-results`` branch: no result may be lost, and the branch the user works on,
its index and ``git status`` must not change.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import site_fixture as sf
from site_fixture import git

from benchtools import git as gp
from benchtools import results as rb


def results_dir(clone: Path) -> Path:
    return clone / ".asv" / "results"


def snapshot(repo: Path) -> tuple[str, str, str, str]:
    """What the user sees: HEAD's branch and commit, the index's tree, ``git status``."""
    return (
        git(repo, "symbolic-ref", "HEAD"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "write-tree"),
        git(repo, "status", "--porcelain", "--untracked-files=all"),
    )


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, sf.History]:
    """A bare origin of a fixture history."""
    history = sf.make_history(tmp_path / "work", n_commits=4)
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(history.repo), str(bare)], check=True)
    return bare, history


def clone(origin: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(origin), str(dest)], check=True)
    return dest


def add_results(repo: Path, history: sf.History, machine: str, indices: list[int]) -> None:
    """Result files of ``history.commits[i]`` for ``machine``, as asv run writes them."""
    rdir = results_dir(repo)
    (rdir / machine).mkdir(parents=True, exist_ok=True)
    (rdir / "benchmarks.json").write_text(json.dumps(sf.benchmarks_json()))
    (rdir / machine / "machine.json").write_text(json.dumps(sf.machine_json(machine)))
    for i in indices:
        commit = history.commits[i]
        data = sf.result_json(commit, i, 1_700_000_000_000 + i, machine)
        (rdir / machine / f"{commit[:8]}-{sf.ENV}.json").write_text(json.dumps(data))


def bench(repo: Path, history: sf.History, machine: str, indices: list[int]) -> str | None:
    """What ``make bench`` does with results: load, (run), store."""
    loaded = rb.load(repo, results_dir(repo))
    add_results(repo, history, machine, indices)
    return rb.store(
        repo, results_dir(repo), merged_commits=loaded.merged_commits, message=f"r {machine}"
    )


def branch_files(repo: Path, ref: str = rb.BRANCH) -> dict[str, bytes]:
    commit = gp.resolve(repo, ref)
    assert commit is not None, f"no {ref} in {repo}"
    return gp.tree_files(repo, commit)


def test_store_commits_results_without_touching_the_working_tree(
    origin: tuple[Path, sf.History], tmp_path: Path
) -> None:
    bare, history = origin
    a = clone(bare, tmp_path / "a")
    (a / "scratch.txt").write_text("an untracked file of the user\n")
    (a / "version.txt").write_text("an uncommitted edit\n")
    git(a, "add", "version.txt")
    before = snapshot(a)

    commit = bench(a, history, "box-a", [0, 1])

    assert commit is not None
    assert snapshot(a) == before
    files = branch_files(a)
    assert sorted(files) == sorted(
        ["benchmarks.json", "box-a/machine.json"]
        + [f"box-a/{c[:8]}-{sf.ENV}.json" for c in history.commits[:2]]
    )
    # The branch is an orphan: no file and no commit of main in it.
    assert git(a, "rev-list", "--count", rb.BRANCH) == "1"
    # Nothing new: no new commit.
    assert rb.store(a, results_dir(a), merged_commits=(), message="again") is None
    # asv's x axis (rev-list --all --date-order): the data commit leaves main's contiguous.
    order = git(a, "rev-list", "--all", "--date-order", "--reverse").split()
    assert order.index(commit) < order.index(history.commits[0])


def test_two_clones_merge_without_losing_a_result(
    origin: tuple[Path, sf.History], tmp_path: Path
) -> None:
    bare, history = origin
    a = clone(bare, tmp_path / "a")
    b = clone(bare, tmp_path / "b")
    before_a, before_b = snapshot(a), snapshot(b)

    # Both benchmark before either pushes: two diverged branches. Same machine name,
    # same commit 1 in both, but different benchmarks there: the file must be merged.
    assert bench(a, history, "box-a", [0, 1]) is not None
    assert bench(b, history, "box-b", [2, 3]) is not None
    shared_name = f"box-a/{history.commits[1][:8]}-{sf.ENV}.json"
    only_sort = sf.result_json(history.commits[1], 1, 1, "box-a", ("bench_demo.Sort.time_sort",))
    (results_dir(b) / "box-a").mkdir()
    (results_dir(b) / shared_name).write_text(json.dumps(only_sort))
    (results_dir(b) / "box-a" / "machine.json").write_text(json.dumps(sf.machine_json("box-a")))
    assert rb.store(b, results_dir(b), merged_commits=(), message="b") is not None
    git(a, "push", "--quiet", "origin", rb.BRANCH)

    # b fetches a's results, merges them, and pushes: a fast-forward of the origin.
    assert bench(b, history, "box-b", []) is not None
    git(b, "push", "--quiet", "origin", rb.BRANCH)
    # a gets everything back (its stale copy of the shared file gives way).
    assert bench(a, history, "box-a", []) is not None

    for repo in (a, b):
        files = branch_files(repo)
        for i in (0, 1):
            assert f"box-a/{history.commits[i][:8]}-{sf.ENV}.json" in files
        for i in (2, 3):
            assert f"box-b/{history.commits[i][:8]}-{sf.ENV}.json" in files
        merged = json.loads(files[shared_name])
        assert sorted(merged["results"]) == sorted(sf.MEASURED)
        on_disk = json.loads((results_dir(repo) / shared_name).read_bytes())
        assert on_disk == merged
        assert rb.benchmarked_commits(results_dir(repo), "box-b") == set(history.commits[2:])
    assert branch_files(a) == branch_files(b)
    assert gp.resolve(a, rb.BRANCH) == gp.resolve(b, "refs/remotes/origin/" + rb.BRANCH)
    # Both histories are in the merged branch (nothing rewritten, pushes fast-forwarded).
    assert git(a, "rev-list", "--count", rb.BRANCH) == "4"
    assert snapshot(a)[:3] == before_a[:3]
    assert snapshot(b) == before_b


def test_a_fresh_clone_starts_from_the_stored_results(
    origin: tuple[Path, sf.History], tmp_path: Path
) -> None:
    bare, history = origin
    a = clone(bare, tmp_path / "a")
    bench(a, history, "box-a", [0, 1, 2])
    git(a, "push", "--quiet", "origin", rb.BRANCH)

    c = clone(bare, tmp_path / "c")
    loaded = rb.load(c, results_dir(c))

    assert loaded.notes == ()
    assert rb.benchmarked_commits(results_dir(c), "box-a") == set(history.commits[:3])
    assert rb.benchmarked_commits(results_dir(c), "another-box") == set()
    # Nothing new: the local branch fast-forwards to origin's, no new commit.
    assert (
        rb.store(c, results_dir(c), merged_commits=loaded.merged_commits, message="c")
        == loaded.merged_commits[0]
    )
    assert gp.resolve(c, rb.BRANCH) == gp.resolve(a, rb.BRANCH)


def test_an_unreachable_remote_is_skipped_with_a_note(
    origin: tuple[Path, sf.History], tmp_path: Path
) -> None:
    bare, _history = origin
    a = clone(bare, tmp_path / "a")
    git(a, "remote", "add", "gone", str(tmp_path / "no-such-repo.git"))

    loaded = rb.load(a, results_dir(a))

    assert len(loaded.notes) == 1
    assert "could not fetch benchmark-results from gone" in loaded.notes[0]
    assert loaded.files == 0


def test_merge_file_keeps_both_sides_benchmarks_ours_winning_ties() -> None:
    ours = sf.result_json("c" * 40, 0, 1, names=("bench_demo.Breaker.time_call",))
    theirs = sf.result_json("c" * 40, 3, 2)
    merged = json.loads(
        rb.merge_file("m/x.json", json.dumps(ours).encode(), json.dumps(theirs).encode())
    )

    assert sorted(merged["results"]) == sorted(sf.MEASURED)
    assert merged["results"]["bench_demo.Breaker.time_call"][0] == [1e-6]  # ours
    assert merged["date"] == 1  # the rest of the file is ours
    # Unmergeable content: ours, untouched.
    assert rb.merge_file("m/x.json", b"not json", b"{}") == b"not json"
    assert rb.merge_file("m/machine.json", b'{"a": 1}', b'{"a": 2}') == b'{"a": 1}'


def test_committing_to_the_checked_out_branch_is_refused(tmp_path: Path) -> None:
    history = sf.make_history(tmp_path / "r", n_commits=1)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")

    with pytest.raises(gp.GitError, match="'main' is checked out"):
        gp.commit_directory(history.repo, branch="main", directory=tmp_path / "d", message="m")
