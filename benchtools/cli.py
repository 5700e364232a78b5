"""``python -m benchtools COMMAND [OPTIONS]``: the repository's tools as one command.

Commands (each ``--help`` says more):

* ``sysdeps {venv,bench,test}``: install the Debian packages a make target needs;
* ``pr-check``: benchmark a pull request against its merge base (exit 0, 1 or 2);
* ``pr-comment``: create or update the pull request's one benchmark comment.

Each command's module is imported only when it runs: ``sysdeps`` and ``pr-comment`` need
nothing beyond the standard library (they run before the virtualenv exists, or without).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def _sysdeps(argv: Sequence[str]) -> int:
    from benchtools import sysdeps

    return sysdeps.main(argv)


def _pr_check(argv: Sequence[str]) -> int:
    from benchtools import prcheck

    return prcheck.main(argv)


def _pr_comment(argv: Sequence[str]) -> int:
    from benchtools import prcomment

    return prcomment.main(argv)


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "sysdeps": (_sysdeps, "install the Debian packages a make target needs"),
    "pr-check": (_pr_check, "benchmark a pull request against its merge base (0/1/2)"),
    "pr-comment": (_pr_comment, "create or update the pull request's benchmark comment"),
}


def usage() -> str:
    """The list of commands."""
    rows = [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: python -m benchtools COMMAND [OPTIONS]\n\ncommands:\n" + "\n".join(rows)


def main(argv: Sequence[str]) -> int:
    """Run ``argv[0]`` with the rest; 2 (and the usage) for an unknown command."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"benchtools: unknown command {argv[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    return command[0](argv[1:])
