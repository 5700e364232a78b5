"""``python -m pganalytics_core.load`` and the ``pganalytics-load`` console script."""

from __future__ import annotations

import sys

from pganalytics_core.load.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
