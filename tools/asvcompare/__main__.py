"""``python -m asvcompare`` (with ``tools`` on the path): the same as tools/asv_compare.py."""

import sys

from asvcompare.cli import main

sys.exit(main())
