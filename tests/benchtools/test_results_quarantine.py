"""Unreadable files in the results branch are set aside, named, and benchmarked again.

A truncated write, an empty file, a leftover merge-conflict marker or another asv format
version in ``benchmark-results`` used to wedge the pipeline (``asv publish`` printed
"Error parsing JSON" and published a site without those results; ``asv run`` failed on
the same file every time). Real repositories, real git, and ``make publish`` for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import site_fixture as sf
from site_fixture import git

from benchtools import git as gp
from benchtools import history as bh
from benchtools import results as rb
from benchtools import results_format as rf

ROOT = Path(__file__).resolve().parents[2]
MACHINE = "box-a"


def good_result(commit: str, i: int = 0) -> bytes:
    return json.dumps(sf.result_json(commit, i, 1_700_000_000_000 + i, MACHINE)).encode()


def bad_variants(commit: str) -> dict[str, bytes]:
    good = good_result(commit)
    other = json.loads(good)
    other["version"] = 3
    return {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "other format version": json.dumps(other).encode(),
        "merge-conflict marker": b"<<<<<<< HEAD\n"
        + good
        + b"\n=======\n"
        + good
        + b"\n>>>>>>> x\n",
    }


REASONS = {
    "truncated": "does not parse as JSON",
    "empty": "is empty",
    "other format version": "is asv format version 3, not 2",
    "merge-conflict marker": "holds a merge-conflict marker",
}


def store_tree(repo: Path, files: dict[str, bytes], message: str) -> str:
    rdir = repo / ".asv" / "results"
    for path, data in files.items():
        (rdir / path).parent.mkdir(parents=True, exist_ok=True)
        (rdir / path).write_bytes(data)
    commit = rb.store(repo, rdir, merged_commits=(), message=message)
    assert commit is not None
    return commit


def base_files(history: sf.History, indices: list[int]) -> dict[str, bytes]:
    files = {
        "benchmarks.json": json.dumps(sf.benchmarks_json()).encode(),
        f"{MACHINE}/machine.json": json.dumps(sf.machine_json(MACHINE)).encode(),
    }
    for i in indices:
        c = history.commits[i]
        files[f"{MACHINE}/{c[:8]}-{sf.ENV}.json"] = good_result(c, i)
    return files


@pytest.mark.parametrize("variant", list(REASONS))
def test_an_unreadable_stored_file_is_set_aside_with_its_commit_and_a_note(
    tmp_path: Path, variant: str
) -> None:
    history = sf.make_history(tmp_path / "repo", n_commits=3)
    repo = history.repo
    store_tree(repo, base_files(history, [0, 1, 2]), "results")
    victim = history.commits[1]
    path = f"{MACHINE}/{victim[:8]}-{sf.ENV}.json"
    bad = bad_variants(victim)[variant]
    brought = store_tree(repo, {path: bad}, "a bad hand merge")
    rdir = repo / ".asv" / "results"
    subprocess.run(["rm", "-rf", str(rdir)], check=True)  # a fresh clone's state

    loaded = rb.load(repo, rdir, do_fetch=False)

    assert [(s.path, s.source) for s in loaded.set_aside] == [(path, brought)]
    assert loaded.set_aside[0].reason.startswith(REASONS[variant])
    assert not (rdir / path).exists()
    stem = rdir / rb.QUARANTINE / f"{path}.{brought[:12]}"
    assert Path(f"{stem}.quarantined").read_bytes() == bad
    note = Path(f"{stem}.why.txt").read_text()
    assert REASONS[variant] in note
    assert brought[:12] in note
    assert rb.benchmarked_commits(rdir, MACHINE) == {history.commits[0], history.commits[2]}
    assert rb.missing_after(rdir, loaded.set_aside) == list(loaded.set_aside)

    # Stored: the branch keeps the bad copy under quarantine/, never deletes it.
    rb.store(repo, rdir, merged_commits=loaded.merged_commits, message="set aside")
    tree = gp.tree_files(repo, rb.BRANCH)
    assert path not in tree
    assert tree[f"{rb.QUARANTINE}/{path}.{brought[:12]}.quarantined"] == bad
    # The next load finds nothing new to set aside; a new result replaces the lost one.
    assert rb.load(repo, rdir, do_fetch=False).set_aside == ()
    (rdir / path).write_bytes(good_result(victim, 1))
    assert rb.missing_after(rdir, loaded.set_aside) == []


def test_an_unreadable_local_file_is_set_aside_as_not_stored(tmp_path: Path) -> None:
    history = sf.make_history(tmp_path / "repo", n_commits=2)
    store_tree(history.repo, base_files(history, [0]), "results")
    rdir = history.repo / ".asv" / "results"
    path = f"{MACHINE}/{history.commits[1][:8]}-{sf.ENV}.json"
    (rdir / path).write_bytes(b'{"version": 2, "commit_ha')  # an interrupted asv write

    loaded = rb.load(history.repo, rdir, do_fetch=False)

    assert [(s.path, s.source) for s in loaded.set_aside] == [(path, None)]
    assert "left in .asv/results by a run" in loaded.set_aside[0].describe()
    assert (rdir / rb.QUARANTINE / f"{path}.local.quarantined").is_file()


def test_a_readable_copy_wins_over_an_unreadable_one_in_a_merge() -> None:
    good = good_result("a" * 40)
    path = f"{MACHINE}/aaaaaaaa-{sf.ENV}.json"

    assert rb.merge_file(path, b"", good) == good
    assert rb.merge_file(path, good, good[:10]) == good


def test_the_format_versions_are_asvs() -> None:
    from asv import benchmarks, machine, results

    assert benchmarks.Benchmarks.api_version == rf.BENCHMARKS_VERSION
    assert machine.Machine.api_version == rf.MACHINE_VERSION
    assert results.Results.api_version == rf.RESULTS_VERSION


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("benchmarks.json", "benchmarks"),
        ("m/machine.json", "machine"),
        ("m/abcdef12-virtualenv-py3.11.json", "result"),
        ("quarantine/m/x.json.quarantined", None),
        ("README.md", None),
    ],
)
def test_which_files_are_asvs(path: str, kind: str | None) -> None:
    assert rf.kind(path) == kind
    assert rf.problem(path, b"") == (None if kind is None else "is empty")


def test_make_bench_benchmarks_a_set_aside_commit_again(tmp_path: Path) -> None:
    history = sf.make_history(tmp_path / "repo", n_commits=3)
    old = history.commits[0]
    set_aside = (
        rb.SetAside(path=f"{MACHINE}/{old[:8]}-{sf.ENV}.json", reason="is empty", source=None),
        rb.SetAside(path=f"other/{old[:8]}-{sf.ENV}.json", reason="is empty", source=None),
        rb.SetAside(path=f"{MACHINE}/machine.json", reason="is empty", source=None),
    )
    original = bh.ROOT
    try:
        bh.ROOT = history.repo
        assert bh.again(set_aside, MACHINE, done=set(), todo=[]) == [old]
        assert bh.again(set_aside, MACHINE, done=set(), todo=[old]) == []
        assert bh.again(set_aside, "elsewhere", done=set(), todo=[]) == []
    finally:
        bh.ROOT = original


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_make_publish_names_the_file_says_what_the_site_lacks_and_exits_2(
    tmp_path: Path,
) -> None:
    from benchtools import selftest_compare as asv_selftest

    repo = tmp_path / "clone"
    asv_selftest.make_clone(ROOT, repo, worktree=True)
    head = git(repo, "rev-parse", "HEAD")
    files = {
        "benchmarks.json": json.dumps(sf.benchmarks_json()).encode(),
        f"{MACHINE}/machine.json": json.dumps(sf.machine_json(MACHINE)).encode(),
    }
    store_tree(repo, files, "results")
    path = f"{MACHINE}/{head[:8]}-{sf.ENV}.json"
    brought = store_tree(repo, {path: good_result(head)[:100]}, "an interrupted write")
    subprocess.run(["rm", "-rf", str(repo / ".asv")], check=True)

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchtools",
            "publish",
            "--no-fetch",
            "--machine",
            MACHINE,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=240,
    )

    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert out.count(f"SET ASIDE {path} does not parse as JSON") == 1
    assert f"brought by results-branch commit {brought[:12]}" in out
    assert f"the published site lacks what {path} held" in out
    assert "Error parsing JSON" not in out
    stored = gp.tree_files(repo, rb.BRANCH)
    assert f"{rb.QUARANTINE}/{path}.{brought[:12]}.quarantined" in stored
    assert "index.html" in gp.tree_files(repo, "gh-pages")
