"""``python -m benchtools.compare``: the same as ``python -m benchtools compare``."""

import sys

from benchtools.compare.cli import main

sys.exit(main())
