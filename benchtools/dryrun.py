"""Run every asv benchmark once on the current checkout and fail if any of them failed.

`asv run --quick --dry-run --python=same` prints "failed" for a benchmark that raised but
may still exit 0; this wrapper reads its output and turns any failure into exit code 1.
Benchmarks skipped with NotImplementedError ("n/a") are not failures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Every benchmark once on this checkout (asv --dry-run); 1 when one fails."""
    cmd = [
        sys.executable,
        "-m",
        "asv",
        "run",
        "--python=same",
        "--quick",
        "--dry-run",
        "--show-stderr",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    print(out[-6000:])
    failed = sorted(set(re.findall(r"··· (\S+)\s+failed", out)))
    ran = len(re.findall(r"··· \S+\s+\S", out))
    if proc.returncode != 0 or failed or ran == 0:
        print(f"bench dry run: exit {proc.returncode}, failed: {failed or 'none'}", file=sys.stderr)
        return 1
    print(f"bench dry run: {ran} benchmark lines, none failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
