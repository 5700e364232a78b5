"""Benchmark two revisions with asv and print a review report (``make compare``).

The command line of the :mod:`asvcompare` package (``tools/asvcompare/``; how it works
and why: its docstring and docs/reviewing.md). Usage::

    python tools/asv_compare.py --base main --head HEAD    # CI: exit codes 0, 1, 2 as they are
    python tools/asv_compare.py --base main --head HEAD -b GuardedCall --rounds 8
    python tools/asv_compare.py --base main --head HEAD --no-run   # stored results only
    make compare BASE=v0.1 HEAD=my-branch FACTOR=1.1 COMPARE_ARGS="--markdown review.md"

Exit codes: 0 nothing regressed, 1 a regression beyond the threshold, 2 a benchmark
failed or could not run, or the comparison itself could not be made (the report still
lists every benchmark that did run). ``make compare`` cannot pass 1 on (make exits 2
whenever a command fails): CI runs this script directly.
"""

import sys

from asvcompare.cli import main

if __name__ == "__main__":
    sys.exit(main())
