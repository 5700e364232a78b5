"""The main job: benchmark the newest commits of main with asv and publish the history.

Usage (via make)::

    make bench                 # the 5 newest commits of main (already-benchmarked ones skipped)
    make bench COMMITS=20      # more history
    make bench COMMITS=all     # every commit of main (backfill)
    make bench MACHINE=ci-2cpu # results under another machine name
    make bench PUSH=1          # also push the results and the site to origin
    make publish               # only publish the stored results (no benchmark run)

What it does, in order:

1. Loads the stored results: the ``benchmark-results`` branch of this repository and of
   every remote that has one (fetched; skipped with a note when unreachable), merged
   into ``.asv/results`` (benchtools/results.py).
2. Lists the newest N first-parent commits of ``main`` and keeps those with no result
   yet for this machine. With none left, no environment is built and nothing runs.
3. ``asv machine --yes --machine NAME``, then ``asv run HASHFILE:...`` of those commits
   under that machine name: asv builds each commit once (one wheel), installs it into
   its virtualenv under ``.asv/env`` and runs the suite.
4. Commits ``.asv/results`` to the ``benchmark-results`` branch (git plumbing: the
   working tree, its branch, its index and ``git status`` are never touched).
5. :func:`publish`: ``asv publish`` into ``html/``; ``benchtools/confirm.py``
   re-measures, in paired rounds, each step asv lists on the Regressions page and keeps
   only the confirmed ones (report in ``html/regressions-confirmation.json``;
   docs/reviewing.md); the site made self-contained and linked to the repository's web
   pages (benchtools/site.py), and committed to ``gh-pages``.

The machine name is ``--machine`` (``make bench MACHINE=...``), else ``$ASV_MACHINE``,
else this host's name: one name is one line in the graphs, so a fleet of interchangeable
CI runners with changing host names should set ``ASV_MACHINE`` to one stable name.
Pushing is left to the user: ``git push origin benchmark-results gh-pages``, or ``--push``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchtools import confirm
from benchtools import git as gp
from benchtools import results as rb
from benchtools import results_format as rf
from benchtools import site as bench_site

ROOT = Path(__file__).resolve().parent.parent
ASV = [sys.executable, "-m", "asv"]
STATE_DIR = ROOT / ".asv"
RESULTS_DIR = STATE_DIR / "results"
HTML_DIR = ROOT / "html"
CONF = ROOT / "asv.conf.json"


def git(*args: str) -> str:
    return gp.git(ROOT, *args).decode().strip()


def parse_commits(value: str) -> int | None:
    if value == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'all', got {value!r}"
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {value!r}")
    return n


def parse_machine(value: str) -> str:
    """A machine name usable as asv's results directory name."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise argparse.ArgumentTypeError(
            f"machine name {value!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return value


def default_machine() -> str:
    """``$ASV_MACHINE``, else this host's name (its first label, made name-safe)."""
    name = os.environ.get("ASV_MACHINE", "").strip()
    if not name:
        name = socket.gethostname().split(".")[0]
        name = re.sub(r"[^A-Za-z0-9._-]", "-", name).strip("-._") or "localhost"
    return name


def warn_missing_tools() -> None:
    """Say once what a missing optional tool costs, and how to get it."""
    if shutil.which("valgrind") is None:
        print(
            "bench: NOTE: valgrind is not installed. The instruction-count benchmarks\n"
            "       (benchmarks/bench_instructions.py) need it and will show n/a.\n"
            "       Install it (Debian/Ubuntu: `sudo apt-get install valgrind`) and rerun.",
            flush=True,
        )


def publish(confirm_args: str = "") -> int:
    """Publish the results in ``.asv/results``: ``html/`` and the ``gh-pages`` branch.

    0. the remotes' ``gh-pages`` fetched (so the new site is pushed as a fast-forward);
    1. ``asv publish`` with the site's links (:func:`bench_site.site_links`: from the
       ``origin`` remote, or ``$PROJECT_URL``/``$COMMIT_URL``) into ``html/``;
    2. post-processing of asv's output (before 3: it writes twins of the JSON files):
       ``benchtools/confirm.py`` keeps only the confirmed steps in
       ``regressions.json`` and ``regressions.xml`` (``confirm_args``: its extra options);
    3. the site made self-contained (:func:`bench_site.finish`) and committed to the
       ``gh-pages`` branch (:func:`bench_site.write_pages_branch`).

    Returns:
        0, or the failing step's exit code (2 when the site could not be finished).
    """
    for note in gp.fetch_branch(ROOT, bench_site.PAGES_BRANCH, timeout_s=rb.FETCH_TIMEOUT_S):
        print(f"bench: {note}")
    links = bench_site.site_links(ROOT)
    conf = bench_site.publish_config(CONF, STATE_DIR / "asv.publish.json", links)
    rc = subprocess.run([*ASV, "publish", "--no-pull", "--config", str(conf)], cwd=ROOT).returncode
    if rc != 0:
        return rc
    # Post-processing of asv's output (html/*.json) goes here: finish() below writes the
    # .json.js twins the site reads from disk, so later edits of the JSON would be lost.
    rc = confirm.main(["--repo", str(ROOT), "--config", str(conf), *confirm_args.split()])
    if rc != 0:
        return rc
    try:
        bench_site.finish(HTML_DIR, links)
        pages = bench_site.write_pages_branch(ROOT, HTML_DIR)
    except bench_site.SiteError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if not links.commit_url:
        print(
            "bench: no web address for commit links (no GitHub/GitLab-style `origin`); set\n"
            "       PROJECT_URL=https://host/owner/repo (and COMMIT_URL) to add them."
        )
    state = f"updated ({pages[:8]})" if pages else "unchanged"
    print(f"bench: site in {HTML_DIR}; branch {bench_site.PAGES_BRANCH} {state}")
    return 0


def push_branches(branches: list[str]) -> int:
    """``git push origin BRANCHES``; 0 or 1 (with git's words on stderr)."""
    try:
        gp.git(ROOT, "push", "--quiet", "origin", *branches, timeout_s=120)
    except gp.GitError as exc:
        print(f"bench: push failed: {exc}", file=sys.stderr)
        print("bench: `git fetch`, then `make publish` (merges) and push again.", file=sys.stderr)
        return 1
    print(f"bench: pushed {', '.join(branches)} to origin")
    return 0


def again(
    set_aside: tuple[rb.SetAside, ...], machine: str, done: set[str], todo: list[str]
) -> list[str]:
    """The commits of ``machine`` whose result files were set aside: benchmarked again.

    Outside the ``--commits`` window too (the history lost them); a commit this clone
    does not have is left to :func:`results_branch.missing_after` to report.
    """
    out: list[str] = []
    for item in set_aside:
        prefix = rf.result_commit_prefix(item.path)
        if prefix is None or item.path.split("/")[0] != machine:
            continue
        commit = gp.resolve(ROOT, prefix)
        if commit and commit not in done and commit not in todo and commit not in out:
            out.append(commit)
    return out


def run_benchmarks(hashes: list[str], machine: str, asv_args: str) -> int:
    """``asv run`` of ``hashes`` under ``machine``; asv's exit code."""
    hashfile = STATE_DIR / "bench-commits.txt"
    hashfile.write_text("\n".join(hashes) + "\n")
    subprocess.run(
        [*ASV, "machine", "--yes", "--machine", machine],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    run = [
        *ASV,
        "run",
        f"HASHFILE:{hashfile}",
        "--machine",
        machine,
        "--skip-existing-commits",
        "--show-stderr",
        # The suite is imported once per commit and each benchmark forked from it: the
        # full suite takes ~100 s instead of ~130 s with asv's default (spawn).
        "--launch-method=forkserver",
        *asv_args.split(),
    ]
    print("bench: " + " ".join(run[2:]), flush=True)
    return subprocess.run(run, cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--commits",
        type=parse_commits,
        default=5,
        help="how many of the newest commits of main to cover, or 'all' (default 5)",
    )
    parser.add_argument("--branch", default="main", help="the branch to benchmark")
    parser.add_argument(
        "--machine",
        type=parse_machine,
        default=None,
        help="asv machine name (default: $ASV_MACHINE, else the host name)",
    )
    parser.add_argument(
        "--asv-args",
        default=os.environ.get("ASV_ARGS", ""),
        help="extra arguments for `asv run` (also from $ASV_ARGS), e.g. '--quick'",
    )
    parser.add_argument(
        "--confirm-args",
        default=os.environ.get("CONFIRM_ARGS", ""),
        help="extra arguments for benchtools/confirm.py (also from $CONFIRM_ARGS)",
    )
    parser.add_argument(
        "--no-fetch", action="store_true", help="do not fetch the results branch from remotes"
    )
    parser.add_argument(
        "--push",
        action="store_true",
        default=os.environ.get("PUSH", "") not in ("", "0"),
        help="push benchmark-results and gh-pages to origin afterwards (also $PUSH=1)",
    )
    parser.add_argument(
        "--publish-only", action="store_true", help="publish the stored results, run nothing"
    )
    args = parser.parse_args(argv)
    machine = args.machine or parse_machine(default_machine())

    if gp.resolve(ROOT, args.branch) is None:
        print(f"bench: no branch {args.branch!r} in {ROOT}", file=sys.stderr)
        return 2
    started = time.monotonic()
    STATE_DIR.mkdir(exist_ok=True)

    loaded = rb.load(ROOT, RESULTS_DIR, do_fetch=not args.no_fetch)
    for note in loaded.notes:
        print(f"bench: {note}")
    for item in loaded.set_aside:
        print(
            f"bench: SET ASIDE {item.describe()}: asv cannot read it; kept in branch "
            f"{rb.BRANCH} under {rb.QUARANTINE}/ with a note",
            flush=True,
        )
    print(
        f"bench: {loaded.files} stored result file(s) from branch {rb.BRANCH} "
        f"({len(loaded.merged_commits)} copy/copies merged) in {RESULTS_DIR}",
        flush=True,
    )

    run_rc = 0
    if not args.publish_only:
        warn_missing_tools()
        rev_list = ["rev-list", "--first-parent", args.branch]
        if args.commits is not None:
            rev_list[1:1] = ["-n", str(args.commits)]
        hashes = git(*rev_list).split()
        done = rb.benchmarked_commits(RESULTS_DIR, machine)
        todo = [h for h in hashes if h not in done]
        todo += again(loaded.set_aside, machine, done, todo)
        print(
            f"bench: machine {machine!r}: {len(hashes)} commit(s) of {args.branch}, "
            f"{len(hashes) - len(todo)} already benchmarked, {len(todo)} to run",
            flush=True,
        )
        if todo:
            run_rc = run_benchmarks(todo, machine, args.asv_args)
    stored = rb.store(
        ROOT,
        RESULTS_DIR,
        merged_commits=loaded.merged_commits,
        message=f"Benchmark results of {machine}",
    )
    state = f"updated ({stored[:8]})" if stored else "unchanged"
    print(f"bench: branch {rb.BRANCH} {state}; share it with `git push origin {rb.BRANCH}`")

    publish_rc = publish(args.confirm_args)
    lacking = rb.missing_after(RESULTS_DIR, loaded.set_aside)
    for item in lacking:
        print(
            f"bench: the published site lacks what {item.path} held ({item.reason}): "
            f"benchmark that commit again with `make bench MACHINE={item.path.split('/')[0]}`"
            " on the machine that made it",
            file=sys.stderr,
        )
    push_rc = push_branches([rb.BRANCH, bench_site.PAGES_BRANCH]) if args.push else 0
    minutes = (time.monotonic() - started) / 60
    print(f"bench: done in {minutes:.1f} min; HTML history in {HTML_DIR}")
    print("bench: browse it with `make preview` (http://127.0.0.1:8080, this machine only);")
    print("       compare commits with `make compare`.")
    if publish_rc != 0:
        return publish_rc
    if lacking:
        return 2
    # asv exits non-zero when a benchmark failed on some commit; report it, but the
    # history of the others is stored and published all the same.
    return run_rc or push_rc


if __name__ == "__main__":
    sys.exit(main())
