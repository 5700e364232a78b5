"""The Debian packages a make target needs, installed when they are missing.

``make test`` and ``make bench`` call this before anything else, with nothing but the
system's ``python3`` (so it imports only the standard library)::

    python3 -m benchtools sysdeps venv      # python3-venv where ensurepip is missing
    python3 -m benchtools sysdeps test      # + valgrind, chromium, shellcheck
    python3 -m benchtools sysdeps bench     # + valgrind

What it does, for the packages of that purpose whose check fails:

* nothing missing: nothing to do, silently;
* we are root, or ``sudo -n`` works, and ``apt-get`` exists: ``apt-get update`` once, then
  ``apt-get install -y --no-install-recommends`` of exactly the missing packages, then
  every check again (a package that installs but still fails its check is an error);
* otherwise: one line naming the missing packages and the command that installs them,
  exit 2, before any test runs. Nothing is skipped silently.

Each package is checked by what the suite actually uses (a command on ``PATH``, or
``import ensurepip`` for Debian's split-off venv support), never by asking dpkg, so a
tool installed another way counts too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Exit code when a package is missing and cannot be installed here (make's own code).
EXIT_MISSING = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """A Debian package and how to tell, without dpkg, that what it provides is there."""

    package: str
    why: str
    present: Callable[[], bool]


def _command(name: str) -> Callable[[], bool]:
    def present() -> bool:
        return shutil.which(name) is not None

    return present


def _ensurepip() -> bool:
    # Debian's python3 splits venv's pip bootstrap into python3-venv: without it
    # `python3 -m venv` fails half-way. Ask the interpreter that make will use.
    proc = subprocess.run(
        [sys.executable, "-c", "import ensurepip"], capture_output=True, check=False
    )
    return proc.returncode == 0


VENV = Requirement(package="python3-venv", why="virtualenvs (ensurepip)", present=_ensurepip)
VALGRIND = Requirement(
    package="valgrind", why="instruction-count benchmarks", present=_command("valgrind")
)
CHROMIUM = Requirement(
    package="chromium", why="the site's headless-browser test", present=_command("chromium")
)
SHELLCHECK = Requirement(
    package="shellcheck", why="actionlint's check of run: blocks", present=_command("shellcheck")
)

#: What each purpose needs; ``venv`` comes first everywhere (make builds .venv first).
PURPOSES: dict[str, tuple[Requirement, ...]] = {
    "venv": (VENV,),
    "bench": (VENV, VALGRIND),
    "test": (VENV, VALGRIND, CHROMIUM, SHELLCHECK),
}


class SysdepsError(Exception):
    """A package is missing and could not be installed; the message says how to."""


def missing(requirements: Sequence[Requirement]) -> list[Requirement]:
    """The requirements whose check fails, in order."""
    return [r for r in requirements if not r.present()]


def privilege_prefix() -> list[str] | None:
    """``[]`` as root, ``["sudo", "-n"]`` where sudo needs no password, else None."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") is None:
        return None
    ok = subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False)
    return ["sudo", "-n"] if ok.returncode == 0 else None


def apt_available() -> bool:
    """Whether this is a machine with Debian's package manager."""
    return shutil.which("apt-get") is not None


def install_command(packages: Sequence[str]) -> str:
    """The command a person runs to install ``packages`` (for the one-line message)."""
    return "sudo apt-get install -y " + " ".join(packages)


def ensure(
    purpose: str,
    *,
    run: Callable[[list[str]], int] | None = None,
    say: Callable[[str], None] | None = None,
) -> None:
    """Install what ``purpose`` needs and is missing, or raise :class:`SysdepsError`.

    Args:
        purpose: a key of :data:`PURPOSES`.
        run: runs one command, returns its exit code (tests pass a recorder).
        say: prints one progress line (default: stdout).

    Raises:
        SysdepsError: a package is missing and cannot be installed here (no apt-get, no
            root and no password-less sudo), or its install failed or left it missing.
        KeyError: an unknown purpose.
    """
    requirements = PURPOSES[purpose]
    absent = missing(requirements)
    if not absent:
        return
    run = run or _run
    say = say or (lambda line: print(line, flush=True))
    names = [r.package for r in absent]
    prefix = privilege_prefix()
    if prefix is None or not apt_available():
        raise SysdepsError(
            f"missing Debian package(s) {' '.join(names)} "
            f"({'; '.join(r.why for r in absent)}): install with `{install_command(names)}`"
        )
    say(f"sysdeps: installing {' '.join(names)} for `make {purpose}` (apt-get)")
    apt = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    if run([*apt, "update", "-qq"]) != 0:
        raise SysdepsError(
            f"`apt-get update` failed; install {' '.join(names)} with `{install_command(names)}`"
        )
    if run([*apt, "install", "-y", "-qq", "--no-install-recommends", *names]) != 0:
        raise SysdepsError(f"`apt-get install {' '.join(names)}` failed (its output is above)")
    still = missing(absent)
    if still:
        raise SysdepsError(
            f"installed {' '.join(names)}, but {' '.join(r.package for r in still)} "
            "still fails its check (a command not on PATH?)"
        )


def _run(cmd: list[str]) -> int:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False).returncode


def main(argv: Sequence[str]) -> int:
    """``sysdeps PURPOSE``: 0 when everything is there (installed if need be), else 2."""
    if len(argv) != 1 or argv[0] not in PURPOSES:
        print(f"usage: python3 -m benchtools sysdeps {{{','.join(PURPOSES)}}}", file=sys.stderr)
        return EXIT_MISSING
    try:
        ensure(argv[0])
    except SysdepsError as exc:
        print(f"make {argv[0]}: {exc}", file=sys.stderr)
        return EXIT_MISSING
    return 0
