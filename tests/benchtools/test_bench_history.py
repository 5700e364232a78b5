"""benchtools/history.py's own decisions: the machine name, the note on missing tools."""

from __future__ import annotations

import argparse

import pytest

from benchtools import history as bh


def test_machine_name_from_the_environment_else_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASV_MACHINE", "ci-2cpu")
    assert bh.default_machine() == "ci-2cpu"
    monkeypatch.delenv("ASV_MACHINE")
    monkeypatch.setattr(bh.socket, "gethostname", lambda: "build box#7.example.org")
    assert bh.default_machine() == "build-box-7"
    monkeypatch.setattr(bh.socket, "gethostname", lambda: "")
    assert bh.default_machine() == "localhost"


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-x", "x" * 65, "a b"])
def test_a_machine_name_that_is_no_directory_name_is_refused(name: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="machine name"):
        bh.parse_machine(name)


def test_valgrind_missing_is_said_once_with_the_remedy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bh.shutil, "which", lambda tool: None)
    bh.warn_missing_tools()
    out = capsys.readouterr().out
    assert out.count("valgrind is not installed") == 1
    assert "bench_instructions.py" in out
    assert "apt-get install valgrind" in out

    monkeypatch.setattr(bh.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    bh.warn_missing_tools()
    assert capsys.readouterr().out == ""
