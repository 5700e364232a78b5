"""``python -m benchtools COMMAND``: see :mod:`benchtools.cli`."""

import sys

from benchtools.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
