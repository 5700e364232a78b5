"""The main job: benchmark the newest commits of main with asv and publish the history.

Usage (via make)::

    make bench                 # the 5 newest commits of main (already-benchmarked ones skipped)
    make bench COMMITS=20      # more history
    make bench COMMITS=all     # every commit of main

What it does, in order:

1. ``asv machine --yes`` once, so asv knows this machine (stored in ~/.asv-machine.json).
2. Lists the newest N first-parent commits of ``main`` into a hash file under ``.asv/``.
3. ``asv run HASHFILE:... --skip-existing-commits``: builds each commit once (one wheel),
   installs it into the virtualenv environment under ``.asv/env`` and runs the suite.
4. ``asv publish``: writes the HTML history into ``html/``.

Everything it writes is gitignored, so ``git status`` stays clean.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASV = [sys.executable, "-m", "asv"]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--commits",
        type=parse_commits,
        default=5,
        help="how many of the newest commits of main to cover, or 'all' (default 5)",
    )
    parser.add_argument("--branch", default="main", help="the branch to benchmark")
    parser.add_argument(
        "--asv-args",
        default=os.environ.get("ASV_ARGS", ""),
        help="extra arguments for `asv run` (also from $ASV_ARGS), e.g. '--quick'",
    )
    args = parser.parse_args(argv)

    try:
        git("rev-parse", "--verify", f"{args.branch}^{{commit}}")
    except subprocess.CalledProcessError:
        print(f"bench: no branch {args.branch!r} in {ROOT}", file=sys.stderr)
        return 2

    rev_list = ["rev-list", "--first-parent", args.branch]
    if args.commits is not None:
        rev_list[1:1] = ["-n", str(args.commits)]
    hashes = git(*rev_list).split()
    state = ROOT / ".asv"
    state.mkdir(exist_ok=True)
    hashfile = state / "bench-commits.txt"
    hashfile.write_text("\n".join(hashes) + "\n")
    print(f"bench: {len(hashes)} commit(s) of {args.branch}, newest {hashes[0][:8]}", flush=True)

    started = time.monotonic()
    subprocess.run([*ASV, "machine", "--yes"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    run = [
        *ASV,
        "run",
        f"HASHFILE:{hashfile}",
        "--skip-existing-commits",
        "--show-stderr",
        # The suite is imported once per commit and each benchmark forked from it: the
        # full suite takes ~100 s instead of ~130 s with asv's default (spawn).
        "--launch-method=forkserver",
        *args.asv_args.split(),
    ]
    print("bench: " + " ".join(run[2:]), flush=True)
    run_rc = subprocess.run(run, cwd=ROOT).returncode
    publish_rc = subprocess.run([*ASV, "publish"], cwd=ROOT).returncode
    minutes = (time.monotonic() - started) / 60
    print(f"bench: done in {minutes:.1f} min; HTML history in {ROOT / 'html'}")
    print("bench: browse it with `make preview` (or `.venv/bin/asv preview`), then open")
    print("       http://127.0.0.1:8080 ; compare commits with `make compare`.")
    if publish_rc != 0:
        return publish_rc
    # asv exits non-zero when a benchmark failed on some commit; report it, but the
    # history of the others is published all the same.
    return run_rc


if __name__ == "__main__":
    sys.exit(main())
