"""benchtools.sysdeps: the Debian packages of `make test` and `make bench`, installed
when missing, or one line saying how (exercised with recorded commands, and for real)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchtools import sysdeps

ROOT = Path(__file__).resolve().parents[2]


class Machine:
    """Which packages are present; apt-get 'installs' by adding them."""

    def __init__(self, present: set[str], *, install_works: bool = True) -> None:
        self.present = present
        self.install_works = install_works
        self.commands: list[list[str]] = []

    def requirement(self, package: str) -> sysdeps.Requirement:
        return sysdeps.Requirement(
            package=package, why=f"the {package} tests", present=lambda: package in self.present
        )

    def run(self, cmd: list[str]) -> int:
        self.commands.append(cmd)
        if "install" in cmd and self.install_works:
            self.present.update(c for c in cmd if c in ("chromium", "valgrind"))
        return 0


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Machine:
    m = Machine({"valgrind"})
    monkeypatch.setitem(
        sysdeps.PURPOSES, "test", (m.requirement("valgrind"), m.requirement("chromium"))
    )
    monkeypatch.setattr(sysdeps, "apt_available", lambda: True)
    return m


def test_nothing_missing_runs_nothing(machine: Machine) -> None:
    machine.present.add("chromium")

    sysdeps.ensure("test", run=machine.run, say=lambda line: None)

    assert machine.commands == []


def test_as_root_it_installs_exactly_what_is_missing(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sysdeps, "privilege_prefix", lambda: [])
    said: list[str] = []

    sysdeps.ensure("test", run=machine.run, say=said.append)

    env = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    assert machine.commands == [
        [*env, "update", "-qq"],
        [*env, "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ]
    assert said == ["sysdeps: installing chromium for `make test` (apt-get)"]
    assert "chromium" in machine.present


def test_with_password_less_sudo_it_installs_through_sudo(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sysdeps, "privilege_prefix", lambda: ["sudo", "-n"])

    sysdeps.ensure("test", run=machine.run, say=lambda line: None)

    assert all(cmd[:2] == ["sudo", "-n"] for cmd in machine.commands)
    assert machine.commands[-1][-1] == "chromium"


def test_without_privileges_it_stops_with_one_line_naming_package_and_command(
    machine: Machine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sysdeps, "privilege_prefix", lambda: None)

    with pytest.raises(sysdeps.SysdepsError) as exc:
        sysdeps.ensure("test", run=machine.run)
    code = sysdeps.main(["test"])

    assert machine.commands == []
    assert "missing Debian package(s) chromium" in str(exc.value)
    assert "`sudo apt-get install -y chromium`" in str(exc.value)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("make test: missing Debian package(s) chromium (the chromium tests)")


def test_without_apt_it_says_how_and_runs_nothing(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sysdeps, "privilege_prefix", lambda: [])
    monkeypatch.setattr(sysdeps, "apt_available", lambda: False)

    with pytest.raises(sysdeps.SysdepsError, match="install with `sudo apt-get install -y"):
        sysdeps.ensure("test", run=machine.run)
    assert machine.commands == []


def test_a_failed_install_or_a_package_still_missing_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sysdeps, "privilege_prefix", lambda: [])
    monkeypatch.setattr(sysdeps, "apt_available", lambda: True)
    broken = Machine(set(), install_works=False)
    monkeypatch.setitem(sysdeps.PURPOSES, "test", (broken.requirement("chromium"),))

    with pytest.raises(sysdeps.SysdepsError, match="still fails its check"):
        sysdeps.ensure("test", run=broken.run, say=lambda line: None)
    with pytest.raises(sysdeps.SysdepsError, match="failed"):
        sysdeps.ensure("test", run=lambda cmd: 100, say=lambda line: None)


def test_each_purpose_needs_a_virtualenv_first_and_test_needs_the_most() -> None:
    names = {k: [r.package for r in v] for k, v in sysdeps.PURPOSES.items()}

    assert names == {
        "venv": ["python3-venv"],
        "bench": ["python3-venv", "valgrind"],
        "test": ["python3-venv", "valgrind", "chromium", "shellcheck"],
    }


def test_it_runs_on_the_system_python_alone_and_finds_everything_here() -> None:
    # `make` calls it with python3 before .venv exists: standard library only. This
    # machine ran `make test`, which installed the packages: nothing left to do.
    system_python = str(Path(sys.base_prefix) / "bin" / "python3")  # not .venv's
    proc = subprocess.run(
        [
            "/usr/bin/env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            system_python,
            "-m",
            "benchtools",
            "sysdeps",
            "test",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_an_unknown_purpose_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert sysdeps.main(["deploy"]) == 2
    assert "usage: python3 -m benchtools sysdeps {venv,bench,test}" in capsys.readouterr().err
