"""Benchmark two revisions with asv and print a review report: the stable CI command.

An alias of ``python -m benchtools compare`` (:mod:`benchtools.compare`), kept because
CI jobs call it by this path. Usage::

    python tools/asv_compare.py --base main --head HEAD    # CI: exit codes 0, 1, 2 as they are
    python tools/asv_compare.py --base main --head HEAD -b GuardedCall --rounds 8
    python tools/asv_compare.py --base main --head HEAD --no-run   # stored results only

Exit codes: 0 nothing regressed, 1 a regression beyond the threshold, 2 a benchmark
failed or could not run, or the comparison itself could not be made.
"""

import sys
from pathlib import Path

# Run as a script, only tools/ is on the path; the package lives at the root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchtools.compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
