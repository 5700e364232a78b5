"""``python -m benchtools COMMAND [OPTIONS]``: the repository's tools as one command.

Commands (each ``--help`` says more); ``make`` and the GitHub workflows call these:

* ``bench``: the main job, ``make bench`` (:mod:`benchtools.history`);
* ``publish``: publish the stored results, run nothing, ``make publish``;
* ``compare``: benchmark two revisions and judge them, ``make compare``
  (:mod:`benchtools.compare`; ``tools/asv_compare.py`` is the same command);
* ``confirm``: re-measure the steps of a published history (:mod:`benchtools.confirm`);
* ``preview``: serve ``html/`` on 127.0.0.1, ``make preview`` (:mod:`benchtools.site`);
* ``selftest compare|history``: prove the verdicts and the history on this machine;
* ``dry-run``: every benchmark once on this checkout (``make test``);
* ``unasync``: regenerate the sync client, ``make unasync``;
* ``sysdeps {venv,bench,test}``: install the Debian packages a make target needs;
* ``pr-check``: benchmark a pull request against its merge base (exit 0, 1 or 2);
* ``pr-comment``: create or update the pull request's one benchmark comment;
* ``ratios breaker|client``: same-run ratios of paired benchmark bodies, for a reader;
* ``fake-throughput``: the fake ML service's throughput, two revisions in one run.

Each command's module is imported only when it runs: ``sysdeps`` and ``pr-comment`` need
nothing beyond the standard library (they run before the virtualenv exists, or without).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def _bench(argv: Sequence[str]) -> int:
    from benchtools import history

    return history.main(list(argv))


def _publish(argv: Sequence[str]) -> int:
    from benchtools import history

    return history.main(["--publish-only", *argv])


def _compare(argv: Sequence[str]) -> int:
    from benchtools.compare import cli

    return cli.main(argv)


def _confirm(argv: Sequence[str]) -> int:
    from benchtools import confirm

    return confirm.main(argv)


def _preview(argv: Sequence[str]) -> int:
    from benchtools import site

    return site.main(["preview", *argv])


def _selftest(argv: Sequence[str]) -> int:
    if argv and argv[0] == "compare":
        from benchtools import selftest_compare

        return selftest_compare.main(argv[1:])
    if argv and argv[0] == "history":
        from benchtools import selftest_history

        return selftest_history.main(argv[1:])
    print("usage: python -m benchtools selftest {compare,history} [OPTIONS]", file=sys.stderr)
    return 2


def _dry_run(argv: Sequence[str]) -> int:
    from benchtools import dryrun

    return dryrun.main(list(argv))


def _unasync(argv: Sequence[str]) -> int:
    from benchtools import unasync

    return unasync.main(list(argv))


def _sysdeps(argv: Sequence[str]) -> int:
    from benchtools import sysdeps

    return sysdeps.main(argv)


def _pr_check(argv: Sequence[str]) -> int:
    from benchtools import prcheck

    return prcheck.main(argv)


def _pr_comment(argv: Sequence[str]) -> int:
    from benchtools import prcomment

    return prcomment.main(argv)


def _ratios(argv: Sequence[str]) -> int:
    from benchtools import ratios

    return ratios.main(argv)


def _fake_throughput(argv: Sequence[str]) -> int:
    from benchtools import throughput

    return throughput.main(argv)


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "bench": (_bench, "benchmark the newest commits of main, store and publish (make bench)"),
    "publish": (_publish, "publish the stored results, run nothing (make publish)"),
    "compare": (_compare, "benchmark two revisions in paired rounds and judge (0/1/2)"),
    "confirm": (_confirm, "re-measure the steps of the published history"),
    "preview": (_preview, "serve html/ on 127.0.0.1 (make preview)"),
    "selftest": (_selftest, "prove the verdicts (compare) or the history (history) here"),
    "dry-run": (_dry_run, "every benchmark once on this checkout"),
    "unasync": (_unasync, "regenerate the sync client from the async one"),
    "sysdeps": (_sysdeps, "install the Debian packages a make target needs"),
    "pr-check": (_pr_check, "benchmark a pull request against its merge base (0/1/2)"),
    "pr-comment": (_pr_comment, "create or update the pull request's benchmark comment"),
    "ratios": (_ratios, "same-run ratios of paired benchmark bodies (breaker, client)"),
    "fake-throughput": (_fake_throughput, "the fake service's throughput, two revisions"),
}


def usage() -> str:
    """The list of commands."""
    rows = [f"  {name:<15} {text}" for name, (_, text) in COMMANDS.items()]
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
